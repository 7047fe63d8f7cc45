#ifndef COOP_CGPGME_H
#define COOP_CGPGME_H

// gpgme, loaded on first use (gpgme_loader.c): only the commands that verify or sign pay for loading it
// with libassuan and libgpg-error. Types and constants come from its header.
#include <gpgme.h>
#include <stddef.h>

/// Loads libgpgme, once; 0 when it is there, else -1 with dlerror's text in `error`. Until it is loaded,
/// the gpgme_ functions coop uses return an error (GPG_ERR_NOT_OPERATIONAL, NULL or -1).
int coop_gpgme_load(char *error, size_t size);

// gpgme_check_version is a macro that also checks the struct layout; it must run before any other call.
static inline const char *coop_gpgme_init(void) { return gpgme_check_version(NULL); }
static inline gpgme_error_t coop_gpgme_err_code(gpgme_error_t e) { return gpgme_err_code(e); }

static inline unsigned int coop_gpgme_create_flags(void) {
    return GPGME_CREATE_SIGN | GPGME_CREATE_NOPASSWD | GPGME_CREATE_NOEXPIRE;
}

#endif
