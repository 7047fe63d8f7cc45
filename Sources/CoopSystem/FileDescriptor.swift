import CoopSupport
import Foundation

/// An open file descriptor with the calls coop makes on it, each retried when a signal interrupts it
/// (EINTR) and each failure a `CoopError` naming `what`. Opened close-on-exec: a child gets only the
/// descriptors it is handed on purpose.
public struct FileDescriptor: Sendable {
    public let raw: Int32
    /// The file or pipe, for errors: "rootfs.tar.xz of debian/bookworm".
    public let what: String

    public init(raw: Int32, what: String) {
        self.raw = raw
        self.what = what
    }

    public static func open(_ path: String, _ flags: Int32, mode: mode_t = 0o644, what: String? = nil) throws
        -> FileDescriptor
    {
        while true {
            let fd = Glibc.open(path, flags | O_CLOEXEC, mode)
            if fd >= 0 { return FileDescriptor(raw: fd, what: what ?? path) }
            if errno != EINTR { throw CoopError.system(what ?? path) }
        }
    }

    /// Reads what is there, at most the buffer's size; 0 at end of file.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        while true {
            let count = Glibc.read(raw, buffer.baseAddress, buffer.count)
            if count >= 0 { return count }
            if errno != EINTR { throw CoopError.system("read \(what)") }
        }
    }

    /// Writes every byte; a full disk says how to get space.
    public func writeAll(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let count = Glibc.write(raw, bytes.baseAddress! + offset, bytes.count - offset)
            if count < 0 {
                if errno == EINTR { continue }
                throw CoopError.system(
                    what, fix: errno == ENOSPC ? "free some disk space and try again" : nil)
            }
            offset += count
        }
    }

    /// Calls `body` with each block read until end of file, reusing one buffer of `blockSize` bytes.
    public func forEachBlock(blockSize: Int = 1 << 20, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: blockSize, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let count = try read(into: buffer)
            if count == 0 { return }
            try body(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
        }
    }

    /// Closes the descriptor. Not retried on EINTR: Linux has released it either way.
    public func close() {
        _ = Glibc.close(raw)
    }
}
