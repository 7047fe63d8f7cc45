import CoopSupport
import Foundation

/// Simplestreams, as Incus and LXD image servers publish it: `streams/v1/index.json` names the
/// products file, whose products (`distro:release:arch:variant`) list versions with their items.
public enum Simplestreams {
    public static let indexPath = "streams/v1/index.json"

    struct Index: Decodable {
        struct Entry: Decodable {
            var datatype: String?
            var path: String
        }
        var index: [String: Entry]
    }

    struct Products: Decodable {
        struct Product: Decodable {
            var arch: String?
            var os: String?
            var release: String?
            var variant: String?
            var versions: [String: Version]?
        }
        struct Version: Decodable {
            var items: [String: Item]
        }
        struct Item: Decodable {
            var ftype: String
            var path: String
            var sha256: String?
            var size: Int64?
            var combined_sha256: String?
            var combined_rootxz_sha256: String?
        }
        var products: [String: Product]
    }

    /// The products file the index names for image downloads.
    public static func productsPath(fromIndex data: Data, source: String) throws -> String {
        let index: Index
        do { index = try JSONDecoder().decode(Index.self, from: data) } catch {
            throw CoopError(.verification, "simplestreams index \(source)", cause: "not valid JSON: \(error)")
        }
        let entry = index.index["images"] ?? index.index.values.first { $0.datatype == "image-downloads" }
        guard let entry else {
            throw CoopError(.verification, "simplestreams index \(source)", cause: "lists no image-downloads products")
        }
        return entry.path
    }

    /// Metadata tarball kinds, most useful to coop first: LXC's own meta, then Incus's and LXD's.
    static let metadataTypes = ["meta.tar.xz", "incus.tar.xz", "lxd.tar.xz"]

    public static func parseProducts(_ data: Data, source: String) throws -> [ImageBuild] {
        let products: Products
        do { products = try JSONDecoder().decode(Products.self, from: data) } catch {
            throw CoopError(.verification, "simplestreams products \(source)", cause: "not valid JSON: \(error)")
        }
        var builds: [ImageBuild] = []
        for (key, product) in products.products {
            let parts = key.split(separator: ":").map(String.init)
            guard parts.count == 4, parts.allSatisfy(ImageReference.isSafeComponent) else { continue }
            for (build, version) in product.versions ?? [:] {
                guard ImageReference.isSafeComponent(build),
                    let root = version.items.values.first(where: { $0.ftype == "root.tar.xz" }),
                    let meta = metadataTypes.lazy.compactMap({ type in
                        version.items.values.first { $0.ftype == type }
                    }).first
                else { continue }
                for item in [root, meta] where item.path.split(separator: "/").contains("..") {
                    throw CoopError(
                        .verification, "simplestreams item \(item.path)", cause: "path climbs out with '..'")
                }
                builds.append(
                    ImageBuild(
                        distro: parts[0], release: parts[1], arch: parts[2], variant: parts[3], build: build,
                        folder: root.path.split(separator: "/").dropLast().joined(separator: "/") + "/",
                        files: [
                            ImageBuild.File(name: "meta.tar.xz", path: meta.path, sha256: meta.sha256, size: meta.size),
                            ImageBuild.File(
                                name: "rootfs.tar.xz", path: root.path, sha256: root.sha256, size: root.size),
                        ],
                        combinedSHA256: meta.combined_rootxz_sha256 ?? meta.combined_sha256))
            }
        }
        return builds
    }
}
