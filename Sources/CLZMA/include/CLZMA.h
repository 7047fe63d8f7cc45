#ifndef COOP_CLZMA_H
#define COOP_CLZMA_H

// liblzma, loaded on first use (lzma_loader.c): only the commands that decode or build an image pay for
// loading it. Types and constants come from its header.
#include <lzma.h>
#include <stddef.h>

/// Loads liblzma, once; 0 when it is there, else -1 with dlerror's text in `error`. Until it is loaded,
/// the lzma_ functions coop uses return LZMA_PROG_ERROR.
int coop_lzma_load(char *error, size_t size);

static inline lzma_stream coop_lzma_stream_init(void) {
    lzma_stream s = LZMA_STREAM_INIT;
    return s;
}

static inline uint32_t coop_lzma_concatenated(void) { return LZMA_CONCATENATED; }

#endif
