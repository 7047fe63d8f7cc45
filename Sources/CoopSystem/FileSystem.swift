import CoopSupport
import Foundation

/// File operations that must never leave a half-written file behind.
public enum FileSystem {
    /// The whole text of a kernel file (/proc, /sys), read to its end: `String(contentsOfFile:)` trusts the
    /// size such a file reports and stops after its first page, cutting a long mountinfo short.
    public static func kernelText(_ path: String) -> String? {
        guard let handle = FileHandle(forReadingAtPath: path), let data = try? handle.readToEnd() else { return nil }
        return String(decoding: data, as: UTF8.self)
    }

    /// Writes `data` to a temporary file beside `url`, flushes it and renames it into place. Without
    /// `durable` it is not flushed: for files that mean nothing after a crash (a running container's state).
    public static func writeAtomically(_ data: Data, to url: URL, mode: mode_t = 0o644, durable: Bool = true) throws {
        let temporary = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())")
        let fd = open(temporary.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        if fd < 0 { throw CoopError.system("write \(url.path)") }
        defer { close(fd) }
        do {
            try data.withUnsafeBytes { try writeAll(fd, $0, what: "write \(url.path)") }
        } catch {
            unlink(temporary.path)
            throw error
        }
        if (durable && fsync(fd) != 0) || rename(temporary.path, url.path) != 0 {
            let error = CoopError.system("write \(url.path)")
            unlink(temporary.path)
            throw error
        }
    }

    public static func writeAtomically(_ text: String, to url: URL, mode: mode_t = 0o644, durable: Bool = true) throws {
        try writeAtomically(Data(text.utf8), to: url, mode: mode, durable: durable)
    }

    /// Flushes a folder's entries (after a rename into it), so that a crash keeps the rename.
    public static func syncDirectory(_ url: URL) {
        let fd = open(url.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 {
            fsync(fd)
            close(fd)
        }
    }

    public static func exists(_ url: URL) -> Bool {
        var info = stat()
        return lstat(url.path, &info) == 0
    }

    public static func createDirectory(_ url: URL, mode: Int = 0o755) throws {
        do {
            try FileManager.default.createDirectory(
                at: url, withIntermediateDirectories: true, attributes: [.posixPermissions: mode])
        } catch {
            throw CoopError(
                .io, "folder \(url.path)", cause: "cannot be created: \(error.localizedDescription)",
                fix: "check the permissions of its parent folders", wrapping: error)
        }
    }

    /// A fresh, empty folder name next to `url` for staging work that is renamed into place later.
    public static func stagingURL(for url: URL, tag: String = "tmp") -> URL {
        url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).\(tag)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
    }
}

extension FileSystem {
    /// Writes `text` to a kernel control file (cgroup, /proc) in one write(2), as the kernel expects.
    /// On failure errno tells the kernel's reason.
    public static func writeControlFile(_ text: String, to path: String) throws {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw CoopError.system("control file \(path)") }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let saved = errno
        close(fd)
        guard written == bytes.count else { throw CoopError.system("control file \(path)", errno: saved) }
    }

    /// Writes every byte, retrying on EINTR; an ENOSPC failure says how to get space.
    public static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, what: @autoclosure () -> String) throws {
        try FileDescriptor(raw: fd, what: what()).writeAll(bytes)
    }

    /// Visible subfolders of `url`, sorted by name.
    public static func subfolders(_ url: URL) -> [URL] {
        ((try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
            .map { url.appendingPathComponent($0) }
    }

    /// The folders exactly `depth` levels below `root` (hidden ones left out), in name order: the
    /// `DISTRO/RELEASE/ARCH/VARIANT/BUILD` trees of the cache, the builds and a published tree.
    public static func folders(below root: URL, depth: Int) -> [URL] {
        var level = [root]
        for _ in 0..<depth { level = level.flatMap(subfolders) }
        return level
    }

    /// Whether a staging folder made by `stagingURL` belongs to a process that is gone (killed midway).
    public static func isAbandonedStaging(_ name: String) -> Bool {
        let parts = name.split(separator: "-")
        guard name.hasPrefix("."), parts.count >= 3, let pid = Int32(parts[parts.count - 2]) else { return false }
        return kill(pid, 0) != 0 && errno == ESRCH
    }
}
