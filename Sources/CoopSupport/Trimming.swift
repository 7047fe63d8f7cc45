/// Whitespace trimming in plain Swift: Foundation's `trimmingCharacters(in:)` goes through NSString and a
/// character set, which costs more than the rest of reading a config at every `coop start`.
extension StringProtocol {
    /// Without whitespace (spaces, tabs, newlines and the other Unicode spaces) at either end.
    public var trimmed: String {
        guard let first = firstIndex(where: { !$0.isWhitespace }) else { return "" }
        let last = lastIndex(where: { !$0.isWhitespace })!
        return String(self[first...last])
    }
}
