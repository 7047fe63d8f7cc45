import CLZMA
import CoopSupport
import Foundation

/// Compresses a file to .xz in independent blocks, on every core, so that it also decodes on every core.
/// The output depends on the block size and preset only, not on the thread count: builds are reproducible.
public enum XZCompressor {
    public static let blockSize: UInt64 = 8 << 20

    public static func compress(_ source: URL, to target: URL, preset: UInt32 = 6) throws {
        try SharedLibrary.load("liblzma", package: "liblzma5", coop_lzma_load)
        var stream = coop_lzma_stream_init()
        var options = lzma_mt()
        options.threads = UInt32(max(1, ProcessInfo.processInfo.activeProcessorCount))
        options.block_size = blockSize
        options.preset = preset
        options.check = LZMA_CHECK_CRC64
        guard lzma_stream_encoder_mt(&stream, &options) == LZMA_OK else {
            throw CoopError(.internal, "xz encoder", cause: "cannot start")
        }
        defer { lzma_end(&stream) }
        let input = open(source.path, O_RDONLY | O_CLOEXEC)
        if input < 0 { throw CoopError.system("read \(source.path)") }
        defer { close(input) }
        let output = open(target.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if output < 0 { throw CoopError.system("write \(target.path)") }
        defer { close(output) }

        // Buffers that stay put while liblzma holds pointers into them.
        let chunk = 1 << 20
        let inBuffer = UnsafeMutablePointer<UInt8>.allocate(capacity: chunk)
        let outBuffer = UnsafeMutablePointer<UInt8>.allocate(capacity: chunk)
        defer {
            inBuffer.deallocate()
            outBuffer.deallocate()
        }
        var action = LZMA_RUN
        while true {
            if stream.avail_in == 0 && action == LZMA_RUN {
                let count = read(input, inBuffer, chunk)
                if count < 0 { throw CoopError.system("read \(source.path)") }
                if count == 0 { action = LZMA_FINISH }
                stream.next_in = UnsafePointer(inBuffer)
                stream.avail_in = count
            }
            stream.next_out = outBuffer
            stream.avail_out = chunk
            let result = lzma_code(&stream, action)
            let produced = chunk - stream.avail_out
            if produced > 0 && write(output, outBuffer, produced) != produced {
                throw CoopError.system(
                    "write \(target.path)",
                    fix: errno == ENOSPC ? "free some disk space, or build elsewhere with --output" : nil)
            }
            if result == LZMA_STREAM_END { return }
            guard result == LZMA_OK else {
                throw CoopError(.internal, "xz encoder", cause: "liblzma error \(result.rawValue)")
            }
        }
    }
}
