import CoopSupport
import Foundation
import Testing

@testable import CoopRootfs

/// Copy-on-write containers as an ordinary user: an overlay of the build's shared base with an upper layer
/// of their own, `coop copy`, and what `cache prune` does with a base in use.
@Suite("Copy-on-write containers", .serialized)
struct CowTests {
    func userSandbox(asUser: Bool = true, _ name: String = #function) throws -> Sandbox {
        let sandbox = try Sandbox(asUser: asUser, name)
        try sandbox.remote()
        return sandbox
    }

    /// The one base of the sandbox's containers folder.
    func base(_ sandbox: Sandbox) throws -> URL {
        let bases = sandbox.containers.appendingPathComponent(".bases")
        let names = try FileManager.default.contentsOfDirectory(atPath: bases.path).filter {
            !$0.hasPrefix(".")
        }
        try #require(names.count == 1, "\(names)")
        return bases.appendingPathComponent(names[0]).appendingPathComponent("rootfs")
    }

    /// Every entry below `folder` with its type, mode, owner, size and (files) sha256 or (links) target.
    func digest(_ folder: URL) -> [String] {
        let paths = (FileManager.default.enumerator(atPath: folder.path)?.allObjects as? [String]) ?? []
        return paths.sorted().map { relative in
            let path = folder.appendingPathComponent(relative).path
            var info = stat()
            lstat(path, &info)
            var line = "\(relative) \(String(info.st_mode, radix: 8)) \(info.st_uid):\(info.st_gid) \(info.st_size)"
            if info.st_mode & S_IFMT == S_IFREG {
                line += " " + ((try? SHA256Hasher.hash(files: [URL(fileURLWithPath: path)])) ?? "unreadable")
            } else if info.st_mode & S_IFMT == S_IFLNK {
                line += " -> " + ((try? FileManager.default.destinationOfSymbolicLink(atPath: path)) ?? "?")
            }
            return line
        }
    }

    /// Bytes the files below `folder` take on disk (allocated blocks).
    func diskUsage(_ folder: URL) -> Int {
        let paths = (FileManager.default.enumerator(atPath: folder.path)?.allObjects as? [String]) ?? []
        return (paths.map { folder.appendingPathComponent($0).path } + [folder.path]).reduce(0) { total, path in
            var info = stat()
            return lstat(path, &info) == 0 ? total + Int(info.st_blocks) * 512 : total
        }
    }

    func run(_ sandbox: Sandbox, _ name: String, _ script: String) throws -> CoopResult {
        try sandbox.run("start", name, "--foreground", "--", "/bin/sh", "-c", script)
    }

    @Test(
        "A cow container is tiny, keeps its changes in its own upper layer, and never changes the base",
        .enabled(if: TestHost.ready(.root, .ordinaryUser, .server, .fixtures)), arguments: [true, false])
    func upperLayerOnly(asUser: Bool) throws {
        let sandbox = try userSandbox(asUser: asUser)
        try sandbox.expect(0, "create", "c1", "t:busybox/1.36", "--cow")
        let base = try base(sandbox)
        let before = digest(base)
        #expect(!before.isEmpty)
        let started = Date()
        try sandbox.expect(0, "create", "c2", "t:busybox/1.36", "--cow")
        let seconds = Date().timeIntervalSince(started)
        #expect(seconds < 5, "a cow create took \(seconds) s")
        let c1 = sandbox.containers.appendingPathComponent("c1")
        let c2 = sandbox.containers.appendingPathComponent("c2")
        #expect(diskUsage(c2) < 1 << 20, "\(diskUsage(c2)) bytes before the first start")
        let config = try String(contentsOf: c2.appendingPathComponent("config"), encoding: .utf8)
        #expect(config.contains("lxc.rootfs.path = overlay:\(base.path):\(c2.path)/delta0"), "\(config)")
        // The templates are the container's own, in its upper layer.
        let hostname = try String(contentsOf: c2.appendingPathComponent("delta0/etc/hostname"), encoding: .utf8)
        #expect(hostname.trimmingCharacters(in: .whitespacesAndNewlines) == "c2")

        let first = try run(
            sandbox, "c1",
            "echo one > /mark-c1 && echo cowmark >> /etc/passwd && rm /etc/group && cat /etc/hostname && hostname")
        #expect(first.status == 0, "\(first)")
        #expect(first.stdout == "c1\nc1\n", "\(first)")
        #expect(FileSystemCheck.exists(c1.appendingPathComponent("delta0/mark-c1")))
        #expect(!FileSystemCheck.exists(base.appendingPathComponent("mark-c1")))
        // c2 sees the base as it was; its own write stays its own.
        let second = try run(
            sandbox, "c2",
            "test ! -e /mark-c1 && test -e /etc/group && ! grep -q cowmark /etc/passwd && echo two > /mark-c2")
        #expect(second.status == 0, "\(second)")
        // The changes stay across starts.
        let again = try run(sandbox, "c1", "cat /mark-c1 && test ! -e /mark-c2 && test ! -e /etc/group")
        #expect(again.status == 0 && again.stdout == "one\n", "\(again)")
        // Root inside writes the base's files only through the overlay: copied up, never in place.
        #expect(digest(base) == before)

        try sandbox.expect(0, "destroy", "c1")
        try sandbox.expect(0, "destroy", "c2")
        #expect(digest(base) == before, "destroy left the base as it was")
    }

    @Test(
        "cache prune keeps a base while a cow container uses it, and removes it after",
        .enabled(if: TestHost.ready(.root, .ordinaryUser, .server, .fixtures)))
    func pruneKeepsUsedBase() throws {
        let sandbox = try userSandbox()
        try sandbox.expect(0, "create", "c3", "t:busybox/1.36", "--cow")
        let base = try base(sandbox)
        let pruned = try sandbox.expect(0, "cache", "prune", "--all")
        #expect(pruned.stderr.contains("kept 1 unpacked bases"), "\(pruned)")
        #expect(FileSystemCheck.exists(base))
        try sandbox.expect(0, "start", "c3", "--foreground", "--", "/bin/true")
        try sandbox.expect(0, "destroy", "c3")
        try sandbox.expect(0, "cache", "prune", "--all")
        #expect(!FileSystemCheck.exists(base))
        // A base removed behind coop's back: the start names it and says what to do.
        try sandbox.expect(0, "create", "c4", "t:busybox/1.36", "--cow")
        try FileManager.default.removeItem(at: try self.base(sandbox).deletingLastPathComponent())
        let orphan = try sandbox.expect(3, "start", "c4", "--foreground", "--", "/bin/true")
        #expect(orphan.stderr.contains("is gone") && orphan.stderr.contains("destroy c4"), "\(orphan)")
        try sandbox.expect(0, "destroy", "c4")
    }

    @Test(
        "copy of a cow container and of a plain one gives a working, independent container with its own name",
        .enabled(if: TestHost.ready(.root, .ordinaryUser, .server, .fixtures)))
    func copies() throws {
        let sandbox = try userSandbox()
        for (source, cow) in [("a", true), ("p", false)] {
            let copy = source + "2"
            let created = try sandbox.start(["create", source, "t:busybox/1.36"] + (cow ? ["--cow"] : [])).wait()
            #expect(created.status == 0, "\(created)")
            // A new file, a removed one (a whiteout) and a folder made again (opaque): all travel with a copy.
            try sandbox.expect(
                0, "start", source, "--foreground", "--", "/bin/sh", "-c",
                "echo kept > /root/kept && rm /etc/os-release && rm -r /var && mkdir /var && touch /var/own")
            let copied = try sandbox.expect(0, "copy", source, copy)
            #expect(copied.stdout.hasSuffix("/\(copy)\n"), "\(copied)")
            let folder = sandbox.containers.appendingPathComponent(copy)
            let config = try String(contentsOf: folder.appendingPathComponent("config"), encoding: .utf8)
            #expect(config.contains("lxc.uts.name = \(copy)\n"), "\(config)")
            #expect(config.contains(cow ? "\(folder.path)/delta0" : "dir:\(folder.path)/rootfs"), "\(config)")
            // The name is filled in again as a whole word: "localhost" in /etc/hosts keeps its "a".
            let inside = try run(
                sandbox, copy,
                "cat /root/kept /etc/hostname && hostname && grep -c localhost /etc/hosts && test ! -e /etc/os-release"
                    + " && ls /var && echo new > /root/new")
            #expect(inside.status == 0, "\(inside)")
            #expect(inside.stdout.hasPrefix("kept\n\(copy)\n\(copy)\n"), "\(inside)")
            #expect(inside.stdout.hasSuffix("\nown\n"), "\(inside)")
            let original = try run(sandbox, source, "test ! -e /root/new && cat /etc/hostname")
            #expect(original.status == 0 && original.stdout == "\(source)\n", "\(original)")
        }
        try sandbox.expect(0, "start", "a")
        let refused = try sandbox.run("copy", "a", "a3")
        #expect(refused.status == 7, "\(refused)")
        #expect(refused.stderr.contains("stop it first"), "\(refused)")
        try sandbox.expect(0, "stop", "a", "--timeout", "5")
    }
}

extension CowTests {
    @Test(
        "lxc-start runs a cow container as the user: its changes land in the upper layer, and coop sees them",
        .enabled(
            if: TestHost.ready(.root, .ordinaryUser, .server, .fixtures)
                && FileManager.default.isExecutableFile(atPath: "/usr/bin/lxc-start")))
    func lxcStartsCow() throws {
        let sandbox = try userSandbox()
        try sandbox.expect(0, "create", "l1", "t:busybox/1.36", "--cow")
        let base = try base(sandbox)
        let before = digest(base)
        let asUser = TestHost.repository.appendingPathComponent("Tests/Fixtures/lxc-as-user.sh").path
        let user = TestHost.userName
        let path = sandbox.containers.path
        let started = try shell(asUser, user, "lxc-start", "-P", path, "-n", "l1", "-d")
        #expect(started.status == 0, "\(started)")
        let attached = try shell(
            asUser, user, "lxc-attach", "-P", path, "-n", "l1", "--", "/bin/sh", "-c",
            "echo lxc > /lxcmark && cat /etc/hostname")
        #expect(attached.status == 0 && attached.stdout == "l1\n", "\(attached)")
        let stopped = try shell(asUser, user, "lxc-stop", "-P", path, "-n", "l1", "-k")
        #expect(stopped.status == 0, "\(stopped)")
        #expect(FileSystemCheck.exists(sandbox.containers.appendingPathComponent("l1/delta0/lxcmark")))
        let seen = try run(sandbox, "l1", "cat /lxcmark")
        #expect(seen.status == 0 && seen.stdout == "lxc\n", "\(seen)")
        #expect(digest(base) == before)
    }
}

extension CowTests {
    @Test(
        "A copy fills its templates in for whole names only",
        arguments: [
            ("127.0.0.1 localhost\n127.0.1.1 a\n", "127.0.0.1 localhost\n127.0.1.1 a2\n"),
            ("a", "a2"), ("a.lan a-b ab ba a", "a.lan a-b ab ba a2"), ("(a)\ta,a", "(a2)\ta2,a2"),
        ])
    func wholeNames(text: String, filled: String) {
        #expect(RootfsExtractor.replacingWholeNames("a", with: "a2", in: text) == filled)
    }
}

enum FileSystemCheck {
    static func exists(_ url: URL) -> Bool {
        var info = stat()
        return lstat(url.path, &info) == 0
    }
}
