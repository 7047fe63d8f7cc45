import CoopFormats
import CoopSupport
import CoopSystem
import Foundation

/// What the runtime reads from a container's LXC config (rootfs, name, id map, network kind) and coop's
/// network settings beside it.
public struct ContainerDefinition: Sendable {
    public var name: String
    public var folder: URL
    public var rootfs: URL
    public var hostname: String
    public var idMap: IDMap
    /// `lxc.net.0.type = none` shares the host's network; otherwise coop's settings (`coop-network.conf`), or
    /// without them the default (`ContainerNetwork.standard`).
    public var network: ContainerNetwork
    public var sharesHostNetwork: Bool { network.mode == .host }
    /// `lxc.cgroup.*` and `lxc.cgroup2.*` lines, in order (device rules are left to the runtime's own /dev).
    public var limits: [CgroupLimit]

    public init(folder: URL) throws {
        let configFile = folder.appendingPathComponent("config")
        guard let text = try? String(contentsOf: configFile, encoding: .utf8) else {
            throw CoopError(
                .notFound, "container \(folder.lastPathComponent)", cause: "has no config at \(configFile.path)",
                fix: "run 'coop list' to see the containers")
        }
        let config = LXCConfig(parsing: text)
        guard let uids = config.rootMapping(.user), let gids = config.rootMapping(.group) else {
            throw CoopError(
                .usage, "config of \(folder.lastPathComponent)", cause: "has no lxc.idmap lines for ids 0",
                fix: "add lxc.idmap = u 0 SUBUID 65536 and lxc.idmap = g 0 SUBGID 65536")
        }
        name = folder.lastPathComponent
        self.folder = folder
        rootfs = URL(fileURLWithPath: config.rootfsPath ?? folder.appendingPathComponent("rootfs").path)
        hostname = config.utsName ?? name
        idMap = IDMap(uidStart: uids.hostID, gidStart: gids.hostID, count: min(uids.count, gids.count))
        // LXC's own word for the host's network holds for coop too; otherwise coop's settings, or the default.
        network =
            config.networkType == "none"
            ? ContainerNetwork(mode: .host) : try ContainerNetwork.read(folder) ?? ContainerNetwork.standard
        // Device rules are left to the runtime's own /dev.
        limits = config.cgroupSettings.map { CgroupLimit(key: $0.key, value: $0.value, isVersion2: $0.isVersion2) }
            .filter { $0.controller != "devices" }
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
