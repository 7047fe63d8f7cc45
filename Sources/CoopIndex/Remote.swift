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

    /// `base/path`, without doubling the slash between them.
    public func address(of path: String) -> String {
        path.hasPrefix("/") ? url + path : url + "/" + path
    }
}
