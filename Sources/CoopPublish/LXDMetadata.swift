import CoopArchive
import CoopFormats
import Foundation

/// The metadata tarball of an LXD or Incus image (`lxd.tar.xz`, the same bytes as `incus.tar.xz`):
/// `metadata.yaml` with the architecture, creation and expiry dates, properties and templates, and the
/// templates, which set the hostname and the hosts file when an instance is created, copied or renamed.
/// LXC's own `meta.tar.xz` stays beside it for LXC's download template and coop.
struct LXDMetadata {
    var published: PublishedBuild
    /// As LXC's metadata says (`expiry`): 30 days after the build.
    var validity = 30 * 86_400

    init(_ build: PublishedBuild) { published = build }

    /// Epoch seconds of the build, from its id.
    var created: Int { BuildID.epoch(published.build) ?? 0 }

    /// LXD's templates are pongo2; `container.name` is the instance's name in LXD and in Incus.
    static let templates: [(path: String, file: String, text: String)] = [
        ("/etc/hostname", "hostname.tpl", "{{ container.name }}\n"),
        (
            "/etc/hosts", "hosts.tpl",
            "127.0.0.1\tlocalhost\n127.0.1.1\t{{ container.name }}\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                + "ff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"
        ),
    ]

    /// The names of a published build are checked against the index grammar (letters, digits, `._:-`), so
    /// each value below is a plain YAML scalar; they are quoted all the same.
    var yaml: String {
        let (distro, release, arch, variant, build) = (
            published.distro, published.release, published.arch, published.variant, published.build
        )
        let title = distro.prefix(1).uppercased() + distro.dropFirst()
        var text = "architecture: \"\(ImageReference.lxcArchitecture(arch))\"\n"
        text += "creation_date: \(created)\nexpiry_date: \(created + validity)\n"
        text += "properties:\n"
        for (key, value) in [
            ("architecture", arch), ("description", "\(title) \(release) \(arch) (\(variant)) (\(build))"),
            ("name", "\(distro)-\(release)-\(arch)-\(variant)-\(build)"), ("os", title), ("release", release),
            ("serial", build), ("variant", variant),
        ] {
            text += "  \(key): \"\(value)\"\n"
        }
        text += "templates:\n"
        for template in Self.templates {
            text += "  \(template.path):\n    when:\n"
            text += ["create", "copy", "rename"].map { "      - \($0)\n" }.joined()
            text += "    create_only: false\n    template: \(template.file)\n    properties: {}\n"
        }
        return text
    }

    /// Writes the tarball: the same inputs give the same bytes, so its hash names the image.
    func write(to url: URL) throws {
        let writer = try ArchiveWriter(
            file: url, format: .paxTar, filter: .xz,
            role: ArchiveRole(url.path, spaceFix: "free some disk space where the tree lives"))
        try writer.addFile("metadata.yaml", data: Data(yaml.utf8), .init(mode: 0o644, modified: created))
        try writer.addDirectory("templates", .init(mode: 0o755, modified: created))
        for template in Self.templates {
            try writer.addFile(
                "templates/\(template.file)", data: Data(template.text.utf8), .init(mode: 0o644, modified: created))
        }
        try writer.close()
    }
}
