import CoopFormats
import CoopSupport
import CoopSystem
import Foundation

/// The containers folder: one folder per container, with `config`, `coop.json` and `rootfs/`.
public final class ContainerStore: Sendable {
    public let root: URL
    public let idMap: IDMap
    public let privileged: Bool

    public init(root: URL, idMap: IDMap, privileged: Bool = getuid() == 0) {
        self.root = root
        self.idMap = idMap
        self.privileged = privileged
    }

    public static func checkName(_ name: String) throws {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
        guard !name.isEmpty, name.count <= 64, name.first != ".", name.first != "-", name.allSatisfy(allowed.contains)
        else {
            throw CoopError(
                .usage, "container name '\(name)'", cause: "must be 1 to 64 letters, digits, '-', '_' or '.'",
                fix: "for example: web1")
        }
    }

    public func folder(_ name: String) -> URL { root.appendingPathComponent(name) }

    public func exists(_ name: String) -> Bool { FileSystem.exists(folder(name)) }

    /// The folder of an existing container, or an error that says how to see the containers.
    public func existingFolder(_ name: String) throws -> URL {
        try Self.checkName(name)
        guard exists(name) else {
            throw CoopError(
                .notFound, "container \(name)", cause: "does not exist", fix: "run 'coop list' to see the containers")
        }
        return folder(name)
    }

    public func record(_ name: String) -> ContainerRecord? {
        guard let data = try? Data(contentsOf: folder(name).appendingPathComponent("coop.json")) else { return nil }
        return try? JSONDecoder().decode(ContainerRecord.self, from: data)
    }

    public func names() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []).filter {
            !$0.hasPrefix(".") && FileSystem.exists(root.appendingPathComponent($0).appendingPathComponent("config"))
        }.sorted()
    }

    /// Serialises create and destroy of one name across processes.
    func lock(_ name: String) throws -> FileLock {
        try FileLock(path: root.appendingPathComponent(".locks/\(name).lock"))
    }

    public func destroy(_ name: String) throws {
        _ = try destroy(name, unless: { false })
    }

    /// Destroys `name` unless `keep` (asked under its lock) says it is still needed; whether it did.
    func destroy(_ name: String, unless keep: () -> Bool) throws -> Bool {
        let trash = FileSystem.stagingURL(for: folder(name), tag: "destroying")
        let map = idMap(of: name)
        guard try takeAway(name, to: trash, unless: keep) else { return false }
        try TreeRemover.remove(trash, idMap: map, privileged: privileged)
        return true
    }

    /// Renames the stopped container `name` to `trash` under its lock, unless `keep` (asked under the lock)
    /// says it is still needed; whether it did. Out of sight first, so that a half-removed container never
    /// shows in a listing.
    private func takeAway(_ name: String, to trash: URL, unless keep: () -> Bool) throws -> Bool {
        try Self.checkName(name)
        let lock = try self.lock(name)
        defer { lock.unlock() }
        if keep() { return false }
        guard exists(name) else {
            throw CoopError(
                .notFound, "container \(name)", cause: "does not exist", fix: "run 'coop list' to see the containers")
        }
        // Under the lock a start holds until it recorded its PID 1: a container that runs stays.
        if let pid = runningPID(name) {
            throw CoopError(
                .conflict, "container \(name)", cause: "is running (pid \(pid))",
                fix: "stop it first with 'coop stop \(name)'")
        }
        try checkSystemCall(rename(folder(name).path, trash.path), "destroy \(name)")
        return true
    }

    /// Destroys the stopped containers `names` together (a fleet's nodes): each goes out of sight under its
    /// lock, as `destroy` does, and then one removal takes all their files. The first error is thrown once
    /// every other container is gone.
    /// Containers on ranges of their own (an isolated fleet's nodes) are removed by one removal per range.
    public func destroy(all names: [String]) throws {
        var firstError: (any Error)?
        var byRange: [(map: IDMap, names: [String])] = []
        for name in names {
            let map = idMap(of: name)
            if let index = byRange.firstIndex(where: { $0.map == map }) {
                byRange[index].names.append(name)
            } else {
                byRange.append((map, [name]))
            }
        }
        for (map, names) in byRange {
            let trash = FileSystem.stagingURL(for: root.appendingPathComponent(names[0]), tag: "destroying")
            try FileSystem.createDirectory(trash)
            for name in names {
                do {
                    _ = try takeAway(name, to: trash.appendingPathComponent(name), unless: { false })
                } catch {
                    firstError = firstError ?? error
                }
            }
            try TreeRemover.remove(trash, idMap: map, privileged: privileged)
        }
        if let firstError { throw firstError }
    }

    /// The range the container `name` runs on, as its config maps root; the store's own when it has none.
    public func idMap(of name: String) -> IDMap {
        guard let config = try? LXCConfig.read(containerFolder: folder(name), name: name),
            let uids = config.rootMapping(.user), let gids = config.rootMapping(.group)
        else { return idMap }
        return IDMap(uidStart: uids.hostID, gidStart: gids.hostID, count: min(uids.count, gids.count))
    }

    /// PID 1 of the container when its recorded state names a process that still runs (same start time).
    func runningPID(_ name: String) -> Int32? {
        struct State: Decodable {
            var pid: Int32
            var startTicks: UInt64
        }
        guard let data = try? Data(contentsOf: folder(name).appendingPathComponent("state.json")),
            let state = try? JSONDecoder().decode(State.self, from: data),
            ProcessStart.ticks(of: state.pid) == state.startTicks
        else { return nil }
        return state.pid
    }

    /// Makes the containers folder, private to the user but for the containers' root (see `ContainerFolder`).
    public func makeRoot() throws {
        try FileSystem.createDirectory(root)
        try ContainerFolder.makePrivate(root, for: idMap)
    }

    /// Removes staging folders of creates that were killed (their pid no longer runs).
    func removeAbandonedStaging() {
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? [] {
            guard entry.contains(".creating-") || entry.contains(".destroying-"), FileSystem.isAbandonedStaging(entry)
            else { continue }
            try? TreeRemover.remove(root.appendingPathComponent(entry), idMap: idMap, privileged: privileged)
        }
    }
}
