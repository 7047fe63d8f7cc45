#ifndef COOP_LIBRARY_H
#define COOP_LIBRARY_H

// Shared libraries coop opens on first use (libcurl, libarchive, gpgme, liblzma, libcrypto): only the
// commands that use one pay for loading it. Each loader lists the functions it needs; they are looked
// up in the library's own handle, never by name, as the executable defines functions of the same names.

#include <pthread.h>
#include <stddef.h>
#include <stdio.h>

typedef struct {
    const char *name;
    void **slot;
} coop_symbol;

/// Opens `file` (RTLD_NOW | RTLD_LOCAL) and fills every slot; 0, or -1 with the reason in `error`.
int coop_library_open(const char *file, const coop_symbol *symbols, size_t count, char *error, size_t size);

/// Defines `static int ready(void)`, which opens FILE with the symbols given once (later calls answer at
/// once), and `int coop_NAME_load(char *error, size_t size)`, which says why it could not.
#define COOP_LIBRARY(NAME, FILE, ...)                                                                            \
    static pthread_once_t library_##NAME##_once = PTHREAD_ONCE_INIT;                                             \
    static int library_##NAME##_loaded;                                                                          \
    static char library_##NAME##_error[512];                                                                     \
    static void library_##NAME##_open(void) {                                                                    \
        const coop_symbol symbols[] = {__VA_ARGS__};                                                             \
        library_##NAME##_loaded = coop_library_open(FILE, symbols, sizeof symbols / sizeof symbols[0],         \
                                                    library_##NAME##_error, sizeof library_##NAME##_error) == 0; \
    }                                                                                                            \
    static int ready(void) {                                                                                     \
        pthread_once(&library_##NAME##_once, library_##NAME##_open);                                             \
        return library_##NAME##_loaded;                                                                          \
    }                                                                                                            \
    int coop_##NAME##_load(char *error, size_t size) {                                                           \
        if (ready()) return 0;                                                                                   \
        snprintf(error, size, "%s", library_##NAME##_error);                                                     \
        return -1;                                                                                               \
    }

#endif
