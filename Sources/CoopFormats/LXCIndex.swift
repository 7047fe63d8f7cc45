import Foundation

/// LXC's image index (`meta/1.0/index-system`, `index-user`): one build per line,
/// `dist;release;arch;variant;build;path`.
public enum LXCIndex {
    /// The index a privileged or an unprivileged client reads, as LXC chooses it.
    public static func indexPath(privileged: Bool) -> String {
        privileged ? "meta/1.0/index-system" : "meta/1.0/index-user"
    }

    /// Parses an index; every field must match its grammar in `IndexField`, or the whole index is refused.
    public static func parse(_ text: String, source: String, remote: String = "?") throws -> [ImageBuild] {
        var builds: [ImageBuild] = []
        let names = ["distro", "release", "arch", "variant"]
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            if line.isEmpty || line.hasPrefix("#") { continue }
            let place = "\(source) line \(number + 1)"
            let fields = line.split(separator: ";", omittingEmptySubsequences: false).map(String.init)
            guard fields.count == 6 else {
                throw IndexField.refusal(
                    remote: remote, source: place, field: "line", value: String(line),
                    expected: "distro;release;arch;variant;build;path (6 fields, found \(fields.count))")
            }
            for (index, name) in names.enumerated() where !IndexField.isName(fields[index]) {
                throw IndexField.refusal(
                    remote: remote, source: place, field: name, value: fields[index],
                    expected: "a name of [a-z0-9._+-] (at most \(IndexField.maxNameLength) characters)")
            }
            guard IndexField.isBuild(fields[4]) else {
                throw IndexField.refusal(
                    remote: remote, source: place, field: "build", value: fields[4],
                    expected: "a build id of the form YYYYMMDD_HH:MM")
            }
            guard IndexField.isPath(fields[5]) else {
                throw IndexField.refusal(
                    remote: remote, source: place, field: "path", value: fields[5],
                    expected: "a path below the remote (letters, digits, ._+-:~@=,/ and no '..' or '%')")
            }
            var folder = fields[5]
            if !folder.hasSuffix("/") { folder += "/" }
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
