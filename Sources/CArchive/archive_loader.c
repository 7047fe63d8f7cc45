#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

// The functions of libarchive that coop uses, defined here with its own names and prototypes (the header
// checks them) and forwarded to the library, which is opened on the first call. Hidden: the executable
// must not offer them to other libraries, which must keep calling their own libarchive.
#pragma GCC visibility push(hidden)
#include "CArchive.h"
#pragma GCC visibility pop

static void *library;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void open_library(void) { library = dlopen("libarchive.so.13", RTLD_NOW | RTLD_LOCAL); }

// A missing libarchive is a broken installation: say so the way coop reports errors, and stop.
static void *resolve(const char *name) {
    pthread_once(&once, open_library);
    void *function = library != NULL ? dlsym(library, name) : NULL;
    if (function == NULL) {
        fprintf(stderr, "error: libarchive: cannot be loaded (%s)\n  fix: apt-get install libarchive13\n",
                library == NULL ? dlerror() : name);
        _exit(8);
    }
    return function;
}

struct archive *archive_read_new(void) {
    static struct archive *(*function)(void);
    if (function == NULL) function = (struct archive *(*)(void))resolve("archive_read_new");
    return function();
}

int archive_read_support_filter_all(struct archive *a) {
    static int (*function)(struct archive *a);
    if (function == NULL) function = (int (*)(struct archive *a))resolve("archive_read_support_filter_all");
    return function(a);
}

int archive_read_support_format_all(struct archive *a) {
    static int (*function)(struct archive *a);
    if (function == NULL) function = (int (*)(struct archive *a))resolve("archive_read_support_format_all");
    return function(a);
}

int archive_read_open_fd(struct archive *a, int fd, size_t block) {
    static int (*function)(struct archive *a, int fd, size_t block);
    if (function == NULL) function = (int (*)(struct archive *a, int fd, size_t block))resolve("archive_read_open_fd");
    return function(a, fd, block);
}

int archive_read_open_filename(struct archive *a, const char *file, size_t block) {
    static int (*function)(struct archive *a, const char *file, size_t block);
    if (function == NULL) function = (int (*)(struct archive *a, const char *file, size_t block))resolve("archive_read_open_filename");
    return function(a, file, block);
}

int archive_read_next_header(struct archive *a, struct archive_entry **entry) {
    static int (*function)(struct archive *a, struct archive_entry **entry);
    if (function == NULL) function = (int (*)(struct archive *a, struct archive_entry **entry))resolve("archive_read_next_header");
    return function(a, entry);
}

la_ssize_t archive_read_data(struct archive *a, void *buffer, size_t size) {
    static la_ssize_t (*function)(struct archive *a, void *buffer, size_t size);
    if (function == NULL) function = (la_ssize_t (*)(struct archive *a, void *buffer, size_t size))resolve("archive_read_data");
    return function(a, buffer, size);
}

int archive_read_data_block(struct archive *a, const void **buffer, size_t *size, la_int64_t *offset) {
    static int (*function)(struct archive *a, const void **buffer, size_t *size, la_int64_t *offset);
    if (function == NULL) function = (int (*)(struct archive *a, const void **buffer, size_t *size, la_int64_t *offset))resolve("archive_read_data_block");
    return function(a, buffer, size, offset);
}

int archive_read_data_into_fd(struct archive *a, int fd) {
    static int (*function)(struct archive *a, int fd);
    if (function == NULL) function = (int (*)(struct archive *a, int fd))resolve("archive_read_data_into_fd");
    return function(a, fd);
}

int archive_read_data_skip(struct archive *a) {
    static int (*function)(struct archive *a);
    if (function == NULL) function = (int (*)(struct archive *a))resolve("archive_read_data_skip");
    return function(a);
}

int archive_read_free(struct archive *a) {
    static int (*function)(struct archive *a);
    if (function == NULL) function = (int (*)(struct archive *a))resolve("archive_read_free");
    return function(a);
}

const char *archive_error_string(struct archive *a) {
    static const char *(*function)(struct archive *a);
    if (function == NULL) function = (const char *(*)(struct archive *a))resolve("archive_error_string");
    return function(a);
}

int archive_errno(struct archive *a) {
    static int (*function)(struct archive *a);
    if (function == NULL) function = (int (*)(struct archive *a))resolve("archive_errno");
    return function(a);
}

struct archive *archive_write_new(void) {
    static struct archive *(*function)(void);
    if (function == NULL) function = (struct archive *(*)(void))resolve("archive_write_new");
    return function();
}

int archive_write_add_filter_xz(struct archive *a) {
    static int (*function)(struct archive *a);
    if (function == NULL) function = (int (*)(struct archive *a))resolve("archive_write_add_filter_xz");
    return function(a);
}

int archive_write_add_filter_zstd(struct archive *a) {
    static int (*function)(struct archive *a);
    if (function == NULL) function = (int (*)(struct archive *a))resolve("archive_write_add_filter_zstd");
    return function(a);
}

int archive_write_set_filter_option(struct archive *a, const char *m, const char *o, const char *v) {
    static int (*function)(struct archive *a, const char *m, const char *o, const char *v);
    if (function == NULL) function = (int (*)(struct archive *a, const char *m, const char *o, const char *v))resolve("archive_write_set_filter_option");
    return function(a, m, o, v);
}

int archive_write_set_format_gnutar(struct archive *a) {
    static int (*function)(struct archive *a);
    if (function == NULL) function = (int (*)(struct archive *a))resolve("archive_write_set_format_gnutar");
    return function(a);
}

int archive_write_set_format_pax_restricted(struct archive *a) {
    static int (*function)(struct archive *a);
    if (function == NULL) function = (int (*)(struct archive *a))resolve("archive_write_set_format_pax_restricted");
    return function(a);
}

int archive_write_set_format_raw(struct archive *a) {
    static int (*function)(struct archive *a);
    if (function == NULL) function = (int (*)(struct archive *a))resolve("archive_write_set_format_raw");
    return function(a);
}

int archive_write_open_filename(struct archive *a, const char *file) {
    static int (*function)(struct archive *a, const char *file);
    if (function == NULL) function = (int (*)(struct archive *a, const char *file))resolve("archive_write_open_filename");
    return function(a, file);
}

int archive_write_open_fd(struct archive *a, int fd) {
    static int (*function)(struct archive *a, int fd);
    if (function == NULL) function = (int (*)(struct archive *a, int fd))resolve("archive_write_open_fd");
    return function(a, fd);
}

int archive_write_header(struct archive *a, struct archive_entry *entry) {
    static int (*function)(struct archive *a, struct archive_entry *entry);
    if (function == NULL) function = (int (*)(struct archive *a, struct archive_entry *entry))resolve("archive_write_header");
    return function(a, entry);
}

la_ssize_t archive_write_data(struct archive *a, const void *buffer, size_t size) {
    static la_ssize_t (*function)(struct archive *a, const void *buffer, size_t size);
    if (function == NULL) function = (la_ssize_t (*)(struct archive *a, const void *buffer, size_t size))resolve("archive_write_data");
    return function(a, buffer, size);
}

la_ssize_t archive_write_data_block(struct archive *a, const void *buffer, size_t size, la_int64_t offset) {
    static la_ssize_t (*function)(struct archive *a, const void *buffer, size_t size, la_int64_t offset);
    if (function == NULL) function = (la_ssize_t (*)(struct archive *a, const void *buffer, size_t size, la_int64_t offset))resolve("archive_write_data_block");
    return function(a, buffer, size, offset);
}

int archive_write_finish_entry(struct archive *a) {
    static int (*function)(struct archive *a);
    if (function == NULL) function = (int (*)(struct archive *a))resolve("archive_write_finish_entry");
    return function(a);
}

int archive_write_close(struct archive *a) {
    static int (*function)(struct archive *a);
    if (function == NULL) function = (int (*)(struct archive *a))resolve("archive_write_close");
    return function(a);
}

int archive_write_free(struct archive *a) {
    static int (*function)(struct archive *a);
    if (function == NULL) function = (int (*)(struct archive *a))resolve("archive_write_free");
    return function(a);
}

struct archive *archive_write_disk_new(void) {
    static struct archive *(*function)(void);
    if (function == NULL) function = (struct archive *(*)(void))resolve("archive_write_disk_new");
    return function();
}

int archive_write_disk_set_options(struct archive *a, int flags) {
    static int (*function)(struct archive *a, int flags);
    if (function == NULL) function = (int (*)(struct archive *a, int flags))resolve("archive_write_disk_set_options");
    return function(a, flags);
}

struct archive_entry *archive_entry_new(void) {
    static struct archive_entry *(*function)(void);
    if (function == NULL) function = (struct archive_entry *(*)(void))resolve("archive_entry_new");
    return function();
}

void archive_entry_free(struct archive_entry *e) {
    static void (*function)(struct archive_entry *e);
    if (function == NULL) function = (void (*)(struct archive_entry *e))resolve("archive_entry_free");
    function(e);
}

la_int64_t archive_entry_gid(struct archive_entry *e) {
    static la_int64_t (*function)(struct archive_entry *e);
    if (function == NULL) function = (la_int64_t (*)(struct archive_entry *e))resolve("archive_entry_gid");
    return function(e);
}

la_int64_t archive_entry_uid(struct archive_entry *e) {
    static la_int64_t (*function)(struct archive_entry *e);
    if (function == NULL) function = (la_int64_t (*)(struct archive_entry *e))resolve("archive_entry_uid");
    return function(e);
}

const char *archive_entry_hardlink(struct archive_entry *e) {
    static const char *(*function)(struct archive_entry *e);
    if (function == NULL) function = (const char *(*)(struct archive_entry *e))resolve("archive_entry_hardlink");
    return function(e);
}

const char *archive_entry_pathname(struct archive_entry *e) {
    static const char *(*function)(struct archive_entry *e);
    if (function == NULL) function = (const char *(*)(struct archive_entry *e))resolve("archive_entry_pathname");
    return function(e);
}

int archive_entry_size_is_set(struct archive_entry *e) {
    static int (*function)(struct archive_entry *e);
    if (function == NULL) function = (int (*)(struct archive_entry *e))resolve("archive_entry_size_is_set");
    return function(e);
}

const char *archive_entry_symlink(struct archive_entry *e) {
    static const char *(*function)(struct archive_entry *e);
    if (function == NULL) function = (const char *(*)(struct archive_entry *e))resolve("archive_entry_symlink");
    return function(e);
}

__LA_MODE_T archive_entry_perm(struct archive_entry *e) {
    static __LA_MODE_T (*function)(struct archive_entry *e);
    if (function == NULL) function = (__LA_MODE_T (*)(struct archive_entry *e))resolve("archive_entry_perm");
    return function(e);
}

la_int64_t archive_entry_size(struct archive_entry *e) {
    static la_int64_t (*function)(struct archive_entry *e);
    if (function == NULL) function = (la_int64_t (*)(struct archive_entry *e))resolve("archive_entry_size");
    return function(e);
}

__LA_MODE_T archive_entry_filetype(struct archive_entry *e) {
    static __LA_MODE_T (*function)(struct archive_entry *e);
    if (function == NULL) function = (__LA_MODE_T (*)(struct archive_entry *e))resolve("archive_entry_filetype");
    return function(e);
}

void archive_entry_set_gid(struct archive_entry *e, la_int64_t id) {
    static void (*function)(struct archive_entry *e, la_int64_t id);
    if (function == NULL) function = (void (*)(struct archive_entry *e, la_int64_t id))resolve("archive_entry_set_gid");
    function(e, id);
}

void archive_entry_set_uid(struct archive_entry *e, la_int64_t id) {
    static void (*function)(struct archive_entry *e, la_int64_t id);
    if (function == NULL) function = (void (*)(struct archive_entry *e, la_int64_t id))resolve("archive_entry_set_uid");
    function(e, id);
}

void archive_entry_set_hardlink(struct archive_entry *e, const char *target) {
    static void (*function)(struct archive_entry *e, const char *target);
    if (function == NULL) function = (void (*)(struct archive_entry *e, const char *target))resolve("archive_entry_set_hardlink");
    function(e, target);
}

void archive_entry_set_mtime(struct archive_entry *e, time_t seconds, long nanoseconds) {
    static void (*function)(struct archive_entry *e, time_t seconds, long nanoseconds);
    if (function == NULL) function = (void (*)(struct archive_entry *e, time_t seconds, long nanoseconds))resolve("archive_entry_set_mtime");
    function(e, seconds, nanoseconds);
}

void archive_entry_set_pathname(struct archive_entry *e, const char *path) {
    static void (*function)(struct archive_entry *e, const char *path);
    if (function == NULL) function = (void (*)(struct archive_entry *e, const char *path))resolve("archive_entry_set_pathname");
    function(e, path);
}

void archive_entry_set_perm(struct archive_entry *e, __LA_MODE_T mode) {
    static void (*function)(struct archive_entry *e, __LA_MODE_T mode);
    if (function == NULL) function = (void (*)(struct archive_entry *e, __LA_MODE_T mode))resolve("archive_entry_set_perm");
    function(e, mode);
}

void archive_entry_set_size(struct archive_entry *e, la_int64_t size) {
    static void (*function)(struct archive_entry *e, la_int64_t size);
    if (function == NULL) function = (void (*)(struct archive_entry *e, la_int64_t size))resolve("archive_entry_set_size");
    function(e, size);
}

void archive_entry_set_symlink(struct archive_entry *e, const char *target) {
    static void (*function)(struct archive_entry *e, const char *target);
    if (function == NULL) function = (void (*)(struct archive_entry *e, const char *target))resolve("archive_entry_set_symlink");
    function(e, target);
}

void archive_entry_set_filetype(struct archive_entry *e, unsigned int type) {
    static void (*function)(struct archive_entry *e, unsigned int type);
    if (function == NULL) function = (void (*)(struct archive_entry *e, unsigned int type))resolve("archive_entry_set_filetype");
    function(e, type);
}
