import CoopArchive
import CoopFormats
import CoopStore
import CoopSupport
import CoopSystem
import CoopTransfer
import CoopTrust
import Foundation

/// Resolves, downloads, verifies and caches image builds: the verified fetch path.
///
/// Order of work: the small files first (metadata, signatures, checksums) and the metadata's
/// signature checked, then the rootfs, streamed to the caller's sink while it downloads, then its
/// signature, and only then an atomic rename into the cache.
public final class ImageFetcher: @unchecked Sendable {
    public let catalog: RemoteCatalog
    public let store: ImageStore
    public let downloader: Downloader
    public let privileged: Bool

    public init(catalog: RemoteCatalog, store: ImageStore, downloader: Downloader, privileged: Bool = getuid() == 0) {
        self.catalog = catalog
        self.store = store
        self.downloader = downloader
        self.privileged = privileged
    }

    /// Builds a consumer for the rootfs bytes once the metadata is verified; given the metadata and
    /// the folder the build is staged in.
    public typealias RootfsSinkFactory = (MetaArchive, URL) throws -> ByteSink

    public func index(of remote: Remote, verify: Bool = true) throws -> RemoteIndex {
        try RemoteIndex.load(remote: remote, downloader: downloader, privileged: privileged) {
            verify ? try SignatureVerifier(keyring: remote.keyring, fingerprint: remote.fingerprint) : nil
        }
    }

    public func fetch(
        _ reference: ImageReference, options: FetchOptions, rootfsSink: RootfsSinkFactory? = nil
    ) throws -> FetchOutcome {
        // Images the user imported live in the cache alone: there is no remote to ask.
        if reference.remote == ImageImport.remoteName {
            guard let imported = store.newest(reference, remote: ImageImport.remoteName) else {
                throw CoopError(
                    .notFound, "image \(reference)", cause: "was never imported",
                    fix: "import it first: coop image import FILE [ROOTFS] ('coop cache list' shows what is there)")
            }
            return FetchOutcome(entry: imported, downloaded: false, streamed: false)
        }
        let remote = try catalog.remote(named: reference.remote)
        let cached = store.newest(reference, remote: remote.name)
        if options.forceCache {
            guard let cached else {
                throw CoopError(
                    .notFound, "image \(reference)", cause: "is not in the cache \(store.root.path)",
                    fix:
                        "fetch it once with the network: coop fetch \(reference.distro) \(reference.release) \(reference.arch)"
                )
            }
            if !cached.isFresh() {
                Console.warning("using the cached \(reference) build \(cached.build) past its expiry")
            }
            return FetchOutcome(entry: cached, downloaded: false, streamed: false)
        }
        if let cached, !options.flushCache, cached.isFresh() {
            return FetchOutcome(entry: cached, downloaded: false, streamed: false)
        }

        let index: RemoteIndex
        do {
            index = try self.index(of: remote, verify: options.verify)
        } catch let error as CoopError where error.code == .network && cached != nil && !options.flushCache {
            Console.warning("\(error.what): \(error.cause); using the cached build \(cached!.build)")
            return FetchOutcome(entry: cached!, downloaded: false, streamed: false)
        }
        let build = try index.build(for: reference)
        // Never an older build than one verified before: an old (even genuinely signed) index is a rollback.
        let floor = BuildFloor(cache: store.root, remote: remote.name)
        try floor.check(build)
        if var cached, !options.flushCache, cached.build == build.build {
            // The remote still offers the same build: it is current again (LXC forgets this step).
            let now = Int(Date().timeIntervalSince1970)
            cached.fetchedAt = now
            if let validity = cached.validity { cached.expiry = now + validity }
            try store.update(cached)
            if index.signed && cached.verifiedBy != nil { try floor.record(build) }
            return FetchOutcome(entry: cached, downloaded: false, streamed: false)
        }

        let lock = try store.lock(reference, remote: remote.name)
        defer { lock.unlock() }
        // Another coop may have fetched the same build while this one waited for the lock.
        if !options.flushCache, let ready = store.newest(reference, remote: remote.name), ready.build == build.build {
            return FetchOutcome(entry: ready, downloaded: false, streamed: false)
        }
        let staging = store.partialFolder(reference, remote: remote.name, build: build.build)
        try FileSystem.createDirectory(staging)
        do {
            let entry = try download(build, of: remote, index: index, into: staging, options: options, sink: rootfsSink)
            let committed = try store.commit(staging, as: entry)
            if index.signed && entry.verifiedBy != nil { try floor.record(build) }
            rmdir(staging.deletingLastPathComponent().path)  // .partial/, when nothing else waits there
            return FetchOutcome(entry: committed, downloaded: true, streamed: rootfsSink != nil)
        } catch {
            // A refused or failed download leaves the cache as it was. (A killed one leaves .partial/,
            // which the next fetch resumes.)
            try? FileManager.default.removeItem(at: staging)
            rmdir(staging.deletingLastPathComponent().path)  // .partial/ too, when nothing else waits there
            throw error
        }
    }

    private func download(
        _ build: ImageBuild, of remote: Remote, index: RemoteIndex, into staging: URL, options: FetchOptions,
        sink makeSink: RootfsSinkFactory?
    ) throws -> CacheEntry {
        let verifier =
            options.verify ? try SignatureVerifier(keyring: remote.keyring, fingerprint: remote.fingerprint) : nil
        if !options.verify {
            Console.warning("not verifying the signatures of \(build.distro)/\(build.release): --no-verify was given")
        }
        if let squashfs = build.files.first(where: { $0.name == ImageBuild.squashfsName }) {
            throw CoopError(
                .notFound, "image \(build.distro)/\(build.release)/\(build.arch)/\(build.variant) \(build.build)",
                cause:
                    "remote '\(remote.name)' offers its rootfs as squashfs only (\(Console.escaped(squashfs.path))), "
                    + "which coop does not fetch",
                fix: "download its metadata and rootfs and import them: coop image import META ROOTFS.squashfs "
                    + "(needs squashfs-tools-ng); or ask the publisher to publish root.tar.xz as well")
        }
        guard let metaFile = build.files.first(where: { $0.name == "meta.tar.xz" }),
            let rootfsFile = build.files.first(where: { $0.name == "rootfs.tar.xz" })
        else { throw CoopError(.internal, "image build \(build.build)", cause: "lists no rootfs or metadata") }

        // A signed simplestreams list vouches only for the files whose sha256 it carries.
        let vouched = index.signed && remote.imageProtocol == .simplestreams
        if vouched {
            for file in [metaFile, rootfsFile] where file.sha256 == nil {
                throw CoopError(
                    .verification, "\(file.name) of \(build.distro)/\(build.release) \(build.build)",
                    cause: "has no sha256 in the signed list of remote '\(remote.name)', so its signature "
                        + "vouches for nothing",
                    fix: "the remote must list a sha256 for every file; --no-verify skips the check (with a warning)")
            }
        }
        let metaLimit = try listedLimit(metaFile, default: .metadata)
        let rootfsLimit = try listedLimit(rootfsFile, default: .rootfs)

        // Step 1: the small files, in parallel. Signatures and checksums may be absent: that is judged below.
        var small: [(name: String, path: String, required: Bool, limit: SizeLimit)] = [
            ("meta.tar.xz", metaFile.path, true, metaLimit),
            ("meta.tar.xz.asc", metaFile.path + ".asc", false, .smallFile),
            ("rootfs.tar.xz.asc", rootfsFile.path + ".asc", false, .smallFile),
        ]
        if remote.imageProtocol == .lxc {
            small += [
                ("SHA256SUMS", build.folder + "SHA256SUMS", false, .smallFile),
                ("SHA256SUMS.asc", build.folder + "SHA256SUMS.asc", false, .smallFile),
            ]
        }
        let addresses = try small.map { try remote.address(of: $0.path) }
        let rootfsAddress = try remote.address(of: rootfsFile.path)
        let results = try parallel(
            zip(small, addresses).map { file, address in
                { @Sendable [downloader] () throws -> (String, Downloader.Result?) in
                    let target = staging.appendingPathComponent(file.name)
                    do {
                        return (
                            file.name,
                            try downloader.download(from: address, to: target, resume: false, limit: file.limit)
                        )
                    } catch let error as CoopError where error.code == .notFound && !file.required {
                        unlink(target.path)
                        return (file.name, nil)
                    }
                }
            })
        var digests: [String: Downloader.Result] = [:]
        for (name, result) in results { if let result { digests[name] = result } }

        // Step 2: the metadata is verified before a single rootfs byte is fetched. A signed simplestreams
        // list vouches for the sha256 of each file; an LXC index names paths only.
        let checksums = try verifiedChecksums(in: staging, verifier: verifier)
        try check(metaFile, digest: digests["meta.tar.xz"]!, checksums: checksums)
        if let verifier {
            try verifyFile("meta.tar.xz", in: staging, verifier: verifier, listSigned: vouched)
            if !vouched && !FileSystem.exists(staging.appendingPathComponent("rootfs.tar.xz.asc")) {
                throw CoopError(
                    .verification, "signature of rootfs.tar.xz", cause: "is missing on the remote \(remote.name)",
                    fix: "the remote must publish rootfs.tar.xz.asc; use --no-verify only if you trust it otherwise")
            }
        }
        let meta = try MetaArchive(contentsOf: staging.appendingPathComponent("meta.tar.xz"))

        // Step 3: the rootfs, streamed to the sink (decompression and unpacking) as it arrives.
        let combined = try SHA256Hasher()
        try feed(file: staging.appendingPathComponent("meta.tar.xz"), to: combined)
        let sink = CombinedHashSink(hasher: combined, next: try makeSink?(meta, staging))
        let bar = ProgressBar(label: "rootfs.tar.xz")
        let rootfs = try downloader.download(
            from: rootfsAddress, to: staging.appendingPathComponent("rootfs.tar.xz"), sink: sink, limit: rootfsLimit,
            progress: { done, total in bar.update(slot: 0, done: done, total: max(total, rootfsFile.size ?? 0)) })
        bar.finish()
        try sink.next?.finish()
        digests["rootfs.tar.xz"] = rootfs

        // Step 4: the rootfs's own checks; nothing enters the cache before they pass.
        try check(rootfsFile, digest: rootfs, checksums: checksums)
        if let expected = build.combinedSHA256 {
            let actual = combined.finalize()
            guard actual == expected.lowercased() else {
                throw CoopError(
                    .verification, "image fingerprint of \(build.distro)/\(build.release) \(build.build)",
                    cause: "is \(actual), the index says \(expected)",
                    fix: "the download was truncated or tampered with: nothing was kept; try again")
            }
        }
        if let verifier { try verifyFile("rootfs.tar.xz", in: staging, verifier: verifier, listSigned: vouched) }

        var validity: Int?
        if let expiry = meta.expiry, let built = BuildID.epoch(build.build), expiry > built {
            validity = expiry - built
        }
        var files: [String: CacheEntry.FileRecord] = [:]
        for (name, digest) in digests { files[name] = .init(sha256: digest.sha256, size: digest.size) }
        return CacheEntry(
            remote: remote.name, imageProtocol: remote.imageProtocol, distro: build.distro, release: build.release,
            arch: build.arch, variant: build.variant, build: build.build, fetchedAt: Int(Date().timeIntervalSince1970),
            expiry: meta.expiry, validity: validity, files: files, meta: meta,
            verifiedBy: verifier == nil ? nil : (remote.fingerprint ?? "keyring \(remote.keyring.lastPathComponent)"))
    }

    /// The most bytes a file may have: the size its index lists (then the download stops there, before more
    /// is unpacked), else `fallback`; a listed size above `fallback` is refused.
    private func listedLimit(_ file: ImageBuild.File, default fallback: SizeLimit) throws -> SizeLimit {
        guard let size = file.size else { return fallback }
        guard size <= fallback.bytes else {
            throw CoopError(
                .verification, "download of \(file.name)",
                cause: "the index lists \(size) bytes, more than the limit for \(fallback.what) (\(fallback.text))",
                fix: "no real image comes near this limit: the remote serves something else; nothing was kept")
        }
        return .listed(size, name: file.name)
    }

    /// `SHA256SUMS`, trusted only if its own signature verifies (or verification is off).
    private func verifiedChecksums(in staging: URL, verifier: SignatureVerifier?) throws -> ChecksumList? {
        let list = staging.appendingPathComponent("SHA256SUMS")
        guard let text = try? String(contentsOf: list, encoding: .utf8) else { return nil }
        if let verifier {
            let signature = staging.appendingPathComponent("SHA256SUMS.asc")
            guard FileSystem.exists(signature) else { return nil }
            try verifier.verify(file: list, signature: signature, name: "SHA256SUMS")
        }
        return ChecksumList(text: text)
    }

    private func check(_ file: ImageBuild.File, digest: Downloader.Result, checksums: ChecksumList?) throws {
        if let size = file.size, size != digest.size {
            throw CoopError(
                .verification, "download of \(file.name)", cause: "has \(digest.size) bytes, the index says \(size)",
                fix: "the download was truncated or tampered with: nothing was kept; try again")
        }
        if let expected = file.sha256, expected.lowercased() != digest.sha256 {
            throw CoopError(
                .verification, "checksum of \(file.name)", cause: "is \(digest.sha256), the index says \(expected)",
                fix: "the download was truncated or tampered with: nothing was kept; try again")
        }
        try checksums?.check(name: file.name, sha256: digest.sha256)
    }

    /// A file's detached signature; where the signed index already vouches for the file's sha256
    /// (simplestreams), a missing `.asc` is acceptable.
    private func verifyFile(_ name: String, in staging: URL, verifier: SignatureVerifier, listSigned: Bool) throws {
        let signature = staging.appendingPathComponent(name + ".asc")
        if listSigned && !FileSystem.exists(signature) { return }
        try verifier.verify(file: staging.appendingPathComponent(name), signature: signature, name: name)
    }

    private func feed(file: URL, to hasher: SHA256Hasher) throws {
        let data = try Data(contentsOf: file)
        data.withUnsafeBytes { hasher.update($0) }
    }

    /// Runs independent jobs on as many threads, returning their results in order.
    private func parallel<T: Sendable>(_ jobs: [@Sendable () throws -> T]) throws -> [T] {
        let results = LockedResults<T>(count: jobs.count)
        DispatchQueue.concurrentPerform(iterations: jobs.count) { index in
            results.set(index, Result { try jobs[index]() })
        }
        return try results.values()
    }
}

final class LockedResults<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var slots: [Result<T, Error>?]

    init(count: Int) { slots = Array(repeating: nil, count: count) }

    func set(_ index: Int, _ value: Result<T, Error>) {
        lock.lock()
        slots[index] = value
        lock.unlock()
    }

    func values() throws -> [T] { try slots.map { try $0!.get() } }
}

/// Hashes the rootfs bytes into the image fingerprint (metadata bytes, then rootfs bytes) on their way
/// to the next consumer.
final class CombinedHashSink: ByteSink {
    let hasher: SHA256Hasher
    let next: ByteSink?

    init(hasher: SHA256Hasher, next: ByteSink?) {
        self.hasher = hasher
        self.next = next
    }

    func consume(_ bytes: UnsafeRawBufferPointer) throws {
        hasher.update(bytes)
        try next?.consume(bytes)
    }
}
