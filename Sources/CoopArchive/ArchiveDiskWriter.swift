import CArchive
import CoopSupport
import Foundation

/// Creates entries read by an `ArchiveReader` on disk, relative to the current folder, with owners, modes,
/// times and extended attributes as their headers say. libarchive refuses a write through a symbolic
/// link, a path with `..` and an absolute path (its SECURE_* checks, kept on beside the caller's own),
/// and looks no owner up by name: ids stay numeric, as the image has them.
public final class ArchiveDiskWriter {
    let archive: OpaquePointer
    let role: ArchiveRole
    /// The folder whose filesystem fills up, named when the disk is full.
    let folder: String

    public init(folder: String, spaceFix: String? = nil) throws {
        guard let archive = archive_write_disk_new() else {
            throw CoopError(.internal, "libarchive", cause: "out of memory")
        }
        self.archive = archive
        self.role = ArchiveRole("archive entry", spaceFix: spaceFix)
        self.folder = folder
        let flags =
            ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_XATTR
            | ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT
            | ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS
        archive_write_disk_set_options(archive, flags)
    }

    deinit { archive_write_free(archive) }

    /// Creates `entry` (the reader's current one) and writes its data block by block, straight from
    /// libarchive's buffers. `name` is the entry as the archive names it, for errors.
    public func write(_ entry: ArchiveEntry, from reader: ArchiveReader, name: String) throws {
        let written = archive_write_header(archive, entry.pointer)
        if written == ARCHIVE_FAILED || written == ARCHIVE_FATAL { throw failure(name, .create) }
        if (entry.size ?? 0) > 0 {
            while let block = try reader.nextBlock() {
                if archive_write_data_block(archive, block.bytes.baseAddress, block.bytes.count, block.offset)
                    < ARCHIVE_OK
                {
                    throw failure(name, .write)
                }
            }
        }
        if archive_write_finish_entry(archive) == ARCHIVE_FATAL { throw failure(name, .write) }
    }

    private func failure(_ name: String, _ stage: ArchiveStage) -> CoopError {
        CoopError.archive(archive, "archive entry '\(name)'", stage, role: role, folder: folder)
    }
}
