import CoopSupport
import Foundation

/// The small files of an LXC image's `meta.tar.xz`: `config`, `config-user`, `create-message`,
/// `expiry`, `excludes-user`, `templates`. Only these are kept, each at most `maxFileBytes` bytes: the
/// rest of the archive is skipped, so that a metadata archive full of large files cannot become a large
/// `image.json`.
public struct MetaArchive: Sendable, Codable, Equatable {
    public var files: [String: String]

    public init(files: [String: String]) { self.files = files }

    /// The files coop reads from the metadata; everything else in the tarball is skipped unread. LXC's,
    /// and LXD's and Incus's `metadata.yaml` with its `templates/NAME.tpl`.
    public static let knownNames: Set<String> = [
        "config", "config-user", "create-message", "expiry", "excludes-user", "templates", "metadata.yaml",
    ]

    static func isKnown(_ name: String) -> Bool { knownNames.contains(name) || isLXDTemplate(name) }

    /// `templates/NAME.tpl`: a template of an LXD or Incus image.
    public static func isLXDTemplate(_ name: String) -> Bool {
        let parts = name.split(separator: "/", omittingEmptySubsequences: false)
        return parts.count == 2 && parts[0] == "templates" && parts[1].hasSuffix(".tpl") && parts[1] != ".tpl"
    }
    /// Bounds no real image comes near (docs/security.md): the size of one known file, and the entries
    /// read from the tarball.
    public static let maxFileBytes = 1 << 20
    public static let maxEntries = 10_000

    public init(contentsOf url: URL) throws {
        let reader = try ArchiveReader(
            file: url, blockSize: 65536,
            role: ArchiveRole(
                "metadata \(url.lastPathComponent)", damaged: .verification,
                fix: "fetch the image again with --flush-cache"))
        var files: [String: String] = [:]
        var count = 0
        while let entry = try reader.next() {
            count += 1
            guard count <= Self.maxEntries else {
                throw CoopError(
                    .verification, "metadata \(url.lastPathComponent)",
                    cause: "has more than \(Self.maxEntries) entries, the limit for an image's metadata",
                    fix: "no real image comes near this limit: do not use this image; nothing was kept")
            }
            guard entry.kind == .file, var name = entry.path else { continue }
            while name.hasPrefix("./") { name.removeFirst(2) }
            guard Self.isKnown(name) else { continue }
            guard let data = try reader.data(limit: Self.maxFileBytes) else {
                let size = entry.size.flatMap { $0 > Self.maxFileBytes ? "\($0) bytes" : nil } ?? "more bytes"
                throw CoopError(
                    .verification, "metadata file \(name) in \(url.lastPathComponent)",
                    cause: "has \(size), more than the limit of \(Self.maxFileBytes >> 20) MiB for one file",
                    fix: "no real image comes near this limit: do not use this image; nothing was kept")
            }
            files[name] = String(decoding: data, as: UTF8.self)
        }
        self.files = files
    }

    /// When the image stops being current (epoch seconds), if the metadata says: LXC's `expiry`, or the
    /// top-level `expiry_date` of LXD's `metadata.yaml`.
    public var expiry: Int? {
        if let text = files["expiry"] { return Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) }
        let line = (files["metadata.yaml"] ?? "").split(separator: "\n").first { $0.hasPrefix("expiry_date:") }
        return line.flatMap { Int($0.dropFirst("expiry_date:".count).trimmingCharacters(in: .whitespaces)) }
    }

    /// An LXD or Incus image's metadata (`metadata.yaml`), rather than LXC's.
    public var lxdMetadata: String? { files["metadata.yaml"] }

    /// Paths in the rootfs whose `LXC_NAME` and friends are replaced at create.
    public var templates: [String] { lines("templates") }
    /// Device nodes an unprivileged unpack must skip, as `./dev/…`.
    public var excludesUser: [String] { lines("excludes-user") }
    public var createMessage: String? { files["create-message"] }

    public func config(privileged: Bool) -> String? {
        privileged ? files["config"] : (files["config-user"] ?? files["config"])
    }

    func lines(_ name: String) -> [String] {
        (files[name] ?? "").split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter {
            !$0.isEmpty && !$0.hasPrefix("#")
        }
    }
}
