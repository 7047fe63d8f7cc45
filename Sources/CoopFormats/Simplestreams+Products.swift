import Foundation

extension Simplestreams {
    /// A products file (`images.json`): products by key `distro:release:arch:variant`, each with its
    /// versions (build ids), each with its items (files).
    public struct Products: Codable, Sendable, Equatable {
        public struct Product: Codable, Sendable, Equatable {
            /// `distro/release/variant`, comma-separated if several.
            public var aliases: String?
            public var arch: String?
            /// The distro's name for people (`Debian`).
            public var os: String?
            public var release: String?
            public var releaseTitle: String?
            public var variant: String?
            public var versions: [String: Version]?

            public init(
                aliases: String? = nil, arch: String? = nil, os: String? = nil, release: String? = nil,
                releaseTitle: String? = nil, variant: String? = nil, versions: [String: Version]?
            ) {
                self.aliases = aliases
                self.arch = arch
                self.os = os
                self.release = release
                self.releaseTitle = releaseTitle
                self.variant = variant
                self.versions = versions
            }

            enum CodingKeys: String, CodingKey {
                case aliases, arch, os, release, releaseTitle = "release_title", variant, versions
            }
        }

        public struct Version: Codable, Sendable, Equatable {
            public var items: [String: Item]

            public init(items: [String: Item]) { self.items = items }
        }

        public struct Item: Codable, Sendable, Equatable {
            /// What the file is: `root.tar.xz`, `lxd.tar.xz`, `incus.tar.xz`, `meta.tar.xz`, `squashfs`, …
            public var ftype: String
            public var path: String
            public var sha256: String?
            public var size: Int64?
            /// sha256 of the metadata bytes followed by the rootfs bytes, on the metadata's item.
            public var combinedSHA256: String?
            public var combinedRootxzSHA256: String?
            /// sha256 of the metadata bytes followed by the squashfs rootfs bytes (LXD's fingerprint of that pair).
            public var combinedSquashfsSHA256: String?

            public init(
                ftype: String, path: String, sha256: String? = nil, size: Int64? = nil, combinedSHA256: String? = nil,
                combinedRootxzSHA256: String? = nil, combinedSquashfsSHA256: String? = nil
            ) {
                self.ftype = ftype
                self.path = path
                self.sha256 = sha256
                self.size = size
                self.combinedSHA256 = combinedSHA256
                self.combinedRootxzSHA256 = combinedRootxzSHA256
                self.combinedSquashfsSHA256 = combinedSquashfsSHA256
            }

            enum CodingKeys: String, CodingKey {
                case ftype, path, sha256, size, combinedSHA256 = "combined_sha256"
                case combinedRootxzSHA256 = "combined_rootxz_sha256"
                case combinedSquashfsSHA256 = "combined_squashfs_sha256"
            }
        }

        /// `images`.
        public var contentID: String?
        /// `image-downloads`.
        public var datatype: String?
        /// `products:1.0`.
        public var format: String?
        public var products: [String: Product]

        public init(
            contentID: String? = "images", datatype: String? = "image-downloads", format: String? = "products:1.0",
            products: [String: Product]
        ) {
            self.contentID = contentID
            self.datatype = datatype
            self.format = format
            self.products = products
        }

        enum CodingKeys: String, CodingKey {
            case contentID = "content_id", datatype, format, products
        }

        /// Metadata tarball kinds, most useful to coop first: LXC's own meta, then Incus's and LXD's.
        static let metadataTypes = ["meta.tar.xz", "incus.tar.xz", "lxd.tar.xz"]

        /// What `builds` checks, for a writer: a file that passes is one the reader takes.
        public func check() throws(IndexField.Issue) {
            _ = try builds()
        }

        /// The builds coop can use: versions with a rootfs and a metadata tarball. Every product key and
        /// version key, and every item of such a version, is checked against its grammar first; the first
        /// field that does not match is thrown.
        public func builds() throws(IndexField.Issue) -> [ImageBuild] {
            var builds: [ImageBuild] = []
            for (key, product) in products.sorted(by: { $0.key < $1.key }) {
                let parts = key.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
                guard parts.count == 4 else {
                    throw IndexField.Issue(field: "product", value: key, expected: "distro:release:arch:variant")
                }
                for (part, name) in zip(parts, ["distro", "release", "arch", "variant"]) {
                    try IndexField.checkName(part, field: "\(name) of product \(IndexField.escaped(key))")
                }
                for (build, version) in (product.versions ?? [:]).sorted(by: { $0.key < $1.key }) {
                    try IndexField.checkBuild(build, field: "version of product \(key)")
                    // A build whose rootfs is squashfs alone is listed too, so that asking for it says why coop
                    // cannot fetch it, instead of the image seeming absent.
                    let chosen =
                        version.rootAndMetadata.map { ($0.root, $0.meta, "rootfs.tar.xz") }
                        ?? version.squashfsAndMetadata.map { ($0.root, $0.meta, ImageBuild.squashfsName) }
                    guard let (root, meta, rootName) = chosen else { continue }
                    for item in [root, meta] { try item.check(place: "item of \(key) \(build)") }
                    builds.append(
                        ImageBuild(
                            distro: parts[0], release: parts[1], arch: parts[2], variant: parts[3], build: build,
                            folder: root.path.split(separator: "/").dropLast().joined(separator: "/") + "/",
                            files: [
                                ImageBuild.File(
                                    name: "meta.tar.xz", path: meta.path, sha256: meta.sha256, size: meta.size),
                                ImageBuild.File(name: rootName, path: root.path, sha256: root.sha256, size: root.size),
                            ],
                            combinedSHA256: rootName == ImageBuild.squashfsName
                                ? meta.combinedSquashfsSHA256 : meta.combinedRootxzSHA256 ?? meta.combinedSHA256))
                }
            }
            return builds
        }
    }
}

extension Simplestreams.Products.Version {
    /// The rootfs item and the most useful metadata item (by `metadataTypes`), if the version has both.
    /// Items are looked at in key order, so that the same file always gives the same choice.
    var rootAndMetadata: (root: Simplestreams.Products.Item, meta: Simplestreams.Products.Item)? {
        let items = items.sorted { $0.key < $1.key }.map(\.value)
        guard let root = items.first(where: { $0.ftype == "root.tar.xz" }),
            let meta = Simplestreams.Products.metadataTypes.lazy.compactMap({ type in
                items.first { $0.ftype == type }
            }).first
        else { return nil }
        return (root, meta)
    }
}

extension Simplestreams.Products.Version {
    /// The squashfs rootfs item and LXD's or Incus's metadata item, if the version has both.
    var squashfsAndMetadata: (root: Simplestreams.Products.Item, meta: Simplestreams.Products.Item)? {
        let items = items.sorted { $0.key < $1.key }.map(\.value)
        guard let root = items.first(where: { $0.ftype == "squashfs" }),
            let meta = ["incus.tar.xz", "lxd.tar.xz"].lazy.compactMap({ type in items.first { $0.ftype == type } })
                .first
        else { return nil }
        return (root, meta)
    }
}

extension Simplestreams.Products.Item {
    /// The path, each hash and the size against their grammar.
    func check(place: String) throws(IndexField.Issue) {
        try IndexField.checkPath(path, field: "path of \(place)")
        for hash in [sha256, combinedSHA256, combinedRootxzSHA256, combinedSquashfsSHA256].compactMap({ $0 })
        where !IndexField.isSHA256(hash) {
            throw IndexField.Issue(field: "sha256 of \(place)", value: hash, expected: "64 hex digits")
        }
        if let size, size < 0 {
            throw IndexField.Issue(field: "size of \(place)", value: String(size), expected: "a size in bytes")
        }
    }
}
