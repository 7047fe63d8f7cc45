#ifndef COOP_CCURL_H
#define COOP_CCURL_H

// libcurl, loaded on first use: only the commands that download pay for loading it and the dozen
// libraries it brings (about 4 ms at every start otherwise). Types and constants come from its header.
#include <curl/curl.h>
#include <stddef.h>

/// Loads libcurl and runs its global init, once; 0 when it is there, else -1 with dlerror's text in
/// `error`.
int coop_curl_load(char *error, size_t size);

CURL *coop_curl_easy_init(void);
void coop_curl_easy_cleanup(CURL *handle);
CURLcode coop_curl_easy_perform(CURL *handle);
const char *coop_curl_easy_strerror(CURLcode code);

// curl_easy_setopt and curl_easy_getinfo are variadic: Swift needs one typed wrapper per argument type.
CURLcode coop_curl_setopt_long(CURL *h, CURLoption o, long v);
CURLcode coop_curl_setopt_offset(CURL *h, CURLoption o, curl_off_t v);
CURLcode coop_curl_setopt_string(CURL *h, CURLoption o, const char *v);
CURLcode coop_curl_setopt_pointer(CURL *h, CURLoption o, void *v);
CURLcode coop_curl_setopt_write(CURL *h, curl_write_callback f);
CURLcode coop_curl_setopt_xferinfo(CURL *h, curl_xferinfo_callback f);
CURLcode coop_curl_getinfo_long(CURL *h, CURLINFO i, long *v);
CURLcode coop_curl_getinfo_offset(CURL *h, CURLINFO i, curl_off_t *v);
const char *coop_curl_version(void);

#endif
