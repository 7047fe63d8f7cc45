import CArchive
import CoopSupport
import Foundation

/// Reads an archive entry by entry, in any format and compression libarchive knows (tar, cpio, zip …;
/// gzip, xz, zstd …), from a file or a descriptor. Data comes in bounded pieces: into a caller's buffer,
/// as libarchive's own blocks (no copy), or straight into a descriptor. Failures are `CoopError`s named
/// and advised by the archive's `ArchiveRole`.
public final class ArchiveReader {
    let archive: OpaquePointer
    public let role: ArchiveRole
    /// Whether a header libarchive only warns about fails the read.
    let strict: Bool
    /// The header of the entry being read, for errors that name it.
    private var current: OpaquePointer?

    /// Opens `file`. `strict` refuses a header libarchive only warns about (a name it cannot convert, a
    /// malformed extension), for archives that only coop itself should have written.
    public convenience init(file: URL, blockSize: Int = 1 << 20, role: ArchiveRole? = nil, strict: Bool = false)
        throws
    {
        try self.init(role: role ?? ArchiveRole(file.path), strict: strict) {
            archive_read_open_filename($0, file.path, blockSize)
        }
    }

    /// Reads from `fd` (a pipe too), which stays open and the caller's.
    public convenience init(fd: Int32, blockSize: Int = 1 << 20, role: ArchiveRole, strict: Bool = false) throws {
        try self.init(role: role, strict: strict) { archive_read_open_fd($0, fd, blockSize) }
    }

    private init(role: ArchiveRole, strict: Bool, open: (OpaquePointer) -> Int32) throws {
        guard let archive = archive_read_new() else { throw CoopError(.internal, "libarchive", cause: "out of memory") }
        self.archive = archive
        self.role = role
        self.strict = strict
        archive_read_support_filter_all(archive)
        archive_read_support_format_all(archive)
        guard open(archive) == ARCHIVE_OK else { throw failure() }
    }

    deinit { archive_read_free(archive) }

    /// The next entry's header, valid until the next call; nil at the archive's end. The data of an entry
    /// left unread is skipped.
    public func next() throws -> ArchiveEntry? {
        var entry: OpaquePointer?
        let result = archive_read_next_header(archive, &entry)
        if result == ARCHIVE_EOF { return nil }
        guard result == ARCHIVE_OK || (result == ARCHIVE_WARN && !strict), let entry else { throw failure() }
        current = entry
        return ArchiveEntry(entry)
    }

    /// Reads up to `buffer.count` bytes of the current entry's data; 0 at its end.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return 0 }
        let count = archive_read_data(archive, base, buffer.count)
        guard count >= 0 else { throw failure(atEntry: true) }
        return count
    }

    /// The current entry's data whole, or nil if it holds more than `limit` bytes: refused by its header's
    /// size before a byte is read, or at the first byte past the limit.
    public func data(limit: Int) throws -> Data? {
        guard let current else { preconditionFailure("data(limit:) before next()") }
        let announced = ArchiveEntry(current).size
        if let announced, announced < 0 || announced > Int64(limit) { return nil }
        // One byte more than announced, to meet the entry's end in the same call.
        var data = Data(count: Int(min(Int64(limit), announced ?? 65535)) + 1)
        var filled = 0
        while true {
            if filled == data.count {
                if filled > limit { return nil }
                data.count += min(limit - filled, filled - 1) + 1
            }
            let count = try data.withUnsafeMutableBytes {
                try read(into: UnsafeMutableRawBufferPointer(rebasing: $0[filled...]))
            }
            if count == 0 { break }
            filled += count
        }
        if filled > limit { return nil }
        data.count = filled
        return data
    }

    /// The next block of the current entry's data in libarchive's own buffer, valid until the next read,
    /// and where it goes in the file (sparse files have gaps); nil at the entry's end.
    public func nextBlock() throws -> (bytes: UnsafeRawBufferPointer, offset: Int64)? {
        var buffer: UnsafeRawPointer?
        var size = 0
        var offset: la_int64_t = 0
        let result = archive_read_data_block(archive, &buffer, &size, &offset)
        if result == ARCHIVE_EOF { return nil }
        guard result == ARCHIVE_OK || result == ARCHIVE_WARN else { throw failure(atEntry: true) }
        return (UnsafeRawBufferPointer(start: buffer, count: size), offset)
    }

    /// Writes the current entry's data to `fd`.
    public func copyData(to fd: Int32) throws {
        guard archive_read_data_into_fd(archive, fd) == ARCHIVE_OK else { throw failure(atEntry: true) }
    }

    /// Passes over the current entry's data unread.
    public func skipData() throws {
        guard archive_read_data_skip(archive) == ARCHIVE_OK else { throw failure(atEntry: true) }
    }

    /// libarchive's failure, naming the entry being read if there is one.
    func failure(atEntry: Bool = false) -> CoopError {
        var what = role.name
        if atEntry, let current, let path = archive_entry_pathname(current) { what += " at '\(String(cString: path))'" }
        return CoopError.archive(archive, what, .read, role: role)
    }
}
