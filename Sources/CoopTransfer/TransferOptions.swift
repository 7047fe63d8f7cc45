import Foundation

/// How patient and how trusting downloads are.
public struct TransferOptions: Sendable {
    /// Seconds without any byte arriving before a transfer counts as stalled.
    public var stallTimeout: Int = 30
    /// Seconds one transfer (with its retries) may take in all, however steadily bytes arrive: a server
    /// that drips a few bytes a second cannot hold coop forever. `COOP_TRANSFER_DEADLINE` sets it.
    public var deadline: Int = 3600
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
        if let text = environment["COOP_TRANSFER_DEADLINE"], let seconds = Int(text), seconds > 0 {
            deadline = seconds
        }
    }
}

/// The most bytes a download may bring: past it the transfer stops (it never grows memory or disk
/// beyond it) and fails naming the limit. The bounds are far above what a real image or index needs;
/// each is named in docs/security.md.
public struct SizeLimit: Sendable {
    public var bytes: Int64
    /// What the limit is for, as the error names it: `an image index`.
    public var what: String

    public init(bytes: Int64, what: String) {
        self.bytes = bytes
        self.what = what
    }

    /// An index file (`index-system`, `index.json`, `images.json`, `.sjson`) and its signature: 64 MiB.
    public static let index = SizeLimit(bytes: 64 << 20, what: "an image index")
    /// A signature or checksum file (`.asc`, `SHA256SUMS`): 1 MiB.
    public static let smallFile = SizeLimit(bytes: 1 << 20, what: "a signature or checksum file")
    /// A metadata tarball, `meta.tar.xz`: 32 MiB.
    public static let metadata = SizeLimit(bytes: 32 << 20, what: "an image's meta.tar.xz")
    /// A rootfs tarball whose size no signed or listed metadata states (LXC protocol): 8 GiB.
    public static let rootfs = SizeLimit(bytes: 8 << 30, what: "an image's rootfs.tar.xz")

    /// The limit for a file whose size the (signed) index states: exactly that size.
    public static func listed(_ bytes: Int64, name: String) -> SizeLimit {
        SizeLimit(bytes: bytes, what: "\(name) (the size its index lists)")
    }

    public var text: String {
        bytes >= 1 << 30 && bytes % (1 << 30) == 0
            ? "\(bytes >> 30) GiB"
            : bytes >= 1 << 20 && bytes % (1 << 20) == 0 ? "\(bytes >> 20) MiB" : "\(bytes) bytes"
    }
}
