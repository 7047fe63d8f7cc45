#ifndef COOP_CARCHIVE_H
#define COOP_CARCHIVE_H

// libarchive, loaded on first use (archive_loader.c): the commands that never touch an archive (start,
// exec, stop, list …) do not pay for loading it and the libraries it brings.
#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>

// The AE_IF* file-type constants are macros Swift cannot import as typed values: coop's own names.
enum coop_ae_kind {
    COOP_AE_OTHER,
    COOP_AE_REGULAR,
    COOP_AE_DIRECTORY,
    COOP_AE_SYMLINK,
    COOP_AE_CHARACTER,
    COOP_AE_BLOCK,
    COOP_AE_FIFO,
    COOP_AE_SOCKET,
};

static inline enum coop_ae_kind coop_ae_get_kind(struct archive_entry *e) {
    switch (archive_entry_filetype(e)) {
    case AE_IFREG: return COOP_AE_REGULAR;
    case AE_IFDIR: return COOP_AE_DIRECTORY;
    case AE_IFLNK: return COOP_AE_SYMLINK;
    case AE_IFCHR: return COOP_AE_CHARACTER;
    case AE_IFBLK: return COOP_AE_BLOCK;
    case AE_IFIFO: return COOP_AE_FIFO;
    case AE_IFSOCK: return COOP_AE_SOCKET;
    default: return COOP_AE_OTHER;
    }
}

static inline void coop_ae_set_kind(struct archive_entry *e, enum coop_ae_kind kind) {
    static const unsigned int types[] = {
        [COOP_AE_OTHER] = 0,          [COOP_AE_REGULAR] = AE_IFREG, [COOP_AE_DIRECTORY] = AE_IFDIR,
        [COOP_AE_SYMLINK] = AE_IFLNK, [COOP_AE_CHARACTER] = AE_IFCHR, [COOP_AE_BLOCK] = AE_IFBLK,
        [COOP_AE_FIFO] = AE_IFIFO,    [COOP_AE_SOCKET] = AE_IFSOCK,
    };
    archive_entry_set_filetype(e, types[kind]);
}

#endif
