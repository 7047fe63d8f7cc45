import CoopSupport
import Foundation

/// An image server coop may fetch from, as one line of `images.index` describes it.
public struct Remote: Sendable, Equatable, Codable {
    public enum ImageProtocol: String, Sendable, Codable {
        /// LXC's image server: `meta/1.0/index-system`, as `lxc-create -t download` reads it.
        case lxc
        /// Incus and LXD's `streams/v1/index.json`.
        case simplestreams
    }

    public var name: String
    public var imageProtocol: ImageProtocol
    /// Base URL, `http://`, `https://` or `file://`, without a trailing slash.
    public var url: String
    /// Armored public key file that signs this remote's images.
    public var keyring: URL
    /// Fingerprint the key must have (40 hex digits); nil trusts the key file as it is.
    public var fingerprint: String?

    public init(name: String, imageProtocol: ImageProtocol, url: String, keyring: URL, fingerprint: String?) {
        self.name = name
        self.imageProtocol = imageProtocol
        self.url = url.hasSuffix("/") ? String(url.dropLast()) : url
        self.keyring = keyring
        self.fingerprint = fingerprint?.uppercased()
    }

    /// `base/path`, without doubling the slash between them. `path` comes from the remote's index: it must
    /// match `IndexField.isPath` (no `..`, no `%`-escape), and for a `file://` remote the file it names,
    /// with escapes decoded, must lie inside the remote's folder.
    public func address(of path: String) throws -> String {
        guard IndexField.isPath(path) else {
            throw IndexField.refusal(
                remote: name, source: url, field: "path", value: path,
                expected: IndexField.pathRule)
        }
        let address = path.hasPrefix("/") ? url + path : url + "/" + path
        if url.hasPrefix("file://") {
            let base = Self.decodedFilePath(url)
            let target = Self.decodedFilePath(address)
            guard let base, let target, target.hasPrefix(base.hasSuffix("/") ? base : base + "/") else {
                throw CoopError(
                    .verification, "path \(IndexField.escaped(path)) on remote '\(name)'",
                    cause: "leads outside the remote's folder \(url)",
                    fix: "the remote's index names files outside its folder: nothing was read; check the remote")
            }
        }
        return address
    }

    /// The file system path a `file://` URL names, percent-escapes decoded and `.`/`..` resolved as text.
    static func decodedFilePath(_ fileURL: String) -> String? {
        guard let decoded = String(fileURL.dropFirst("file://".count)).removingPercentEncoding,
            decoded.hasPrefix("/")
        else { return nil }
        var parts: [Substring] = []
        for part in decoded.split(separator: "/") {
            if part == "." { continue }
            if part == ".." {
                if parts.isEmpty { return nil }
                parts.removeLast()
            } else {
                parts.append(part)
            }
        }
        return "/" + parts.joined(separator: "/")
    }
}
