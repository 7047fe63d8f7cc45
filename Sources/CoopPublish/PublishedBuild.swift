import CoopIndex
import CoopSupport
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
        var result: [PublishedBuild] = []
        let images = tree.appendingPathComponent("images")
        func children(_ url: URL) -> [URL] {
            ((try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []).filter { !$0.hasPrefix(".") }
                .map { url.appendingPathComponent($0) }
        }
        for distro in children(images) {
            for release in children(distro) {
                for arch in children(release) {
                    for variant in children(arch) {
                        for build in children(variant) {
                            if let data = try? Data(contentsOf: build.appendingPathComponent(recordName)),
                                let record = try? JSONDecoder().decode(PublishedBuild.self, from: data)
                            {
                                result.append(record)
                            }
                        }
                    }
                }
            }
        }
        return result.sorted()
    }
}
