import CoopFormats
import CoopSupport
import CoopSystem
import Foundation

/// The offline image cache: `REMOTE/DISTRO/RELEASE/ARCH/VARIANT/BUILD/` folders, each complete and
/// verified, entered only by an atomic rename. Work in progress lives in `.partial/` (resumable) and
/// per-image locks in `.locks/`.
public final class ImageStore: Sendable {
    public let root: URL

    public init(root: URL) { self.root = root }

    static let metadataName = "image.json"

    func productFolder(_ reference: ImageReference, remote: String) -> URL {
        root.appendingPathComponent(remote).appendingPathComponent(reference.distro)
            .appendingPathComponent(reference.release).appendingPathComponent(reference.arch)
            .appendingPathComponent(reference.variant)
    }

    func folder(_ reference: ImageReference, remote: String, build: String) -> URL {
        productFolder(reference, remote: remote).appendingPathComponent(build)
    }

    /// Where an interrupted download of this build waits to be resumed.
    public func partialFolder(_ reference: ImageReference, remote: String, build: String) -> URL {
        root.appendingPathComponent(".partial").appendingPathComponent(
            [remote, reference.distro, reference.release, reference.arch, reference.variant, build].joined(
                separator: "_"))
    }

    /// Serialises work on one image across processes: two fetches of it download it once.
    public func lock(_ reference: ImageReference, remote: String) throws -> FileLock {
        let name = [remote, reference.distro, reference.release, reference.arch, reference.variant].joined(
            separator: "_")
        return try FileLock(path: root.appendingPathComponent(".locks/\(name).lock")) {
            Console.status("waiting for another coop working on \(reference)")
        }
    }

    /// Every complete entry, newest build first within each image.
    public func entries() -> [CacheEntry] {
        // Builds sort by time: within one image, the newest first.
        let products = FileSystem.folders(below: root, depth: 5)
        return products.flatMap { FileSystem.subfolders($0).reversed().compactMap(read) }
    }

    func read(_ folder: URL) -> CacheEntry? {
        guard let data = try? Data(contentsOf: folder.appendingPathComponent(Self.metadataName)),
            var entry = try? CacheEntry.decoded(from: data)
        else { return nil }
        entry.folder = folder
        return entry
    }

    /// The newest cached build of an image from `remote`.
    public func newest(_ reference: ImageReference, remote: String) -> CacheEntry? {
        let product = productFolder(reference, remote: remote)
        let builds = ((try? FileManager.default.contentsOfDirectory(atPath: product.path)) ?? []).filter {
            !$0.hasPrefix(".")
        }
        for build in builds.sorted(by: >) {
            if let entry = read(product.appendingPathComponent(build)) { return entry }
        }
        return nil
    }

    /// Rewrites an entry's `image.json` in place (atomically), e.g. to refresh its expiry.
    public func update(_ entry: CacheEntry) throws {
        try FileSystem.writeAtomically(
            try entry.encoded(), to: entry.folder.appendingPathComponent(Self.metadataName))
    }

    /// The folder of an entry, built from its names only once each passed `CacheNames`, and checked to
    /// lie inside the cache (also through links on the way): nothing outside the cache is written or removed.
    func checkedFolder(of entry: CacheEntry) throws -> URL {
        let names = [entry.remote, entry.distro, entry.release, entry.arch, entry.variant, entry.build]
        if let bad = names.first(where: { !CacheNames.isValid($0) }) {
            throw CoopError(
                .unsafeArchive, "image name '\(Console.escaped(bad))'",
                cause: "is not a plain name (letters, digits and . _ - + : only, at most \(CacheNames.maximumLength))",
                fix: "do not use this image: its names would place it outside its folder of the cache")
        }
        let destination = folder(entry.reference, remote: entry.remote, build: entry.build)
        try FileSystem.createDirectory(destination.deletingLastPathComponent())
        guard let realRoot = realpath(root.path, nil),
            let realParent = realpath(destination.deletingLastPathComponent().path, nil)
        else { throw CoopError.system("cache folder \(destination.path)") }
        defer {
            free(realRoot)
            free(realParent)
        }
        guard String(cString: realParent).hasPrefix(String(cString: realRoot) + "/") else {
            throw CoopError(
                .io, "cache folder \(destination.path)", cause: "leads outside the cache \(root.path)",
                fix: "remove the link inside the cache that leads elsewhere")
        }
        return destination
    }

    /// Moves a finished, verified folder into place as the entry; replaces an older copy of the same build.
    public func commit(_ staged: URL, as entry: CacheEntry) throws -> CacheEntry {
        let destination = try checkedFolder(of: entry)
        try FileSystem.writeAtomically(try entry.encoded(), to: staged.appendingPathComponent(Self.metadataName))
        var replaced: URL?
        if FileSystem.exists(destination) {
            let trash = FileSystem.stagingURL(for: destination, tag: "old")
            try checkSystemCall(rename(destination.path, trash.path), "replace \(destination.path)")
            replaced = trash
        }
        if rename(staged.path, destination.path) != 0 {
            let error = CoopError.system("commit \(destination.path)")
            if let replaced { rename(replaced.path, destination.path) }
            throw error
        }
        FileSystem.syncDirectory(destination.deletingLastPathComponent())
        if let replaced { try? FileManager.default.removeItem(at: replaced) }
        var committed = entry
        committed.folder = destination
        return committed
    }

    public func remove(_ entry: CacheEntry) throws {
        let trash = FileSystem.stagingURL(for: entry.folder, tag: "removing")
        try checkSystemCall(rename(entry.folder.path, trash.path), "remove \(entry.folder.path)")
        try FileManager.default.removeItem(at: trash)
    }

    /// What an entry takes on disk: allocated blocks of its folder and files, a file with several
    /// names in it counted once.
    public func diskUsage(_ entry: CacheEntry) -> Int64 {
        var seen = Set<[UInt64]>()
        var total: Int64 = 0
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: entry.folder.path)) ?? []).map {
            entry.folder.appendingPathComponent($0).path
        }
        for path in [entry.folder.path] + names {
            var info = stat()
            guard lstat(path, &info) == 0, seen.insert([UInt64(info.st_dev), UInt64(info.st_ino)]).inserted else {
                continue
            }
            total += Int64(info.st_blocks) * 512
        }
        return total
    }
}
