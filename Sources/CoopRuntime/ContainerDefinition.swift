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
    /// A copy-on-write container (`lxc.rootfs.path = overlay:BASE:UPPER`): the shared base below its own
    /// upper layer `delta0` in its folder; `rootfs` is then the empty folder the overlay is mounted on.
    public var cowBase: URL?
    public var hostname: String
    public var idMap: IDMap
    /// `lxc.net.0.type = none` shares the host's network; otherwise coop's settings (`coop-network.conf`), or
    /// without them the default (`ContainerNetwork.standard`).
    public var network: ContainerNetwork
    public var sharesHostNetwork: Bool { network.mode == .host }
    /// `lxc.cgroup.*` and `lxc.cgroup2.*` lines, in order (device rules are left to the runtime's own /dev).
    public var limits: [CgroupLimit]

    public init(folder: URL) throws {
        let config = try LXCConfig.read(containerFolder: folder, name: folder.lastPathComponent)
        guard let uids = config.rootMapping(.user), let gids = config.rootMapping(.group) else {
            throw CoopError(
                .usage, "config of \(folder.lastPathComponent)", cause: "has no lxc.idmap lines for ids 0",
                fix: "add lxc.idmap = u 0 SUBUID 65536 and lxc.idmap = g 0 SUBGID 65536")
        }
        name = folder.lastPathComponent
        self.folder = folder
        rootfs = URL(fileURLWithPath: config.rootfsPath ?? folder.appendingPathComponent("rootfs").path)
        if let overlay = config.overlayRootfs {
            cowBase = try Self.cowBase(overlay, folder: folder)
            rootfs = folder.appendingPathComponent("rootfs")
        }
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

    /// The base of an overlay rootfs. Its upper layer must be the container's own `delta0` (beside it, LXC's
    /// `work`): the runtime writes nowhere but in the container's folder.
    static func cowBase(_ overlay: (lower: String, upper: String), folder: URL) throws -> URL {
        let upper = URL(fileURLWithPath: overlay.upper).standardizedFileURL.path
        let expected = folder.appendingPathComponent("delta0").standardizedFileURL.path
        guard upper == expected else {
            throw CoopError(
                .usage, "config of \(folder.lastPathComponent)",
                cause: "its overlay rootfs keeps its changes in \(overlay.upper), not in the container's own folder",
                fix: "set lxc.rootfs.path = overlay:\(overlay.lower):\(expected)")
        }
        return URL(fileURLWithPath: overlay.lower)
    }

    /// A copy-on-write container's base must still be there: the overlay cannot be mounted without it.
    public func checkCowBase() throws {
        guard let cowBase, !FileSystem.exists(cowBase) else { return }
        throw CoopError(
            .notFound, "base \(cowBase.path) of container \(name)",
            cause: "is gone (removed by hand: 'coop cache prune' keeps the bases that containers use)",
            fix: "copy-on-write containers cannot start without their base: destroy \(name) and create it again")
    }

    /// The tree the container sees before any change of its own: the base of a copy-on-write container.
    public var imageTree: URL { cowBase ?? rootfs }

    /// Whether /sbin/init is systemd.
    public var initIsSystemd: Bool { Self.isSystemd("/sbin/init", in: imageTree) }

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
