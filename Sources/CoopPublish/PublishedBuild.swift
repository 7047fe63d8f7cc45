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
