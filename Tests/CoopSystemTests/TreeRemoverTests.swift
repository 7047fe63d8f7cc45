import CoopSystem
import Foundation
import Testing

/// `TreeRemover` walks by descriptor: links are removed, never followed, also when they appear while it
/// runs, and depth is no limit.
@Suite("Tree removal")
struct TreeRemoverTests {
    /// A folder of the owner's with files, which no removal of another tree may touch.
    func ownerFolder(in sandbox: Sandbox) throws -> (URL, [URL]) {
        let owner = sandbox.root.appendingPathComponent("owner")
        try FileManager.default.createDirectory(
            at: owner.appendingPathComponent("sub"), withIntermediateDirectories: true)
        let files =
            (0..<5).map { owner.appendingPathComponent("file\($0)") } + [owner.appendingPathComponent("sub/deep")]
        for file in files { try Data("keep".utf8).write(to: file) }
        return (owner, files)
    }

    @Test("Links to the outside, a hard link and read-only folders: the tree goes, the outside stays")
    func staticLinks() throws {
        let sandbox = try Sandbox(asUser: false)
        let (owner, files) = try ownerFolder(in: sandbox)
        let tree = sandbox.root.appendingPathComponent("tree")
        let inner = tree.appendingPathComponent("a/b")
        try FileManager.default.createDirectory(at: inner, withIntermediateDirectories: true)
        for (index, folder) in [tree, tree.appendingPathComponent("a"), inner].enumerated() {
            symlink(owner.path, folder.appendingPathComponent("to-owner").path)
            symlink(owner.appendingPathComponent("file0").path, folder.appendingPathComponent("to-file").path)
            symlink("../../../owner", folder.appendingPathComponent("relative-\(index)").path)
            symlink("loop", folder.appendingPathComponent("loop").path)
        }
        #expect(link(owner.appendingPathComponent("file1").path, inner.appendingPathComponent("hard").path) == 0)
        let locked = tree.appendingPathComponent("locked")
        try FileManager.default.createDirectory(at: locked, withIntermediateDirectories: true)
        try Data("x".utf8).write(to: locked.appendingPathComponent("x"))
        chmod(locked.path, 0o555)
        chmod(inner.path, 0o000)

        try TreeRemover.removeHere(tree)

        #expect(!FileManager.default.fileExists(atPath: tree.path))
        for file in files {
            #expect(try String(contentsOf: file, encoding: .utf8) == "keep", "\(file.path)")
        }
        var info = stat()
        #expect(stat(owner.path, &info) == 0 && info.st_mode & 0o777 == 0o755, "the owner's folder kept its mode")
    }

    @Test("A link at the top is removed, not followed")
    func linkAtTop() throws {
        let sandbox = try Sandbox(asUser: false)
        let (owner, files) = try ownerFolder(in: sandbox)
        let top = sandbox.root.appendingPathComponent("top")
        symlink(owner.path, top.path)
        try TreeRemover.removeHere(top)
        #expect(!FileManager.default.fileExists(atPath: top.path))
        #expect(files.allSatisfy { FileManager.default.fileExists(atPath: $0.path) })
    }

    /// Makes a chain of `depth` folders named `name` below `top`, with a file at the bottom, by descriptor.
    static func deepChain(below top: URL, depth: Int, name: String = "abcdefgh", owner: uid_t? = nil) throws {
        var fd = open(top.path, O_RDONLY | O_DIRECTORY)
        try #require(fd >= 0)
        for _ in 0..<depth {
            try #require(mkdirat(fd, name, 0o755) == 0)
            if let owner { fchownat(fd, name, owner, owner, AT_SYMLINK_NOFOLLOW) }
            let next = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW)
            close(fd)
            fd = next
            try #require(fd >= 0)
        }
        let file = openat(fd, "bottom", O_WRONLY | O_CREAT, 0o644)
        if let owner { fchown(file, owner, owner) }
        close(file)
        close(fd)
    }

    @Test("A tree deeper than PATH_MAX is removed")
    func deeperThanPathMax() throws {
        let sandbox = try Sandbox(asUser: false)
        let tree = sandbox.root.appendingPathComponent("deep")
        try FileManager.default.createDirectory(at: tree, withIntermediateDirectories: true)
        try Self.deepChain(below: tree, depth: 1200)  // 1200 × 9 bytes: more than twice PATH_MAX
        try TreeRemover.removeHere(tree)
        #expect(!FileManager.default.fileExists(atPath: tree.path))
    }

    @Test("Folders swapped for links to the owner's folder during the removal: the owner's files stay")
    func swappedDuringRemoval() throws {
        let sandbox = try Sandbox(asUser: false)
        let (owner, files) = try ownerFolder(in: sandbox)
        let tree = sandbox.root.appendingPathComponent("tree")
        let count = 400
        for index in 0..<count {
            let folder = tree.appendingPathComponent("d\(index)/inner")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            for file in 0..<10 { try Data().write(to: folder.appendingPathComponent("f\(file)")) }
        }
        let done = Atomic()
        let racer = Thread {
            var round = 0
            while !done.isSet {
                for index in 0..<count {
                    let folder = tree.appendingPathComponent("d\(index)")
                    let inner = folder.appendingPathComponent("inner")
                    // A folder moved aside and a link to the owner's folder put in its place, at two depths.
                    rename(inner.path, folder.appendingPathComponent("moved\(round)").path)
                    symlink(owner.path, inner.path)
                    rename(folder.path, tree.appendingPathComponent("m\(index)-\(round)").path)
                    symlink(owner.path, folder.path)
                }
                round += 1
            }
        }
        racer.start()
        // The removal may give up on a tree that keeps changing; it must never reach the owner's files.
        _ = try? TreeRemover.removeHere(tree)
        done.set()
        while !racer.isFinished { usleep(1000) }
        for file in files {
            #expect(FileManager.default.fileExists(atPath: file.path), "\(file.path) was removed")
        }
        try TreeRemover.removeHere(tree)
        #expect(!FileManager.default.fileExists(atPath: tree.path))
        #expect(files.allSatisfy { FileManager.default.fileExists(atPath: $0.path) })
    }
}

/// A flag set by one thread and read by another.
final class Atomic: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}
