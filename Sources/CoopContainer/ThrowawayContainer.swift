import CoopFetch
import CoopFormats
import CoopStore
import CoopSupport
import CoopSystem
import Foundation

/// `coop run`: a container that lives as long as its command. The image is unpacked once per build into a
/// base (`.bases/` in the containers folder, shifted like any container); each run gets an empty folder
/// and the runtime lays a tmpfs over that base, so a run costs no unpack and leaves nothing behind.
public struct ThrowawayContainer {
    /// The run's own folder: a config and an empty rootfs folder.
    public var folder: URL
    /// The base's rootfs, shared by every run of the build, never written.
    public var base: URL

    /// Makes the base if this build has none yet, then the run's folder.
    public static func make(
        image: ImageReference, creator: ContainerCreator, options: FetchOptions
    ) throws -> ThrowawayContainer {
        let containers = creator.containers
        try containers.makeRoot()
        let entry = try creator.fetcher.fetch(image, options: options).entry
        let base = try creator.base(of: entry, image: image, options: options)
        let runName = "run-\(getpid())-\(UInt16.random(in: 0...UInt16.max))"
        let folder = containers.folder(runName)
        try FileSystem.createDirectory(folder.appendingPathComponent("rootfs"))
        do {
            try ContainerFolder.makePrivate(folder, for: containers.idMap)
            // The base's config, pointed at the run's folder and name.
            var config = LXCConfig(
                parsing: try String(contentsOf: base.appendingPathComponent("config"), encoding: .utf8))
            try config.setRootfsPath(folder.appendingPathComponent("rootfs").path)
            try config.setUTSName(runName)
            try FileSystem.writeAtomically(
                try config.formatted(), to: folder.appendingPathComponent("config"), durable: false)
        } catch {
            try? FileManager.default.removeItem(at: folder)
            throw error
        }
        return ThrowawayContainer(folder: folder, base: base.appendingPathComponent("rootfs"))
    }

    /// Removes the run's folder: only the user's files are in it (the changes were in the tmpfs).
    public func remove() {
        try? FileManager.default.removeItem(at: folder)
    }
}

extension ThrowawayContainer {
    /// The store of the bases beside `containers`.
    static func bases(of containers: ContainerStore) -> ContainerStore {
        ContainerStore(
            root: containers.root.appendingPathComponent(".bases"), idMap: containers.idMap,
            privileged: containers.privileged)
    }

    /// Removes every base (the next run of an image makes its base again) but those copy-on-write
    /// containers stand on, unless a run is going on. Returns how many it removed and how many it kept.
    public static func removeBases(of containers: ContainerStore) throws -> (removed: Int, kept: Int) {
        let running = containers.names().filter { $0.hasPrefix("run-") }.contains { name in
            FileSystem.exists(containers.folder(name).appendingPathComponent("state.json"))
        }
        if running { return (0, 0) }
        let bases = bases(of: containers)
        let names = bases.names()
        var removed = 0
        for name in names {
            // Asked under the base's lock, which a copy-on-write create holds until its config names the base.
            let rootfs = bases.folder(name).appendingPathComponent("rootfs").path
            if try bases.destroy(name, unless: { basesInUse(of: containers).contains(rootfs) }) { removed += 1 }
        }
        return (removed, names.count - removed)
    }

    /// The base rootfs folders that copy-on-write containers lay their overlay on, as their configs say.
    static func basesInUse(of containers: ContainerStore) -> Set<String> {
        Set(
            containers.names().compactMap { name in
                let config = try? String(
                    contentsOf: containers.folder(name).appendingPathComponent("config"), encoding: .utf8)
                return config.flatMap { LXCConfig(parsing: $0).overlayRootfs }.map {
                    URL(fileURLWithPath: $0.lower).standardizedFileURL.path
                }
            })
    }
}

extension ContainerCreator {
    /// The same fetcher, creating into `store`.
    func sibling(in store: ContainerStore) -> ContainerCreator {
        ContainerCreator(fetcher: fetcher, containers: store)
    }

    /// The base of a cached build: its image unpacked once (`.bases/` in the containers folder), for
    /// `coop run` to lay its overlay on and for a warm `coop create` to copy. Made when missing.
    func base(of entry: CacheEntry, image: ImageReference, options: FetchOptions) throws -> URL {
        let bases = ThrowawayContainer.bases(of: containers)
        try bases.makeRoot()
        let baseName = [entry.remote, entry.distro, entry.release, entry.arch, entry.variant, entry.build]
            .joined(separator: "_").map { $0.isLetter || $0.isNumber || $0 == "." ? $0 : "-" }
        let name = String(String(baseName).prefix(64))
        if !bases.exists(name) {
            var cached = options
            cached.forceCache = true
            do {
                _ = try sibling(in: bases).create(name: name, image: image, options: cached, quiet: true)
            } catch let error as CoopError where error.code == .conflict && bases.exists(name) {
                // Another command made it meanwhile.
            }
        }
        return bases.folder(name)
    }

    /// Whether this creator makes bases (which are unpacked from the image, never copied).
    var makesBases: Bool { containers.root.lastPathComponent == ".bases" }
}
