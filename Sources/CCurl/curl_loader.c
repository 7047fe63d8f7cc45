#include "CCurl.h"

#include "coop_library.h"
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static struct {
    CURLcode (*global_init)(long);
    CURL *(*easy_init)(void);
    void (*easy_cleanup)(CURL *);
    CURLcode (*easy_perform)(CURL *);
    const char *(*easy_strerror)(CURLcode);
    CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
    CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
    curl_version_info_data *(*version_info)(CURLversion);
} curl;

COOP_LIBRARY(curl_symbols, "libcurl.so.4",
    {"curl_global_init", (void **)&curl.global_init},
    {"curl_easy_init", (void **)&curl.easy_init},
    {"curl_easy_cleanup", (void **)&curl.easy_cleanup},
    {"curl_easy_perform", (void **)&curl.easy_perform},
    {"curl_easy_strerror", (void **)&curl.easy_strerror},
    {"curl_easy_setopt", (void **)&curl.easy_setopt},
    {"curl_easy_getinfo", (void **)&curl.easy_getinfo},
    {"curl_version_info", (void **)&curl.version_info})

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static int initialized;

static void global_init(void) { initialized = ready() && curl.global_init(CURL_GLOBAL_ALL) == CURLE_OK; }

int coop_curl_load(char *error, size_t size) {
    if (coop_curl_symbols_load(error, size) != 0) return -1;
    pthread_once(&global_once, global_init);
    if (initialized) return 0;
    snprintf(error, size, "curl_global_init failed");
    return -1;
}

CURL *coop_curl_easy_init(void) { return curl.easy_init(); }
void coop_curl_easy_cleanup(CURL *handle) { curl.easy_cleanup(handle); }
CURLcode coop_curl_easy_perform(CURL *handle) { return curl.easy_perform(handle); }
const char *coop_curl_easy_strerror(CURLcode code) { return curl.easy_strerror(code); }
CURLcode coop_curl_setopt_long(CURL *h, CURLoption o, long v) { return curl.easy_setopt(h, o, v); }
CURLcode coop_curl_setopt_offset(CURL *h, CURLoption o, curl_off_t v) { return curl.easy_setopt(h, o, v); }
CURLcode coop_curl_setopt_string(CURL *h, CURLoption o, const char *v) { return curl.easy_setopt(h, o, v); }
CURLcode coop_curl_setopt_pointer(CURL *h, CURLoption o, void *v) { return curl.easy_setopt(h, o, v); }
CURLcode coop_curl_setopt_write(CURL *h, curl_write_callback f) { return curl.easy_setopt(h, CURLOPT_WRITEFUNCTION, f); }
CURLcode coop_curl_setopt_xferinfo(CURL *h, curl_xferinfo_callback f) {
    return curl.easy_setopt(h, CURLOPT_XFERINFOFUNCTION, f);
}
CURLcode coop_curl_getinfo_long(CURL *h, CURLINFO i, long *v) { return curl.easy_getinfo(h, i, v); }
CURLcode coop_curl_getinfo_offset(CURL *h, CURLINFO i, curl_off_t *v) { return curl.easy_getinfo(h, i, v); }
const char *coop_curl_version(void) { return curl.version_info(CURLVERSION_NOW)->version; }
