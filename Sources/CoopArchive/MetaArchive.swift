import CArchive
import CoopSupport
import Foundation

/// The small files of an LXC image's `meta.tar.xz`: `config`, `config-user`, `create-message`,
/// `expiry`, `excludes-user`, `templates`. Only these are kept, each at most `maxFileBytes` bytes: the
/// rest of the archive is skipped, so that a metadata archive full of large files cannot become a large
/// `image.json`.
public struct MetaArchive: Sendable, Codable, Equatable {
    public var files: [String: String]

    public init(files: [String: String]) { self.files = files }

    /// The files coop reads from the metadata; everything else in the tarball is skipped unread.
    public static let knownNames: Set<String> = [
        "config", "config-user", "create-message", "expiry", "excludes-user", "templates",
    ]
    /// Bounds no real image comes near (docs/security.md): the size of one known file, and the entries
    /// read from the tarball.
    public static let maxFileBytes = 1 << 20
    public static let maxEntries = 10_000

    public init(contentsOf url: URL) throws {
        guard let archive = archive_read_new() else { throw CoopError(.internal, "libarchive", cause: "out of memory") }
        defer { archive_read_free(archive) }
        archive_read_support_filter_all(archive)
        archive_read_support_format_all(archive)
        guard archive_read_open_filename(archive, url.path, 65536) == ARCHIVE_OK else {
            throw Self.failure(archive, url)
        }
        var files: [String: String] = [:]
        var entry: OpaquePointer?
        var count = 0
        while true {
            let result = archive_read_next_header(archive, &entry)
            if result == ARCHIVE_EOF { break }
            guard result == ARCHIVE_OK || result == ARCHIVE_WARN, let entry else { throw Self.failure(archive, url) }
            count += 1
            guard count <= Self.maxEntries else {
                throw CoopError(
                    .verification, "metadata \(url.lastPathComponent)",
                    cause: "has more than \(Self.maxEntries) entries, the limit for an image's metadata",
                    fix: "no real image comes near this limit: do not use this image; nothing was kept")
            }
            guard coop_ae_is_regular(entry) != 0, let rawName = archive_entry_pathname(entry) else { continue }
            var name = String(cString: rawName)
            while name.hasPrefix("./") { name.removeFirst(2) }
            guard Self.knownNames.contains(name) else { continue }
            let size = Int(archive_entry_size(entry))
            guard size >= 0, size <= Self.maxFileBytes else {
                throw CoopError(
                    .verification, "metadata file \(name) in \(url.lastPathComponent)",
                    cause: "has \(size) bytes, more than the limit of \(Self.maxFileBytes >> 20) MiB for one file",
                    fix: "no real image comes near this limit: do not use this image; nothing was kept")
            }
            var data = Data(count: size)
            let read = data.withUnsafeMutableBytes { archive_read_data(archive, $0.baseAddress, size) }
            guard read == size else { throw Self.failure(archive, url) }
            files[name] = String(decoding: data, as: UTF8.self)
        }
        self.files = files
    }

    static func failure(_ archive: OpaquePointer, _ url: URL) -> CoopError {
        let message = archive_error_string(archive).map { String(cString: $0) } ?? "unknown error"
        return CoopError(
            .verification, "metadata \(url.lastPathComponent)", cause: "cannot be read: \(message)",
            fix: "fetch the image again with --flush-cache")
    }

    /// When the image stops being current (epoch seconds), if the metadata says.
    public var expiry: Int? { files["expiry"].flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) } }

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
