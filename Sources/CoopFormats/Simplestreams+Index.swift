import Foundation

extension Simplestreams {
    /// `streams/v1/index.json`: which products file holds which kind of data.
    public struct Index: Codable, Sendable, Equatable {
        public struct Entry: Codable, Sendable, Equatable {
            /// `image-downloads` for images.
            public var datatype: String?
            /// The products file, relative to the remote's base.
            public var path: String
            /// `products:1.0`.
            public var format: String?
            /// The product keys the file holds.
            public var products: [String]?

            public init(datatype: String?, path: String, format: String? = nil, products: [String]? = nil) {
                self.datatype = datatype
                self.path = path
                self.format = format
                self.products = products
            }
        }

        /// `index:1.0`.
        public var format: String?
        public var index: [String: Entry]

        public init(format: String? = "index:1.0", index: [String: Entry]) {
            self.format = format
            self.index = index
        }

        /// The entry of image downloads: `images` as LXC's servers name it, else any of that datatype.
        public var imageDownloads: Entry? {
            index["images"]
                ?? index.keys.sorted().lazy.compactMap { index[$0] }.first { $0.datatype == "image-downloads" }
        }

        /// A products file is a `.json` path below the remote.
        static func checkProductsPath(_ path: String) throws(IndexField.Issue) {
            guard IndexField.isPath(path), path.hasSuffix(".json") || path.hasSuffix(".sjson") else {
                throw IndexField.Issue(
                    field: "path", value: path,
                    expected: "a .json or .sjson path below the remote (letters, digits, ._+-:~@=,/ and no '..' or '%')"
                )
            }
        }

        /// Every products path passes `checkProductsPath`, as the reader requires of the one it uses.
        public func check() throws(IndexField.Issue) {
            for key in index.keys.sorted() { try Self.checkProductsPath(index[key]!.path) }
        }
    }
}
