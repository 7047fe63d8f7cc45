import CoopSupport
import Foundation

/// What a user asks for: a distro, release, architecture and variant, on some remote.
public struct ImageReference: Sendable, Equatable, Codable, CustomStringConvertible {
    public var remote: String?
    public var distro: String
    public var release: String
    public var arch: String
    public var variant: String

    public init(remote: String? = nil, distro: String, release: String, arch: String? = nil, variant: String? = nil) {
        self.remote = remote
        self.distro = distro
        self.release = release
        self.arch = arch ?? Self.hostArchitecture
        self.variant = variant ?? "default"
    }

    /// Parses `[remote:]distro/release[/arch][/variant]`.
    public init(parsing text: String, remote explicitRemote: String? = nil) throws {
        var rest = Substring(text)
        var remote = explicitRemote
        if let colon = rest.firstIndex(of: ":") {
            remote = String(rest[..<colon])
            rest = rest[rest.index(after: colon)...]
        }
        let parts = rest.split(separator: "/").map(String.init)
        guard (2...4).contains(parts.count), parts.allSatisfy(Self.isSafeComponent) else {
            throw CoopError(
                .usage, "image '\(text)'", cause: "expected [remote:]distro/release[/arch][/variant]",
                fix: "for example: debian/bookworm/amd64")
        }
        self.init(
            remote: remote, distro: parts[0], release: parts[1], arch: parts.count > 2 ? parts[2] : nil,
            variant: parts.count > 3 ? parts[3] : nil)
    }

    public var description: String { "\(remote.map { $0 + ":" } ?? "")\(distro)/\(release)/\(arch)/\(variant)" }

    /// A name component that cannot climb out of a folder: used for every path built from it.
    public static func isSafeComponent(_ text: String) -> Bool {
        !text.isEmpty && text != "." && text != ".." && !text.contains("/") && !text.contains("\0")
    }

    /// The Debian name of this machine's architecture, as image servers use it.
    public static var hostArchitecture: String {
        var name = utsname()
        uname(&name)
        let machine = withUnsafeBytes(of: &name.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        switch machine {
        case "x86_64": return "amd64"
        case "aarch64": return "arm64"
        case "i686", "i386": return "i386"
        case "armv7l": return "armhf"
        default: return machine
        }
    }

    /// The architecture name in LXC config (`lxc.arch`).
    public static func lxcArchitecture(_ debianName: String) -> String {
        switch debianName {
        case "amd64": return "x86_64"
        case "arm64": return "aarch64"
        case "i386": return "i686"
        case "armhf": return "armv7l"
        default: return debianName
        }
    }
}
