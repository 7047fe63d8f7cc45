import CoopSupport
import CoopSystem
import Foundation

/// The rootfs as a squashfs image, which LXD and Incus unpack faster than a tarball: made from the build's
/// own rootfs tarball by tar2sqfs (squashfs-tools-ng), with every owner, mode and time as the tarball has
/// them (POSIX ACLs excepted: squashfs cannot hold them).
enum SquashFS {
    static let maker = "/usr/bin/tar2sqfs"

    static func make(_ image: URL, from rootfs: URL) throws {
        guard FileManager.default.isExecutableFile(atPath: maker) else {
            throw CoopError(
                .hostSetup, "squashfs rootfs", cause: "\(maker) is missing",
                fix: "install squashfs-tools-ng (apt-get install squashfs-tools-ng), or publish without --squashfs")
        }
        let tar = try Pipe.make()
        let log = try Pipe.make()
        let decoder: SpawnedProcess
        let writer: SpawnedProcess
        do {
            defer {
                close(tar.write)
                close(tar.read)
                close(log.write)
            }
            decoder = try SpawnedProcess(
                arguments: ["/usr/bin/xz", "--decompress", "--stdout", "--", rootfs.path], environment: [:],
                idMap: nil, output: tar.write, error: log.write)
            // squashfs holds no POSIX ACLs (systemd's journal folder has some): tar2sqfs leaves those extended
            // attributes out, with a warning, and keeps every entry.
            writer = try SpawnedProcess(
                arguments: [maker, "--quiet", "--force", "--compressor", "xz", image.path],
                environment: [:], idMap: nil, input: tar.read, output: log.write, error: log.write)
        } catch {
            close(log.read)
            throw error
        }
        let said = PipeReader(fd: log.read)
        let statuses = (decoder.wait(), writer.wait())
        guard statuses == (0, 0) else {
            unlink(image.path)
            throw CoopError(
                .io, "squashfs rootfs \(image.lastPathComponent)",
                cause: "xz ended with \(statuses.0) and tar2sqfs with \(statuses.1): \(said.text().trimmed)",
                fix: "check the free space where the tree lives, or publish without --squashfs")
        }
    }
}
