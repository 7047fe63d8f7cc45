import CoopArchive
import CoopSupport
import Foundation
import Testing

/// libcrypto and liblzma are opened on first use, through loaders that stand in for the libraries' own
/// functions: hashing and the xz codec must work through them as they did linked.
@Suite("Libraries loaded on first use")
struct LoadedLibraryTests {
    static let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

    @Test("sha256 of a known text, whole and in parts; finalize starts over")
    func sha256() throws {
        let hasher = try SHA256Hasher()
        Data("abc".utf8).withUnsafeBytes { hasher.update($0) }
        #expect(hasher.finalize() == Self.abc)
        #expect(hasher.finalize() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        for part in ["a", "b", "c"] { Data(part.utf8).withUnsafeBytes { hasher.update($0) } }
        #expect(hasher.finalize() == Self.abc)
    }

    @Test("What the xz compressor writes, the decoder gives back; a cut stream is refused")
    func xzRoundTrip() throws {
        let scratch = try Scratch()
        let plain = Data((0..<40000).map { "line \($0) of the plain text\n" }.joined().utf8)
        let source = scratch.root.appendingPathComponent("plain")
        let packed = scratch.root.appendingPathComponent("plain.xz")
        try plain.write(to: source)
        try XZCompressor.compress(source, to: packed, preset: 0)
        let xz = try Data(contentsOf: packed)
        #expect(xz.count < plain.count / 4)

        #expect(try decode(xz) == plain)
        #expect(throws: CoopError.self) { try decode(xz.prefix(xz.count / 2)) }
    }

    @Test("A library that cannot be opened is a host setup error that names it and its package")
    func missingLibrary() {
        let missing = "libexample.so.1: cannot open shared object file: No such file or directory"
        let error = #expect(throws: CoopError.self) {
            try SharedLibrary.load("libexample", package: "libexample1") { buffer, size in
                _ = missing.withCString { strncpy(buffer!, $0, size - 1) }
                return -1
            }
        }
        #expect(error?.code == .hostSetup)
        #expect(error?.description == "libexample: cannot be loaded: \(missing)\n  fix: apt-get install libexample1")
    }

    /// Fed in 64 KiB pieces, as a download arrives.
    private func decode(_ xz: Data) throws -> Data {
        var result = Data()
        let decoder = try XZDecoder(threads: 2) { result.append(contentsOf: $0) }
        for start in stride(from: 0, to: xz.count, by: 1 << 16) {
            try xz[start..<min(start + (1 << 16), xz.count)].withUnsafeBytes { try decoder.consume($0) }
        }
        try decoder.finish()
        return result
    }
}
