import CoopArchive
import CoopFormats
import Foundation

/// One verified build in the image cache, as its `image.json` describes it.
public struct CacheEntry: Codable, Sendable {
    public struct FileRecord: Codable, Sendable, Equatable {
        public var sha256: String
        public var size: Int64

        public init(sha256: String, size: Int64) {
            self.sha256 = sha256
            self.size = size
        }
    }

    public var remote: String
    public var imageProtocol: Remote.ImageProtocol
    public var distro: String
    public var release: String
    public var arch: String
    public var variant: String
    public var build: String
    /// When coop fetched (or last confirmed) the build, epoch seconds.
    public var fetchedAt: Int
    /// Until when the build is used without asking the remote; nil: always current.
    public var expiry: Int?
    /// How long a confirmation keeps the build current: the image's own expiry window.
    public var validity: Int?
    public var files: [String: FileRecord]
    public var meta: MetaArchive
    /// Fingerprint of the key the signatures verified against; nil when fetched with --no-verify.
    public var verifiedBy: String?

    /// The entry's folder; not stored, set when read.
    public var folder: URL = URL(fileURLWithPath: "/")

    public init(
        remote: String, imageProtocol: Remote.ImageProtocol, distro: String, release: String, arch: String,
        variant: String, build: String, fetchedAt: Int, expiry: Int?, validity: Int?, files: [String: FileRecord],
        meta: MetaArchive, verifiedBy: String?
    ) {
        self.remote = remote
        self.imageProtocol = imageProtocol
        self.distro = distro
        self.release = release
        self.arch = arch
        self.variant = variant
        self.build = build
        self.fetchedAt = fetchedAt
        self.expiry = expiry
        self.validity = validity
        self.files = files
        self.meta = meta
        self.verifiedBy = verifiedBy
    }

    enum CodingKeys: String, CodingKey {
        case remote, imageProtocol = "protocol", distro, release, arch, variant, build, fetchedAt, expiry, validity
        case files, meta, verifiedBy
    }

    /// Reads an `image.json`: the one reader of the record, for the store and for imports.
    public static func decoded(from data: Data) throws -> CacheEntry {
        try JSONDecoder().decode(CacheEntry.self, from: data)
    }

    /// The `image.json` of this entry: indented, keys sorted.
    public func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self)
    }

    public var reference: ImageReference {
        ImageReference(remote: remote, distro: distro, release: release, arch: arch, variant: variant)
    }

    public func isFresh(now: Int = Int(Date().timeIntervalSince1970)) -> Bool {
        expiry.map { now < $0 } ?? true
    }

    public var rootfsArchive: URL { folder.appendingPathComponent("rootfs.tar.xz") }
}
