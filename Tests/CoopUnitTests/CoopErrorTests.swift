import CoopSupport
import CoopSystem
import Foundation
import Testing

@Suite("Errors")
struct CoopErrorTests {
    @Test("A failed system call keeps its errno; a wrapped error keeps what it was; both survive JSON")
    func underlying() throws {
        let system = CoopError.system("open /nowhere", errno: ENOENT)
        #expect(system.errnoValue == ENOENT)
        #expect(system.cause.contains("errno \(ENOENT)"))

        let posix = CoopError(.io, "read x", cause: "failed", wrapping: POSIXError(.EACCES))
        #expect(posix.underlying == .errno(EACCES))

        let decoding = try #require(throws: DecodingError.self) {
            try JSONDecoder().decode([String].self, from: Data("{".utf8))
        }
        let wrapped = CoopError(.verification, "index", cause: "not valid JSON", wrapping: decoding)
        guard case .error(let type, let description)? = wrapped.underlying else {
            Issue.record("no underlying error: \(wrapped)")
            return
        }
        #expect(type.contains("DecodingError"), "\(type)")
        #expect(!description.isEmpty)
        #expect(wrapped.errnoValue == nil)

        // The unpack child reports its errors to coop as JSON: nothing of them is lost on the way.
        for error in [system, posix, wrapped] {
            let read = try JSONDecoder().decode(CoopError.self, from: try JSONEncoder().encode(error))
            #expect(read.underlying == error.underlying && read.what == error.what && read.fix == error.fix)
        }
    }
}

@Suite("File descriptors")
struct FileDescriptorTests {
    @Test("Blocks read until end of file reassemble the file; writing to a closed pipe is an error naming it")
    func blocks() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("coop-fd-\(getpid())").path
        defer { unlink(path) }
        let bytes = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let out = try FileDescriptor.open(path, O_WRONLY | O_CREAT | O_TRUNC)
        try bytes.withUnsafeBytes { try out.writeAll($0) }
        out.close()
        let input = try FileDescriptor.open(path, O_RDONLY)
        defer { input.close() }
        var read: [UInt8] = []
        var blocks = 0
        try input.forEachBlock(blockSize: 65_536) {
            read += $0
            blocks += 1
        }
        #expect(read == bytes)
        #expect(blocks == 5)

        var fds: [Int32] = [-1, -1]
        #expect(pipe(&fds) == 0)
        close(fds[0])
        signal(SIGPIPE, SIG_IGN)
        let end = FileDescriptor(raw: fds[1], what: "pipe to nobody")
        defer { end.close() }
        let error = try #require(throws: CoopError.self) { try [UInt8(1)].withUnsafeBytes { try end.writeAll($0) } }
        #expect(error.what == "pipe to nobody" && error.errnoValue == EPIPE)
    }
}
