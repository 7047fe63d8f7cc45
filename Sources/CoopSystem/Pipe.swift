import CCoopNamespace
import CoopSupport
import Foundation

/// Pipes with close-on-exec ends; the spawner's dup2 clears the flag on the child's copy.
public enum Pipe {
    public static func make() throws -> (read: Int32, write: Int32) {
        var fds: [Int32] = [-1, -1]
        try checkSystemCall(coop_pipe_cloexec(&fds), "pipe")
        return (fds[0], fds[1])
    }
}

/// Drains a pipe on its own thread so that the child never blocks on a full pipe.
public final class PipeReader: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var data = Data()

    public init(fd: Int32) {
        let thread = Thread { [self] in
            let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
            data = handle.readDataToEndOfFile()
            done.signal()
        }
        thread.start()
    }

    public func text() -> String {
        done.wait()
        done.signal()
        return String(decoding: data, as: UTF8.self)
    }
}
