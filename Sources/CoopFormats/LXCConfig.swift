import CoopSupport
import Foundation

/// A container's config in LXC's format (`lxc.container.conf(5)`), which `lxc-start` reads as well as coop:
/// `key = value` lines, `#` comments and blank lines, in order.
///
/// Reading takes any text: what an image or a user wrote is judged by whoever reads it
/// (`ImageConfigFilter`, the runtime). Writing takes only what reads back as written: keys of LXC's
/// grammar, and values without control characters (a newline would start a line of its own, a hook or a
/// mount) or spaces at their ends. Anything else is refused with an error, and nothing is written.
public struct LXCConfig: Sendable, Equatable {
    public struct Entry: Sendable, Equatable, CustomStringConvertible {
        public var key: String
        public var value: String

        public init(key: String, value: String) {
            self.key = key
            self.value = value
        }

        /// `key = value`, as LXC's own tools write it.
        public var description: String { "\(key) = \(value)" }
    }

    public enum Line: Sendable, Equatable {
        case entry(Entry)
        /// The text after `#` and one space.
        case comment(String)
        case blank
        /// A line that is neither an entry nor a comment: read so that it can be reported, refused when written.
        case other(String)

        public var entry: Entry? {
            if case .entry(let entry) = self { return entry }
            return nil
        }
    }

    public private(set) var lines: [Line]

    public init() { lines = [] }

    /// Every line of `text`, each trimmed of spaces and tabs; a key and its value are split at the first `=`.
    public init(parsing text: String) {
        var pieces = text.split(separator: "\n", omittingEmptySubsequences: false)
        // The newline that ends the last line starts no line of its own.
        if pieces.last?.isEmpty == true { pieces.removeLast() }
        lines = pieces.map { Self.line(String($0)) }
    }

    static func line(_ text: String) -> Line {
        let line = text.trimmed
        if line.isEmpty { return .blank }
        if line.hasPrefix("#") {
            let comment = line.dropFirst()
            return .comment(String(comment.hasPrefix(" ") ? comment.dropFirst() : comment))
        }
        guard let equals = line.firstIndex(of: "=") else { return .other(line) }
        return .entry(
            Entry(
                key: line[..<equals].trimmed,
                value: line[line.index(after: equals)...].trimmed))
    }

    /// The `key = value` lines, in order.
    public var entries: [Entry] { lines.compactMap(\.entry) }

    /// Every value of `key`, in order.
    public func values(of key: String) -> [String] {
        entries.filter { $0.key == key }.map(\.value)
    }

    /// The value of `key` that LXC uses: its last line's.
    public func value(of key: String) -> String? {
        entries.last { $0.key == key }?.value
    }

    // MARK: Writing

    public mutating func append(_ entry: Entry) throws {
        try Self.check(entry)
        lines.append(.entry(entry))
    }

    public mutating func append(_ key: String, _ value: String) throws {
        try append(Entry(key: key, value: value))
    }

    /// Sets a key that has one value: its first line takes the value and later lines of it go; a key
    /// the config lacks is appended.
    public mutating func set(_ key: String, _ value: String) throws {
        let entry = Entry(key: key, value: value)
        try Self.check(entry)
        guard let first = lines.firstIndex(where: { $0.entry?.key == key }) else {
            lines.append(.entry(entry))
            return
        }
        lines[first] = .entry(entry)
        lines = lines.enumerated().filter { $0.offset <= first || $0.element.entry?.key != key }.map(\.element)
    }

    public mutating func appendComment(_ text: String) throws {
        try Self.checkComment(text)
        lines.append(.comment(text))
    }

    public mutating func appendBlank() {
        lines.append(.blank)
    }

    /// The `config` of the container folder `folder`, parsed; a missing or unreadable one names the container.
    public static func read(containerFolder folder: URL, name: String) throws -> LXCConfig {
        let file = folder.appendingPathComponent("config")
        guard let text = try? String(contentsOf: file, encoding: .utf8) else {
            throw CoopError(
                .notFound, "container \(name)", cause: "has no readable config at \(file.path)",
                fix: "run 'coop list' to see the containers")
        }
        return LXCConfig(parsing: text)
    }

    /// The config's text, every line checked again (a parsed config may hold lines no writer would write).
    public func formatted() throws -> String {
        var text = ""
        for line in lines {
            switch line {
            case .entry(let entry):
                try Self.check(entry)
                text += entry.description
            case .comment(let comment):
                try Self.checkComment(comment)
                text += comment.isEmpty ? "#" : "# " + comment
            case .blank:
                break
            case .other(let other):
                throw CoopError(
                    .usage, "line \(IndexField.escaped(other)) of an LXC config",
                    cause: "is neither 'key = value' nor a comment", fix: "correct or remove the line")
            }
            text += "\n"
        }
        return text
    }

    // MARK: Grammar

    /// `lxc.` then words of letters, digits, `_` and `-`, separated by dots (`lxc.cgroup2.memory.max`,
    /// `lxc.hook.pre-start`): the form of every key LXC knows.
    public static func isKey(_ key: String) -> Bool {
        let words = key.split(separator: ".", omittingEmptySubsequences: false)
        return words.count >= 2 && words[0] == "lxc"
            && words.allSatisfy { word in
                !word.isEmpty
                    && word.utf8.allSatisfy {
                        (0x30...0x39).contains($0) || (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0)
                            || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-")
                    }
            }
    }

    /// A value its line holds as it is: no control character, no space or tab at either end (the reader
    /// trims them).
    public static func isValue(_ value: String) -> Bool {
        !hasControlCharacters(value) && value.trimmed == value
    }

    /// C0 and C1 control characters and DEL: a newline ends the line, the others reach terminals.
    public static func hasControlCharacters(_ text: String) -> Bool {
        text.unicodeScalars.contains { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) }
    }

    static func check(_ entry: Entry) throws {
        guard isKey(entry.key) else {
            throw CoopError(
                .usage, "LXC config key \(IndexField.escaped(entry.key))",
                cause: "is not of the form lxc.WORD[.WORD…] (letters, digits, _ and -)",
                fix: "nothing was written; use a key of lxc.container.conf(5)")
        }
        guard isValue(entry.value) else {
            throw CoopError(
                .usage, "value of \(entry.key) in an LXC config",
                cause: "\(IndexField.escaped(entry.value)) has a control character or a space at an end, "
                    + "which its line cannot hold as it is",
                fix: "nothing was written; use names and folders without control characters")
        }
    }

    static func checkComment(_ text: String) throws {
        let endsInSpace = text.unicodeScalars.last.map { CharacterSet.whitespaces.contains($0) } ?? false
        guard !hasControlCharacters(text), !endsInSpace else {
            throw CoopError(
                .usage, "comment \(IndexField.escaped(text)) of an LXC config",
                cause: "has a control character or ends in a space, which its line cannot hold as it is")
        }
    }
}
