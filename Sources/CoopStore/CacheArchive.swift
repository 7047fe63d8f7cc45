import CoopArchive
import CoopFormats
import CoopSupport
import CoopSystem
import CoopTrust
import Foundation

/// `coop cache export` and `import`: cache entries carried as one tar file to a machine without
/// network, and verified again on arrival as if they had just been downloaded.
///
/// An export is untrusted input. Import keeps only the files a signature covers, takes the names of an
/// entry only from the grammar of `CacheNames` (and only where the archive's path agrees), and derives
/// everything else `image.json` says (metadata, expiry, the verifying key) again from the verified files.
public struct CacheArchive {
    public let store: ImageStore
    public let catalog: RemoteCatalog
    /// The user's config folder, where a remote the user trusts on import is added (`images.index`, `keys/`).
    public let configDirectory: URL?

    public init(store: ImageStore, catalog: RemoteCatalog, configDirectory: URL? = nil) {
        self.store = store
        self.catalog = catalog
        self.configDirectory = configDirectory
    }

    /// The files of an entry that a signature covers (directly, or through SHA256SUMS): the only ones
    /// that travel and the only ones import keeps, with image.json.
    static let signedFiles: Set<String> = [
        "meta.tar.xz", "meta.tar.xz.asc", "rootfs.tar.xz", "rootfs.tar.xz.asc", "SHA256SUMS", "SHA256SUMS.asc",
    ]
    /// Largest image.json read on import; coop's own are a few KiB.
    static let metadataLimit = 1 << 20
    /// Where an export carries each remote's definition and key: `remotes/NAME.index`, `remotes/NAME.asc`.
    static let remotesFolder = "remotes"

    /// Files of an entry that travel: the downloaded files and image.json, not the decoded copy.
    static func travellingFiles(of entry: CacheEntry) -> [String] {
        entry.files.keys.filter(signedFiles.contains).sorted() + [ImageStore.metadataName]
    }

    public func export(_ entries: [CacheEntry], to file: URL) throws {
        let temporary = FileSystem.stagingURL(for: file)
        let writer = try ArchiveWriter(
            file: temporary, format: .paxTar, role: ArchiveRole("export file \(file.path)"))
        do {
            let now = Int(time(nil))
            for entry in entries {
                let relative = entry.folder.path.dropFirst(store.root.path.count + 1)
                for name in Self.travellingFiles(of: entry) {
                    try writer.addFile(
                        "\(relative)/\(name)", contentsOf: entry.folder.appendingPathComponent(name),
                        .init(modified: now))
                }
            }
            // The remotes' definitions and keys, so that a machine without them can trust them on import.
            for name in Set(entries.map(\.remote)).sorted() {
                guard let remote = try? catalog.remote(named: name), let key = try? Data(contentsOf: remote.keyring)
                else { continue }
                let line = try RemoteCatalog.line(of: remote, keyring: "\(remote.name).asc")
                try writer.addFile(
                    "\(Self.remotesFolder)/\(remote.name).index", data: Data(line.utf8), .init(modified: now))
                try writer.addFile("\(Self.remotesFolder)/\(remote.name).asc", data: key, .init(modified: now))
            }
            try writer.close()
            try checkSystemCall(rename(temporary.path, file.path), "export file \(file.path)")
        } catch {
            unlink(temporary.path)
            throw error
        }
    }

    /// What an import did: the entries committed, the remotes added, the files left out.
    public struct Imported {
        public var entries: [CacheEntry] = []
        public var addedRemotes: [Remote] = []
        public var dropped: [String] = []
    }

    /// Unpacks an export into a staging folder, verifies every entry against its remote's pinned key,
    /// and commits each one. A remote this machine lacks is used (and added to the user's list) only when
    /// `trust` is the fingerprint of the key the export carries for it.
    public func importArchive(_ file: URL, verify: Bool = true, trust: String? = nil) throws -> Imported {
        let staging = FileSystem.stagingURL(for: store.root.appendingPathComponent("import"))
        try FileSystem.createDirectory(staging)
        defer { try? TreeRemover.removeHere(staging) }
        var result = Imported()
        let folders = try unpack(file, into: staging, dropped: &result.dropped)
        var staged: [(URL, CacheEntry)] = []
        var remotes: [String: Remote] = [:]
        for path in folders.sorted() {
            let folder = URL(fileURLWithPath: path)
            let claimed = try readEntry(folder, archive: file, staging: staging)
            var remote: Remote?
            if verify {
                if remotes[claimed.remote] == nil {
                    remotes[claimed.remote] = try resolveRemote(
                        claimed.remote, staging: staging, trust: trust, file: file)
                }
                remote = remotes[claimed.remote]
            }
            staged.append((folder, try derive(claimed, in: folder, remote: remote, dropped: &result.dropped)))
        }
        for remote in remotes.values where !catalog.remotes.contains(where: { $0.name == remote.name }) {
            result.addedRemotes.append(try add(remote, staging: staging))
        }
        for (folder, entry) in staged { result.entries.append(try store.commit(folder, as: entry)) }
        return result
    }

    /// The entry `image.json` claims, its names checked against the grammar and the archive's own path.
    private func readEntry(_ folder: URL, archive file: URL, staging: URL) throws -> CacheEntry {
        let what = "import \(file.lastPathComponent)"
        guard let data = try? Data(contentsOf: folder.appendingPathComponent(ImageStore.metadataName)),
            let entry = try? CacheEntry.decoded(from: data)
        else { throw CoopError(.verification, what, cause: "an entry has no valid image.json") }
        let names = [entry.remote, entry.distro, entry.release, entry.arch, entry.variant, entry.build]
        let path = Array(folder.pathComponents.suffix(6))
        guard names.allSatisfy(CacheNames.isValid), names == path else {
            throw CoopError(
                .unsafeArchive, what,
                cause: "image.json names \(Console.escaped(names.joined(separator: "/"))), "
                    + "which is not a plain name or not its folder \(path.joined(separator: "/"))",
                fix: "do not import this file: it tries to place files outside their folder of the cache")
        }
        return entry
    }

    /// The entry as coop records it: files checked and recorded again, the metadata read from the
    /// verified meta.tar.xz, `verifiedBy` the key that verified it now (nil without verification).
    private func derive(_ claimed: CacheEntry, in folder: URL, remote: Remote?, dropped: inout [String]) throws
        -> CacheEntry
    {
        let reference = "\(claimed.reference) build \(claimed.build)"
        for name in ["meta.tar.xz", "rootfs.tar.xz"] where !FileSystem.exists(folder.appendingPathComponent(name)) {
            throw CoopError(
                .verification, "imported \(reference)", cause: "has no \(name)",
                fix: "export the image again from a good cache")
        }
        if let remote {
            let verifier = try SignatureVerifier(keyring: remote.keyring, fingerprint: remote.fingerprint)
            for name in ["meta.tar.xz", "rootfs.tar.xz"] {
                try verifier.verify(
                    file: folder.appendingPathComponent(name), signature: folder.appendingPathComponent(name + ".asc"),
                    name: "\(name) of \(reference)")
            }
            // SHA256SUMS stays only with a good signature; nothing needs it once the files verified.
            let sums = folder.appendingPathComponent("SHA256SUMS")
            if FileSystem.exists(sums) {
                do {
                    try verifier.verify(
                        file: sums, signature: folder.appendingPathComponent("SHA256SUMS.asc"), name: "SHA256SUMS")
                } catch {
                    dropped.append("\(claimed.reference)/\(claimed.build)/SHA256SUMS")
                    unlink(sums.path)
                    unlink(folder.appendingPathComponent("SHA256SUMS.asc").path)
                }
            }
        }
        var files: [String: CacheEntry.FileRecord] = [:]
        for name in Self.signedFiles where FileSystem.exists(folder.appendingPathComponent(name)) {
            let url = folder.appendingPathComponent(name)
            let digest = try SHA256Hasher.hash(files: [url])
            if let record = claimed.files[name], record.sha256 != digest {
                throw CoopError(
                    .verification, "imported \(name) of \(reference)", cause: "its sha256 does not match image.json",
                    fix: "export the image again from a good cache")
            }
            var info = stat()
            try checkSystemCall(lstat(url.path, &info), "read \(url.path)")
            files[name] = .init(sha256: digest, size: Int64(info.st_size))
        }
        let meta = try MetaArchive(contentsOf: folder.appendingPathComponent("meta.tar.xz"))
        var validity: Int?
        if let expiry = meta.expiry, let built = BuildID.epoch(claimed.build), expiry > built {
            validity = expiry - built
        }
        let now = Int(Date().timeIntervalSince1970)
        return CacheEntry(
            remote: claimed.remote, imageProtocol: remote?.imageProtocol ?? claimed.imageProtocol,
            distro: claimed.distro, release: claimed.release, arch: claimed.arch, variant: claimed.variant,
            build: claimed.build, fetchedAt: min(claimed.fetchedAt, now), expiry: meta.expiry, validity: validity,
            files: files, meta: meta,
            verifiedBy: remote.map { $0.fingerprint ?? "keyring \($0.keyring.lastPathComponent)" })
    }

    /// This machine's remote of that name; else the one the export carries, if `trust` is its key's
    /// fingerprint, pinned to it.
    private func resolveRemote(_ name: String, staging: URL, trust: String?, file: URL) throws -> Remote {
        if let known = catalog.remotes.first(where: { $0.name == name }) { return known }
        let carried = staging.appendingPathComponent(".\(Self.remotesFolder)")
        let line = carried.appendingPathComponent("\(name).index")
        let key = carried.appendingPathComponent("\(name).asc")
        guard FileSystem.exists(line), FileSystem.exists(key),
            let remote = try RemoteCatalog.parse(file: line).first, remote.name == name
        else {
            throw CoopError(
                .notFound, "remote '\(Console.escaped(name))' of the builds in \(file.lastPathComponent)",
                cause: "is not in images.index, and the export does not carry it",
                fix: "add the remote to ~/.config/coop/images.index, or import with --no-verify")
        }
        let fingerprints = try SignatureVerifier(keyring: key, fingerprint: nil).keyFingerprints()
        guard fingerprints.count == 1, let fingerprint = fingerprints.first,
            remote.fingerprint == nil || remote.fingerprint == fingerprint
        else {
            throw CoopError(
                .verification, "key of remote '\(name)' in \(file.lastPathComponent)",
                cause: "holds \(fingerprints.count) keys (\(fingerprints.joined(separator: ", "))), "
                    + "not one that matches the remote's fingerprint",
                fix: "export again from a machine with the remote's real key")
        }
        guard trust?.replacingOccurrences(of: " ", with: "").uppercased() == fingerprint else {
            throw CoopError(
                .verification, "remote '\(name)' (\(Console.escaped(remote.url)))",
                cause: "is not in images.index; the export carries its key with fingerprint \(fingerprint)"
                    + (trust.map { ", not \(Console.escaped($0))" } ?? ""),
                fix:
                    "check that fingerprint with the remote's owner, then import again with --trust-remote \(fingerprint)"
            )
        }
        return Remote(
            name: name, imageProtocol: remote.imageProtocol, url: remote.url, keyring: key, fingerprint: fingerprint)
    }

    /// Adds a trusted remote to the user's `images.index`, its key in `keys/NAME.asc` beside it.
    private func add(_ remote: Remote, staging: URL) throws -> Remote {
        guard let configDirectory else {
            throw CoopError(.internal, "remote '\(remote.name)'", cause: "no config folder to add it to")
        }
        let keys = configDirectory.appendingPathComponent("keys")
        try FileSystem.createDirectory(keys)
        let key = keys.appendingPathComponent("\(remote.name).asc")
        try FileSystem.writeAtomically(try Data(contentsOf: remote.keyring), to: key)
        let list = configDirectory.appendingPathComponent("images.index")
        var text = (try? String(contentsOf: list, encoding: .utf8)) ?? ""
        if !text.isEmpty && !text.hasSuffix("\n") { text += "\n" }
        text += try RemoteCatalog.line(of: remote, keyring: "keys/\(remote.name).asc")
        try FileSystem.writeAtomically(text, to: list)
        var added = remote
        added.keyring = key
        return added
    }

    /// Writes the archive's files: each entry's signed files and image.json at
    /// `remote/distro/release/arch/variant/build/name`, and the carried remotes. Other files of an entry
    /// are left out (listed in `dropped`); links, devices, other depths, names outside the grammar are refused.
    private func unpack(_ file: URL, into staging: URL, dropped: inout [String]) throws -> Set<String> {
        // Strict: an export is coop's own, so a header libarchive even warns about is not one.
        let reader = try ArchiveReader(file: file, role: ArchiveRole("import file \(file.path)"), strict: true)
        var folders = Set<String>()
        while let entry = try reader.next() {
            let name = entry.path ?? ""
            let parts = name.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            let refused = CoopError(
                .unsafeArchive, "import file \(file.lastPathComponent)",
                cause: "holds an unexpected entry '\(Console.escaped(name))'",
                fix: "import only files made by 'coop cache export'")
            guard entry.kind == .file else { throw refused }
            let target: URL
            if parts.count == 2, parts[0] == Self.remotesFolder,
                [".index", ".asc"].contains(where: {
                    parts[1].hasSuffix($0) && CacheNames.isValid(String(parts[1].dropLast($0.count)))
                })
            {
                let folder = staging.appendingPathComponent(".\(Self.remotesFolder)")
                try FileSystem.createDirectory(folder)
                target = folder.appendingPathComponent(parts[1])
            } else if parts.count == 7, parts[0..<6].allSatisfy(CacheNames.isValid) {
                guard Self.signedFiles.contains(parts[6]) || parts[6] == ImageStore.metadataName else {
                    dropped.append(name)
                    continue
                }
                if parts[6] == ImageStore.metadataName && (entry.size ?? 0) > Self.metadataLimit {
                    throw CoopError(
                        .unsafeArchive, "import file \(file.lastPathComponent)",
                        cause: "\(name) is larger than \(Self.metadataLimit) bytes",
                        fix: "import only files made by 'coop cache export'")
                }
                let folder = parts[0..<6].reduce(staging) { $0.appendingPathComponent($1) }
                try FileSystem.createDirectory(folder)
                folders.insert(folder.path)
                target = folder.appendingPathComponent(parts[6])
            } else {
                throw refused
            }
            let fd = open(target.path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
            if fd < 0 { throw CoopError.system("import \(target.path)") }
            defer { close(fd) }
            try reader.copyData(to: fd)
        }
        return folders
    }
}
