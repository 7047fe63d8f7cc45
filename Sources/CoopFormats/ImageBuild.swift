import Foundation

/// One build of an image on a remote, as its index lists it: the files to fetch and how to check them.
public struct ImageBuild: Sendable, Equatable, Codable {
    public struct File: Sendable, Equatable, Codable {
        /// The name under which coop stores the file (`rootfs.tar.xz`, `meta.tar.xz`).
        public var name: String
        /// Path on the remote, relative to its base URL.
        public var path: String
        /// Expected sha256 and size, where the index gives them (simplestreams does).
        public var sha256: String?
        public var size: Int64?

        public init(name: String, path: String, sha256: String? = nil, size: Int64? = nil) {
            self.name = name
            self.path = path
            self.sha256 = sha256
            self.size = size
        }
    }

    /// The name of a squashfs rootfs, which LXD's and Incus's servers may offer alone.
    public static let squashfsName = "rootfs.squashfs"

    public var distro: String
    public var release: String
    public var arch: String
    public var variant: String
    /// The build id, e.g. `20251129_00:00`: sorts by time.
    public var build: String
    /// The folder on the remote (LXC protocol), with a trailing slash.
    public var folder: String
    public var files: [File]
    /// Simplestreams: sha256 of the metadata bytes followed by the rootfs bytes.
    public var combinedSHA256: String?

    public init(
        distro: String, release: String, arch: String, variant: String, build: String, folder: String,
        files: [File], combinedSHA256: String? = nil
    ) {
        self.distro = distro
        self.release = release
        self.arch = arch
        self.variant = variant
        self.build = build
        self.folder = folder
        self.files = files
        self.combinedSHA256 = combinedSHA256
    }

    public func matches(_ reference: ImageReference) -> Bool {
        distro == reference.distro && release == reference.release && arch == reference.arch
            && variant == reference.variant
    }
}
