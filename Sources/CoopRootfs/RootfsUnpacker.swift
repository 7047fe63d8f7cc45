import CoopSupport
import CoopSystem
import Foundation

/// The parent's side of an unpack: starts `coop __extract` (in the container's user namespace when
/// unprivileged) and feeds it a plain tar stream through a pipe.
public final class RootfsUnpacker: @unchecked Sendable {
    private let process: SpawnedProcess
    private var input: Int32
    private let output: PipeReader
    private let errors: PipeReader

    /// Starts the extraction child. With `source`, the child reads that file itself and `write` is unused.
    public init(request: ExtractionRequest, idMap: IDMap, privileged: Bool, source: URL? = nil, fd: Int32? = nil)
        throws
    {
        let json = String(decoding: try JSONEncoder().encode(request), as: UTF8.self)
        let stdinRead: Int32
        if let fd {
            stdinRead = dup(fd)
            input = -1
        } else if let source {
            stdinRead = open(source.path, O_RDONLY | O_CLOEXEC)
            if stdinRead < 0 { throw CoopError.system("read \(source.path)") }
            input = -1
        } else {
            let pipe = try Pipe.make()
            stdinRead = pipe.read
            input = pipe.write
        }
        let stdout = try Pipe.make()
        let stderr = try Pipe.make()
        defer {
            close(stdinRead)
            close(stdout.write)
            close(stderr.write)
        }
        do {
            process = try SpawnedProcess(
                arguments: [CoopPaths.executablePath(), "__extract", json], idMap: privileged ? nil : idMap,
                input: stdinRead, output: stdout.write, error: stderr.write)
        } catch {
            if input >= 0 { close(input) }
            close(stdout.read)
            close(stderr.read)
            throw error
        }
        output = PipeReader(fd: stdout.read)
        errors = PipeReader(fd: stderr.read)
    }

    deinit { if input >= 0 { close(input) } }

    /// Copies an unpacked tree (`request.copyFrom`) in the extraction child, as the container's root.
    public static func copy(request: ExtractionRequest, idMap: IDMap, privileged: Bool) throws {
        let nothing = open("/dev/null", O_RDONLY | O_CLOEXEC)
        defer { close(nothing) }
        let unpacker = try RootfsUnpacker(request: request, idMap: idMap, privileged: privileged, fd: nothing)
        try unpacker.finish()
    }

    /// Passes plain tar bytes on to the child; blocks while it is busy (back-pressure for the download).
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        do {
            try FileSystem.writeAll(input, bytes, what: "unpack")
        } catch {
            // The child stopped reading: its own error says why.
            try finish()
            throw error
        }
    }

    private var finished: Result<[String], CoopError>?

    /// Ends the stream and waits for the child; returns the entries it skipped (device nodes).
    @discardableResult
    public func finish() throws -> [String] {
        if let finished { return try finished.get() }
        if input >= 0 {
            close(input)
            input = -1
        }
        let status = process.wait()
        let text = output.text()
        let result: Result<[String], CoopError> =
            status == 0 ? .success(text.split(separator: "\n").map(String.init)) : .failure(childError(status: status))
        finished = result
        return try result.get()
    }

    private func childError(status: Int32? = nil) -> CoopError {
        let status = status ?? process.wait()
        let text = errors.text()
        if let line = text.split(separator: "\n").last,
            let error = try? JSONDecoder().decode(CoopError.self, from: Data(line.utf8))
        {
            return error
        }
        return CoopError(
            .internal, "unpack", cause: "the extraction process ended with status \(status): \(text.suffix(400))")
    }

    /// Stops the child at once (the download failed or was refused).
    public func abort() {
        if input >= 0 {
            close(input)
            input = -1
        }
        process.kill()
        process.wait()
    }
}
