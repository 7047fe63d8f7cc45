import CArchive
import CoopIndex
import CoopSupport
import CoopTrust
import Foundation

/// `coop cache export` and `import`: cache entries carried as one tar file to a machine without
/// network, and verified again on arrival as if they had just been downloaded.
public struct CacheArchive {
    public let store: ImageStore
    public let catalog: RemoteCatalog

    public init(store: ImageStore, catalog: RemoteCatalog) {
        self.store = store
        self.catalog = catalog
    }

    /// Files of an entry that travel: the downloaded files and image.json, not the decoded copy.
    static func travellingFiles(of entry: CacheEntry) -> [String] {
        entry.files.keys.sorted() + [ImageStore.metadataName]
    }

    public func export(_ entries: [CacheEntry], to file: URL) throws {
        let temporary = FileSystem.stagingURL(for: file)
        guard let writer = archive_write_new() else { throw CoopError(.internal, "libarchive", cause: "out of memory") }
        defer { archive_write_free(writer) }
        archive_write_set_format_pax_restricted(writer)
        guard archive_write_open_filename(writer, temporary.path) == ARCHIVE_OK else {
            throw failure(writer, "export file \(file.path)")
        }
        do {
            for entry in entries {
                let relative = entry.folder.path.dropFirst(store.root.path.count + 1)
                for name in Self.travellingFiles(of: entry) {
                    try add(entry.folder.appendingPathComponent(name), as: "\(relative)/\(name)", to: writer)
                }
            }
            guard archive_write_close(writer) == ARCHIVE_OK else { throw failure(writer, "export file \(file.path)") }
            try checkSystemCall(rename(temporary.path, file.path), "export file \(file.path)")
        } catch {
            unlink(temporary.path)
            throw error
        }
    }

    private func add(_ source: URL, as name: String, to writer: OpaquePointer) throws {
        let data = try Data(contentsOf: source, options: .alwaysMapped)
        guard let entry = archive_entry_new() else { throw CoopError(.internal, "libarchive", cause: "out of memory") }
        defer { archive_entry_free(entry) }
        archive_entry_set_pathname(entry, name)
        coop_ae_set_regular(entry)
        archive_entry_set_perm(entry, 0o644)
        archive_entry_set_size(entry, la_int64_t(data.count))
        archive_entry_set_mtime(entry, time(nil), 0)
        guard archive_write_header(writer, entry) == ARCHIVE_OK else { throw failure(writer, name) }
        let written = data.withUnsafeBytes { archive_write_data(writer, $0.baseAddress, $0.count) }
        guard written == data.count else { throw failure(writer, name) }
    }

    /// Unpacks an export into a staging folder, verifies every entry against its remote's pinned key,
    /// and commits each one. Returns the imported entries.
    public func importArchive(_ file: URL, verify: Bool = true) throws -> [CacheEntry] {
        let staging = store.root.appendingPathComponent(".import-\(getpid())")
        try FileSystem.createDirectory(staging)
        defer { try? FileManager.default.removeItem(at: staging) }
        let folders = try unpack(file, into: staging)
        var imported: [CacheEntry] = []
        for path in folders.sorted() {
            let folder = URL(fileURLWithPath: path)
            guard var entry = store.read(folder) else {
                throw CoopError(
                    .verification, "import \(file.lastPathComponent)", cause: "an entry has no valid image.json")
            }
            try check(entry, in: folder, verify: verify)
            entry.folder = folder
            imported.append(try store.commit(folder, as: entry))
        }
        return imported
    }

    private func check(_ entry: CacheEntry, in folder: URL, verify: Bool) throws {
        for (name, record) in entry.files {
            let digest = try SHA256Hasher.hash(files: [folder.appendingPathComponent(name)])
            guard digest == record.sha256 else {
                throw CoopError(
                    .verification, "imported \(name) of \(entry.reference)",
                    cause: "its sha256 does not match image.json",
                    fix: "export the image again from a good cache")
            }
        }
        guard verify else { return }
        guard entry.verifiedBy != nil else {
            throw CoopError(
                .verification, "imported \(entry.reference)", cause: "was fetched without verification",
                fix: "fetch it with verification on the exporting machine, or import with --no-verify")
        }
        let remote = try catalog.remote(named: entry.remote)
        let verifier = try SignatureVerifier(keyring: remote.keyring, fingerprint: remote.fingerprint)
        for name in ["meta.tar.xz", "rootfs.tar.xz"] {
            try verifier.verify(
                file: folder.appendingPathComponent(name), signature: folder.appendingPathComponent(name + ".asc"),
                name: name)
        }
    }

    /// Writes the archive's regular files, each at `remote/distro/release/arch/variant/build/name`;
    /// anything else (links, devices, other depths, `..`) is refused.
    private func unpack(_ file: URL, into staging: URL) throws -> Set<String> {
        guard let reader = archive_read_new() else { throw CoopError(.internal, "libarchive", cause: "out of memory") }
        defer { archive_read_free(reader) }
        archive_read_support_format_all(reader)
        archive_read_support_filter_all(reader)
        guard archive_read_open_filename(reader, file.path, 1 << 20) == ARCHIVE_OK else {
            throw failure(reader, "import file \(file.path)")
        }
        var folders = Set<String>()
        var entry: OpaquePointer?
        while true {
            let result = archive_read_next_header(reader, &entry)
            if result == ARCHIVE_EOF { break }
            guard result == ARCHIVE_OK, let entry else { throw failure(reader, "import file \(file.path)") }
            let name = archive_entry_pathname(entry).map { String(cString: $0) } ?? ""
            let parts = name.split(separator: "/").map(String.init)
            guard coop_ae_is_regular(entry) != 0, parts.count == 7, parts.allSatisfy(ImageReference.isSafeComponent)
            else {
                throw CoopError(
                    .unsafeArchive, "import file \(file.lastPathComponent)",
                    cause: "holds an unexpected entry '\(name)'",
                    fix: "import only files made by 'coop cache export'")
            }
            let folder = parts[0..<6].reduce(staging) { $0.appendingPathComponent($1) }
            try FileSystem.createDirectory(folder)
            let target = folder.appendingPathComponent(parts[6])
            let fd = open(target.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            if fd < 0 { throw CoopError.system("import \(target.path)") }
            defer { close(fd) }
            guard archive_read_data_into_fd(reader, fd) == ARCHIVE_OK else { throw failure(reader, name) }
            folders.insert(folder.path)
        }
        return folders
    }

    private func failure(_ archive: OpaquePointer, _ what: String) -> CoopError {
        CoopError(.io, what, cause: archive_error_string(archive).map { String(cString: $0) } ?? "unknown error")
    }
}
