import CoopArchive
import CoopFetch
import CoopFormats
import CoopRootfs
import CoopStore
import CoopSupport
import CoopSystem
import CoopTransfer
import Foundation

/// `coop create`: fetch if needed, unpack with shifted ownership, write the config; all or nothing.
public final class ContainerCreator {
    public let fetcher: ImageFetcher
    public let containers: ContainerStore

    public init(fetcher: ImageFetcher, containers: ContainerStore) {
        self.fetcher = fetcher
        self.containers = containers
    }

    public struct Created: Sendable {
        public var folder: URL
        public var record: ContainerRecord
        public var createMessage: String?
        /// The image came from the cache (no download).
        public var fromCache: Bool
    }

    /// With `cow`, the container is an overlay of the build's shared base (the one `coop run` uses) with
    /// an upper layer of its own: only the filled-in templates are written, nothing is unpacked.
    public func create(
        name: String, image: ImageReference, options: FetchOptions, quiet: Bool = false, cow: Bool = false,
        privateUnpack: Bool = false
    ) throws -> Created {
        try ContainerStore.checkName(name)
        try containers.makeRoot()
        let lock = try containers.lock(name)
        defer { lock.unlock() }
        containers.removeAbandonedStaging()
        guard !containers.exists(name) else {
            throw CoopError(
                .conflict, "container \(name)", cause: "already exists",
                fix: "choose another name, or remove it first with 'coop destroy \(name)'")
        }
        let final = containers.folder(name)
        let staging = FileSystem.stagingURL(for: final, tag: "creating")
        try FileSystem.createDirectory(staging)
        try ContainerFolder.makePrivate(staging, for: containers.idMap)
        var unpacker: RootfsUnpacker?
        var cachedEntry: CacheEntry?
        // The base of a copy-on-write container, locked until the container's config names it: until then
        // `coop cache prune` would not know it is in use.
        var baseLock: FileLock?
        defer { baseLock?.unlock() }
        do {
            let rootfs = staging.appendingPathComponent("rootfs")
            func startUnpacker(meta: MetaArchive, source: URL?) throws -> RootfsUnpacker {
                let templates = try LXDTemplates(meta)
                var request = ExtractionRequest(
                    destination: rootfs.path, shift: containers.privileged ? containers.idMap : nil,
                    idCount: containers.idMap.count, excludes: meta.excludesUser, templates: templates.paths,
                    templateValues: [
                        "LXC_NAME": name, "LXC_PATH": final.path,
                        "LXC_ROOTFS": final.appendingPathComponent("rootfs").path,
                    ])
                request.writtenFiles = try templates.rendered(name: name, quiet: quiet)
                let started = try RootfsUnpacker(
                    request: request, idMap: containers.idMap, privileged: containers.privileged, source: source)
                unpacker = started
                return started
            }

            // Cold: the rootfs is decoded and unpacked while it downloads, and nothing else is written. A
            // copy-on-write container needs the base, made from the cached image.
            let outcome =
                cow
                ? try fetcher.fetch(image, options: options)
                : try fetcher.fetch(image, options: options) { meta, _ in
                    try DecodingSink(unpacker: try startUnpacker(meta: meta, source: nil))
                }
            let entry = outcome.entry
            cachedEntry = outcome.downloaded ? nil : entry
            let templatePaths = try LXDTemplates(entry.meta).paths
            var skipped: [String]
            var cowBase: URL?
            if cow {
                let base = try self.base(of: entry, image: image, options: options)
                baseLock = try ThrowawayContainer.bases(of: containers).lock(base.lastPathComponent)
                guard FileSystem.exists(base.appendingPathComponent("rootfs")) else {
                    throw CoopError(
                        .conflict, "base \(base.path)", cause: "was removed by 'coop cache prune' meanwhile",
                        fix: "run the create again")
                }
                try makeUpperLayer(in: staging, name: name, base: base, templates: templatePaths)
                cowBase = base.appendingPathComponent("rootfs")
                skipped =
                    ThrowawayContainer.bases(of: containers).record(base.lastPathComponent)?.skipped ?? []
            } else if outcome.streamed {
                skipped = try unpacker!.finish()
            } else if makesBases || privateUnpack {
                // A base, or a container on a range of its own (which no base is shifted to), is unpacked
                // from the verified image in the cache.
                let target = try startUnpacker(meta: entry.meta, source: nil)
                let sink = try DecodingSink(unpacker: target)
                try sink.consume(file: entry.rootfsArchive)
                try sink.finish()
                skipped = try target.finish()
            } else {
                // Warm: a copy of the build's unpacked base, made from the image the first time.
                let base = try self.base(of: entry, image: image, options: options)
                let request = ExtractionRequest(
                    destination: rootfs.path, shift: nil, idCount: containers.idMap.count,
                    templates: templatePaths,
                    templateValues: [
                        base.lastPathComponent: name, base.path: final.path,
                        base.appendingPathComponent("rootfs").path: final.appendingPathComponent("rootfs").path,
                    ], copyFrom: base.appendingPathComponent("rootfs").path)
                try RootfsUnpacker.copy(request: request, idMap: containers.idMap, privileged: containers.privileged)
                skipped =
                    ThrowawayContainer.bases(of: containers).record(base.lastPathComponent)?.skipped ?? []
            }

            let config = ContainerConfig(
                name: name, rootfs: final.appendingPathComponent("rootfs"), idMap: containers.idMap,
                privileged: containers.privileged, distroLines: entry.meta.config(privileged: containers.privileged),
                image:
                    "\(entry.remote):\(entry.distro)/\(entry.release)/\(entry.arch)/\(entry.variant) build \(entry.build)",
                cowBase: cowBase)
            let dropped = config.distro.dropped
            if !dropped.isEmpty {
                Console.warning(
                    "left out of the config what an image may not set: "
                        + dropped.joined(separator: ", "))
            }
            try FileSystem.writeAtomically(try config.text, to: staging.appendingPathComponent("config"))
            let record = ContainerRecord(
                name: name, image: entry.reference, build: entry.build, createdAt: Int(Date().timeIntervalSince1970),
                skipped: skipped, templates: templatePaths)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try FileSystem.writeAtomically(try encoder.encode(record), to: staging.appendingPathComponent("coop.json"))
            try checkSystemCall(rename(staging.path, final.path), "create \(final.path)")
            FileSystem.syncDirectory(containers.root)
            return Created(
                folder: final, record: record, createMessage: entry.meta.createMessage, fromCache: !outcome.downloaded)
        } catch {
            unpacker?.abort()
            if let cachedEntry, (error as? CoopError)?.code == .unsafeArchive {
                // An image refused as unsafe does not stay in the cache to be used again.
                do { try fetcher.store.remove(cachedEntry) } catch let cleanup {
                    Console.warning("could not remove the refused build from the cache: \(cleanup)")
                }
            }
            do {
                try TreeRemover.remove(staging, idMap: containers.idMap, privileged: containers.privileged)
            } catch let cleanup {
                Console.warning("could not remove \(staging.path): \(cleanup)")
            }
            throw error
        }
    }
}

extension ContainerCreator {
    /// The folders of a copy-on-write container in `folder`: `delta0` (its upper layer, holding the base's
    /// templates filled in for `name`) and `work`, both owned by the container's root, and an empty
    /// `rootfs` that the runtime mounts the overlay on.
    func makeUpperLayer(in folder: URL, name: String, base: URL, templates: [String]) throws {
        let final = containers.folder(name)
        let request = ExtractionRequest(
            destination: folder.appendingPathComponent("delta0").path, shift: nil, idCount: containers.idMap.count,
            templates: templates,
            templateValues: [
                base.lastPathComponent: name, base.path: final.path,
                base.appendingPathComponent("rootfs").path: final.appendingPathComponent("rootfs").path,
            ], copyFrom: base.appendingPathComponent("rootfs").path, templatesOnly: true, overlayWork: true)
        try RootfsUnpacker.copy(request: request, idMap: containers.idMap, privileged: containers.privileged)
        try Self.finishUpperLayer(in: folder, idMap: containers.idMap, privileged: containers.privileged)
    }

    /// The empty `rootfs` the overlay is mounted on; as root, `delta0` and `work` (made by root) go to the
    /// container's root, as an unprivileged unpack makes them.
    static func finishUpperLayer(in folder: URL, idMap: IDMap, privileged: Bool) throws {
        try FileSystem.createDirectory(folder.appendingPathComponent("rootfs"))
        guard privileged else { return }
        for name in ["delta0", "work"] {
            let path = folder.appendingPathComponent(name).path
            try checkSystemCall(lchown(path, idMap.uidStart, idMap.gidStart), "chown \(path)")
        }
    }
}

/// xz in, plain tar out, to the extraction child.
final class DecodingSink: ByteSink {
    private var decoder: XZDecoder!
    private let unpacker: RootfsUnpacker

    init(unpacker: RootfsUnpacker) throws {
        self.unpacker = unpacker
        decoder = try XZDecoder { bytes in try unpacker.write(bytes) }
    }

    func consume(_ bytes: UnsafeRawBufferPointer) throws {
        try decoder.consume(bytes)
    }

    func consume(file: URL) throws {
        let file = try FileDescriptor.open(file.path, O_RDONLY)
        defer { file.close() }
        try file.forEachBlock { try consume($0) }
    }

    /// Ends the stream and waits for the unpack's verdict: an image the unpack refused fails here, before
    /// the fetch commits it to the cache.
    func finish() throws {
        try decoder.finish()
        try unpacker.finish()
    }
}
