import CoopSupport
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
