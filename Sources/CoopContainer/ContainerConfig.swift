import CoopFormats
import CoopSupport
import CoopSystem
import Foundation

/// The container's `config`, in LXC's format, so that `lxc-start -P <containers> -n NAME` can run it too.
public struct ContainerConfig {
    /// Where LXC keeps the files that image configs include as `LXC_TEMPLATE_CONFIG`.
    public static let lxcTemplateConfig = "/usr/share/lxc/config"

    public var name: String
    public var rootfs: URL
    public var idMap: IDMap
    public var privileged: Bool
    /// The image's own lines (`config` or `config-user` from meta.tar.xz), as the image has them: only
    /// what `ImageConfigFilter` allows of them reaches the config.
    public var distroLines: String?
    public var image: String
    /// A copy-on-write container: the rootfs of its shared base, below its own `delta0` in its folder.
    public var cowBase: URL? = nil

    /// The image's lines after the allow-list: what is kept and which keys were dropped.
    public var distro: ImageConfigFilter.Result { ImageConfigFilter.filter(distroLines ?? "") }

    /// The config; a value its line could not hold (a folder with a newline in its path) is refused.
    public var config: LXCConfig {
        get throws {
            var config = LXCConfig()
            try config.appendComment("Created by coop from \(Console.escaped(image))")
            try config.appendComment("For the options, see lxc.container.conf(5)")
            config.appendBlank()
            try config.appendComment("Distribution configuration")
            for entry in distro.kept { try config.append(entry) }
            config.appendBlank()
            try config.appendComment("Container specific configuration")
            try config.append(.init(kind: .user, containerID: 0, hostID: idMap.uidStart, count: idMap.count))
            try config.append(.init(kind: .group, containerID: 0, hostID: idMap.gidStart, count: idMap.count))
            if let cowBase {
                // LXC's own overlay syntax; LXC names the work folder `work`, beside the upper layer.
                try config.setOverlayRootfs(
                    lower: cowBase.path, upper: rootfs.deletingLastPathComponent().appendingPathComponent("delta0").path
                )
            } else {
                try config.setRootfsPath(rootfs.path)
            }
            try config.setUTSName(name)
            config.appendBlank()
            try config.appendComment("Network: a private network namespace with loopback only")
            try config.setNetworkType("empty")
            return config
        }
    }

    public var text: String {
        get throws { try config.formatted() }
    }
}
