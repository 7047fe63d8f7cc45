import CArchive
import CoopSupport
import Foundation

/// Writes an archive to a file or a descriptor: tar entries (files, folders, symbolic links), or one file's
/// bytes as they are (`raw`) through a compression. `close()` ends it; an archive not closed is not complete.
public final class ArchiveWriter {
    public enum Format: Sendable {
        /// GNU tar, as LXC's download template reads `meta.tar.xz`.
        case gnuTar
        /// POSIX tar, with pax extensions only where ustar cannot hold a name or a size.
        case paxTar
        /// One file's bytes, no tar around them: for a compressed copy of a file.
        case raw
    }

    public enum Filter: Sendable {
        case none
        case xz
        case zstd(level: Int, threads: Int)
    }

    /// What an entry records besides its name and content. The defaults make reproducible archives.
    public struct Attributes: Sendable {
        public var mode: mode_t
        /// Epoch seconds.
        public var modified: Int
        public var uid: Int64
        public var gid: Int64

        public init(mode: mode_t = 0o644, modified: Int = 0, uid: Int64 = 0, gid: Int64 = 0) {
            self.mode = mode
            self.modified = modified
            self.uid = uid
            self.gid = gid
        }
    }

    let archive: OpaquePointer
    public let role: ArchiveRole
    /// The folder that fills up when the disk is full, for the error.
    let folder: String?

    /// Creates (or truncates) `file`.
    public convenience init(file: URL, format: Format, filter: Filter = .none, role: ArchiveRole? = nil) throws {
        try self.init(
            format: format, filter: filter, role: role ?? ArchiveRole(file.path),
            folder: file.deletingLastPathComponent().path
        ) { archive_write_open_filename($0, file.path) }
    }

    /// Writes to `fd`, which stays open and the caller's.
    public convenience init(fd: Int32, format: Format, filter: Filter = .none, role: ArchiveRole) throws {
        try self.init(format: format, filter: filter, role: role, folder: nil) { archive_write_open_fd($0, fd) }
    }

    private init(format: Format, filter: Filter, role: ArchiveRole, folder: String?, open: (OpaquePointer) -> Int32)
        throws
    {
        guard let archive = archive_write_new() else {
            throw CoopError(.internal, "libarchive", cause: "out of memory")
        }
        self.archive = archive
        self.role = role
        self.folder = folder
        let formatSet =
            switch format {
            case .gnuTar: archive_write_set_format_gnutar(archive)
            case .paxTar: archive_write_set_format_pax_restricted(archive)
            case .raw: archive_write_set_format_raw(archive)
            }
        guard formatSet >= ARCHIVE_WARN else { throw failure() }
        switch filter {
        case .none: break
        case .xz:
            guard archive_write_add_filter_xz(archive) >= ARCHIVE_WARN else { throw failure() }
        case .zstd(let level, let threads):
            guard archive_write_add_filter_zstd(archive) >= ARCHIVE_WARN else { throw failure() }
            // Options only tune: a libarchive without one still writes valid zstd (on one thread).
            archive_write_set_filter_option(archive, "zstd", "compression-level", String(level))
            archive_write_set_filter_option(archive, "zstd", "threads", String(threads))
        }
        guard open(archive) == ARCHIVE_OK else { throw failure() }
    }

    deinit { archive_write_free(archive) }

    /// Adds a regular file holding `bytes`.
    public func addFile(_ path: String, bytes: UnsafeRawBufferPointer, _ attributes: Attributes = .init()) throws {
        try add(path, .file, size: bytes.count, attributes)
        try write(bytes, path)
    }

    public func addFile(_ path: String, data: Data, _ attributes: Attributes = .init()) throws {
        try data.withUnsafeBytes { try addFile(path, bytes: $0, attributes) }
    }

    /// Adds a regular file with the contents of `source`, read in 1 MiB pieces: a file of any size takes no
    /// more memory.
    public func addFile(_ path: String, contentsOf source: URL, _ attributes: Attributes = .init()) throws {
        let input = open(source.path, O_RDONLY | O_CLOEXEC)
        if input < 0 { throw CoopError.system("read \(source.path)") }
        defer { Glibc.close(input) }
        var info = stat()
        try checkSystemCall(fstat(input, &info), "read \(source.path)")
        try add(path, .file, size: Int(info.st_size), attributes)
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 1)
        defer { chunk.deallocate() }
        while true {
            let count = read(input, chunk.baseAddress, chunk.count)
            if count < 0 { throw CoopError.system("read \(source.path)") }
            if count == 0 { return }
            try write(UnsafeRawBufferPointer(rebasing: chunk[..<count]), path)
        }
    }

    public func addDirectory(_ path: String, _ attributes: Attributes = .init(mode: 0o755)) throws {
        try add(path, .directory, size: 0, attributes)
    }

    public func addSymlink(_ path: String, target: String, _ attributes: Attributes = .init(mode: 0o777)) throws {
        try add(path, .symlink, size: 0, attributes) { $0.symlink = target }
    }

    /// Adds `entry` as `reader` just read it (its header, with whatever path it now has, and its data): a
    /// copy from one archive to another that keeps owners, modes, times, links and extended attributes.
    public func addCopy(of entry: ArchiveEntry, from reader: ArchiveReader) throws {
        let path = entry.path ?? ""
        guard archive_write_header(archive, entry.pointer) == ARCHIVE_OK else { throw failure(path) }
        guard entry.kind == .file, entry.hardlink == nil else { return }
        // Read whole (the holes of a sparse file as zeros): a tar writer takes data in order only.
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 1)
        defer { chunk.deallocate() }
        while true {
            let count = try reader.read(into: chunk)
            if count == 0 { break }
            try write(UnsafeRawBufferPointer(rebasing: chunk[..<count]), path)
        }
    }

    /// Writes the archive's end and closes it; the archive is complete only if this returns.
    public func close() throws {
        guard archive_write_close(archive) == ARCHIVE_OK else { throw failure() }
    }

    private func add(
        _ path: String, _ kind: ArchiveEntry.Kind, size: Int, _ attributes: Attributes,
        _ more: (ArchiveEntry) -> Void = { _ in }
    ) throws {
        guard let pointer = archive_entry_new() else {
            throw CoopError(.internal, "libarchive", cause: "out of memory")
        }
        defer { archive_entry_free(pointer) }
        let entry = ArchiveEntry(pointer)
        entry.path = path
        entry.kind = kind
        entry.permissions = attributes.mode
        entry.uid = attributes.uid
        entry.gid = attributes.gid
        archive_entry_set_size(pointer, la_int64_t(size))
        archive_entry_set_mtime(pointer, time_t(attributes.modified), 0)
        more(entry)
        guard archive_write_header(archive, pointer) == ARCHIVE_OK else { throw failure(path) }
    }

    private func write(_ bytes: UnsafeRawBufferPointer, _ path: String) throws {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        guard archive_write_data(archive, base, bytes.count) == bytes.count else { throw failure(path) }
    }

    private func failure(_ entry: String? = nil) -> CoopError {
        CoopError.archive(
            archive, entry.map { "\(role.name) at '\($0)'" } ?? role.name, .write, role: role, folder: folder)
    }
}
