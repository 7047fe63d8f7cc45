import CArchive
import CoopSupport
import Foundation

/// `rootfs.tar.zst` beside the xz file, for clients that prefer decoding speed to size: the tar's bytes
/// as they are, through libarchive's zstd filter on every core.
public enum ZstdCompressor {
    public static func compress(_ source: URL, to target: URL) throws {
        guard let writer = archive_write_new() else { throw CoopError(.internal, "libarchive", cause: "out of memory") }
        defer { archive_write_free(writer) }
        archive_write_set_format_raw(writer)
        archive_write_add_filter_zstd(writer)
        archive_write_set_filter_option(writer, "zstd", "compression-level", "19")
        archive_write_set_filter_option(writer, "zstd", "threads", String(ProcessInfo.processInfo.activeProcessorCount))
        guard archive_write_open_filename(writer, target.path) == ARCHIVE_OK, let entry = archive_entry_new() else {
            throw failure(writer, target)
        }
        defer { archive_entry_free(entry) }
        coop_ae_set_regular(entry)
        archive_entry_set_pathname(entry, "rootfs.tar")
        guard archive_write_header(writer, entry) == ARCHIVE_OK else { throw failure(writer, target) }
        let input = open(source.path, O_RDONLY | O_CLOEXEC)
        if input < 0 { throw CoopError.system("read \(source.path)") }
        defer { close(input) }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
            if count < 0 { throw CoopError.system("read \(source.path)") }
            if count == 0 { break }
            guard archive_write_data(writer, buffer, count) == count else { throw failure(writer, target) }
        }
        guard archive_write_close(writer) == ARCHIVE_OK else { throw failure(writer, target) }
    }

    static func failure(_ writer: OpaquePointer, _ target: URL) -> CoopError {
        CoopError(
            .io, "write \(target.path)",
            cause: archive_error_string(writer).map { String(cString: $0) } ?? "unknown error",
            fix: "free some disk space, or build elsewhere with --output")
    }
}
