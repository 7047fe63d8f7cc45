import CoopSupport
import CoopSystem
import Foundation

/// `coop setup-host --user NAME`, run once as root: what an ordinary user needs to run containers with
/// limits. Idempotent: each step checks first and reports what it found or did.
public enum HostSetup {
    /// Ids a user gets when it has no range yet, as useradd gives them.
    static let rangeSize: UInt32 = 65_536

    /// Runs every step for `user`; returns one line per step.
    /// `ranges`: how many ranges of 65536 ids the user is to hold (more than one for isolated fleets).
    public static func run(
        user: String, ranges: Int = 1, subuid: String = "/etc/subuid", subgid: String = "/etc/subgid"
    ) throws -> [String] {
        guard getuid() == 0 else {
            throw CoopError(
                .hostSetup, "coop setup-host", cause: "must run as root", fix: "run it with sudo, or as root")
        }
        guard let entry = getpwnam(user) else {
            throw CoopError(.notFound, "user \(user)", cause: "does not exist", fix: "create it with useradd first")
        }
        let uid = entry.pointee.pw_uid
        let gid = entry.pointee.pw_gid
        var report: [String] = []
        report += try SubordinateIDs.withFilesLocked {
            try giveRanges(user: user, id: uid, ranges: ranges, subuid: subuid, subgid: subgid)
        }
        report.append(rootsRange(subuid: subuid, subgid: subgid))
        report += try delegateCgroups(user: user, uid: uid, gid: gid)
        report += try loadModules()
        report += try openTun()
        report += try InotifyBudget.raise()
        return report
    }

    /// The kernel's parts that networks need: pasta's tap device, a fleet's bridge and veth links, and the
    /// nftables NAT of its outbound traffic and published ports. A kernel in user namespaces may not load
    /// modules itself, so they are loaded here, and at every boot (modules-load.d).
    static let modules = ["tun", "bridge", "veth", "nf_tables", "nft_chain_nat", "nft_nat", "nft_masq", "nft_ct"]
    static let modulesRule = "/etc/modules-load.d/coop.conf"

    static func loadModules(release: String = kernelRelease(), rule: String = modulesRule) throws -> [String] {
        // A kernel without a modules folder has what it has built in: nothing to load.
        guard FileSystem.exists(URL(fileURLWithPath: "/lib/modules/\(release)")) else {
            return [
                "kernel: no modules for \(release) (/lib/modules/\(release) is missing), so networks use what it has built in"
            ]
        }
        var lines: [String] = []
        var failed: [String] = []
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/modprobe") else {
            return [
                "warning: /usr/sbin/modprobe is missing, so the kernel modules networks need were not loaded; "
                    + "fix: apt-get install kmod, then run setup-host again"
            ]
        }
        for module in modules {
            let process = try SpawnedProcess(
                arguments: ["/usr/sbin/modprobe", "-q", module], environment: [:], idMap: nil)
            if process.wait() != 0 { failed.append(module) }
        }
        if failed.isEmpty {
            lines.append("kernel: loaded \(modules.joined(separator: ", ")) (modprobe), as networks need")
        } else {
            lines.append(
                "warning: modprobe could not load \(failed.joined(separator: ", ")), so fleets (and pasta, for tun) "
                    + "may fail; fix: install the modules of kernel \(release) (linux-image) or a kernel with them")
        }
        let text = "# coop: networks of containers and fleets need these\n" + modules.joined(separator: "\n") + "\n"
        if (try? String(contentsOfFile: rule, encoding: .utf8)) != text {
            try FileSystem.createDirectory(URL(fileURLWithPath: rule).deletingLastPathComponent())
            try FileSystem.writeAtomically(text, to: URL(fileURLWithPath: rule))
            lines.append("kernel: wrote \(rule), which loads them at every boot")
        }
        return lines
    }

    static func kernelRelease() -> String {
        var names = utsname()
        uname(&names)
        return withUnsafeBytes(of: names.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }

    /// Where the mode of /dev/net/tun is kept across reboots: systemd-tmpfiles applies it at boot.
    static let tunRule = "/etc/tmpfiles.d/coop-tun.conf"

    /// /dev/net/tun open to every user (mode 0666, as udev makes it on a standard Debian), which pasta
    /// needs to give a user's container a network; the device itself only makes tap devices in namespaces
    /// of the user's own. Kept across reboots by a tmpfiles.d entry.
    static func openTun(device: String = "/dev/net/tun", rule: String = tunRule) throws -> [String] {
        var lines: [String] = []
        var info = stat()
        if stat(device, &info) != 0 {
            lines.append(
                "warning: \(device) is missing, so containers get no network through pasta; fix: modprobe tun")
        } else if info.st_mode & 0o666 == 0o666 {
            lines.append("network: \(device) is open to users (mode 0666), as pasta needs")
        } else {
            guard chmod(device, 0o666) == 0 else { throw CoopError.system("chmod 0666 \(device)", kind: .hostSetup) }
            lines.append("network: made \(device) mode 0666 (was 0\(String(info.st_mode & 0o777, radix: 8))) for pasta")
        }
        let text =
            "# coop: pasta gives users' containers a network through this device (udev's usual mode)\n"
            + "z \(device) 0666 - - -\n"
        if (try? String(contentsOfFile: rule, encoding: .utf8)) != text {
            try FileSystem.createDirectory(URL(fileURLWithPath: rule).deletingLastPathComponent())
            try FileSystem.writeAtomically(text, to: URL(fileURLWithPath: rule))
            lines.append("network: wrote \(rule), which keeps that mode across reboots")
        }
        return lines
    }

    /// Root's own range (reserved now when it has none, so that no user is given it later); a range of
    /// root's that a user holds is reported, as root's containers then refuse to start.
    static func rootsRange(subuid: String, subgid: String) -> String {
        do {
            let map = try SubordinateIDs.rootRange(subuid: subuid, subgid: subgid)
            return "subordinate ids: root's containers use \(map.uidStart)-\(map.uidStart + map.count - 1), which "
                + "no user holds"
        } catch let error as CoopError {
            return "warning: \(error.what): \(error.cause); fix: \(error.fix ?? "")"
        } catch {
            return "warning: root's subordinate ids: \(error)"
        }
    }

    /// Gives the user `ranges` ranges of 65536 subordinate uids and gids, counting those it holds; the new
    /// ones start at the same id in both files. Call it inside `SubordinateIDs.withFilesLocked`.
    public static func giveRanges(user: String, id: uid_t, ranges: Int, subuid: String, subgid: String) throws
        -> [String]
    {
        // Found once for both files, so that the new uids and gids start at the same id.
        var start: UInt32?
        return try [(subuid, "uids"), (subgid, "gids")].map { file, kind in
            try ensureRange(
                in: file, user: user, id: id, kind: kind, ranges: ranges, start: &start, all: (subuid, subgid))
        }
    }

    /// Gives the user `ranges` ranges of 65536 subordinate ids in `file`, counting those it holds: what is
    /// missing is one new entry where neither file gives anyone an id.
    static func ensureRange(
        in file: String, user: String, id: uid_t, kind: String, ranges: Int = 1, start: inout UInt32?,
        all: (subuid: String, subgid: String)
    ) throws -> String {
        let held = SubordinateIDs.entries(in: file).filter { $0.owner == user || $0.owner == String(id) }
        let blocks = held.reduce(0) { $0 + Int($1.count / rangeSize) }
        if blocks >= ranges, let first = held.first(where: { $0.count >= rangeSize }) {
            let more = blocks > 1 ? " and \(blocks - 1) more ranges of 65536" : ""
            return
                "subordinate \(kind): \(user) has \(first.start)-\(UInt64(first.start) + UInt64(rangeSize) - 1)\(more) "
                + "in \(file)"
        }
        // A range that neither file gives anyone (root's reservation included), the same in both.
        let count = UInt32(max(1, ranges - blocks)) * rangeSize
        // Room for the most either file may need, so that the other file fits at the same start.
        let end =
            start ?? SubordinateIDs.freeRange(count: UInt32(ranges) * rangeSize, subuid: all.subuid, subgid: all.subgid)
        start = end
        try SubordinateIDs.append(.init(owner: user, start: end, count: count), to: file)
        return "subordinate \(kind): gave \(user) \(end)-\(UInt64(end) + UInt64(count) - 1) in \(file)"
    }

    /// In every cgroup hierarchy: `coop` (root's) and `coop/USER` (the user's, with the files that move
    /// processes), as libpam-cgfs does for a login; on cgroup2 the controllers are enabled down to it.
    static func delegateCgroups(user: String, uid: uid_t, gid: gid_t) throws -> [String] {
        let hierarchies = CgroupHierarchy.onHost()
        guard !hierarchies.isEmpty else {
            throw CoopError(
                .hostSetup, "cgroups", cause: "no cgroup hierarchy is mounted under /sys/fs/cgroup",
                fix: "mount cgroup2 on /sys/fs/cgroup (or the v1 hierarchies below it)")
        }
        var made: [String] = []
        var found: [String] = []
        for hierarchy in hierarchies {
            let top = hierarchy.mountPoint + "/coop"
            let folder = hierarchy.userFolder(user)
            for path in [top, folder] {
                if mkdir(path, 0o755) == 0 {
                    made.append(path)
                } else if errno != EEXIST {
                    throw CoopError.system("cgroup \(path)", kind: .hostSetup)
                }
                ContainerCgroups.fillCpuset(path)
            }
            if hierarchy.isUnified {
                ContainerCgroups.enableControllers(below: hierarchy.mountPoint)
                ContainerCgroups.enableControllers(below: top)
            }
            for path in [folder] + hierarchy.ownerFiles.map({ folder + "/" + $0 })
            where FileManager.default.fileExists(atPath: path) {
                guard chown(path, uid, gid) == 0 else { throw CoopError.system("cgroup \(path)", kind: .hostSetup) }
            }
            found.append(hierarchy.folder == "." ? "cgroup2" : hierarchy.folder)
        }
        var lines = ["cgroups: \(user) owns coop/\(user) in \(found.joined(separator: ", "))"]
        if !made.isEmpty { lines.append("cgroups: made \(made.count) folders") }
        if hierarchies.contains(where: \.isUnified), !hierarchies.allSatisfy(\.isUnified) {
            lines.append(
                "cgroups: this host mixes v1 and v2; limits use the v1 controllers, and systemd in a container "
                    + "runs on the v1 name=systemd hierarchy")
        }
        return lines
    }
}
