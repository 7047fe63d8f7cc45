#include "coop_library.h"
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>
#include <time.h>

// The functions of gpgme that coop uses, defined here with its own names and prototypes (the header checks
// them) and forwarded to the library, which is opened on the first call. Hidden: the executable must not
// offer them to other libraries, which must keep calling their own gpgme.
#pragma GCC visibility push(hidden)
#include "CGPGME.h"
#pragma GCC visibility pop

static struct {
    __typeof__(gpgme_check_version_internal) *check_version_internal;
    __typeof__(gpgme_new) *new;
    __typeof__(gpgme_release) *release;
    __typeof__(gpgme_set_protocol) *set_protocol;
    __typeof__(gpgme_set_armor) *set_armor;
    __typeof__(gpgme_ctx_set_engine_info) *ctx_set_engine_info;
    __typeof__(gpgme_signers_clear) *signers_clear;
    __typeof__(gpgme_signers_add) *signers_add;
    __typeof__(gpgme_strerror) *strerror;
    __typeof__(gpgme_data_read) *data_read;
    __typeof__(gpgme_data_seek) *data_seek;
    __typeof__(gpgme_data_new) *data_new;
    __typeof__(gpgme_data_release) *data_release;
    __typeof__(gpgme_data_new_from_mem) *data_new_from_mem;
    __typeof__(gpgme_data_release_and_get_mem) *data_release_and_get_mem;
    __typeof__(gpgme_free) *free;
    __typeof__(gpgme_data_new_from_fd) *data_new_from_fd;
    __typeof__(gpgme_get_key) *get_key;
    __typeof__(gpgme_key_unref) *key_unref;
    __typeof__(gpgme_op_sign) *op_sign;
    __typeof__(gpgme_op_verify_result) *op_verify_result;
    __typeof__(gpgme_op_verify) *op_verify;
    __typeof__(gpgme_op_import_result) *op_import_result;
    __typeof__(gpgme_op_import) *op_import;
    __typeof__(gpgme_op_export) *op_export;
    __typeof__(gpgme_op_createkey) *op_createkey;
    __typeof__(gpgme_op_keylist_start) *op_keylist_start;
    __typeof__(gpgme_op_keylist_next) *op_keylist_next;
    __typeof__(gpgme_op_keylist_end) *op_keylist_end;
} gpgme;

COOP_LIBRARY(gpgme, "libgpgme.so.11",
    {"gpgme_check_version_internal", (void **)&gpgme.check_version_internal},
    {"gpgme_new", (void **)&gpgme.new},
    {"gpgme_release", (void **)&gpgme.release},
    {"gpgme_set_protocol", (void **)&gpgme.set_protocol},
    {"gpgme_set_armor", (void **)&gpgme.set_armor},
    {"gpgme_ctx_set_engine_info", (void **)&gpgme.ctx_set_engine_info},
    {"gpgme_signers_clear", (void **)&gpgme.signers_clear},
    {"gpgme_signers_add", (void **)&gpgme.signers_add},
    {"gpgme_strerror", (void **)&gpgme.strerror},
    {"gpgme_data_read", (void **)&gpgme.data_read},
    {"gpgme_data_seek", (void **)&gpgme.data_seek},
    {"gpgme_data_new", (void **)&gpgme.data_new},
    {"gpgme_data_release", (void **)&gpgme.data_release},
    {"gpgme_data_new_from_mem", (void **)&gpgme.data_new_from_mem},
    {"gpgme_data_release_and_get_mem", (void **)&gpgme.data_release_and_get_mem},
    {"gpgme_free", (void **)&gpgme.free},
    {"gpgme_data_new_from_fd", (void **)&gpgme.data_new_from_fd},
    {"gpgme_get_key", (void **)&gpgme.get_key},
    {"gpgme_key_unref", (void **)&gpgme.key_unref},
    {"gpgme_op_sign", (void **)&gpgme.op_sign},
    {"gpgme_op_verify_result", (void **)&gpgme.op_verify_result},
    {"gpgme_op_verify", (void **)&gpgme.op_verify},
    {"gpgme_op_import_result", (void **)&gpgme.op_import_result},
    {"gpgme_op_import", (void **)&gpgme.op_import},
    {"gpgme_op_export", (void **)&gpgme.op_export},
    {"gpgme_op_createkey", (void **)&gpgme.op_createkey},
    {"gpgme_op_keylist_start", (void **)&gpgme.op_keylist_start},
    {"gpgme_op_keylist_next", (void **)&gpgme.op_keylist_next},
    {"gpgme_op_keylist_end", (void **)&gpgme.op_keylist_end})

// What the functions return while the library is missing: errors, never a call through a null pointer.
#define NOT_LOADED gpgme_err_make(GPG_ERR_SOURCE_GPGME, GPG_ERR_NOT_OPERATIONAL)

// Each forwards through the pointer dlsym found in the library, never by name, which would come back here.
const char *gpgme_check_version_internal(const char *req_version, size_t offset_sig_validity) {
    return ready() ? gpgme.check_version_internal(req_version, offset_sig_validity) : NULL;
}

gpgme_error_t gpgme_new(gpgme_ctx_t *ctx) {
    return ready() ? gpgme.new(ctx) : NOT_LOADED;
}

void gpgme_release(gpgme_ctx_t ctx) {
    if (ready()) gpgme.release(ctx);
}

gpgme_error_t gpgme_set_protocol(gpgme_ctx_t ctx, gpgme_protocol_t proto) {
    return ready() ? gpgme.set_protocol(ctx, proto) : NOT_LOADED;
}

void gpgme_set_armor(gpgme_ctx_t ctx, int yes) {
    if (ready()) gpgme.set_armor(ctx, yes);
}

gpgme_error_t gpgme_ctx_set_engine_info(gpgme_ctx_t ctx, gpgme_protocol_t proto, const char *file_name,
                                        const char *home_dir) {
    return ready() ? gpgme.ctx_set_engine_info(ctx, proto, file_name, home_dir) : NOT_LOADED;
}

void gpgme_signers_clear(gpgme_ctx_t ctx) {
    if (ready()) gpgme.signers_clear(ctx);
}

gpgme_error_t gpgme_signers_add(gpgme_ctx_t ctx, const gpgme_key_t key) {
    return ready() ? gpgme.signers_add(ctx, key) : NOT_LOADED;
}

const char *gpgme_strerror(gpgme_error_t err) {
    return ready() ? gpgme.strerror(err) : "libgpgme is not loaded";
}

ssize_t gpgme_data_read(gpgme_data_t dh, void *buffer, size_t size) {
    if (!ready()) {
        errno = ENOSYS;
        return -1;
    }
    return gpgme.data_read(dh, buffer, size);
}

off_t gpgme_data_seek(gpgme_data_t dh, off_t offset, int whence) {
    if (!ready()) {
        errno = ENOSYS;
        return -1;
    }
    return gpgme.data_seek(dh, offset, whence);
}

gpgme_error_t gpgme_data_new(gpgme_data_t *r_dh) {
    return ready() ? gpgme.data_new(r_dh) : NOT_LOADED;
}

void gpgme_data_release(gpgme_data_t dh) {
    if (ready()) gpgme.data_release(dh);
}

gpgme_error_t gpgme_data_new_from_mem(gpgme_data_t *r_dh, const char *buffer, size_t size, int copy) {
    return ready() ? gpgme.data_new_from_mem(r_dh, buffer, size, copy) : NOT_LOADED;
}

char *gpgme_data_release_and_get_mem(gpgme_data_t dh, size_t *r_len) {
    return ready() ? gpgme.data_release_and_get_mem(dh, r_len) : NULL;
}

void gpgme_free(void *buffer) {
    if (ready()) gpgme.free(buffer);
}

gpgme_error_t gpgme_data_new_from_fd(gpgme_data_t *dh, int fd) {
    return ready() ? gpgme.data_new_from_fd(dh, fd) : NOT_LOADED;
}

gpgme_error_t gpgme_get_key(gpgme_ctx_t ctx, const char *fpr, gpgme_key_t *r_key, int secret) {
    return ready() ? gpgme.get_key(ctx, fpr, r_key, secret) : NOT_LOADED;
}

void gpgme_key_unref(gpgme_key_t key) {
    if (ready()) gpgme.key_unref(key);
}

gpgme_error_t gpgme_op_sign(gpgme_ctx_t ctx, gpgme_data_t plain, gpgme_data_t sig, gpgme_sig_mode_t mode) {
    return ready() ? gpgme.op_sign(ctx, plain, sig, mode) : NOT_LOADED;
}

gpgme_verify_result_t gpgme_op_verify_result(gpgme_ctx_t ctx) {
    return ready() ? gpgme.op_verify_result(ctx) : NULL;
}

gpgme_error_t gpgme_op_verify(gpgme_ctx_t ctx, gpgme_data_t sig, gpgme_data_t signed_text, gpgme_data_t plaintext) {
    return ready() ? gpgme.op_verify(ctx, sig, signed_text, plaintext) : NOT_LOADED;
}

gpgme_import_result_t gpgme_op_import_result(gpgme_ctx_t ctx) {
    return ready() ? gpgme.op_import_result(ctx) : NULL;
}

gpgme_error_t gpgme_op_import(gpgme_ctx_t ctx, gpgme_data_t keydata) {
    return ready() ? gpgme.op_import(ctx, keydata) : NOT_LOADED;
}

gpgme_error_t gpgme_op_export(gpgme_ctx_t ctx, const char *pattern, gpgme_export_mode_t mode, gpgme_data_t keydata) {
    return ready() ? gpgme.op_export(ctx, pattern, mode, keydata) : NOT_LOADED;
}

gpgme_error_t gpgme_op_createkey(gpgme_ctx_t ctx, const char *userid, const char *algo, unsigned long reserved,
                                 unsigned long expires, gpgme_key_t certkey, unsigned int flags) {
    return ready() ? gpgme.op_createkey(ctx, userid, algo, reserved, expires, certkey, flags) : NOT_LOADED;
}

gpgme_error_t gpgme_op_keylist_start(gpgme_ctx_t ctx, const char *pattern, int secret_only) {
    return ready() ? gpgme.op_keylist_start(ctx, pattern, secret_only) : NOT_LOADED;
}

gpgme_error_t gpgme_op_keylist_next(gpgme_ctx_t ctx, gpgme_key_t *r_key) {
    return ready() ? gpgme.op_keylist_next(ctx, r_key) : NOT_LOADED;
}

gpgme_error_t gpgme_op_keylist_end(gpgme_ctx_t ctx) {
    return ready() ? gpgme.op_keylist_end(ctx) : NOT_LOADED;
}
