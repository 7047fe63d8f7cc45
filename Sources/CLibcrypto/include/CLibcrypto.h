#ifndef COOP_CLIBCRYPTO_H
#define COOP_CLIBCRYPTO_H

// OpenSSL's libcrypto, loaded on first use (libcrypto_loader.c): only the commands that hash pay for
// loading it. Types and constants come from its header.
#include <openssl/evp.h>
#include <stddef.h>

/// Loads libcrypto, once; 0 when it is there, else -1 with dlerror's text in `error`. Until it is
/// loaded, the EVP_ functions coop uses fail as OpenSSL's do: NULL or 0.
int coop_libcrypto_load(char *error, size_t size);

#endif
