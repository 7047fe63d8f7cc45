import CoopRuntime
import CoopSupport
import CoopSystem
import Foundation

/// A command on many nodes at once: each line a node writes is printed whole with the node's name in
/// front (stdout to stdout, stderr to stderr), escaped, as it comes.
public enum FleetExec {
    static let printing = NSLock()

    /// Runs `command` in the running node, its output prefixed with `prefix`; returns its exit status.
    public static func run(_ node: ContainerDefinition, command: [String], prefix: String) throws -> Int32 {
        let output = try Pipe.make()
        let errors = try Pipe.make()
        let nothing = open("/dev/null", O_RDONLY | O_CLOEXEC)
        let started: ContainerRuntime.StartedExec
        do {
            defer {
                close(output.write)
                close(errors.write)
                if nothing >= 0 { close(nothing) }
            }
            started = try ContainerRuntime.startExec(
                node, command: command, input: nothing, output: output.write, error: errors.write)
        } catch {
            close(output.read)
            close(errors.read)
            throw error
        }
        let readers = DispatchGroup()
        for (fd, target) in [(output.read, STDOUT_FILENO), (errors.read, STDERR_FILENO)] {
            readers.enter()
            Thread.detachNewThread {
                relayLines(from: fd, to: target, prefix: prefix)
                close(fd)
                readers.leave()
            }
        }
        let status = try started.finish()
        readers.wait()
        return status
    }

    /// Copies `fd` to `target` line by line, each line as `PREFIX| LINE`.
    static func relayLines(from fd: Int32, to target: Int32, prefix: String) {
        var pending = Data()
        var buffer = [UInt8](repeating: 0, count: 16_384)
        while true {
            let got = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if got < 0 && errno == EINTR { continue }
            if got <= 0 { break }
            pending.append(contentsOf: buffer[0..<got])
            while let newline = pending.firstIndex(of: 10) {
                emit(pending[pending.startIndex..<newline], to: target, prefix: prefix)
                pending.removeSubrange(pending.startIndex...newline)
            }
        }
        if !pending.isEmpty { emit(pending[...], to: target, prefix: prefix) }
    }

    /// Prints the lines of `data` (a command's whole output, as a server recorded it), each prefixed.
    static func emit(all data: Data, to target: Int32, prefix: String) {
        var lines = data.split(separator: 10, omittingEmptySubsequences: false)
        if lines.last?.isEmpty == true { lines.removeLast() }
        for line in lines { emit(Data(line), to: target, prefix: prefix) }
    }

    static func emit(_ line: Data, to target: Int32, prefix: String) {
        // What a node prints is the node's: no control character of it reaches the user's terminal.
        let text = "\(prefix)| \(Console.escaped(String(decoding: line, as: UTF8.self)))\n"
        printing.lock()
        defer { printing.unlock() }
        _ = try? Data(text.utf8).withUnsafeBytes { try FileSystem.writeAll(target, $0, what: "output") }
    }
}
