import CoopIndex
import CoopRootfs
import Foundation

/// The container's `config`, in LXC's format, so that `lxc-start -P <containers> -n NAME` can run it too.
public struct ContainerConfig {
    /// Where LXC keeps the files that image configs include as `LXC_TEMPLATE_CONFIG`.
    public static let lxcTemplateConfig = "/usr/share/lxc/config"

    public var name: String
    public var rootfs: URL
    public var idMap: IDMap
    public var privileged: Bool
    /// The image's own lines (`config` or `config-user` from meta.tar.xz).
    public var distroLines: String?
    public var image: String

    public var text: String {
        var lines = [
            "# Created by coop from \(image)",
            "# For the options, see lxc.container.conf(5)",
            "",
            "# Distribution configuration",
        ]
        let distro = (distroLines ?? "").replacingOccurrences(of: "LXC_TEMPLATE_CONFIG", with: Self.lxcTemplateConfig)
        lines += distro.split(separator: "\n").map(String.init)
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
