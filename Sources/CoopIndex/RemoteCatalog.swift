import CoopSupport
import Foundation

/// The remotes coop knows: the built-in `images.index`, then the user's own, which adds or replaces.
///
/// Format, one remote per line, `#` starts a comment:
/// `name;protocol;url;keyring[;fingerprint]`; a relative keyring is relative to the file's folder.
public struct RemoteCatalog: Sendable {
    public private(set) var remotes: [Remote] = []
    public static let defaultRemoteName = "images"

    public init(remotes: [Remote]) { self.remotes = remotes }

    public init(paths: CoopPaths) throws {
        for file in [
            paths.dataDirectory.appendingPathComponent("images.index"),
            paths.configDirectory.appendingPathComponent("images.index"),
        ] where FileManager.default.fileExists(atPath: file.path) {
            for remote in try Self.parse(file: file) {
                remotes.removeAll { $0.name == remote.name }
                remotes.append(remote)
            }
        }
    }

    public static func parse(file: URL) throws -> [Remote] {
        let text: String
        do { text = try String(contentsOf: file, encoding: .utf8) } catch {
            throw CoopError(.io, "remote list \(file.path)", cause: "cannot be read: \(error.localizedDescription)")
        }
        return try parse(text: text, source: file.path, relativeTo: file.deletingLastPathComponent())
    }

    public static func parse(text: String, source: String, relativeTo folder: URL) throws -> [Remote] {
        var result: [Remote] = []
        for (number, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)[0]
                .trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            let fields = line.split(separator: ";", omittingEmptySubsequences: false).map {
                $0.trimmingCharacters(in: .whitespaces)
            }
            let place = "\(source) line \(number + 1)"
            guard fields.count == 4 || fields.count == 5 else {
                throw CoopError(
                    .usage, place,
                    cause: "expected name;protocol;url;keyring[;fingerprint], found \(fields.count) fields")
            }
            guard let kind = Remote.ImageProtocol(rawValue: fields[1]) else {
                throw CoopError(
                    .usage, place, cause: "unknown protocol '\(fields[1])'", fix: "use 'lxc' or 'simplestreams'")
            }
            guard ["http://", "https://", "file://"].contains(where: { fields[2].hasPrefix($0) }) else {
                throw CoopError(.usage, place, cause: "URL '\(fields[2])' is not http://, https:// or file://")
            }
            let keyring =
                fields[3].hasPrefix("/")
                ? URL(fileURLWithPath: fields[3]) : folder.appendingPathComponent(fields[3])
            let fingerprint =
                fields.count == 5 && !fields[4].isEmpty ? fields[4].replacingOccurrences(of: " ", with: "") : nil
            if let fingerprint, fingerprint.count != 40 || !fingerprint.allSatisfy(\.isHexDigit) {
                throw CoopError(.usage, place, cause: "fingerprint '\(fingerprint)' is not 40 hex digits")
            }
            result.append(
                Remote(
                    name: fields[0], imageProtocol: kind, url: fields[2], keyring: keyring, fingerprint: fingerprint))
        }
        return result
    }

    public func remote(named name: String?) throws -> Remote {
        let wanted = name ?? Self.defaultRemoteName
        guard let remote = remotes.first(where: { $0.name == wanted }) else {
            let known = remotes.map(\.name).joined(separator: ", ")
            throw CoopError(
                .notFound, "remote '\(wanted)'",
                cause: "not in images.index (known: \(known.isEmpty ? "none" : known))",
                fix: "add a line name;protocol;url;keyring to ~/.config/coop/images.index")
        }
        return remote
    }
}
