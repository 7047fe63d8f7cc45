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

    /// The products file the index names for image downloads: a `.json` path below the remote.
    public static func productsPath(fromIndex data: Data, source: String, remote: String = "?") throws -> String {
        let index: Index
        do { index = try JSONDecoder().decode(Index.self, from: data) } catch {
            throw CoopError(.verification, "simplestreams index \(source)", cause: "not valid JSON: \(error)")
        }
        let entry = index.index["images"] ?? index.index.values.first { $0.datatype == "image-downloads" }
        guard let entry else {
            throw CoopError(.verification, "simplestreams index \(source)", cause: "lists no image-downloads products")
        }
        guard IndexField.isPath(entry.path), entry.path.hasSuffix(".json") else {
            throw IndexField.refusal(
                remote: remote, source: source, field: "path", value: entry.path,
                expected: "a .json path below the remote (letters, digits, ._+-:~@=,/ and no '..' or '%')")
        }
        return entry.path
    }

    /// Metadata tarball kinds, most useful to coop first: LXC's own meta, then Incus's and LXD's.
    static let metadataTypes = ["meta.tar.xz", "incus.tar.xz", "lxd.tar.xz"]

    /// Parses a products file; every product key, version key and item of a usable version must match its
    /// grammar in `IndexField`, or the whole file is refused.
    public static func parseProducts(_ data: Data, source: String, remote: String = "?") throws -> [ImageBuild] {
        let products: Products
        do { products = try JSONDecoder().decode(Products.self, from: data) } catch {
            throw CoopError(.verification, "simplestreams products \(source)", cause: "not valid JSON: \(error)")
        }
        func refuse(_ field: String, _ value: String, _ expected: String) -> CoopError {
            IndexField.refusal(remote: remote, source: source, field: field, value: value, expected: expected)
        }
        let nameRule = "a name of [a-z0-9._+-] (at most \(IndexField.maxNameLength) characters)"
        var builds: [ImageBuild] = []
        for (key, product) in products.products.sorted(by: { $0.key < $1.key }) {
            let parts = key.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 4 else { throw refuse("product", key, "distro:release:arch:variant") }
            for (part, name) in zip(parts, ["distro", "release", "arch", "variant"]) where !IndexField.isName(part) {
                throw refuse("\(name) of product \(IndexField.escaped(key))", part, nameRule)
            }
            for (build, version) in (product.versions ?? [:]).sorted(by: { $0.key < $1.key }) {
                guard IndexField.isBuild(build) else {
                    throw refuse("version of product \(key)", build, "a build id of the form YYYYMMDD_HH:MM")
                }
                guard let root = version.items.values.first(where: { $0.ftype == "root.tar.xz" }),
                    let meta = metadataTypes.lazy.compactMap({ type in
                        version.items.values.first { $0.ftype == type }
                    }).first
                else { continue }
                let place = "item of \(key) \(build)"
                for item in [root, meta] {
                    guard IndexField.isPath(item.path) else {
                        throw refuse(
                            "path of \(place)", item.path,
                            "a path below the remote (letters, digits, ._+-:~@=,/ and no '..' or '%')")
                    }
                    for hash in [item.sha256, item.combined_sha256, item.combined_rootxz_sha256].compactMap({ $0 })
                    where !IndexField.isSHA256(hash) {
                        throw refuse("sha256 of \(place)", hash, "64 hex digits")
                    }
                    if let size = item.size, size < 0 {
                        throw refuse("size of \(place)", String(size), "a size in bytes")
                    }
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
