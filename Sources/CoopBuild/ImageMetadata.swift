import CoopArchive
import CoopFormats
import CoopSupport
import Foundation

/// Writes `meta.tar.xz` as LXC's download template reads it. Every entry gets the same owner and the
/// build's time, so the same inputs give the same bytes.
public struct ImageMetadata {
    public var distro: String
    public var release: String
    public var arch: String
    public var variant: String
    public var build: String
    public var buildTime: Int
    public var validity: Int = 30 * 86_400
    public var excludesUser: [String]

    public func files() throws -> [(String, String)] {
        let lxcArch = ImageReference.lxcArchitecture(arch)
        // The image's configs, written through the one config model: LXC includes them for the container.
        func config(_ includes: [String]) throws -> String {
            var config = LXCConfig()
            for name in includes { try config.append("lxc.include", "LXC_TEMPLATE_CONFIG/\(name)") }
            try config.append("lxc.arch", lxcArch)
            return try config.formatted()
        }
        let system = try config(["common.conf"])
        let configUser = try config(["common.conf", "userns.conf"])
        let title = distro.prefix(1).uppercased() + distro.dropFirst()
        return [
            ("config", system),
            ("config-user", configUser),
            ("create-message", "You just created a \(title) \(release) \(lxcArch) (\(build)) container.\n"),
            ("expiry", "\(buildTime + validity)\n"),
            ("excludes-user", excludesUser.map { $0 + "\n" }.joined()),
            ("templates", "/etc/hostname\n/etc/hosts\n"),
        ]
    }

    public func write(to url: URL) throws {
        let writer = try ArchiveWriter(
            file: url, format: .gnuTar, filter: .xz,
            role: ArchiveRole(url.path, spaceFix: "free some disk space, or build elsewhere with --output"))
        for (name, text) in try files() {
            try writer.addFile("./" + name, data: Data(text.utf8), .init(mode: 0o644, modified: buildTime))
        }
        try writer.close()
    }
}

/// What a rootfs tarball holds: its entry count and the device nodes an unprivileged unpack skips.
public struct TarSurvey {
    public var entries = 0
    public var devices: [String] = []

    public init(_ url: URL) throws {
        let reader = try ArchiveReader(file: url, role: ArchiveRole("rootfs tarball \(url.path)"))
        while let entry = try reader.next() {
            entries += 1
            if entry.isDevice, var path = entry.path {
                if !path.hasPrefix("./") { path = "./" + (path.hasPrefix("/") ? String(path.dropFirst()) : path) }
                devices.append(path)
            }
        }
    }
}
