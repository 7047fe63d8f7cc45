#ifndef COOP_CARCHIVE_H
#define COOP_CARCHIVE_H

// libarchive, loaded on first use (archive_loader.c): the commands that never touch an archive (start,
// exec, stop, list …) do not pay for loading it and the libraries it brings.
#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>

// The AE_IF* file-type constants are macros Swift cannot import as typed values.
static inline int coop_ae_is_regular(struct archive_entry *e) { return archive_entry_filetype(e) == AE_IFREG; }
static inline int coop_ae_is_directory(struct archive_entry *e) { return archive_entry_filetype(e) == AE_IFDIR; }
static inline int coop_ae_is_symlink(struct archive_entry *e) { return archive_entry_filetype(e) == AE_IFLNK; }
static inline int coop_ae_is_device(struct archive_entry *e) {
    unsigned int t = archive_entry_filetype(e);
    return t == AE_IFCHR || t == AE_IFBLK;
}
static inline int coop_ae_is_fifo(struct archive_entry *e) { return archive_entry_filetype(e) == AE_IFIFO; }
static inline void coop_ae_set_regular(struct archive_entry *e) { archive_entry_set_filetype(e, AE_IFREG); }
static inline void coop_ae_set_directory(struct archive_entry *e) { archive_entry_set_filetype(e, AE_IFDIR); }

#endif
