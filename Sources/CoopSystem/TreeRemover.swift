import CoopSupport
import Foundation

/// Removes folders whose files belong to a container's ids. An ordinary user cannot delete those on
/// the host, so the removal runs as root of a user namespace mapped onto the same range.
///
/// The walk holds a descriptor of each folder it works in and names entries only relative to it
/// (`openat` with `O_NOFOLLOW | O_DIRECTORY`, `unlinkat`, `fstatat` with `AT_SYMLINK_NOFOLLOW`): it never
/// follows a symbolic link, never builds a path (so a tree deeper than `PATH_MAX` goes too), and a folder
/// swapped for a link while it runs is removed as the link, not entered.
public enum TreeRemover {
    public static func remove(_ url: URL, idMap: IDMap, privileged: Bool) throws {
        guard FileSystem.exists(url) else { return }
        if privileged {
            try removeHere(url)
            return
        }
        let stderr = try Pipe.make()
        let process: SpawnedProcess
        do {
            defer { close(stderr.write) }
            process = try SpawnedProcess(
                arguments: [CoopPaths.executablePath(), "__remove", url.path], idMap: idMap, error: stderr.write)
        }
        let errors = PipeReader(fd: stderr.read)
        if process.wait() != 0 {
            throw CoopError(
                .io, "removal of \(url.path)", cause: errors.text().trimmingCharacters(in: .whitespacesAndNewlines),
                fix: "remove it as root")
        }
    }

    /// Removes a tree in this process (root, or already inside the user namespace). A symbolic link at
    /// `url` itself is removed, not followed.
    public static func removeHere(_ url: URL) throws {
        let parent = open(url.deletingLastPathComponent().path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if parent < 0 {
            if errno == ENOENT { return }
            throw CoopError.system("removal of \(url.path)")
        }
        defer { close(parent) }
        var walk = TreeWalk(what: "removal of \(url.path)")
        try walk.remove(Array(url.lastPathComponent.utf8CString), in: parent)
    }
}

/// One removal: a stack of the folders being emptied, from the top down to the current one.
struct TreeWalk {
    struct Level {
        /// Closed (-1) for levels far above the current one, to stay within the descriptor limit;
        /// reopened through `..` and checked by device and inode on the way back up.
        var fd: Int32
        var device: UInt64
        var inode: UInt64
        /// Its name in the level above, NUL-terminated bytes as readdir gave them.
        var name: [CChar]
        /// Subfolders still to remove.
        var pending: [[CChar]]
    }

    /// Descriptors held open at most; deeper trees reopen their folders on the way up.
    static let openLimit = 64
    /// `O_PATH` (Glibc's Swift overlay does not export it): a descriptor that only names the inode.
    static let pathOnly: Int32 = 0o10000000
    /// Attempts for one entry that keeps changing kind (file, folder, link) under the walk.
    static let retryLimit = 1000

    let what: String
    var retries = 0

    init(what: String) { self.what = what }

    mutating func remove(_ name: [CChar], in parent: Int32) throws {
        var info = stat()
        try check(fstat(parent, &info))
        // The folder holding the top: never closed, never removed.
        var stack = [
            Level(fd: parent, device: UInt64(info.st_dev), inode: UInt64(info.st_ino), name: [], pending: [name])
        ]
        defer { for level in stack.dropFirst() where level.fd >= 0 { close(level.fd) } }
        while let current = stack.last {
            if let next = current.pending.last {
                stack[stack.count - 1].pending.removeLast()
                if let child = try enter(next, in: current.fd) {
                    stack.append(child)
                    let far = stack.count - 1 - Self.openLimit
                    if far >= 1, stack[far].fd >= 0 {
                        close(stack[far].fd)
                        stack[far].fd = -1
                    }
                }
                continue
            }
            if stack.count == 1 { return }
            let done = stack.removeLast()
            defer { close(done.fd) }
            if stack[stack.count - 1].fd < 0 {
                stack[stack.count - 1].fd = try reopenParent(of: done.fd, expecting: stack[stack.count - 1])
            }
            if try !removeFolder(done.name, in: stack[stack.count - 1].fd) {
                // Something appeared in it meanwhile: empty it again.
                try countRetry()
                stack[stack.count - 1].pending.append(done.name)
            }
        }
    }

    /// Opens the folder `name` and removes its files; returns it with its subfolders pending. A file or
    /// link (also one that replaced a folder a moment ago) is unlinked instead, and nil returned.
    mutating func enter(_ name: [CChar], in parent: Int32) throws -> Level? {
        var fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        if fd < 0 && errno == EACCES {
            try makeAccessible(name, in: parent)
            fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        }
        if fd < 0 {
            switch errno {
            case ENOENT: return nil
            case ENOTDIR, ELOOP:
                if try unlinkFile(name, in: parent) { return nil }
                try countRetry()
                return try enter(name, in: parent)
            default: throw failure(name)
            }
        }
        var info = stat()
        if fstat(fd, &info) != 0 {
            close(fd)
            throw failure(name)
        }
        var level = Level(
            fd: fd, device: UInt64(info.st_dev), inode: UInt64(info.st_ino), name: name, pending: [])
        do {
            let (files, folders) = try list(fd)
            level.pending = folders
            for file in files where try !unlinkFile(file, in: fd) { level.pending.append(file) }
        } catch {
            close(fd)
            throw error
        }
        return level
    }

    /// The entries of an open folder: (not folders, folders), as raw names.
    func list(_ fd: Int32) throws -> ([[CChar]], [[CChar]]) {
        let copy = dup(fd)
        guard copy >= 0, let stream = fdopendir(copy) else {
            if copy >= 0 { close(copy) }
            throw CoopError.system(what)
        }
        defer { closedir(stream) }
        var files: [[CChar]] = []
        var folders: [[CChar]] = []
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: &entry.pointee.d_name) { bytes in
                Array(bytes.bindMemory(to: CChar.self).prefix { $0 != 0 }) + [0]
            }
            if name == [46, 0] || name == [46, 46, 0] { continue }
            var kind = Int32(entry.pointee.d_type)
            if kind == Int32(DT_UNKNOWN) {
                var info = stat()
                if fstatat(fd, name, &info, AT_SYMLINK_NOFOLLOW) != 0 { continue }
                kind = (info.st_mode & S_IFMT) == S_IFDIR ? Int32(DT_DIR) : Int32(DT_REG)
            }
            if kind == Int32(DT_DIR) { folders.append(name) } else { files.append(name) }
        }
        return (files, folders)
    }

    /// Unlinks a non-folder; false when `name` is a folder after all.
    func unlinkFile(_ name: [CChar], in folder: Int32) throws -> Bool {
        if unlinkat(folder, name, 0) == 0 || errno == ENOENT { return true }
        if errno == EISDIR { return false }
        if errno == EACCES || errno == EPERM {
            // A read-only folder of the image (e.g. 0555): open it up, it goes anyway.
            fchmod(folder, 0o700)
            if unlinkat(folder, name, 0) == 0 || errno == ENOENT { return true }
            if errno == EISDIR { return false }
        }
        throw failure(name)
    }

    /// Removes an emptied folder; false when it is not empty (again).
    func removeFolder(_ name: [CChar], in parent: Int32) throws -> Bool {
        if unlinkat(parent, name, AT_REMOVEDIR) == 0 || errno == ENOENT { return true }
        if errno == ENOTEMPTY || errno == EEXIST { return false }
        if errno == EACCES || errno == EPERM {
            fchmod(parent, 0o700)
            if unlinkat(parent, name, AT_REMOVEDIR) == 0 || errno == ENOENT { return true }
        }
        // Replaced by a file or link after it was emptied: that goes, the link is not followed.
        if errno == ENOTDIR { return try unlinkFile(name, in: parent) }
        throw failure(name)
    }

    /// A folder without search permission (mode 000): given 0700 through a descriptor of it alone.
    func makeAccessible(_ name: [CChar], in parent: Int32) throws {
        let fd = openat(parent, name, Self.pathOnly | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return }
        defer { close(fd) }
        chmod("/proc/self/fd/\(fd)", 0o700)
    }

    /// The folder above `child`, reached by `..`, if it is still the one the walk came down from.
    func reopenParent(of child: Int32, expecting level: Level) throws -> Int32 {
        let fd = openat(child, "..", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw CoopError.system(what) }
        var info = stat()
        guard fstat(fd, &info) == 0, UInt64(info.st_dev) == level.device, UInt64(info.st_ino) == level.inode else {
            close(fd)
            throw CoopError(
                .io, what, cause: "a folder was moved out of the tree while it was being removed",
                fix: "stop what changes the tree, then remove it again")
        }
        return fd
    }

    mutating func countRetry() throws {
        retries += 1
        if retries > Self.retryLimit {
            throw CoopError(
                .io, what, cause: "the tree keeps changing while it is being removed",
                fix: "stop what changes the tree, then remove it again")
        }
    }

    func check(_ result: Int32) throws {
        if result != 0 { throw CoopError.system(what) }
    }

    func failure(_ name: [CChar]) -> CoopError {
        let text = String(decoding: name.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return CoopError.system("\(what): entry \(Console.escaped(text))")
    }
}
