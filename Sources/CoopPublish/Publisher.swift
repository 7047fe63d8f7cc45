import CoopFormats
import CoopSupport
import CoopSystem
import CoopTrust
import Foundation

/// `coop publish`: adds builds to a tree any static web server can serve, readable by LXC's download
/// template (`meta/1.0/index-system`, `index-user`) and by simplestreams clients (`streams/v1/`).
///
/// Atomic for readers: a build's folder is filled and signed under a hidden name and renamed into place
/// before any index names it; indexes are replaced by rename; pruned builds go only after the indexes
/// stopped naming them.
public struct Publisher {
    public let tree: URL
    public let keyring: SigningKeyring
    public let keep: Int
    /// Whether each new build also gets `rootfs.squashfs` (LXD's and Incus's faster rootfs), made with
    /// tar2sqfs of squashfs-tools-ng.
    public let squashfs: Bool

    public init(tree: URL, keyring: SigningKeyring, keep: Int, squashfs: Bool = false) {
        self.tree = tree
        self.keyring = keyring
        self.keep = keep
        self.squashfs = squashfs
    }

    public struct Outcome {
        public var added: [String]
        public var pruned: [String]
        public var total: Int
    }

    /// `sources` are build folders made by `coop build` (`…/DISTRO/RELEASE/ARCH/VARIANT/BUILD`).
    public func publish(_ sources: [URL]) throws -> Outcome {
        try FileSystem.createDirectory(tree)
        _ = try keyring.requireKeyFingerprint()
        removeAbandonedStaging()
        var added: [String] = []
        for source in sources {
            let parts = Array(source.standardizedFileURL.pathComponents.suffix(5))
            guard parts.count == 5, parts.allSatisfy(ImageReference.isSafeComponent),
                FileSystem.exists(source.appendingPathComponent("rootfs.tar.xz")),
                FileSystem.exists(source.appendingPathComponent("meta.tar.xz"))
            else {
                throw CoopError(
                    .usage, "build folder \(source.path)", cause: "is not a build made by 'coop build'",
                    fix: "name folders like …/debian/bookworm/amd64/default/BUILD with rootfs.tar.xz and meta.tar.xz")
            }
            // Names the indexes' grammar refuses would make a tree no client reads: refused before a byte is copied.
            do { try PublishedBuild.indexLine(parts).check() } catch {
                throw CoopError(
                    .usage, "build folder \(source.path)", cause: "its \(error), so no index could list it",
                    fix: "name folders like …/debian/bookworm/amd64/default/YYYYMMDD_HH:MM, as 'coop build' does")
            }
            let target = tree.appendingPathComponent("images/" + parts.joined(separator: "/"))
            if FileSystem.exists(target) { continue }
            try stage(source, as: parts, into: target)
            added.append(parts.joined(separator: "/"))
        }

        // Which builds stay: the newest `keep` per product.
        var kept: [PublishedBuild] = []
        var pruned: [PublishedBuild] = []
        for (_, builds) in Dictionary(grouping: PublishedBuild.all(in: tree), by: \.product) {
            let newestFirst = builds.sorted { $0.build > $1.build }
            kept += newestFirst.prefix(keep)
            pruned += newestFirst.dropFirst(keep)
        }
        // Builds published before coop wrote LXD's and Incus's metadata get it now, before any index names it.
        kept = try kept.map { $0.lxd == nil ? try addLXDFiles(to: $0) : $0 }
        try writeIndexes(kept.sorted())
        for build in pruned {
            try? FileManager.default.removeItem(at: tree.appendingPathComponent(build.path))
        }
        return Outcome(added: added, pruned: pruned.map(\.path), total: kept.count)
    }

    /// Copies (or hard-links) a build's files into a hidden folder, signs them, writes SHA256SUMS and the
    /// record, then renames the folder into place.
    private func stage(_ source: URL, as parts: [String], into target: URL) throws {
        try FileSystem.createDirectory(target.deletingLastPathComponent())
        let staging = FileSystem.stagingURL(for: target, tag: "publishing")
        try FileSystem.createDirectory(staging)
        do {
            var sums = ""
            var digests: [String: (String, Int64)] = [:]
            for name in ["meta.tar.xz", "rootfs.tar.xz"] {
                let from = source.appendingPathComponent(name)
                let to = staging.appendingPathComponent(name)
                if link(from.path, to.path) != 0 {
                    do { try FileManager.default.copyItem(at: from, to: to) } catch {
                        throw CoopError(
                            .io, "copy of \(name) into \(tree.path)", cause: error.localizedDescription,
                            fix: "free some disk space where the tree lives; the published tree was left as it was",
                            wrapping: error)
                    }
                }
                let digest = try SHA256Hasher.hash(files: [to])
                let size = (try FileManager.default.attributesOfItem(atPath: to.path)[.size] as? Int64) ?? 0
                digests[name] = (digest, size)
                sums += "\(digest)  \(name)\n"
                try keyring.sign(to, to: staging.appendingPathComponent(name + ".asc"))
            }
            try FileSystem.writeAtomically(sums, to: staging.appendingPathComponent("SHA256SUMS"))
            try keyring.sign(
                staging.appendingPathComponent("SHA256SUMS"), to: staging.appendingPathComponent("SHA256SUMS.asc"))
            let combined = try SHA256Hasher.hash(files: [
                staging.appendingPathComponent("meta.tar.xz"), staging.appendingPathComponent("rootfs.tar.xz"),
            ])
            var record = PublishedBuild(
                distro: parts[0], release: parts[1], arch: parts[2], variant: parts[3], build: parts[4],
                rootfsSHA256: digests["rootfs.tar.xz"]!.0, rootfsSize: digests["rootfs.tar.xz"]!.1,
                metaSHA256: digests["meta.tar.xz"]!.0, metaSize: digests["meta.tar.xz"]!.1, combinedSHA256: combined)
            record.lxd = try writeLXDFiles(of: record, in: staging, squashfs: squashfs)
            try FileSystem.writeAtomically(
                try JSONEncoder().encode(record), to: staging.appendingPathComponent(PublishedBuild.recordName))
            try checkSystemCall(rename(staging.path, target.path), "publish \(target.path)")
        } catch {
            try? FileManager.default.removeItem(at: staging)
            // Folders made for this build only go too: the tree stays as it was.
            var folder = target.deletingLastPathComponent()
            while folder.path.count > tree.path.count, rmdir(folder.path) == 0 { folder.deleteLastPathComponent() }
            throw error
        }
    }

    /// LXD's and Incus's files of `build` in `folder`: the metadata tarball as `lxd.tar.xz` and `incus.tar.xz`
    /// (one file, two names), with `squashfs` the rootfs as squashfs too, each signed; their hashes.
    private func writeLXDFiles(of build: PublishedBuild, in folder: URL, squashfs: Bool) throws
        -> PublishedBuild.LXDFiles
    {
        let metadata = folder.appendingPathComponent("lxd.tar.xz")
        try LXDMetadata(build).write(to: metadata)
        let incus = folder.appendingPathComponent("incus.tar.xz")
        unlink(incus.path)
        try checkSystemCall(link(metadata.path, incus.path), "link \(incus.path)")
        let rootfs = folder.appendingPathComponent("rootfs.tar.xz")
        var files = PublishedBuild.LXDFiles(
            sha256: try SHA256Hasher.hash(files: [metadata]), size: try Self.size(metadata),
            combinedRootxz: try SHA256Hasher.hash(files: [metadata, rootfs]))
        var signed = [metadata, incus]
        if squashfs {
            let image = folder.appendingPathComponent("rootfs.squashfs")
            try SquashFS.make(image, from: rootfs)
            files.squashfs = .init(
                sha256: try SHA256Hasher.hash(files: [image]), size: try Self.size(image),
                combined: try SHA256Hasher.hash(files: [metadata, image]))
            signed.append(image)
        }
        for file in signed {
            try keyring.sign(file, to: file.appendingPathExtension("asc"))
        }
        return files
    }

    static func size(_ file: URL) throws -> Int64 {
        (try FileManager.default.attributesOfItem(atPath: file.path)[.size] as? Int64) ?? 0
    }

    /// Adds LXD's and Incus's files to a build published before coop wrote them; its record last, so that a
    /// publish killed on the way does it again.
    private func addLXDFiles(to build: PublishedBuild) throws -> PublishedBuild {
        let folder = tree.appendingPathComponent(build.path)
        var upgraded = build
        upgraded.lxd = try writeLXDFiles(of: build, in: folder, squashfs: false)
        try FileSystem.writeAtomically(
            try JSONEncoder().encode(upgraded), to: folder.appendingPathComponent(PublishedBuild.recordName))
        return upgraded
    }

    /// Writes a file and its detached signature; the signature first, so that the file never has a stale one
    /// for longer than one rename.
    /// With `gpgCopy`, the signature goes in place as `NAME.gpg` too (simplestreams' name for it).
    private func writeSigned(_ data: Data, to url: URL, gpgCopy: Bool = false) throws {
        try FileSystem.createDirectory(url.deletingLastPathComponent())
        let temporary = FileSystem.stagingURL(for: url)
        try FileSystem.writeAtomically(data, to: temporary)
        defer { unlink(temporary.path) }
        let signature = FileSystem.stagingURL(for: url, tag: "asc")
        defer { unlink(signature.path) }
        try keyring.sign(temporary, to: signature)
        if gpgCopy {
            let gpg = FileSystem.stagingURL(for: url, tag: "gpg")
            defer { unlink(gpg.path) }
            try checkSystemCall(link(signature.path, gpg.path), "publish \(url.path).gpg")
            try checkSystemCall(rename(gpg.path, url.path + ".gpg"), "publish \(url.path).gpg")
        }
        try checkSystemCall(rename(signature.path, url.path + ".asc"), "publish \(url.path).asc")
        try checkSystemCall(rename(temporary.path, url.path), "publish \(url.path)")
    }

    /// A simplestreams file as images.linuxcontainers.org serves it: `NAME.json` with a detached signature
    /// both as `NAME.json.asc` (coop, LXC's tools) and `NAME.json.gpg`, and the clearsigned `NAME.sjson` (of
    /// `clearsigned` when its text differs) that simplestreams clients read first. The signed copies go into
    /// place before the plain one.
    private func writeSignedJSON(_ data: Data, to url: URL, clearsigned clearText: Data? = nil) throws {
        try FileSystem.createDirectory(url.deletingLastPathComponent())
        let clearsigned = url.deletingPathExtension().appendingPathExtension("sjson")
        let clearInput = FileSystem.stagingURL(for: clearsigned, tag: "text")
        try FileSystem.writeAtomically(clearText ?? data, to: clearInput)
        defer { unlink(clearInput.path) }
        let signedCopy = FileSystem.stagingURL(for: clearsigned)
        defer { unlink(signedCopy.path) }
        try keyring.sign(clearInput, to: signedCopy, clear: true)
        try checkSystemCall(rename(signedCopy.path, clearsigned.path), "publish \(clearsigned.path)")
        try writeSigned(data, to: url, gpgCopy: true)
    }

    /// What the indexes of a tree say: LXC's lines (the same for `index-system` and `index-user`), and
    /// simplestreams' products and index.
    struct Indexes {
        var lxc: String
        var products: Simplestreams.Products
        var index: Simplestreams.Index
    }

    /// The indexes that list `builds`, each checked by its model as its reader would check it.
    static func indexes(of builds: [PublishedBuild]) throws(IndexField.Issue) -> Indexes {
        var products: [String: Simplestreams.Products.Product] = [:]
        for (product, versions) in Dictionary(grouping: builds, by: \.product) {
            products[product] = versions[0].simplestreamsProduct(
                versions: Dictionary(versions.map { ($0.build, $0.simplestreamsVersion) }) { _, later in later })
        }
        let indexes = Indexes(
            lxc: try LXCIndex.text(of: builds.map(\.indexLine)), products: Simplestreams.Products(products: products),
            index: Simplestreams.Index(index: [
                "images": .init(
                    datatype: "image-downloads", path: Simplestreams.productsPath, format: "products:1.0",
                    products: products.keys.sorted())
            ]))
        try indexes.products.check()
        try indexes.index.check()
        return indexes
    }

    private func writeIndexes(_ builds: [PublishedBuild]) throws {
        let indexes: Indexes
        do { indexes = try Self.indexes(of: builds) } catch {
            throw CoopError(
                .usage, "published tree \(tree.path)", cause: "a build's \(error), so no index could list it",
                fix: "remove that build's folder below images/ and publish again")
        }
        for name in ["index-system", "index-user"] {
            try writeSigned(Data(indexes.lxc.utf8), to: tree.appendingPathComponent("meta/1.0/\(name)"))
        }
        // The products before the index that names them, each signed three ways (see `writeSignedJSON`).
        try writeSignedJSON(
            try Simplestreams.encoded(indexes.products), to: tree.appendingPathComponent(Simplestreams.productsPath))
        // The clearsigned index names the clearsigned products, as simplestreams' own signing tool makes it.
        var signedIndex = indexes.index
        for key in signedIndex.index.keys {
            signedIndex.index[key]?.path = String(Simplestreams.productsPath.dropLast(".json".count)) + ".sjson"
        }
        try writeSignedJSON(
            try Simplestreams.encoded(indexes.index), to: tree.appendingPathComponent(Simplestreams.indexPath),
            clearsigned: try Simplestreams.encoded(signedIndex))
    }

    /// Staging folders of publishes that were killed.
    private func removeAbandonedStaging() {
        guard let walker = FileManager.default.enumerator(atPath: tree.appendingPathComponent("images").path) else {
            return
        }
        while let relative = walker.nextObject() as? String {
            let name = (relative as NSString).lastPathComponent
            if name.contains(".publishing-"), FileSystem.isAbandonedStaging(name) {
                try? FileManager.default.removeItem(at: tree.appendingPathComponent("images/" + relative))
                walker.skipDescendants()
            }
        }
    }
}
