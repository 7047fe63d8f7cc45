import CoopArchive
import CoopSupport
import CoopSystem
import Foundation

/// Unpacks a rootfs tar stream safely. Runs in its own single-threaded process (`coop __extract`),
/// inside the container's user namespace when unprivileged, so it may `chdir` into the rootfs and let
/// libarchive resolve every path relative to it.
public struct RootfsExtractor {
    public let request: ExtractionRequest
    /// Device nodes and other entries that were not created, as `./path`.
    public private(set) var skipped: [String] = []
    public private(set) var entries = 0

    public init(request: ExtractionRequest) { self.request = request }

    /// Copies the unpacked tree `request.copyFrom` to the destination, as it is (owners, modes, times,
    /// extended attributes, hard links), then fills in the templates for the new container. The tree is
    /// one coop unpacked itself from a verified image, checked as any unpack is.
    public func copy() throws {
        guard let source = request.copyFrom else { return }
        if FileSystem.exists(URL(fileURLWithPath: request.destination)) {
            throw CoopError(.conflict, "rootfs folder \(request.destination)", cause: "exists already")
        }
        if request.overlayWork {
            let work = (request.destination as NSString).deletingLastPathComponent + "/work"
            try checkSystemCall(mkdir(work, 0o700), "overlay work folder \(work)")
        }
        if request.templatesOnly {
            try copyTemplates(from: source)
            return
        }
        let copying = try SpawnedProcess(
            arguments: ["/bin/cp", "-a", "--reflink=auto", "--no-target-directory", source, request.destination],
            idMap: nil)
        let status = copying.wait()
        guard status == 0 else {
            throw CoopError(
                .io, "copy of \(source)", cause: "cp ended with status \(status)",
                fix: "check the free space where the containers are (df), or remove the unpacked bases with "
                    + "'coop cache prune'")
        }
        try checkSystemCall(chdir(request.destination), "enter \(request.destination)")
        try applyTemplates()
    }

    /// The upper layer of a copy-on-write container: the base's templates, each with its folders (owners and
    /// modes as in the base, so the overlay shows them unchanged), filled in for the new container. The rest
    /// of the base shows through the overlay.
    func copyTemplates(from source: String) throws {
        try checkSystemCall(mkdir(request.destination, 0o755), "upper layer \(request.destination)")
        try checkSystemCall(chdir(source), "enter \(source)")
        for template in request.templates {
            let path = Self.normalize(template)
            // A template behind a symbolic link of the image is not filled in a full copy either.
            guard !path.isEmpty, !path.split(separator: "/").contains(".."), !Self.crossesSymlink(path) else {
                continue
            }
            let copying = try SpawnedProcess(
                arguments: ["/bin/cp", "-a", "--parents", "--", path, request.destination], idMap: nil)
            let status = copying.wait()
            guard status == 0 else {
                throw CoopError(
                    .io, "copy of template \(path) from \(source)", cause: "cp ended with status \(status)",
                    fix: "check the free space where the containers are (df)")
            }
        }
        try checkSystemCall(chdir(request.destination), "enter \(request.destination)")
        try applyTemplates()
    }

    /// Reads a tar stream (any compression libarchive knows) from `fd` into the destination.
    public mutating func extract(from fd: Int32) throws {
        let destination = request.destination
        if mkdir(destination, 0o755) != 0 {
            throw CoopError.system("rootfs folder \(destination)", kind: errno == EEXIST ? .conflict : .io)
        }
        if let shift = request.shift {
            try checkSystemCall(chown(destination, shift.uidStart, shift.gidStart), "chown \(destination)")
        }
        try checkSystemCall(chdir(destination), "enter \(destination)")

        let reader = try ArchiveReader(
            fd: fd, blockSize: 1 << 20,
            role: ArchiveRole(
                "rootfs archive", damaged: .verification, fix: "fetch the image again with --flush-cache"))
        let disk = try ArchiveDiskWriter(
            folder: containersFolder,
            spaceFix: "nothing of the container was kept: free space on that filesystem, or set COOP_CONTAINERS "
                + "(and COOP_CACHE) to a folder on a filesystem with room")
        let excludes = Set(request.excludes.map(Self.normalize))
        while let entry = try reader.next() {
            let name = entry.path ?? ""
            let path = try Self.checkedPath(name, role: "entry")
            if path.isEmpty { continue }  // "./" itself: the rootfs folder already exists
            entry.path = path
            if let link = entry.hardlink {
                entry.hardlink = try Self.checkedPath(link, role: "hard link target of '\(name)'")
            }
            if entry.isDevice || excludes.contains(path) {
                // Device nodes cannot be made in a user namespace and must not be trusted from an image:
                // the runtime binds the host's few safe ones.
                skipped.append("./" + path)
                continue
            }
            let uid = entry.uid
            let gid = entry.gid
            guard uid >= 0, gid >= 0, uid < Int64(request.idCount), gid < Int64(request.idCount) else {
                throw CoopError(
                    .unsafeArchive, "archive entry '\(name)'",
                    cause: "is owned by \(uid):\(gid), outside the container's \(request.idCount) ids",
                    fix: "use an image whose files belong to ids below \(request.idCount)")
            }
            if let shift = request.shift {
                entry.uid = uid + Int64(shift.uidStart)
                entry.gid = gid + Int64(shift.gidStart)
            }
            try disk.write(entry, from: reader, name: name)
            entries += 1
        }
        try applyTemplates()
    }

    /// The containers folder, whose filesystem a full disk names (the rootfs is unpacked in a staging
    /// folder inside it).
    var containersFolder: String {
        var folder = (request.destination as NSString).deletingLastPathComponent
        if (folder as NSString).lastPathComponent.contains(".creating-") {
            folder = (folder as NSString).deletingLastPathComponent
        }
        return folder
    }

    /// An entry's path relative to the rootfs, or an error naming it if it climbs out.
    static func checkedPath(_ raw: String, role: String) throws -> String {
        if raw.hasPrefix("/") {
            throw CoopError(
                .unsafeArchive, "archive \(role) '\(raw)'", cause: "is an absolute path, outside the rootfs",
                fix: "the image tries to write outside its rootfs: nothing was kept; do not use this image")
        }
        let parts = raw.split(separator: "/").filter { $0 != "." }
        if parts.contains("..") {
            throw CoopError(
                .unsafeArchive, "archive \(role) '\(raw)'", cause: "climbs out of the rootfs with '..'",
                fix: "the image tries to write outside its rootfs: nothing was kept; do not use this image")
        }
        return parts.joined(separator: "/")
    }

    static func normalize(_ path: String) -> String {
        path.split(separator: "/").filter { $0 != "." }.joined(separator: "/")
    }

    /// Replaces `LXC_NAME` and friends in the files the image names, then writes `writtenFiles`. A template
    /// reached through a symlink is skipped: it might point out of the rootfs.
    func applyTemplates() throws {
        try applyLXCTemplates()
        for (file, text) in request.writtenFiles.sorted(by: { $0.key < $1.key }) {
            let path = Self.normalize(file)
            let parent = path.split(separator: "/").dropLast().joined(separator: "/")
            guard !path.isEmpty, !path.split(separator: "/").contains(".."),
                parent.isEmpty || !Self.crossesSymlink(parent)
            else { continue }
            // Whatever is there and is not a plain file (a link, a folder, a device) stays as it is.
            var info = stat()
            if lstat(path, &info) == 0, (info.st_mode & S_IFMT) != S_IFREG { continue }
            let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0o644)
            if fd < 0 { throw CoopError.system("template \(file)") }
            defer { close(fd) }
            // Root unpacking for a container: the file is the container's root's, as every entry is.
            if let shift = request.shift {
                try checkSystemCall(fchown(fd, shift.uidStart, shift.gidStart), "owner of template \(file)")
            }
            let bytes = Array(text.utf8)
            if write(fd, bytes, bytes.count) != bytes.count { throw CoopError.system("template \(file)") }
        }
    }

    func applyLXCTemplates() throws {
        for template in request.templates {
            let path = Self.normalize(template)
            guard !path.isEmpty, !path.split(separator: "/").contains(".."), !Self.crossesSymlink(path) else {
                continue
            }
            // Only a regular file, and one of a sane size: a huge "template" must not fill memory.
            var info = stat()
            guard lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { continue }
            guard info.st_size <= Self.maxTemplateBytes else {
                throw CoopError(
                    .unsafeArchive, "template \(template)",
                    cause: "has \(info.st_size) bytes, more than the limit of \(Self.maxTemplateBytes >> 20) MiB "
                        + "for a template file",
                    fix: "no real image comes near this limit: do not use this image; nothing was kept")
            }
            guard var text = try? String(contentsOfFile: path, encoding: .utf8) else { continue }
            // Longest first: one value may hold another (a folder holds its name).
            for (key, value) in request.templateValues.sorted(by: { $0.key.count > $1.key.count }) {
                text =
                    request.wholeNames
                    ? Self.replacingWholeNames(key, with: value, in: text)
                    : text.replacingOccurrences(of: key, with: value)
            }
            let fd = open(path, O_WRONLY | O_TRUNC | O_NOFOLLOW | O_CLOEXEC)
            if fd < 0 { throw CoopError.system("template \(template)") }
            defer { close(fd) }
            let bytes = Array(text.utf8)
            if write(fd, bytes, bytes.count) != bytes.count { throw CoopError.system("template \(template)") }
        }
    }

    /// `text` with `name` replaced where it stands alone: not next to a letter, digit, `-`, `_` or `.`.
    static func replacingWholeNames(_ name: String, with value: String, in text: String) -> String {
        func isNamePart(_ character: Character?) -> Bool {
            guard let character else { return false }
            return character.isLetter || character.isNumber || "-_.".contains(character)
        }
        var result = ""
        var rest = Substring(text)
        while let found = rest.range(of: name) {
            let before = found.lowerBound == rest.startIndex ? result.last : rest[rest.index(before: found.lowerBound)]
            let after = found.upperBound == rest.endIndex ? nil : rest[found.upperBound]
            result += rest[..<found.lowerBound]
            result += isNamePart(before) || isNamePart(after) ? name : value
            rest = rest[found.upperBound...]
        }
        return result + rest
    }

    /// The largest template file coop rewrites (docs/security.md).
    static let maxTemplateBytes = 1 << 20

    static func crossesSymlink(_ path: String) -> Bool {
        var current = ""
        for part in path.split(separator: "/") {
            current += current.isEmpty ? String(part) : "/" + part
            var info = stat()
            if lstat(current, &info) != 0 || (info.st_mode & S_IFMT) == S_IFLNK { return true }
        }
        return false
    }
}
