import CoopSupport
import Foundation

/// The one grammar for every field an image index (LXC `index-*`, simplestreams products) gives coop.
/// A field that does not match is refused with the remote, the field and the value (escaped): it never
/// reaches a path, a config line or a terminal.
public enum IndexField {
    /// Longest distro, release, arch or variant name accepted.
    public static let maxNameLength = 64
    /// Longest path accepted.
    public static let maxPathLength = 1024

    /// `[a-z0-9][a-z0-9._+-]*`, at most `maxNameLength` characters: distro, release, arch, variant.
    public static func isName(_ text: String) -> Bool {
        guard let first = text.utf8.first, text.utf8.count <= maxNameLength, isLowerAlphanumeric(first) else {
            return false
        }
        return text.utf8.allSatisfy {
            isLowerAlphanumeric($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "+")
                || $0 == UInt8(ascii: "-")
        }
    }

    /// `YYYYMMDD_HH:MM`, a real date and time.
    public static func isBuild(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard bytes.count == 14, bytes[8] == UInt8(ascii: "_"), bytes[11] == UInt8(ascii: ":") else { return false }
        for (offset, byte) in bytes.enumerated() where offset != 8 && offset != 11 {
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return false }
        }
        // A real time: the formatter reads `20241301_05:24` as a date in 2025, which then prints differently.
        guard let epoch = BuildID.epoch(text) else { return false }
        return BuildID.string(epoch: epoch) == text
    }

    /// A path below the remote's base: letters, digits and `._+-:~@=,/` only (so no `%`-escape, no
    /// space, no control character), no `.` or `..` component, at most `maxPathLength` characters. A
    /// leading `/` is allowed (LXC indexes write one) and means the remote's base as well.
    public static func isPath(_ text: String) -> Bool {
        guard !text.isEmpty, text.utf8.count <= maxPathLength else { return false }
        let extra = Set("._+-:~@=,/".utf8)
        guard text.utf8.allSatisfy({ isAlphanumeric($0) || extra.contains($0) }) else { return false }
        let parts = text.split(separator: "/", omittingEmptySubsequences: true)
        return !parts.isEmpty && !parts.contains { $0 == "." || $0 == ".." }
    }

    /// 64 lowercase or uppercase hex digits.
    public static func isSHA256(_ text: String) -> Bool {
        text.utf8.count == 64 && text.utf8.allSatisfy { isAlphanumeric($0) && Character(UnicodeScalar($0)).isHexDigit }
    }

    /// What a name, a build id and a path must be, as errors say it.
    public static let nameRule = "a name of [a-z0-9._+-] (at most \(maxNameLength) characters)"
    public static let buildRule = "a build id of the form YYYYMMDD_HH:MM"
    public static let pathRule = "a path below the remote (letters, digits, ._+-:~@=,/ and no '..' or '%')"

    /// A field that does not match its grammar. The models of the index formats throw it from both their
    /// reader and their writer; the reader turns it into `refusal`, the writer into an error of its own.
    public struct Issue: Error, Sendable, Equatable, CustomStringConvertible {
        public var field: String
        public var value: String
        public var expected: String

        public init(field: String, value: String, expected: String) {
            self.field = field
            self.value = value
            self.expected = expected
        }

        public var description: String { "field \(field) is \(escaped(value)), which is not \(expected)" }
    }

    static func checkName(_ value: String, field: String) throws(Issue) {
        guard isName(value) else { throw Issue(field: field, value: value, expected: nameRule) }
    }

    static func checkBuild(_ value: String, field: String) throws(Issue) {
        guard isBuild(value) else { throw Issue(field: field, value: value, expected: buildRule) }
    }

    static func checkPath(_ value: String, field: String) throws(Issue) {
        guard isPath(value) else { throw Issue(field: field, value: value, expected: pathRule) }
    }

    /// The error for a field that does not match its grammar.
    public static func refusal(remote: String, source: String, field: String, value: String, expected: String)
        -> CoopError
    {
        refusal(remote: remote, source: source, Issue(field: field, value: value, expected: expected))
    }

    /// The error for an index the reader refuses.
    public static func refusal(remote: String, source: String, _ issue: Issue) -> CoopError {
        CoopError(
            .verification, "image index of remote '\(remote)' (\(escaped(source)))", cause: issue.description,
            fix: "the remote serves an index coop does not accept: nothing was used; check the remote's URL "
                + "in images.index, or report it to the remote's operator")
    }

    /// A value as it may appear in an error: quoted, at most 120 characters, and every byte outside
    /// printable ASCII (newlines, escapes, anything else) written as `\n`, `\t`, `\u{…}`.
    public static func escaped(_ text: String) -> String {
        var result = "'"
        var count = 0
        for scalar in text.unicodeScalars {
            if count == 120 {
                result += "…"
                break
            }
            count += 1
            switch scalar {
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case "'": result += "\\'"
            case "\\": result += "\\\\"
            default:
                if scalar.value >= 0x20 && scalar.value < 0x7f {
                    result.unicodeScalars.append(scalar)
                } else {
                    result += "\\u{\(String(scalar.value, radix: 16))}"
                }
            }
        }
        return result + "'"
    }

    private static func isLowerAlphanumeric(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        isLowerAlphanumeric(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
    }
}
