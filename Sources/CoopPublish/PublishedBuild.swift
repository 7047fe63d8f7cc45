import CoopFormats
import CoopSystem
import Foundation

/// One build in a published tree, `images/DISTRO/RELEASE/ARCH/VARIANT/BUILD/`, with what the indexes
/// say about it (kept in `.build.json` beside its files, so a publish never hashes a build twice).
struct PublishedBuild: Codable, Comparable {
    var distro: String
    var release: String
    var arch: String
    var variant: String
    var build: String
    var rootfsSHA256: String
    var rootfsSize: Int64
    var metaSHA256: String
    var metaSize: Int64
    /// sha256 of the metadata bytes followed by the rootfs bytes: the simplestreams fingerprint.
    var combinedSHA256: String

    static let recordName = ".build.json"

    var product: String { "\(distro):\(release):\(arch):\(variant)" }
    var path: String { "images/\(distro)/\(release)/\(arch)/\(variant)/\(build)" }

    /// The line of the LXC indexes that lists this build.
    var indexLine: LXCIndexLine { Self.indexLine([distro, release, arch, variant, build]) }

    /// The line of the build whose folder names are `parts` (distro, release, arch, variant, build).
    static func indexLine(_ parts: [String]) -> LXCIndexLine {
        LXCIndexLine(
            distro: parts[0], release: parts[1], arch: parts[2], variant: parts[3], build: parts[4],
            path: "/images/\(parts.joined(separator: "/"))/")
    }

    /// This build as a version of its simplestreams product: the rootfs and the metadata (as LXD's kind).
    var simplestreamsVersion: Simplestreams.Products.Version {
        Simplestreams.Products.Version(items: [
            "root.tar.xz": .init(
                ftype: "root.tar.xz", path: path + "/rootfs.tar.xz", sha256: rootfsSHA256, size: rootfsSize),
            "lxd.tar.xz": .init(
                ftype: "lxd.tar.xz", path: path + "/meta.tar.xz", sha256: metaSHA256, size: metaSize,
                combinedSHA256: combinedSHA256, combinedRootxzSHA256: combinedSHA256),
        ])
    }

    /// The product's aliases: `DISTRO/RELEASE/VARIANT`, and for the default variant `DISTRO/RELEASE` too, as
    /// images.linuxcontainers.org lists them (`lxc launch REMOTE:debian/bookworm` looks for that one).
    var aliases: String {
        let full = "\(distro)/\(release)/\(variant)"
        return variant == "default" ? "\(full),\(distro)/\(release)" : full
    }

    /// The product this build belongs to, described by this build's names, with `versions`.
    func simplestreamsProduct(versions: [String: Simplestreams.Products.Version]) -> Simplestreams.Products.Product {
        Simplestreams.Products.Product(
            aliases: aliases, arch: arch,
            os: distro.prefix(1).uppercased() + distro.dropFirst(),
            release: release, releaseTitle: release, variant: variant, versions: versions)
    }

    static func < (lhs: PublishedBuild, rhs: PublishedBuild) -> Bool {
        (lhs.product, lhs.build) < (rhs.product, rhs.build)
    }

    /// Every complete build in the tree: a folder without its record is not (yet) published.
    static func all(in tree: URL) -> [PublishedBuild] {
        let result = FileSystem.folders(below: tree.appendingPathComponent("images"), depth: 5).compactMap { build in
            (try? Data(contentsOf: build.appendingPathComponent(recordName))).flatMap {
                try? JSONDecoder().decode(PublishedBuild.self, from: $0)
            }
        }
        return result.sorted()
    }
}
