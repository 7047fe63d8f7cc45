#include <gpgme.h>

// gpgme_check_version is a macro that also checks the struct layout; it must run before any other call.
static inline const char *coop_gpgme_init(void) { return gpgme_check_version(NULL); }
static inline gpgme_error_t coop_gpgme_err_code(gpgme_error_t e) { return gpgme_err_code(e); }

static inline unsigned int coop_gpgme_create_flags(void) {
    return GPGME_CREATE_SIGN | GPGME_CREATE_NOPASSWD | GPGME_CREATE_NOEXPIRE;
}
