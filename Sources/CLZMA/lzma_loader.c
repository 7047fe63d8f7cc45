#include "coop_library.h"
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>

// The functions of liblzma that coop uses, defined here with its own names and prototypes (the header
// checks them) and forwarded to the library, which is opened on the first call. Hidden: the executable
// must not offer them to other libraries, which must keep calling their own liblzma.
#pragma GCC visibility push(hidden)
#include "CLZMA.h"
#pragma GCC visibility pop

static struct {
    __typeof__(lzma_code) *code;
    __typeof__(lzma_end) *end;
    __typeof__(lzma_stream_decoder_mt) *stream_decoder_mt;
    __typeof__(lzma_stream_encoder_mt) *stream_encoder_mt;
} lzma;

COOP_LIBRARY(lzma, "liblzma.so.5",
    {"lzma_code", (void **)&lzma.code},
    {"lzma_end", (void **)&lzma.end},
    {"lzma_stream_decoder_mt", (void **)&lzma.stream_decoder_mt},
    {"lzma_stream_encoder_mt", (void **)&lzma.stream_encoder_mt})

// Each forwards through the pointer dlsym found in the library, never by name, which would come back here.
lzma_ret lzma_code(lzma_stream *strm, lzma_action action) {
    return ready() ? lzma.code(strm, action) : LZMA_PROG_ERROR;
}

void lzma_end(lzma_stream *strm) {
    if (ready()) lzma.end(strm);
}

lzma_ret lzma_stream_decoder_mt(lzma_stream *strm, const lzma_mt *options) {
    return ready() ? lzma.stream_decoder_mt(strm, options) : LZMA_PROG_ERROR;
}

lzma_ret lzma_stream_encoder_mt(lzma_stream *strm, const lzma_mt *options) {
    return ready() ? lzma.stream_encoder_mt(strm, options) : LZMA_PROG_ERROR;
}
