import CoopSupport
import CoopSystem
import Foundation

/// One cgroup hierarchy of the host, as mounted under /sys/fs/cgroup.
public struct CgroupHierarchy: Sendable, Equatable {
    /// Where it is mounted, e.g. /sys/fs/cgroup/memory (or /sys/fs/cgroup itself on a pure v2 host).
    public var mountPoint: String
    /// Its folder below /sys/fs/cgroup ("." for /sys/fs/cgroup itself).
    public var folder: String
    /// cgroup2 (the unified hierarchy) rather than a v1 one.
    public var isUnified: Bool
    /// For v1: the mount options naming it, e.g. "memory" or "name=systemd".
    public var options: String

    /// The controllers this hierarchy carries (v1: from its options; v2: cgroup.controllers).
    public var controllers: [String] {
        if isUnified {
            let text = (try? String(contentsOfFile: mountPoint + "/cgroup.controllers", encoding: .utf8)) ?? ""
            return text.split(whereSeparator: \.isWhitespace).map(String.init)
        }
        return options.split(separator: ",").map(String.init).filter { !$0.hasPrefix("name=") && $0 != "xattr" }
    }

    /// Every cgroup hierarchy mounted at /sys/fs/cgroup or directly below it.
    public static func onHost(mountinfo: String = "/proc/self/mountinfo") -> [CgroupHierarchy] {
        guard let text = FileSystem.kernelText(mountinfo) else { return [] }
        var found: [CgroupHierarchy] = []
        for line in text.split(separator: "\n") {
            // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL…] - TYPE SOURCE SUPEROPTIONS
            // The optional fields end at a lone "-"; split by hand, as this runs at every start.
            let fields = line.split(separator: " ")
            guard let dash = fields.firstIndex(of: "-"), dash >= 5 else { continue }
            let mount = fields[..<dash]
            let tail = Array(fields[(dash + 1)...])
            guard tail.count >= 3, tail[0] == "cgroup" || tail[0] == "cgroup2" else { continue }
            let point = String(mount[4])
            let folder: String
            if point == "/sys/fs/cgroup" {
                folder = "."
            } else if point.hasPrefix("/sys/fs/cgroup/"), !point.dropFirst(15).contains("/") {
                folder = String(point.dropFirst(15))
            } else {
                continue
            }
            let options = tail[2].split(separator: ",").filter { $0 != "rw" && $0 != "ro" }.joined(separator: ",")
            found.append(
                CgroupHierarchy(
                    mountPoint: point, folder: folder, isUnified: tail[0] == "cgroup2", options: options))
        }
        return found
    }

    /// Where coop keeps a user's containers in this hierarchy (made by `coop setup-host`).
    public func userFolder(_ user: String) -> String { mountPoint + "/coop/" + user }

    /// Files the owner of a cgroup needs to move processes in and, on v2, to enable controllers below.
    public var ownerFiles: [String] {
        guard isUnified else { return ["cgroup.procs", "tasks"] }
        let delegate = FileSystem.kernelText("/sys/kernel/cgroup/delegate")?
            .split(separator: "\n").map(String.init)
        return delegate ?? ["cgroup.procs", "cgroup.threads", "cgroup.subtree_control"]
    }

    /// The path of the calling process's cgroup in this hierarchy, from /proc/self/cgroup.
    var currentPath: String? {
        guard let text = FileSystem.kernelText("/proc/self/cgroup") else { return nil }
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3 else { continue }
            let names = fields[1].split(separator: ",").map(String.init)
            let mine =
                isUnified
                ? fields[0] == "0"
                : !names.isEmpty
                    && Set(names) == Set(options.split(separator: ",").map(String.init).filter { $0 != "xattr" })
            if mine { return String(fields[2]) }
        }
        return nil
    }
}

/// A cgroup limit from the container's config: `lxc.cgroup.KEY = VALUE` (v1) or `lxc.cgroup2.KEY = VALUE`.
public struct CgroupLimit: Sendable, Equatable {
    public var key: String
    public var value: String
    public var isVersion2: Bool

    public var configLine: String { "lxc.cgroup\(isVersion2 ? "2" : "").\(key) = \(value)" }

    /// The file and value this limit means in a hierarchy of the other version (nil: no equivalent).
    func translated(toVersion2: Bool) -> [(file: String, value: String)]? {
        if toVersion2 == isVersion2 { return [(key, value)] }
        if toVersion2 {
            switch key {
            case "memory.limit_in_bytes": return [("memory.max", value == "-1" ? "max" : value)]
            case "memory.soft_limit_in_bytes": return [("memory.high", value == "-1" ? "max" : value)]
            case "pids.max", "cpuset.cpus", "cpuset.mems": return [(key, value)]
            case "cpu.shares": return Int(value).map { [("cpu.weight", String(max(1, min(10_000, $0 * 100 / 1024))))] }
            default: return nil
            }
        }
        switch key {
        case "memory.max": return [("memory.limit_in_bytes", value == "max" ? "-1" : value)]
        case "memory.high": return [("memory.soft_limit_in_bytes", value == "max" ? "-1" : value)]
        case "pids.max", "cpuset.cpus", "cpuset.mems": return [(key, value)]
        case "cpu.weight": return Int(value).map { [("cpu.shares", String(max(2, $0 * 1024 / 100)))] }
        case "cpu.max":
            let parts = value.split(separator: " ").map(String.init)
            guard let quota = parts.first else { return nil }
            return [
                ("cpu.cfs_period_us", parts.count > 1 ? parts[1] : "100000"),
                ("cpu.cfs_quota_us", quota == "max" ? "-1" : quota),
            ]
        default: return nil
        }
    }

    /// The controller the limit belongs to: the key's first part.
    public var controller: String { String(key.prefix { $0 != "." }) }
}

/// An entry of the container's /sys/fs/cgroup, as the supervisor makes it (coop_cgroup_mount).
struct CgroupMount: Sendable, Equatable {
    enum Kind: Sendable, Equatable {
        case version1, version2, link
    }

    var kind: Kind
    /// Its name below /sys/fs/cgroup; "." is /sys/fs/cgroup itself.
    var folder: String
    /// A v1 hierarchy's mount options; a link's target.
    var options: String?
    /// The container's cgroup in this hierarchy on the host, which the supervisor prunes at the end.
    var hostFolder: String?
}

/// A container's cgroups: `coop/USER/NAME` in every hierarchy delegated to the user, with the config's
/// limits written by the user (so the container cannot raise them) and the folder itself handed to the
/// container's root (so that its init can make cgroups below, as systemd does).
public struct ContainerCgroups: Sendable {
    /// The container's folder in each hierarchy it has one in.
    public var folders: [(hierarchy: CgroupHierarchy, path: String)]
    /// Every hierarchy of the host, for the container's /sys/fs/cgroup.
    var hierarchies: [CgroupHierarchy]
    /// The config's limits that no delegated hierarchy could take.
    public var unapplied: [CgroupLimit]

    /// The cgroup.procs files the supervisor is written to before it starts.
    public var procsFiles: [String] { folders.map { $0.path + "/cgroup.procs" } }

    /// Whether a hierarchy is the user's: `coop setup-host` made its folder, owned by the user. On a
    /// cgroup2 hierarchy a process may only be moved by someone who may write to the common ancestor of
    /// both cgroups, so the caller must already be inside its folder there (a delegating login does that).
    public static func usable(_ hierarchy: CgroupHierarchy, user: String, uid: uid_t) -> Bool {
        if uid == 0 { return true }
        var info = stat()
        guard stat(hierarchy.userFolder(user), &info) == 0, info.st_uid == uid else { return false }
        guard hierarchy.isUnified else { return true }
        let relative = String(hierarchy.userFolder(user).dropFirst(hierarchy.mountPoint.count))
        return hierarchy.currentPath.map { $0 == relative || $0.hasPrefix(relative + "/") } ?? false
    }

    /// The container's cgroup name: its name, and a hash of its folder, as two containers folders may both
    /// hold a container of that name.
    static func cgroupName(_ container: ContainerDefinition) -> String {
        // FNV-1a of the folder: it only tells apart same-named containers of different folders, and a
        // cryptographic hash would load and initialise OpenSSL at every start.
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in container.folder.standardizedFileURL.path.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        let digits = String(hash, radix: 16)
        return container.name + "-" + String(repeating: "0", count: 16 - digits.count) + digits.prefix(8)
    }

    /// Makes the container's cgroups and writes its limits. Throws when a limit is refused by the kernel.
    /// With `placed` false (a command as PID 1 and no limits in the config) the container stays in the
    /// caller's cgroups: moving a process into a v1 cgroup waits for an RCU grace period of the kernel
    /// (10–20 ms here), more than the rest of such a start, and there would be nothing to apply.
    public static func prepare(_ container: ContainerDefinition, placed: Bool = true) throws -> ContainerCgroups {
        let uid = getuid()
        let user = CoopPaths.userName
        let hierarchies = CgroupHierarchy.onHost()
        var folders: [(hierarchy: CgroupHierarchy, path: String)] = []
        for hierarchy in hierarchies where usable(hierarchy, user: user, uid: uid) {
            let path = hierarchy.userFolder(user) + "/" + cgroupName(container)
            // What an earlier run left (a killed init) goes either way.
            try removeFolder(path, idMap: container.idMap)
            guard placed else { continue }
            if uid == 0 { makeIntermediateFolders(hierarchy, user: user) }
            guard mkdir(path, 0o755) == 0 else { throw CoopError.system("cgroup \(path)") }
            fillCpuset(path)
            if hierarchy.isUnified {
                // Each parent must pass the controllers down; root may do it from the top, a user below its own.
                let chain = uid == 0 ? [hierarchy.mountPoint, hierarchy.mountPoint + "/coop"] : []
                for folder in chain + [hierarchy.userFolder(user)] { enableControllers(below: folder) }
            }
            folders.append((hierarchy, path))
        }
        var cgroups = ContainerCgroups(folders: folders, hierarchies: hierarchies, unapplied: [])
        for limit in container.limits {
            if !(try cgroups.apply(limit)) { cgroups.unapplied.append(limit) }
        }
        return cgroups
    }

    /// Writes a limit into the hierarchy that carries its controller; false when none is delegated.
    func apply(_ limit: CgroupLimit) throws -> Bool {
        for (hierarchy, path) in folders where hierarchy.controllers.contains(limit.controller) {
            guard let writes = limit.translated(toVersion2: hierarchy.isUnified) else { return false }
            for write in writes {
                let file = path + "/" + write.file
                do {
                    try FileSystem.writeControlFile(write.value, to: file)
                } catch let error as CoopError {
                    throw CoopError(
                        .usage, "limit \(limit.configLine)", cause: "\(file) refused '\(write.value)': \(error.cause)",
                        fix: "correct the value in the container's config")
                }
            }
            return true
        }
        return false
    }

    /// Gives each folder and the files that move processes to the container's root; the limit files stay
    /// the user's, so root inside cannot raise them.
    public func handOver(to idMap: IDMap) throws {
        var paths: [String] = []
        for (hierarchy, path) in folders {
            paths.append(path)
            paths += hierarchy.ownerFiles.map { path + "/" + $0 }.filter { FileManager.default.fileExists(atPath: $0) }
        }
        guard !paths.isEmpty else { return }
        if getuid() == 0 {
            for path in paths { chown(path, idMap.uidStart, idMap.gidStart) }
            return
        }
        // Only a process that has both the user's ids and the container's in its namespace may chown.
        let helper = try SpawnedProcess(arguments: ["/bin/chown", "0:0"] + paths, idMap: idMap, mapOwner: true)
        let status = helper.wait()
        if status != 0 {
            throw CoopError(
                .hostSetup, "cgroups of the container", cause: "could not be handed to its root (chown exit \(status))",
                fix: "run 'coop check'")
        }
    }

    /// For the supervisor: the host's hierarchies as the container sees them at /sys/fs/cgroup.
    /// The unified hierarchy of a hybrid host is left out unless the container has a folder there:
    /// systemd then runs in legacy mode instead of failing on a cgroup it may not write.
    var mounts: [CgroupMount] {
        var mounts: [CgroupMount] = []
        for hierarchy in hierarchies where containerSees(hierarchy) {
            let placed = folders.first { $0.hierarchy == hierarchy }?.path
            let options = hierarchy.options.split(separator: ",").filter { $0 != "clone_children" }
                .joined(separator: ",")
            mounts.append(
                CgroupMount(
                    kind: hierarchy.isUnified ? .version2 : .version1, folder: hierarchy.folder,
                    options: options.isEmpty ? nil : options, hostFolder: placed))
        }
        if hierarchies.contains(where: { $0.folder != "." }) {
            let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/sys/fs/cgroup")) ?? []
            for entry in entries.sorted() {
                if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/sys/fs/cgroup/" + entry) {
                    mounts.append(CgroupMount(kind: .link, folder: entry, options: target, hostFolder: nil))
                }
            }
        }
        return mounts
    }

    /// Whether init gets a cgroup of its own to manage (systemd needs one): name=systemd on v1, else v2.
    public var initHasCgroup: Bool {
        folders.contains { $0.hierarchy.options.contains("name=systemd") || $0.hierarchy.folder == "." }
    }

    /// Whether a hierarchy is mounted in the container: all but the unified one of a hybrid host where
    /// the container has no folder.
    func containerSees(_ hierarchy: CgroupHierarchy) -> Bool {
        !hierarchy.isUnified || hierarchy.folder == "." || folders.contains { $0.hierarchy == hierarchy }
    }

    /// Whether init must be told it runs on v1 cgroups (systemd 256 and later refuse them otherwise).
    public var initSeesLegacyCgroups: Bool { !hierarchies.contains { $0.isUnified && containerSees($0) } }

    /// Removes the container's cgroups once its processes are gone.
    public func remove(idMap: IDMap) { Self.remove(folders.map(\.path), idMap: idMap) }

    public static func remove(_ paths: [String], idMap: IDMap) {
        for path in paths { try? removeFolder(path, idMap: idMap, wait: 5) }
    }

    /// Removes a container's cgroup folder, waiting up to `wait` seconds for its last process to leave.
    /// The kernel refuses (EBUSY) while processes or cgroups are in it; those made inside belong to the
    /// container's root (a supervisor that was killed leaves them): a helper in the user namespace
    /// removes them.
    static func removeFolder(_ path: String, idMap: IDMap, wait: Double = 0) throws {
        let deadline = Date().addingTimeInterval(max(wait, 0.5))
        var helped = false
        // The last process leaves a moment after it was reaped: look again soon, then less often.
        var pause: UInt32 = 200
        while rmdir(path) != 0 {
            if errno == ENOENT { return }
            guard errno == EBUSY, Date() < deadline else {
                throw CoopError(
                    .conflict, "cgroup \(path)", cause: "cannot be removed: \(String(cString: strerror(errno)))",
                    fix: "a process of an earlier run may still be in it: see \(path)/cgroup.procs")
            }
            let entries = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
            let hasChildren = entries.contains { entry in
                var info = stat()
                return lstat(path + "/" + entry, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR
            }
            if hasChildren && !helped {
                helped = true
                let quiet = open("/dev/null", O_WRONLY | O_CLOEXEC)
                defer { close(quiet) }
                let helper = try SpawnedProcess(
                    arguments: ["/usr/bin/find", path, "-mindepth", "1", "-depth", "-type", "d", "-delete"],
                    idMap: getuid() == 0 ? nil : idMap, mapOwner: true, error: quiet)
                helper.wait()
            } else {
                usleep(pause)
                pause = min(pause * 2, 5_000)
                if hasChildren && Date().addingTimeInterval(0.25) > deadline { helped = false }
            }
        }
    }

    /// `coop` and `coop/USER` as `coop setup-host` makes them (root needs no setup-host): each with the
    /// parent's cpus and mems in a v1 cpuset hierarchy, where an empty folder takes no process (ENOSPC).
    static func makeIntermediateFolders(_ hierarchy: CgroupHierarchy, user: String) {
        for path in [hierarchy.mountPoint + "/coop", hierarchy.userFolder(user)] {
            _ = mkdir(path, 0o755)
            fillCpuset(path)
        }
    }

    /// A v1 cpuset cgroup takes no process until it has cpus and mems: copy the parent's.
    static func fillCpuset(_ path: String) {
        for file in ["cpuset.cpus", "cpuset.mems"] {
            let own = path + "/" + file
            guard let current = try? String(contentsOfFile: own, encoding: .utf8) else { continue }
            if current.trimmed.isEmpty,
                let parent = try? String(
                    contentsOfFile: (path as NSString).deletingLastPathComponent + "/" + file, encoding: .utf8)
            {
                try? FileSystem.writeControlFile(parent.trimmed, to: own)
            }
        }
    }

    /// On cgroup2 a controller works in a cgroup only when every parent enables it for its children.
    static func enableControllers(below path: String) {
        let available = (try? String(contentsOfFile: path + "/cgroup.controllers", encoding: .utf8)) ?? ""
        let wanted = available.split(whereSeparator: \.isWhitespace).filter {
            ["memory", "pids", "cpu", "cpuset", "io"].contains($0)
        }
        for controller in wanted {
            try? FileSystem.writeControlFile("+\(controller)", to: path + "/cgroup.subtree_control")
        }
    }
}
