#include "CCurl.h"

#include <dlfcn.h>
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

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char load_error[512];

static void load(void) {
    void *library = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (library == NULL) {
        snprintf(load_error, sizeof load_error, "%s", dlerror());
        return;
    }
    struct {
        const char *name;
        void **slot;
    } symbols[] = {
        {"curl_global_init", (void **)&curl.global_init},     {"curl_easy_init", (void **)&curl.easy_init},
        {"curl_easy_cleanup", (void **)&curl.easy_cleanup},   {"curl_easy_perform", (void **)&curl.easy_perform},
        {"curl_easy_strerror", (void **)&curl.easy_strerror}, {"curl_easy_setopt", (void **)&curl.easy_setopt},
        {"curl_easy_getinfo", (void **)&curl.easy_getinfo},   {"curl_version_info", (void **)&curl.version_info},
    };
    for (size_t i = 0; i < sizeof symbols / sizeof symbols[0]; i++) {
        *symbols[i].slot = dlsym(library, symbols[i].name);
        if (*symbols[i].slot == NULL) {
            snprintf(load_error, sizeof load_error, "libcurl.so.4 has no %s", symbols[i].name);
            curl.easy_init = NULL;
            return;
        }
    }
    if (curl.global_init(CURL_GLOBAL_ALL) != CURLE_OK) {
        snprintf(load_error, sizeof load_error, "curl_global_init failed");
        curl.easy_init = NULL;
    }
}

int coop_curl_load(char *error, size_t size) {
    pthread_once(&once, load);
    if (curl.easy_init != NULL) return 0;
    snprintf(error, size, "%s", load_error);
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
