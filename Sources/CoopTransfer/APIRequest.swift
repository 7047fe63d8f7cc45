import CCurl
import CoopSupport
import Foundation

/// One request to a REST API (LXD's, Incus's) with libcurl: over a unix socket, or over https with a client
/// certificate. Unlike a download, an error status is an answer too: its body says what went wrong.
public struct APIRequest: Sendable {
    public enum Endpoint: Sendable, Equatable {
        /// The daemon's unix socket (`/var/lib/lxd/unix.socket`).
        case unixSocket(String)
        /// `https://HOST:PORT` with the client's certificate and key, and the CA (or the server's own
        /// certificate) to trust it by.
        case https(url: String, certificate: String, key: String, trust: String?)
    }

    public var endpoint: Endpoint
    /// Seconds one request may take.
    public var timeout: Int = 120

    public init(endpoint: Endpoint) { self.endpoint = endpoint }

    /// The largest answer read: LXD's are small JSON documents and command output.
    static let limit = 64 << 20

    /// Sends `method PATH` (`/1.0/...`) with `body` (JSON); returns the HTTP status and the body.
    public func send(_ method: String, _ path: String, body: Data? = nil) throws -> (status: Int, body: Data) {
        try Downloader.loadCurl()
        guard let handle = coop_curl_easy_init() else {
            throw CoopError(.internal, "libcurl", cause: "curl_easy_init failed")
        }
        defer { coop_curl_easy_cleanup(handle) }
        final class Answer {
            var data = Data()
            var overflow = false
        }
        let answer = Answer()
        var errorBuffer = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        let payload = body ?? Data()
        let code: CURLcode = errorBuffer.withUnsafeMutableBufferPointer { errors in
            payload.withUnsafeBytes { bytes in
                let base: String
                switch endpoint {
                case .unixSocket(let socket):
                    coop_curl_setopt_string(handle, CURLOPT_UNIX_SOCKET_PATH, socket)
                    base = "http://unix.socket"
                case .https(let url, let certificate, let key, let trust):
                    coop_curl_setopt_string(handle, CURLOPT_SSLCERT, certificate)
                    coop_curl_setopt_string(handle, CURLOPT_SSLKEY, key)
                    if let trust { coop_curl_setopt_string(handle, CURLOPT_CAINFO, trust) }
                    base = url.hasSuffix("/") ? String(url.dropLast()) : url
                }
                coop_curl_setopt_string(handle, CURLOPT_URL, base + path)
                coop_curl_setopt_pointer(handle, CURLOPT_ERRORBUFFER, errors.baseAddress)
                coop_curl_setopt_long(handle, CURLOPT_NOSIGNAL, 1)
                coop_curl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT, 10)
                coop_curl_setopt_long(handle, CURLOPT_TIMEOUT, timeout)
                coop_curl_setopt_string(handle, CURLOPT_PROTOCOLS_STR, "http,https")
                coop_curl_setopt_string(handle, CURLOPT_USERAGENT, "coop/0.1")
                coop_curl_setopt_string(handle, CURLOPT_CUSTOMREQUEST, method)
                if body != nil {
                    coop_curl_setopt_pointer(
                        handle, CURLOPT_POSTFIELDS, UnsafeMutableRawPointer(mutating: bytes.baseAddress))
                    coop_curl_setopt_offset(handle, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(payload.count))
                }
                coop_curl_setopt_write(handle) { pointer, size, count, context in
                    let answer = Unmanaged<Answer>.fromOpaque(context!).takeUnretainedValue()
                    guard answer.data.count + size * count <= APIRequest.limit else {
                        answer.overflow = true
                        return 0
                    }
                    if let pointer {
                        answer.data.append(
                            UnsafeRawPointer(pointer).assumingMemoryBound(to: UInt8.self), count: size * count)
                    }
                    return size * count
                }
                coop_curl_setopt_pointer(handle, CURLOPT_WRITEDATA, Unmanaged.passUnretained(answer).toOpaque())
                return coop_curl_easy_perform(handle)
            }
        }
        guard code == CURLE_OK else {
            let detail = errorBuffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            throw CoopError(
                .network, "\(method) \(path) at \(description)",
                cause: answer.overflow
                    ? "the answer is larger than \(Self.limit >> 20) MiB"
                    : (detail.isEmpty ? String(cString: coop_curl_easy_strerror(code)) : detail),
                fix: "check that the server runs and that this user may use it (the socket's group, or the client "
                    + "certificate in the server's trust store)")
        }
        var status = 0
        coop_curl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        return (status, answer.data)
    }

    public var description: String {
        switch endpoint {
        case .unixSocket(let socket): return "unix socket \(socket)"
        case .https(let url, _, _, _): return url
        }
    }
}
