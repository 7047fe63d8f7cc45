import CLibcrypto
import Foundation

/// Incremental sha256 (OpenSSL's, hardware-accelerated), fed as bytes stream past: no second read.
public final class SHA256Hasher: @unchecked Sendable {
    private var context: OpaquePointer?

    /// Loads libcrypto on the first hasher: the commands that never hash do not pay for it.
    public init() throws {
        try SharedLibrary.load("libcrypto", package: "libssl3", coop_libcrypto_load)
        context = EVP_MD_CTX_new()
        EVP_DigestInit_ex(context, EVP_sha256(), nil)
    }

    deinit { EVP_MD_CTX_free(context) }

    public func update(_ bytes: UnsafeRawBufferPointer) {
        if bytes.count > 0 { EVP_DigestUpdate(context, bytes.baseAddress, bytes.count) }
    }

    public func reset() {
        EVP_DigestInit_ex(context, EVP_sha256(), nil)
    }

    /// The digest as 64 lowercase hex digits; the hasher starts over afterwards.
    public func finalize() -> String {
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        EVP_DigestFinal_ex(context, &digest, &length)
        reset()
        return Self.hexDigits(digest)
    }

    /// Hashes whole files, in 1 MiB reads.
    public static func hash(files: [URL]) throws -> String {
        let hasher = try SHA256Hasher()
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        for file in files {
            let fd = open(file.path, O_RDONLY | O_CLOEXEC)
            if fd < 0 { throw CoopError.system("read \(file.path)") }
            defer { close(fd) }
            while true {
                let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if count < 0 {
                    if errno == EINTR { continue }
                    throw CoopError.system("read \(file.path)")
                }
                if count == 0 { break }
                buffer.withUnsafeBytes { hasher.update(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
            }
        }
        return hasher.finalize()
    }

    /// Lowercase hex, without String(format:), whose varargs cost a runtime type lookup per byte.
    static func hexDigits(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var text = [UInt8]()
        text.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}
