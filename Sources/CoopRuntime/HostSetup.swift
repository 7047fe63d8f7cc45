import CoopSupport
import CoopSystem
import Foundation

/// `coop setup-host --user NAME`, run once as root: what an ordinary user needs to run containers with
/// limits. Idempotent: each step checks first and reports what it found or did.
public enum HostSetup {
    /// Ids a user gets when it has no range yet, as useradd gives them.
    static let rangeSize: UInt32 = 65_536

    /// Runs every step for `user`; returns one line per step.
    public static func run(user: String, subuid: String = "/etc/subuid", subgid: String = "/etc/subgid") throws
        -> [String]
    {
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
        try SubordinateIDs.withFilesLocked {
            for (file, kind) in [(subuid, "uids"), (subgid, "gids")] {
                report.append(try ensureRange(in: file, user: user, id: uid, kind: kind, all: (subuid, subgid)))
            }
        }
        report.append(rootsRange(subuid: subuid, subgid: subgid))
        report += try delegateCgroups(user: user, uid: uid, gid: gid)
        report += try openTun()
        report += try InotifyBudget.raise()
        return report
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

    /// Gives the user a range of 65536 subordinate ids after every range in `file`, unless it has one.
    static func ensureRange(
        in file: String, user: String, id: uid_t, kind: String, all: (subuid: String, subgid: String)
    ) throws -> String {
        for entry in SubordinateIDs.entries(in: file)
        where (entry.owner == user || entry.owner == String(id)) && entry.count >= rangeSize {
            return "subordinate \(kind): \(user) has \(entry.start)-\(entry.end - 1) in \(file)"
        }
        // A range that neither file gives anyone (root's reservation included), the same in both.
        let end = SubordinateIDs.freeRange(count: rangeSize, subuid: all.subuid, subgid: all.subgid)
        try SubordinateIDs.append(.init(owner: user, start: end, count: rangeSize), to: file)
        return "subordinate \(kind): gave \(user) \(end)-\(end + rangeSize - 1) in \(file)"
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
