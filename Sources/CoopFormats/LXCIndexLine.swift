import Foundation

/// One build in LXC's image index: `distro;release;arch;variant;build;path`, the path being the build's
/// folder on the remote (LXC writes it with a slash at each end). Read by `LXCIndex.parse`, written by
/// `coop publish`; both check every field against `IndexField`, so coop never writes a line it would refuse.
public struct LXCIndexLine: Sendable, Equatable {
    public var distro: String
    public var release: String
    public var arch: String
    public var variant: String
    public var build: String
    public var path: String

    public init(distro: String, release: String, arch: String, variant: String, build: String, path: String) {
        self.distro = distro
        self.release = release
        self.arch = arch
        self.variant = variant
        self.build = build
        self.path = path
    }

    /// Parses a line (without its newline); a field outside its grammar is the issue thrown.
    public init(parsing line: String) throws(IndexField.Issue) {
        let fields = line.split(separator: ";", omittingEmptySubsequences: false).map(String.init)
        guard fields.count == 6 else {
            throw IndexField.Issue(
                field: "line", value: line,
                expected: "distro;release;arch;variant;build;path (6 fields, found \(fields.count))")
        }
        self.init(
            distro: fields[0], release: fields[1], arch: fields[2], variant: fields[3], build: fields[4],
            path: fields[5])
        try check()
    }

    /// Every field against its grammar, in the line's order: the first that does not match is thrown.
    public func check() throws(IndexField.Issue) {
        for (value, field) in [(distro, "distro"), (release, "release"), (arch, "arch"), (variant, "variant")] {
            try IndexField.checkName(value, field: field)
        }
        try IndexField.checkBuild(build, field: "build")
        try IndexField.checkPath(path, field: "path")
    }

    /// The line, without its newline, once every field passed `check`.
    public func formatted() throws(IndexField.Issue) -> String {
        try check()
        return [distro, release, arch, variant, build, path].joined(separator: ";")
    }

    /// The build this line names: its folder, and in it the metadata and the rootfs.
    public var imageBuild: ImageBuild {
        let folder = path.hasSuffix("/") ? path : path + "/"
        return ImageBuild(
            distro: distro, release: release, arch: arch, variant: variant, build: build, folder: folder,
            files: ["meta.tar.xz", "rootfs.tar.xz"].map { ImageBuild.File(name: $0, path: folder + $0) })
    }
}
