import CoopSupport
import Foundation

/// A `SHA256SUMS` file: `<hex>  <name>` per line.
public struct ChecksumList: Sendable {
    public var sums: [String: String]

    public init(text: String) {
        var sums: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
            guard parts.count == 2 else { continue }
            var name = parts[1].trimmingCharacters(in: .whitespaces)
            if name.hasPrefix("*") { name.removeFirst() }
            sums[name] = parts[0].lowercased()
        }
        self.sums = sums
    }

    /// Checks one file's digest against the list; files the list does not name are left to their signatures.
    public func check(name: String, sha256: String) throws {
        if let expected = sums[name], expected != sha256 {
            throw CoopError(
                .verification, "checksum of \(name)", cause: "is \(sha256), SHA256SUMS says \(expected)",
                fix: "the download was truncated or tampered with: nothing was kept; try again")
        }
    }
}
