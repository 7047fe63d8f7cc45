import CArchive
import CoopSupport
import Foundation

/// The small files of an LXC image's `meta.tar.xz`: `config`, `config-user`, `create-message`,
/// `expiry`, `excludes-user`, `templates`. Only these are kept, each at most `fileLimit` bytes: the
/// rest of the archive is skipped, so that a metadata archive full of large files cannot become a large
/// `image.json`.
public struct MetaArchive: Sendable, Codable, Equatable {
    public var files: [String: String]

    /// The files coop reads; anything else in meta.tar.xz is skipped unread.
    public static let knownFiles: Set<String> = [
        "config", "config-user", "create-message", "expiry", "excludes-user", "templates",
    ]
    /// Largest metadata file kept (64 KiB); a real image's are a few hundred bytes.
    public static let fileLimit = 64 << 10

    public init(files: [String: String]) { self.files = files }

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
        while true {
            let result = archive_read_next_header(archive, &entry)
            if result == ARCHIVE_EOF { break }
            guard result == ARCHIVE_OK || result == ARCHIVE_WARN, let entry else { throw Self.failure(archive, url) }
            guard coop_ae_is_regular(entry) != 0, let rawName = archive_entry_pathname(entry) else { continue }
            var name = String(cString: rawName)
            while name.hasPrefix("./") { name.removeFirst(2) }
            guard Self.knownFiles.contains(name) else { continue }
            let size = Int(archive_entry_size(entry))
            guard size >= 0, size <= Self.fileLimit else {
                throw CoopError(
                    .verification, "metadata file \(name) in \(url.lastPathComponent)",
                    cause: "has \(size) bytes, more than the limit of \(Self.fileLimit)",
                    fix: "this is not an image's metadata: do not use this image")
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
