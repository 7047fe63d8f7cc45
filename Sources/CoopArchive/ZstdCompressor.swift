import CoopSupport
import Foundation

/// `rootfs.tar.zst` beside the xz file, for clients that prefer decoding speed to size: the tar's bytes
/// as they are, through libarchive's zstd filter on every core.
public enum ZstdCompressor {
    public static func compress(_ source: URL, to target: URL) throws {
        let writer = try ArchiveWriter(
            file: target, format: .raw,
            filter: .zstd(level: 19, threads: ProcessInfo.processInfo.activeProcessorCount),
            role: ArchiveRole(target.path, spaceFix: "free some disk space, or build elsewhere with --output"))
        try writer.addFile("rootfs.tar", contentsOf: source)
        try writer.close()
    }
}
