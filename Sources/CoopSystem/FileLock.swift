import CoopSupport
import Foundation

/// An exclusive `flock` on a file, held until `unlock()` or the process ends (also when it is killed).
public final class FileLock: @unchecked Sendable {
    private var fd: Int32

    /// Takes the lock, waiting for another holder; `onWait` runs once if the lock is busy.
    public init(path: URL, onWait: (() -> Void)? = nil) throws {
        try FileManager.default.createDirectory(
            at: path.deletingLastPathComponent(), withIntermediateDirectories: true)
        fd = open(path.path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        if fd < 0 { throw CoopError.system("lock file \(path.path)") }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            onWait?()
            while flock(fd, LOCK_EX) != 0 {
                if errno != EINTR {
                    let error = CoopError.system("lock file \(path.path)")
                    close(fd)
                    throw error
                }
            }
        }
    }

    public func unlock() {
        if fd >= 0 {
            close(fd)
            fd = -1
        }
    }

    deinit { unlock() }
}
