import CoopSupport
import Foundation

/// The remotes coop knows: the built-in `images.index`, then the user's own, which adds or replaces.
///
/// Format, one remote per line, `#` starts a comment:
/// `name;protocol;url;keyring[;fingerprint]`; a relative keyring is relative to the file's folder.
public struct RemoteCatalog: Sendable {
    public private(set) var remotes: [Remote] = []
    /// Remotes whose line is broken, with the line's error: only what uses them fails.
    public private(set) var broken: [String: CoopError] = [:]
    public static let defaultRemoteName = "images"

    public init(remotes: [Remote]) { self.remotes = remotes }

    /// The built-in list, then the user's. A broken line is warned about once (file, line, problem) and
    /// breaks only the remote it names.
    public init(paths: CoopPaths) throws {
        for file in [
            paths.dataDirectory.appendingPathComponent("images.index"),
            paths.configDirectory.appendingPathComponent("images.index"),
        ] where FileManager.default.fileExists(atPath: file.path) {
            let parsed = try Self.parseLines(file: file)
            for remote in parsed.remotes {
                remotes.removeAll { $0.name == remote.name }
                broken[remote.name] = nil
                remotes.append(remote)
            }
            for problem in parsed.problems {
                let scope = problem.name.map { "remote '\($0)' cannot be used" } ?? "the line is skipped"
                Console.warning("\(problem.error.what): \(problem.error.cause); \(scope)")
                if let name = problem.name {
                    remotes.removeAll { $0.name == name }
                    broken[name] = problem.error
                }
            }
        }
    }

    public static func parse(file: URL) throws -> [Remote] {
        let parsed = try parseLines(file: file)
        if let first = parsed.problems.first { throw first.error }
        return parsed.remotes
    }

    static func parseLines(file: URL) throws -> (remotes: [Remote], problems: [(name: String?, error: CoopError)]) {
        let text: String
        do { text = try String(contentsOf: file, encoding: .utf8) } catch {
            throw CoopError(
                .io, "remote list \(file.path)", cause: "cannot be read: \(error.localizedDescription)",
                wrapping: error)
        }
        return parseLines(text: text, source: file.path, relativeTo: file.deletingLastPathComponent())
    }

    public static func parse(text: String, source: String, relativeTo folder: URL) throws -> [Remote] {
        let parsed = parseLines(text: text, source: source, relativeTo: folder)
        if let first = parsed.problems.first { throw first.error }
        return parsed.remotes
    }

    /// Every good line as a remote, and every bad one as the name it gives (if any) and its error.
    static func parseLines(text: String, source: String, relativeTo folder: URL) -> (
        remotes: [Remote], problems: [(name: String?, error: CoopError)]
    ) {
        var result: [Remote] = []
        var problems: [(name: String?, error: CoopError)] = []
        for (number, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)[0]
                .trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            let fields = line.split(separator: ";", omittingEmptySubsequences: false).map {
                $0.trimmingCharacters(in: .whitespaces)
            }
            let place = "\(source) line \(number + 1)"
            do {
                result.append(try parseLine(fields, place: place, relativeTo: folder))
            } catch let error as CoopError {
                problems.append((fields[0].isEmpty ? nil : fields[0], error))
            } catch {
                problems.append((nil, CoopError(.usage, place, cause: "\(error)")))
            }
        }
        return (result, problems)
    }

    static func parseLine(_ fields: [String], place: String, relativeTo folder: URL) throws -> Remote {
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
        return Remote(
            name: fields[0], imageProtocol: kind, url: fields[2], keyring: keyring, fingerprint: fingerprint)
    }

    /// The `images.index` line of `remote`, its key file written as `keyring` (relative to the file's folder
    /// or absolute): the format `parseLine` reads, which it must read back as the same remote.
    public static func line(of remote: Remote, keyring: String) throws -> String {
        let fields = [
            remote.name, remote.imageProtocol.rawValue, remote.url, keyring, remote.fingerprint ?? "",
        ]
        let place = "images.index line of remote '\(IndexField.escaped(remote.name))'"
        if fields.contains(where: {
            $0.contains(";") || $0.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7f }
        }) {
            throw CoopError(.usage, place, cause: "a field holds ';' or a control character")
        }
        let read = try parseLine(fields, place: place, relativeTo: URL(fileURLWithPath: "/"))
        guard read.name == remote.name, read.url == remote.url, read.fingerprint == remote.fingerprint else {
            throw CoopError(.usage, place, cause: "would not read back as the same remote")
        }
        return fields.joined(separator: ";") + "\n"
    }

    public func remote(named name: String?) throws -> Remote {
        let wanted = name ?? Self.defaultRemoteName
        if let error = broken[wanted] {
            throw CoopError(
                error.code, "remote '\(wanted)'", cause: "its line is broken: \(error.what): \(error.cause)",
                fix: error.fix ?? "correct that line (name;protocol;url;keyring[;fingerprint])")
        }
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
