import CoopSupport
import Foundation

/// LXC's image index (`meta/1.0/index-system`, `index-user`): one build per line,
/// `dist;release;arch;variant;build;path`.
public enum LXCIndex {
    /// The index a privileged or an unprivileged client reads, as LXC chooses it.
    public static func indexPath(privileged: Bool) -> String {
        privileged ? "meta/1.0/index-system" : "meta/1.0/index-user"
    }

    public static func parse(_ text: String, source: String) throws -> [ImageBuild] {
        var builds: [ImageBuild] = []
        for (number, line) in text.split(separator: "\n").enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            let fields = trimmed.split(separator: ";", omittingEmptySubsequences: false).map(String.init)
            guard fields.count == 6, fields[0...4].allSatisfy(ImageReference.isSafeComponent) else {
                throw CoopError(
                    .verification, "image index \(source) line \(number + 1)",
                    cause: "expected dist;release;arch;variant;build;path, found '\(trimmed.prefix(120))'",
                    fix: "check the remote's URL and protocol in images.index")
            }
            var folder = fields[5]
            if !folder.hasSuffix("/") { folder += "/" }
            guard !folder.split(separator: "/").contains("..") else {
                throw CoopError(
                    .verification, "image index \(source) line \(number + 1)", cause: "path climbs out with '..'")
            }
            builds.append(
                ImageBuild(
                    distro: fields[0], release: fields[1], arch: fields[2], variant: fields[3], build: fields[4],
                    folder: folder,
                    files: ["meta.tar.xz", "rootfs.tar.xz"].map { ImageBuild.File(name: $0, path: folder + $0) }))
        }
        return builds
    }
}

extension Array where Element == ImageBuild {
    /// The newest build of the image `reference` names, or nil.
    public func newest(matching reference: ImageReference) -> ImageBuild? {
        filter { $0.matches(reference) }.max { $0.build < $1.build }
    }
}
