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
    /// LXD's and Incus's metadata tarball (`lxd.tar.xz`, the same bytes as `incus.tar.xz`), in builds
    /// published since coop wrote it.
    var lxd: LXDFiles?

    /// What LXD and Incus read of a build: the metadata tarball, its fingerprints with each rootfs (LXD
    /// names an image by the sha256 of its metadata followed by its rootfs), and the squashfs rootfs.
    struct LXDFiles: Codable, Equatable {
        var sha256: String
        var size: Int64
        var combinedRootxz: String
        var squashfs: SquashFS?

        struct SquashFS: Codable, Equatable {
            var sha256: String
            var size: Int64
            var combined: String
        }
    }

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

    /// This build as a version of its simplestreams product: the rootfs, LXC's metadata (which coop reads
    /// first), and LXD's and Incus's metadata with their fingerprints, and the squashfs rootfs when there is
    /// one.
    var simplestreamsVersion: Simplestreams.Products.Version {
        var items: [String: Simplestreams.Products.Item] = [
            "root.tar.xz": .init(
                ftype: "root.tar.xz", path: path + "/rootfs.tar.xz", sha256: rootfsSHA256, size: rootfsSize),
            "meta.tar.xz": .init(
                ftype: "meta.tar.xz", path: path + "/meta.tar.xz", sha256: metaSHA256, size: metaSize,
                combinedSHA256: combinedSHA256, combinedRootxzSHA256: combinedSHA256),
        ]
        guard let lxd else { return Simplestreams.Products.Version(items: items) }
        for kind in ["lxd.tar.xz", "incus.tar.xz"] {
            items[kind] = .init(
                ftype: kind, path: path + "/" + kind, sha256: lxd.sha256, size: lxd.size,
                combinedSHA256: lxd.combinedRootxz, combinedRootxzSHA256: lxd.combinedRootxz,
                combinedSquashfsSHA256: lxd.squashfs?.combined)
        }
        if let squashfs = lxd.squashfs {
            items["root.squashfs"] = .init(
                ftype: "squashfs", path: path + "/rootfs.squashfs", sha256: squashfs.sha256, size: squashfs.size)
        }
        return Simplestreams.Products.Version(items: items)
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
