#include "coop_library.h"
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

// The functions of libcrypto that coop uses, defined here with its own names and prototypes (the header
// checks them) and forwarded to the library, which is opened on the first call. Hidden: the executable
// must not offer them to other libraries (libssl, which libcurl loads), which must keep calling their own
// libcrypto.
#pragma GCC visibility push(hidden)
#include "CLibcrypto.h"
#pragma GCC visibility pop

static struct {
    __typeof__(EVP_MD_CTX_new) *md_ctx_new;
    __typeof__(EVP_MD_CTX_free) *md_ctx_free;
    __typeof__(EVP_sha256) *sha256;
    __typeof__(EVP_DigestInit_ex) *digest_init_ex;
    __typeof__(EVP_DigestUpdate) *digest_update;
    __typeof__(EVP_DigestFinal_ex) *digest_final_ex;
} crypto;

COOP_LIBRARY(libcrypto, "libcrypto.so.3",
    {"EVP_MD_CTX_new", (void **)&crypto.md_ctx_new},
    {"EVP_MD_CTX_free", (void **)&crypto.md_ctx_free},
    {"EVP_sha256", (void **)&crypto.sha256},
    {"EVP_DigestInit_ex", (void **)&crypto.digest_init_ex},
    {"EVP_DigestUpdate", (void **)&crypto.digest_update},
    {"EVP_DigestFinal_ex", (void **)&crypto.digest_final_ex})

// Each forwards through the pointer dlsym found in the library, never by name, which would come back here.
EVP_MD_CTX *EVP_MD_CTX_new(void) { return ready() ? crypto.md_ctx_new() : NULL; }

void EVP_MD_CTX_free(EVP_MD_CTX *ctx) {
    if (ready()) crypto.md_ctx_free(ctx);
}

const EVP_MD *EVP_sha256(void) { return ready() ? crypto.sha256() : NULL; }

int EVP_DigestInit_ex(EVP_MD_CTX *ctx, const EVP_MD *type, ENGINE *impl) {
    return ready() ? crypto.digest_init_ex(ctx, type, impl) : 0;
}

int EVP_DigestUpdate(EVP_MD_CTX *ctx, const void *d, size_t cnt) {
    return ready() ? crypto.digest_update(ctx, d, cnt) : 0;
}

int EVP_DigestFinal_ex(EVP_MD_CTX *ctx, unsigned char *md, unsigned int *s) {
    return ready() ? crypto.digest_final_ex(ctx, md, s) : 0;
}
