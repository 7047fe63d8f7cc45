import Foundation

extension Console {
    /// Text from an image or an index made safe for a terminal: control characters (C0, DEL, C1, which
    /// includes the one-byte CSI), bidirectional overrides and backslash are shown as escapes
    /// (`\x1b`, `\u{202e}`, `\\`), so that an OSC 52 or a cursor move is printed, never obeyed.
    /// With `keepNewlines`, a line feed stays one (for multi-line text such as a create-message).
    public static func escaped(_ text: String, keepNewlines: Bool = false) -> String {
        var result = ""
        result.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            let value = scalar.value
            if keepNewlines && value == 0x0A {
                result.unicodeScalars.append(scalar)
            } else if value == 0x5C {
                result += "\\\\"
            } else if value < 0x20 || value == 0x7F {
                result += String(format: "\\x%02x", value)
            } else if (0x80...0x9F).contains(value) || (0x202A...0x202E).contains(value)
                || (0x2066...0x2069).contains(value)
            {
                result += String(format: "\\u{%x}", value)
            } else {
                result.unicodeScalars.append(scalar)
            }
        }
        return result
    }
}

extension String {
    /// `Console.escaped(self)`: for printing text that came from an image or an index.
    public var terminalSafe: String { Console.escaped(self) }
}
