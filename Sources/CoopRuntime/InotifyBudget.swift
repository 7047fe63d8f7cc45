import CoopSupport
import CoopSystem
import Foundation

/// The kernel's inotify limits, counted per user on the host across all of that user's namespaces: every
/// container of a user shares them. systemd takes a few instances per container, so the Debian default of
/// 128 instances stops a fleet of about 25 nodes (LXC's too) with "Too many open files".
public enum InotifyBudget {
    static let instancesFile = "/proc/sys/fs/inotify/max_user_instances"
    static let watchesFile = "/proc/sys/fs/inotify/max_user_watches"
    /// What `coop setup-host` sets: room for a few hundred booted nodes (systemd takes about 5 instances
    /// and a few hundred watches each).
    public static let instances = 8192
    public static let watches = 1_048_576
    /// Instances one booted systemd node takes, measured on Debian bookworm (4 to 5), with some room.
    public static let instancesPerNode = 6
    static let sysctlFile = "/etc/sysctl.d/60-coop-inotify.conf"

    public static var maxInstances: Int? { FileSystem.kernelText(instancesFile).flatMap { Int($0.trimmed) } }
    public static var maxWatches: Int? { FileSystem.kernelText(watchesFile).flatMap { Int($0.trimmed) } }

    /// Instances this user holds now: one per inotify descriptor of the user's processes (containers
    /// included, which run as ids of the user's range but are charged to the user who made their namespace).
    /// Counted from /proc where it can be seen; a lower bound otherwise.
    public static func instancesInUse(uid: uid_t = getuid()) -> Int {
        var count = 0
        guard let pids = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return 0 }
        for pid in pids where pid.first?.isNumber == true {
            guard let fds = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd") else { continue }
            for fd in fds {
                let target = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(fd)")) ?? ""
                if target == "anon_inode:inotify" { count += 1 }
            }
        }
        return count
    }

    /// Fails with the fix when `nodes` more booted systemd nodes would not fit the limit (by default the
    /// host's, against what the user holds now).
    public static func check(nodes: Int, what: String, limit: Int? = maxInstances, inUse: Int? = nil) throws {
        guard let limit else { return }
        let needed = nodes * instancesPerNode
        let inUse = inUse ?? instancesInUse()
        guard inUse + needed > limit else { return }
        throw CoopError(
            .hostSetup, what,
            cause: "\(nodes) booted nodes need about \(needed) inotify instances, and \(inUse) of the "
                + "\(limit) a user may have are taken (fs.inotify.max_user_instances)",
            fix: "as root, run 'coop setup-host --user \(CoopPaths.userName)' (it raises the limit to \(instances)), "
                + "or use fewer nodes")
    }

    /// Raises both limits to coop's figures (never lowers them) now and across reboots.
    static func raise(sysctlFile file: String = sysctlFile) throws -> [String] {
        var lines: [String] = []
        for (path, key, wanted) in [
            (instancesFile, "fs.inotify.max_user_instances", instances),
            (watchesFile, "fs.inotify.max_user_watches", watches),
        ] {
            let now = FileSystem.kernelText(path).flatMap { Int($0.trimmed) } ?? 0
            if now >= wanted {
                lines.append("inotify: \(key) is \(now) (a fleet of a few hundred nodes fits)")
            } else {
                try FileSystem.writeControlFile(String(wanted), to: path)
                lines.append("inotify: raised \(key) from \(now) to \(wanted), for fleets of a few hundred nodes")
            }
        }
        let text =
            "# coop: every container of a user shares these limits; systemd takes a few instances per container\n"
            + "fs.inotify.max_user_instances = \(instances)\nfs.inotify.max_user_watches = \(watches)\n"
        if (try? String(contentsOfFile: file, encoding: .utf8)) != text {
            try FileSystem.createDirectory(URL(fileURLWithPath: file).deletingLastPathComponent())
            try FileSystem.writeAtomically(text, to: URL(fileURLWithPath: file))
            lines.append("inotify: wrote \(file), which keeps them across reboots")
        }
        return lines
    }
}
