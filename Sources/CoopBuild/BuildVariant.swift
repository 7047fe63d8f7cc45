import Foundation

/// What goes into an image beyond Debian's minbase.
public enum BuildVariant: String, Sendable, CaseIterable {
    /// minbase plus an init and what a container needs to boot and reach the network.
    case `default`
    /// The same without documentation, man pages and locales.
    case slim

    public var packages: [String] { ["systemd-sysv", "dbus", "iproute2", "netbase", "ifupdown", "procps"] }

    /// dpkg path filters, kept in the image so that later installs stay slim too.
    public var dpkgOptions: [String] {
        switch self {
        case .default: return []
        case .slim:
            return [
                "path-exclude=/usr/share/man/*", "path-exclude=/usr/share/doc/*",
                "path-include=/usr/share/doc/*/copyright", "path-exclude=/usr/share/locale/*",
                "path-include=/usr/share/locale/locale.alias", "path-exclude=/usr/share/info/*",
            ]
        }
    }
}
