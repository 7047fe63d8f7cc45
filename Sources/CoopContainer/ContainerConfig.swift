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
    /// what `ImageConfigFilter` allows of them reaches `text`.
    public var distroLines: String?
    public var image: String

    /// The image's lines after the allow-list: what is kept and which keys were dropped.
    public var distro: ImageConfigFilter.Result { ImageConfigFilter.filter(distroLines ?? "") }

    public var text: String {
        var lines = [
            "# Created by coop from \(Console.escaped(image))",
            "# For the options, see lxc.container.conf(5)",
            "",
            "# Distribution configuration",
        ]
        lines += distro.kept
        lines += ["", "# Container specific configuration"]
        lines += idMap.lxcConfigLines
        lines += [
            "lxc.rootfs.path = dir:\(rootfs.path)",
            "lxc.uts.name = \(name)",
            "",
            "# Network: a private network namespace with loopback only",
            "lxc.net.0.type = empty",
            "",
        ]
        return lines.joined(separator: "\n")
    }
}
