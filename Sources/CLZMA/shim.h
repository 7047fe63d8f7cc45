#include <lzma.h>

static inline lzma_stream coop_lzma_stream_init(void) { lzma_stream s = LZMA_STREAM_INIT; return s; }

static inline uint32_t coop_lzma_concatenated(void) { return LZMA_CONCATENATED; }
