import Foundation

/// The one grammar for the names that become folders of the cache (remote, distro, release, arch,
/// variant, build), wherever they come from: an index, an export's `image.json`, the command line.
public enum CacheNames {
    /// Longest name accepted; real ones are a few characters.
    public static let maximumLength = 64

    /// A letter or digit first, then letters, digits, `.`, `_`, `-`, `+` and (build ids) `:`: nothing that
    /// climbs out of a folder (`..`, `/`), starts hidden (`.`), or means something to a terminal.
    public static func isValid(_ name: String) -> Bool {
        guard let first = name.utf8.first, name.utf8.count <= maximumLength, isAlphanumeric(first) else {
            return false
        }
        return name.utf8.allSatisfy { isAlphanumeric($0) || "._-+:".utf8.contains($0) }
    }

    static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
    }
}
