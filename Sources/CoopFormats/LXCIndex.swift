import Foundation

/// LXC's image index (`meta/1.0/index-system`, `index-user`): one `LXCIndexLine` per build.
public enum LXCIndex {
    /// The index a privileged or an unprivileged client reads, as LXC chooses it.
    public static func indexPath(privileged: Bool) -> String {
        privileged ? "meta/1.0/index-system" : "meta/1.0/index-user"
    }

    /// Parses an index; every field must match its grammar in `IndexField`, or the whole index is refused.
    public static func parse(_ text: String, source: String, remote: String = "?") throws -> [ImageBuild] {
        try lines(of: text, source: source, remote: remote).map(\.imageBuild)
    }

    /// The index's lines; blank lines and `#` comments are skipped.
    public static func lines(of text: String, source: String, remote: String = "?") throws -> [LXCIndexLine] {
        var lines: [LXCIndexLine] = []
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            if line.isEmpty || line.hasPrefix("#") { continue }
            do {
                lines.append(try LXCIndexLine(parsing: String(line)))
            } catch {
                throw IndexField.refusal(remote: remote, source: "\(source) line \(number + 1)", error)
            }
        }
        return lines
    }

    /// The index's text: each line checked by `LXCIndexLine.formatted`, each ended by a newline.
    public static func text(of lines: [LXCIndexLine]) throws(IndexField.Issue) -> String {
        var text = ""
        for line in lines { text += try line.formatted() + "\n" }
        return text
    }
}

extension Array where Element == ImageBuild {
    /// The newest build of the image `reference` names, or nil.
    public func newest(matching reference: ImageReference) -> ImageBuild? {
        filter { $0.matches(reference) }.max { $0.build < $1.build }
    }
}
