import CCurl
import CoopSupport
import CoopSystem
import Foundation

/// Downloads with libcurl: resumable, retried with backoff, stall-bounded, proxies from the environment
/// (`http_proxy`, `https_proxy`, `no_proxy`, read by libcurl itself).
public final class Downloader: Sendable {
    public let options: TransferOptions

    public init(options: TransferOptions = TransferOptions()) {
        self.options = options
    }

    /// libcurl, loaded on the first download.
    static func loadCurl() throws {
        try SharedLibrary.load("libcurl", package: "libcurl4", coop_curl_load)
    }

    /// What a finished download produced.
    public struct Result: Sendable {
        public var sha256: String
        public var size: Int64
    }

    /// Fetches a small file into memory, at most `limit` bytes of it. With `optional`, a missing file
    /// (HTTP 404) gives nil.
    public func data(from url: String, optional: Bool = false, limit: SizeLimit = .index) throws -> Data? {
        let state = try TransferState(url: url, fd: -1, sink: nil, progress: nil, limit: limit)
        do {
            try perform(state, resumeFrom: 0, deadline: Date().addingTimeInterval(TimeInterval(options.deadline)))
        } catch let error as TransferFailure where optional && error.isNotFound {
            return nil
        } catch let error as TransferFailure {
            throw error.coopError(url: url, connectTimeout: options.connectTimeout)
        }
        return state.memory
    }

    /// Downloads `url` into `file`, resuming from the bytes already in it, and hashes as it goes.
    /// Bytes already in the file are fed to `sink` first, so the sink always sees the whole file.
    /// More than `limit` bytes stop the transfer with an error; so does the overall deadline.
    public func download(
        from url: String, to file: URL, resume: Bool = true, sink: ByteSink? = nil, limit: SizeLimit,
        progress: ((Int64, Int64) -> Void)? = nil
    ) throws -> Result {
        let deadline = Date().addingTimeInterval(TimeInterval(options.deadline))
        let fd = open(file.path, O_RDWR | O_CREAT | O_CLOEXEC | (resume ? 0 : O_TRUNC), 0o644)
        if fd < 0 { throw CoopError.system("download file \(file.path)") }
        defer { close(fd) }
        let state = try TransferState(url: url, fd: fd, sink: sink, progress: progress, limit: limit)
        // Catch up on a partial file left by an interrupted run: hash it and replay it to the sink.
        let existing = lseek(fd, 0, SEEK_END)
        if existing > 0 {
            lseek(fd, 0, SEEK_SET)
            var buffer = [UInt8](repeating: 0, count: 1 << 20)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if count <= 0 { break }
                try buffer.withUnsafeBytes { try state.accept(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
            }
            state.written = Int64(existing)
            if state.written > limit.bytes { throw state.limitError() }
        }

        var attempt = 1
        while true {
            do {
                try perform(state, resumeFrom: state.written, deadline: deadline)
                return Result(sha256: state.hasher.finalize(), size: state.written)
            } catch let failure as TransferFailure {
                // Asked to resume a file that is already complete: the server has nothing more to send.
                if failure.httpStatus == 416 && state.written > 0 {
                    return Result(sha256: state.hasher.finalize(), size: state.written)
                }
                if !failure.isRetryable || attempt >= options.attempts {
                    throw failure.coopError(url: url, attempts: attempt, connectTimeout: options.connectTimeout)
                }
                // Back off 0.5 s, 1 s, 2 s …: enough for a restarting server, short for a user.
                usleep(useconds_t(500_000 << (attempt - 1)))
                attempt += 1
            }
        }
    }

    private func perform(_ state: TransferState, resumeFrom offset: Int64, deadline: Date) throws {
        let remaining = deadline.timeIntervalSinceNow
        if remaining <= 0 { throw deadlineError(url: state.url) }
        try Self.loadCurl()
        guard let handle = coop_curl_easy_init() else {
            throw CoopError(.internal, "libcurl", cause: "curl_easy_init failed")
        }
        defer { coop_curl_easy_cleanup(handle) }
        var errorBuffer = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        state.resumeOffset = offset
        state.checkedStatus = false
        let code: CURLcode = errorBuffer.withUnsafeMutableBufferPointer { errors in
            coop_curl_setopt_string(handle, CURLOPT_URL, state.url)
            coop_curl_setopt_pointer(handle, CURLOPT_ERRORBUFFER, errors.baseAddress)
            coop_curl_setopt_long(handle, CURLOPT_FOLLOWLOCATION, 1)
            coop_curl_setopt_long(handle, CURLOPT_MAXREDIRS, 5)
            coop_curl_setopt_long(handle, CURLOPT_FAILONERROR, 1)
            coop_curl_setopt_long(handle, CURLOPT_NOSIGNAL, 1)
            coop_curl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT, options.connectTimeout)
            // A transfer slower than 1 byte/s for stallTimeout seconds is stalled: fail, do not hang.
            coop_curl_setopt_long(handle, CURLOPT_LOW_SPEED_LIMIT, 1)
            coop_curl_setopt_long(handle, CURLOPT_LOW_SPEED_TIME, options.stallTimeout)
            // However steadily bytes come, the transfer ends at the deadline.
            coop_curl_setopt_long(handle, CURLOPT_TIMEOUT_MS, max(1, Int(remaining * 1000)))
            coop_curl_setopt_string(handle, CURLOPT_USERAGENT, "coop/0.1")
            coop_curl_setopt_string(handle, CURLOPT_PROTOCOLS_STR, "http,https,file")
            coop_curl_setopt_string(handle, CURLOPT_REDIR_PROTOCOLS_STR, "http,https")
            if let bundle = options.caBundle { coop_curl_setopt_string(handle, CURLOPT_CAINFO, bundle) }
            if offset > 0 { coop_curl_setopt_offset(handle, CURLOPT_RESUME_FROM_LARGE, curl_off_t(offset)) }
            coop_curl_setopt_write(handle) { pointer, size, count, context in
                let state = Unmanaged<TransferState>.fromOpaque(context!).takeUnretainedValue()
                return state.write(UnsafeRawBufferPointer(start: pointer, count: size * count))
            }
            let context = Unmanaged.passUnretained(state).toOpaque()
            coop_curl_setopt_pointer(handle, CURLOPT_WRITEDATA, context)
            state.handle = handle
            return coop_curl_easy_perform(handle)
        }
        state.handle = nil
        if let error = state.sinkError { throw error }
        if code == CURLE_OPERATION_TIMEDOUT && deadline.timeIntervalSinceNow < 0.5 {
            throw deadlineError(url: state.url)
        }
        if code != CURLE_OK {
            var status = 0
            coop_curl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
            let detail = errorBuffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            throw TransferFailure(
                code: code, httpStatus: status,
                message: detail.isEmpty ? String(cString: coop_curl_easy_strerror(code)) : detail)
        }
    }
}

extension Downloader {
    func deadlineError(url: String) -> CoopError {
        CoopError(
            .network, "download of \(url)",
            cause: "did not finish within the deadline of \(options.deadline) s for one transfer",
            fix: "the server is too slow or drips its data; try again later, or raise COOP_TRANSFER_DEADLINE "
                + "(seconds) for a slow link")
    }
}

/// A failed libcurl transfer, before it is turned into a user-facing error.
struct TransferFailure: Error {
    var code: CURLcode
    var httpStatus: Int
    var message: String

    var isNotFound: Bool {
        httpStatus == 404 || httpStatus == 410 || code == CURLE_FILE_COULDNT_READ_FILE
    }

    var isRetryable: Bool {
        switch code {
        case CURLE_COULDNT_CONNECT, CURLE_PARTIAL_FILE, CURLE_OPERATION_TIMEDOUT, CURLE_RECV_ERROR,
            CURLE_SEND_ERROR, CURLE_GOT_NOTHING:
            return true
        case CURLE_HTTP_RETURNED_ERROR:
            return httpStatus >= 500 || httpStatus == 429 || httpStatus == 408
        default:
            return false
        }
    }

    /// A timeout before the server accepted the connection (curl says "Connection timed out after …" or
    /// "Failed to connect … Timeout was reached"), not a stalled transfer ("Operation too slow").
    var isConnectTimeout: Bool {
        code == CURLE_OPERATION_TIMEDOUT && message.lowercased().contains("connect")
    }

    func coopError(url: String, attempts: Int = 1, connectTimeout: Int = 15) -> CoopError {
        let tries = attempts > 1 ? " (after \(attempts) attempts)" : ""
        if isNotFound {
            return CoopError(
                .notFound, "download of \(url)", cause: "the server has no such file (HTTP \(httpStatus))\(tries)",
                fix: "run 'coop images' to see what the remote offers, or check its URL in images.index")
        }
        if isConnectTimeout {
            let host = URL(string: url)?.host ?? url
            return CoopError(
                .network, "download of \(url)",
                cause: "connect timeout: \(host) did not accept a connection within \(connectTimeout) s\(tries)",
                fix: "check the network and the remote's URL; COOP_CONNECT_TIMEOUT sets the seconds to wait "
                    + "(default 15)")
        }
        switch code {
        case CURLE_OPERATION_TIMEDOUT:
            return CoopError(
                .network, "download of \(url)", cause: "the transfer stalled: \(message)\(tries)",
                fix: "try again later; COOP_STALL_TIMEOUT sets the seconds to wait")
        case CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CACERT_BADFILE, CURLE_SSL_CONNECT_ERROR:
            return CoopError(
                .network, "download of \(url)", cause: "TLS failed: \(message)",
                fix: "check the server's certificate; CURL_CA_BUNDLE names extra CA certificates")
        case CURLE_HTTP_RETURNED_ERROR:
            return CoopError(
                .network, "download of \(url)", cause: "the server answered HTTP \(httpStatus)\(tries)",
                fix: "try again later, or ask the server's operator")
        case CURLE_WRITE_ERROR:
            return CoopError(
                .io, "download of \(url)", cause: "writing the file failed: \(message)",
                fix: "check free disk space and permissions of the cache folder")
        default:
            return CoopError(
                .network, "download of \(url)", cause: "\(message) (curl error \(code.rawValue))\(tries)",
                fix: "check the network, the URL in images.index and proxy variables")
        }
    }
}

/// Per-transfer state the C write callback reaches through its context pointer.
final class TransferState {
    let url: String
    let fd: Int32
    let sink: ByteSink?
    let progress: ((Int64, Int64) -> Void)?
    let hasher: SHA256Hasher
    var memory = Data()
    var written: Int64 = 0
    var resumeOffset: Int64 = 0
    var total: Int64 = -1
    var checkedStatus = false
    var sinkError: Error?
    var handle: UnsafeMutableRawPointer?
    let limit: SizeLimit

    init(url: String, fd: Int32, sink: ByteSink?, progress: ((Int64, Int64) -> Void)?, limit: SizeLimit) throws {
        hasher = try SHA256Hasher()
        self.limit = limit
        self.url = url
        self.fd = fd
        self.sink = sink
        self.progress = progress
    }

    func accept(_ bytes: UnsafeRawBufferPointer) throws {
        hasher.update(bytes)
        try sink?.consume(bytes)
    }

    /// Returns the count taken; anything else makes libcurl stop with CURLE_WRITE_ERROR.
    func write(_ bytes: UnsafeRawBufferPointer) -> Int {
        do {
            if !checkedStatus {
                checkedStatus = true
                try checkResume()
            }
            if written + Int64(bytes.count) > limit.bytes { throw limitError() }
            if fd >= 0 {
                try FileSystem.writeAll(fd, bytes, what: "write \(url)")
            } else {
                memory.append(bytes.bindMemory(to: UInt8.self))
            }
            try accept(bytes)
            written += Int64(bytes.count)
            progress?(written, total)
            return bytes.count
        } catch {
            sinkError = error
            return 0
        }
    }

    /// The error for a file larger than its limit: the transfer stopped at the limit.
    func limitError(announced: Int64? = nil) -> CoopError {
        CoopError(
            .verification, "download of \(url)",
            cause: (announced.map { "announces \($0) bytes, " } ?? "brought more bytes than ")
                + "the limit for \(limit.what) (\(limit.text)); it was stopped there",
            fix: "no real image comes near this limit: the remote serves something else; nothing was kept; "
                + "check the remote's URL in images.index, or report it to the remote's operator")
    }

    /// A server that ignores the Range request sends the whole file again: start the file over,
    /// unless a sink has already consumed the first part.
    private func checkResume() throws {
        guard let handle else { return }
        var status = 0
        coop_curl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        var length: curl_off_t = -1
        coop_curl_getinfo_offset(handle, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length)
        total = length >= 0 ? resumeOffset + Int64(length) : -1
        // A file larger than its limit is refused before its first byte, when the server says its size.
        let announced = resumeOffset > 0 && status == 200 ? Int64(length) : total
        if length >= 0 && announced > limit.bytes { throw limitError(announced: announced) }
        if resumeOffset > 0 && status == 200 {
            if sink != nil {
                throw CoopError(
                    .network, "download of \(url)", cause: "the server cannot resume (it ignored the Range request)",
                    fix: "run the command again: it starts over")
            }
            ftruncate(fd, 0)
            lseek(fd, 0, SEEK_SET)
            hasher.reset()
            written = 0
            total = Int64(length)
        }
    }
}
