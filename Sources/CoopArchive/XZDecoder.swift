import CLZMA
import CoopSupport
import Foundation

/// Decodes an xz stream as its bytes arrive, on several threads where the file has several blocks
/// (multi-block files, as `xz -T` writes them), and passes the plain bytes on to `output`.
public final class XZDecoder: @unchecked Sendable {
    private var stream = coop_lzma_stream_init()
    private let output: (UnsafeRawBufferPointer) throws -> Void
    private var buffer = [UInt8](repeating: 0, count: 1 << 20)
    public private(set) var decodedBytes: Int64 = 0

    public init(
        threads: Int = ProcessInfo.processInfo.activeProcessorCount,
        output: @escaping (UnsafeRawBufferPointer) throws -> Void
    ) throws {
        try SharedLibrary.load("liblzma", package: "liblzma5", coop_lzma_load)
        self.output = output
        var options = lzma_mt()
        options.flags = coop_lzma_concatenated()
        options.threads = UInt32(max(1, min(threads, 16)))
        // Beyond this the decoder falls back to one thread rather than use more memory.
        options.memlimit_threading = 1 << 30
        options.memlimit_stop = UInt64.max
        let result = lzma_stream_decoder_mt(&stream, &options)
        guard result == LZMA_OK else {
            throw CoopError(.internal, "xz decoder", cause: "cannot start (liblzma error \(result.rawValue))")
        }
    }

    deinit { lzma_end(&stream) }

    public func consume(_ bytes: UnsafeRawBufferPointer) throws {
        guard bytes.count > 0 else { return }
        stream.next_in = bytes.baseAddress!.assumingMemoryBound(to: UInt8.self)
        stream.avail_in = bytes.count
        while stream.avail_in > 0 {
            _ = try run(LZMA_RUN)
        }
    }

    /// Ends the stream: fails if the input stopped before the xz stream's end.
    public func finish() throws {
        stream.next_in = nil
        stream.avail_in = 0
        while try run(LZMA_FINISH) != LZMA_STREAM_END {}
    }

    private func run(_ action: lzma_action) throws -> lzma_ret {
        let result = buffer.withUnsafeMutableBufferPointer { out -> lzma_ret in
            stream.next_out = out.baseAddress
            stream.avail_out = out.count
            return lzma_code(&stream, action)
        }
        let produced = buffer.count - stream.avail_out
        if produced > 0 {
            decodedBytes += Int64(produced)
            try buffer.withUnsafeBytes { try output(UnsafeRawBufferPointer(rebasing: $0[0..<produced])) }
        }
        switch result {
        case LZMA_OK, LZMA_STREAM_END: return result
        case LZMA_BUF_ERROR where action == LZMA_FINISH:
            throw CoopError(
                .verification, "rootfs.tar.xz", cause: "the xz stream ends early",
                fix: "the file was truncated or tampered with: nothing was kept; fetch it again (--flush-cache)")
        default:
            throw CoopError(
                .verification, "rootfs.tar.xz",
                cause: "is corrupt: not a valid xz stream (liblzma error \(result.rawValue))",
                fix: "the file was truncated or tampered with: nothing was kept; fetch it again (--flush-cache)")
        }
    }
}
