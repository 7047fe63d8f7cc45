import CoopSupport
import Foundation

/// The keys coop reads and writes, typed.
extension LXCConfig {
    /// `lxc.idmap = u 0 100000 65536`: container ids from `containerID` on are host ids from `hostID` on.
    public struct IDMapping: Sendable, Equatable {
        public enum Kind: String, Sendable {
            case user = "u"
            case group = "g"
        }

        public var kind: Kind
        public var containerID: UInt32
        public var hostID: UInt32
        public var count: UInt32

        public init(kind: Kind, containerID: UInt32, hostID: UInt32, count: UInt32) {
            self.kind = kind
            self.containerID = containerID
            self.hostID = hostID
            self.count = count
        }

        /// Parses `KIND CONTAINER HOST COUNT`; nil for any other form.
        public init?(value: String) {
            let fields = value.split(separator: " ")
            guard fields.count == 4, let kind = Kind(rawValue: String(fields[0])), let containerID = UInt32(fields[1]),
                let hostID = UInt32(fields[2]), let count = UInt32(fields[3])
            else { return nil }
            self.init(kind: kind, containerID: containerID, hostID: hostID, count: count)
        }

        public var value: String { "\(kind.rawValue) \(containerID) \(hostID) \(count)" }
    }

    /// `lxc.cgroup.KEY = VALUE` (v1) or `lxc.cgroup2.KEY = VALUE`.
    public struct CgroupSetting: Sendable, Equatable {
        /// The controller's file: `memory.max`, `pids.max`, `devices.deny`.
        public var key: String
        public var value: String
        public var isVersion2: Bool

        public init(key: String, value: String, isVersion2: Bool) {
            self.key = key
            self.value = value
            self.isVersion2 = isVersion2
        }
    }

    /// `lxc.rootfs.path` without the `dir:` of a folder; nil when absent or empty, or an overlay.
    public var rootfsPath: String? {
        guard var path = value(of: "lxc.rootfs.path"), !path.isEmpty, overlayRootfs == nil else { return nil }
        if path.hasPrefix("dir:") { path.removeFirst(4) }
        return path
    }

    /// The two folders of LXC's overlay rootfs, `overlay:LOWER:UPPER` (or `overlayfs:`): a copy-on-write
    /// container. Nil for any other rootfs, and for one whose folders are not absolute or hold a colon.
    public var overlayRootfs: (lower: String, upper: String)? {
        guard let path = value(of: "lxc.rootfs.path") else { return nil }
        let parts = path.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 3, parts[0] == "overlay" || parts[0] == "overlayfs",
            parts[1].hasPrefix("/"), parts[2].hasPrefix("/")
        else { return nil }
        return (parts[1], parts[2])
    }

    /// Sets `lxc.rootfs.path` to LXC's overlay of `lower` (read-only) below `upper` (the changes).
    public mutating func setOverlayRootfs(lower: String, upper: String) throws {
        guard !lower.contains(":"), !upper.contains(":") else {
            throw CoopError(
                .usage, "overlay rootfs \(IndexField.escaped(lower)) below \(IndexField.escaped(upper))",
                cause: "a folder holds ':', which separates the folders of lxc.rootfs.path = overlay:LOWER:UPPER",
                fix: "nothing was written; use a containers folder (COOP_CONTAINERS) without ':' in its path")
        }
        try set("lxc.rootfs.path", "overlay:\(lower):\(upper)")
    }

    /// Sets `lxc.rootfs.path` to the folder `path`.
    public mutating func setRootfsPath(_ path: String) throws {
        try set("lxc.rootfs.path", "dir:" + path)
    }

    /// `lxc.uts.name`, the container's host name; nil when absent or empty.
    public var utsName: String? {
        value(of: "lxc.uts.name").flatMap { $0.isEmpty ? nil : $0 }
    }

    public mutating func setUTSName(_ name: String) throws {
        try set("lxc.uts.name", name)
    }

    /// `lxc.net.0.type`: `empty` (loopback only), `none` (the host's network), `veth`, …
    public var networkType: String? { value(of: "lxc.net.0.type") }

    public mutating func setNetworkType(_ type: String) throws {
        try set("lxc.net.0.type", type)
    }

    /// Every well-formed `lxc.idmap` line, in order.
    public var idMappings: [IDMapping] {
        values(of: "lxc.idmap").compactMap(IDMapping.init(value:))
    }

    /// The mapping of container id 0 for users or groups: the last line of it, as LXC takes it.
    public func rootMapping(_ kind: IDMapping.Kind) -> IDMapping? {
        idMappings.last { $0.kind == kind && $0.containerID == 0 }
    }

    public mutating func append(_ mapping: IDMapping) throws {
        try append("lxc.idmap", mapping.value)
    }

    /// The cgroup settings in order. As in LXC, an empty value takes back the earlier settings of its key,
    /// and of every key of its version for `lxc.cgroup2 =` and `lxc.cgroup =`.
    public var cgroupSettings: [CgroupSetting] {
        var settings: [CgroupSetting] = []
        for entry in entries {
            for (prefix, isVersion2) in [("lxc.cgroup2", true), ("lxc.cgroup", false)] {
                if entry.key == prefix && entry.value.isEmpty {
                    settings.removeAll { $0.isVersion2 == isVersion2 }
                    break
                }
                guard entry.key.hasPrefix(prefix + ".") else { continue }
                let key = String(entry.key.dropFirst(prefix.count + 1))
                if entry.value.isEmpty {
                    settings.removeAll { $0.key == key && $0.isVersion2 == isVersion2 }
                } else {
                    settings.append(CgroupSetting(key: key, value: entry.value, isVersion2: isVersion2))
                }
                break
            }
        }
        return settings
    }

    /// `lxc.init.cmd`: what the container runs as PID 1 instead of `/sbin/init`.
    public var initCommand: String? { value(of: "lxc.init.cmd") }

    /// `lxc.environment` lines (`NAME=VALUE`), in order.
    public var environment: [String] { values(of: "lxc.environment") }

    /// `lxc.arch`, in LXC's names (`x86_64`, `aarch64`).
    public var arch: String? { value(of: "lxc.arch") }

    /// `lxc.include` lines, in order.
    public var includes: [String] { values(of: "lxc.include") }
}
