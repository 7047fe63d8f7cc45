import Foundation

/// How patient and how trusting downloads are.
public struct TransferOptions: Sendable {
    /// Seconds without any byte arriving before a transfer counts as stalled.
    public var stallTimeout: Int = 30
    /// Seconds to wait for a server to accept the connection (`COOP_CONNECT_TIMEOUT`).
    public var connectTimeout: Int = 15
    /// Attempts per file, resuming where the previous one stopped.
    public var attempts: Int = 4
    /// Extra CA certificates (PEM); defaults to `$CURL_CA_BUNDLE` or `$SSL_CERT_FILE`.
    public var caBundle: String?

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        caBundle = environment["CURL_CA_BUNDLE"] ?? environment["SSL_CERT_FILE"]
        if let text = environment["COOP_STALL_TIMEOUT"], let seconds = Int(text), seconds > 0 {
            stallTimeout = seconds
        }
        if let text = environment["COOP_CONNECT_TIMEOUT"], let seconds = Int(text), seconds > 0 {
            connectTimeout = seconds
        }
    }
}
