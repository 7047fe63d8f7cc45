import CoopSupport
import CoopSystem
import Foundation

/// What the runtime reads from a container's LXC config: rootfs, name, id map and network kind.
public struct ContainerDefinition: Sendable {
    public var name: String
    public var folder: URL
    public var rootfs: URL
    public var hostname: String
    public var idMap: IDMap
    /// `lxc.net.0.type = none`: the container shares the host's network namespace.
    public var sharesHostNetwork: Bool
    /// `lxc.cgroup.*` and `lxc.cgroup2.*` lines, in order (device rules are left to the runtime's own /dev).
    public var limits: [CgroupLimit]

    public init(folder: URL) throws {
        let configFile = folder.appendingPathComponent("config")
        guard let text = try? String(contentsOf: configFile, encoding: .utf8) else {
            throw CoopError(
                .notFound, "container \(folder.lastPathComponent)", cause: "has no config at \(configFile.path)",
                fix: "run 'coop list' to see the containers")
        }
        // Keys in order: a later line wins, and limits keep every line.
        var values: [String: String] = [:]
        var limits: [CgroupLimit] = []
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, !parts[0].hasPrefix("#") else { continue }
            values[parts[0]] = parts[1]
            for (prefix, isVersion2) in [("lxc.cgroup2.", true), ("lxc.cgroup.", false)]
            where parts[0].hasPrefix(prefix) {
                let limit = CgroupLimit(
                    key: String(parts[0].dropFirst(prefix.count)), value: parts[1], isVersion2: isVersion2)
                // Device rules are left to the runtime's own /dev.
                if limit.controller != "devices" { limits.append(limit) }
                break
            }
        }
        guard let idMap = IDMap(lxcConfig: text) else {
            throw CoopError(
                .usage, "config of \(folder.lastPathComponent)", cause: "has no lxc.idmap lines for ids 0",
                fix: "add lxc.idmap = u 0 SUBUID 65536 and lxc.idmap = g 0 SUBGID 65536")
        }
        name = folder.lastPathComponent
        self.folder = folder
        var rootfsPath = values["lxc.rootfs.path"] ?? folder.appendingPathComponent("rootfs").path
        if rootfsPath.hasPrefix("dir:") { rootfsPath.removeFirst(4) }
        rootfs = URL(fileURLWithPath: rootfsPath)
        hostname = values["lxc.uts.name"] ?? name
        self.idMap = idMap
        sharesHostNetwork = values["lxc.net.0.type"] == "none"
        self.limits = limits
    }

    /// Whether /sbin/init is systemd.
    public var initIsSystemd: Bool { Self.isSystemd("/sbin/init", in: rootfs) }

    /// Whether `program` (a path inside `tree`) is systemd: the binary or a symbolic link to it.
    static func isSystemd(_ program: String, in tree: URL) -> Bool {
        guard program.hasPrefix("/") else { return false }
        if program.hasSuffix("/systemd") { return true }
        let path = tree.appendingPathComponent(String(program.dropFirst())).path
        return ((try? FileManager.default.destinationOfSymbolicLink(atPath: path)) ?? "").hasSuffix("systemd")
    }

    /// Whether `command` boots the image's init (`/sbin/init`, or systemd by its path): it then gets what
    /// an init needs (a cgroup of its own to manage, a console), as a start without a command does.
    public static func bootsInit(_ command: [String]?, in tree: URL) -> Bool {
        guard let program = command?.first else { return true }
        return program == "/sbin/init" || isSystemd(program, in: tree)
    }

    /// How to stop this container's init: systemd powers off on SIGRTMIN+3, SysV init on SIGPWR.
    public var stopSignal: Int32 { Self.powerOffSignal(systemd: initIsSystemd) }

    static func powerOffSignal(systemd: Bool) -> Int32 { systemd ? 34 + 3 : SIGPWR }
}
