import CoopArchive
import CoopFormats
import CoopStore
import CoopSupport
import CoopSystem
import Foundation

/// `coop image import FILE [ROOTFS]`: an image that LXD or Incus wrote (`lxc image export`), unified (one
/// tarball with `metadata.yaml`, `templates/` and `rootfs/`) or split (the metadata tarball, and the rootfs
/// as a tarball or squashfs), made a cache entry of the remote `local`: `local:DISTRO/RELEASE/ARCH/VARIANT`,
/// named by the image's own properties.
///
/// The files are the user's, not a remote's: nothing is signed, so the entry records no key. Everything
/// read from them is held to the same rules as a download's: the names to the index grammar, the metadata
/// to its limits, and the rootfs is unpacked later by the same hardened extraction.
public struct ImageImport {
    public static let remoteName = "local"
    public let store: ImageStore

    public init(store: ImageStore) { self.store = store }

    public func run(_ file: URL, rootfs: URL? = nil) throws -> CacheEntry {
        let found = try Self.scan(file)
        guard let yaml = found.files["metadata.yaml"] else {
            throw CoopError(
                .usage, "image file \(file.path)", cause: "has no metadata.yaml, so it is no LXD or Incus image",
                fix: "give the file 'lxc image export' wrote; for a split image the metadata tarball first, then "
                    + "the rootfs: coop image import META ROOTFS")
        }
        if rootfs == nil && !found.unified {
            throw CoopError(
                .usage, "image file \(file.path)", cause: "holds the metadata only (no rootfs/ folder)",
                fix: "give its rootfs too: coop image import \(file.path) ROOTFS")
        }
        let metadata = try LXDImageMetadata(yaml: yaml, source: file.lastPathComponent)
        let reference = try Self.reference(of: metadata, file: file)
        let build = BuildID.string(epoch: metadata.creationDate ?? Int(time(nil)))
        let lock = try store.lock(reference, remote: Self.remoteName)
        defer { lock.unlock() }
        let staging = store.partialFolder(reference, remote: Self.remoteName, build: build)
        try? FileManager.default.removeItem(at: staging)
        try FileSystem.createDirectory(staging)
        do {
            let meta = staging.appendingPathComponent("meta.tar.xz")
            let writer = try ArchiveWriter(file: meta, format: .gnuTar, filter: .xz)
            for (name, text) in found.files.sorted(by: { $0.key < $1.key }) {
                try writer.addFile(name, data: Data(text.utf8), .init(modified: metadata.creationDate ?? 0))
            }
            try writer.close()
            let tar = staging.appendingPathComponent("rootfs.tar")
            let compressed = staging.appendingPathComponent("rootfs.tar.xz")
            if let rootfs, try Self.startsWith(rootfs, Self.xzMagic) {
                // A split image's rootfs as coop keeps it already: copied as it is (the extraction checks it).
                try FileManager.default.copyItem(at: rootfs, to: compressed)
            } else {
                try Self.repack(rootfs ?? file, prefix: rootfs == nil ? "rootfs" : nil, to: tar)
                try XZCompressor.compress(tar, to: compressed, preset: 1)
                unlink(tar.path)
            }
            var files: [String: CacheEntry.FileRecord] = [:]
            for name in ["meta.tar.xz", "rootfs.tar.xz"] {
                let url = staging.appendingPathComponent(name)
                let size = (try FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int64) ?? 0
                files[name] = .init(sha256: try SHA256Hasher.hash(files: [url]), size: size)
            }
            let entry = CacheEntry(
                remote: Self.remoteName, imageProtocol: .simplestreams, distro: reference.distro,
                release: reference.release, arch: reference.arch, variant: reference.variant, build: build,
                fetchedAt: Int(time(nil)), expiry: nil, validity: nil, files: files,
                meta: try MetaArchive(contentsOf: meta), verifiedBy: nil)
            return try store.commit(staging, as: entry)
        } catch {
            try? FileManager.default.removeItem(at: staging)
            throw error
        }
    }

    /// The reference the image's properties name; each part held to the index grammar.
    static func reference(of metadata: LXDImageMetadata, file: URL) throws -> ImageReference {
        let properties = metadata.properties
        let parts = [
            ("os", properties["os"]?.lowercased()), ("release", properties["release"]),
            ("architecture", (properties["architecture"] ?? metadata.architecture).map(debianArchitecture)),
            ("variant", properties["variant"] ?? "default"),
        ]
        var values: [String] = []
        for (property, value) in parts {
            guard let value, ImageReference.isSafeComponent(value) else {
                throw CoopError(
                    .usage, "image file \(file.path)",
                    cause: "its metadata.yaml has "
                        + (value.map { "property \(property) '\(Console.escaped($0))', which is no name" }
                            ?? "no property \(property)"),
                    fix: "give the image that property (letters, digits, '.', '_', '-') in metadata.yaml")
            }
            values.append(value)
        }
        return ImageReference(
            remote: remoteName, distro: values[0], release: values[1], arch: values[2], variant: values[3])
    }

    /// LXD names architectures as the kernel does; coop's references as Debian does.
    static func debianArchitecture(_ name: String) -> String {
        ["x86_64": "amd64", "aarch64": "arm64", "i686": "i386", "armv7l": "armhf", "ppc64le": "ppc64el"][name]
            ?? name
    }

    /// The metadata files of `file` (`metadata.yaml`, `templates/NAME.tpl`, each within MetaArchive's
    /// limits), and whether it also holds a `rootfs/` folder (a unified image).
    static func scan(_ file: URL) throws -> (files: [String: String], unified: Bool) {
        let reader = try ArchiveReader(
            file: file, role: ArchiveRole("image file \(file.path)", fix: "give a file 'lxc image export' wrote"))
        var files: [String: String] = [:]
        var unified = false
        var count = 0
        while let entry = try reader.next() {
            count += 1
            let name = normalized(entry.path ?? "")
            if name == "rootfs" || name.hasPrefix("rootfs/") {
                unified = true
                continue
            }
            // Metadata is a few small files: a file with many more entries outside rootfs/ is no image's
            // metadata (a rootfs given first, say), and is read no further.
            guard count <= MetaArchive.maxEntries || unified else { break }
            guard entry.kind == .file, name == "metadata.yaml" || MetaArchive.isLXDTemplate(name) else { continue }
            guard let data = try reader.data(limit: MetaArchive.maxFileBytes) else {
                throw CoopError(
                    .usage, "\(name) in \(file.path)",
                    cause: "is larger than \(MetaArchive.maxFileBytes >> 20) MiB, the limit for metadata",
                    fix: "do not use this file")
            }
            files[name] = String(decoding: data, as: UTF8.self)
        }
        return (files, unified)
    }

    static func normalized(_ path: String) -> String {
        var name = path
        while name.hasPrefix("./") { name.removeFirst(2) }
        while name.hasSuffix("/") { name.removeLast() }
        return name
    }

    /// Copies the rootfs entries of `source` (those below `prefix/`, without it, when given) into the plain
    /// tarball `target`, as `./PATH`. A squashfs rootfs is read through sqfs2tar. A hard link whose target is
    /// outside the rootfs is refused; every other check is the extraction's, when a container is made.
    static func repack(_ source: URL, prefix: String?, to target: URL) throws {
        let squashfs = try isSquashFS(source)
        var converter: SpawnedProcess?
        var input: Int32 = -1
        if squashfs {
            guard FileManager.default.isExecutableFile(atPath: "/usr/bin/sqfs2tar") else {
                throw CoopError(
                    .hostSetup, "squashfs rootfs \(source.path)", cause: "/usr/bin/sqfs2tar is missing",
                    fix: "install squashfs-tools-ng (apt-get install squashfs-tools-ng)")
            }
            let pipe = try Pipe.make()
            do {
                defer { close(pipe.write) }
                converter = try SpawnedProcess(
                    arguments: ["/usr/bin/sqfs2tar", "--no-skip", source.path], environment: [:], idMap: nil,
                    output: pipe.write)
            } catch {
                close(pipe.read)
                throw error
            }
            input = pipe.read
        }
        defer {
            if input >= 0 { close(input) }
            converter?.wait()
        }
        let role = ArchiveRole("rootfs \(source.path)", fix: "give the rootfs 'lxc image export' wrote")
        let reader =
            squashfs ? try ArchiveReader(fd: input, role: role) : try ArchiveReader(file: source, role: role)
        let writer = try ArchiveWriter(file: target, format: .paxTar, role: ArchiveRole(target.path))
        var count = 0
        while let entry = try reader.next() {
            var name = normalized(entry.path ?? "")
            if let prefix {
                guard name == prefix || name.hasPrefix(prefix + "/") else { continue }
                name = String(name.dropFirst(prefix.count))
                while name.hasPrefix("/") { name.removeFirst() }
            }
            entry.path = name.isEmpty ? "./" : "./" + name
            if let link = entry.hardlink {
                var linked = normalized(link)
                if let prefix {
                    guard linked.hasPrefix(prefix + "/") else {
                        throw CoopError(
                            .unsafeArchive, "hard link '\(Console.escaped(name))' in \(source.path)",
                            cause: "points outside rootfs/", fix: "do not use this image")
                    }
                    linked = String(linked.dropFirst(prefix.count + 1))
                }
                entry.hardlink = "./" + linked
            }
            try writer.addCopy(of: entry, from: reader)
            count += 1
        }
        try writer.close()
        if let converter, converter.wait() != 0 {
            throw CoopError(
                .usage, "squashfs rootfs \(source.path)", cause: "sqfs2tar could not read it",
                fix: "give the rootfs 'lxc image export' wrote")
        }
        guard count > 0 else {
            throw CoopError(
                .usage, "image \(source.path)", cause: "has no rootfs entries", fix: "give the rootfs of the image")
        }
    }

    static let xzMagic: [UInt8] = [0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00]

    static func isSquashFS(_ file: URL) throws -> Bool { try startsWith(file, Array("hsqs".utf8)) }

    static func startsWith(_ file: URL, _ magic: [UInt8]) throws -> Bool {
        let fd = open(file.path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw CoopError.system("read \(file.path)", kind: .notFound) }
        defer { close(fd) }
        var head = [UInt8](repeating: 0, count: magic.count)
        return read(fd, &head, magic.count) == magic.count && head == magic
    }
}
