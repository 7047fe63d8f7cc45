import CoopArchive
import CoopContainer
import CoopFormats
import CoopSupport
import CoopSystem
import Foundation
import Testing

@testable import CoopContainer

/// What an image's metadata may put into a container's config and onto the user's terminal.
@Suite("Image text")
struct ImageTextTests {
    @Test("Only allowed keys of an image's config are kept; hooks, host mounts and other includes are dropped")
    func configAllowList() throws {
        let text = """
            # comment
            lxc.include = LXC_TEMPLATE_CONFIG/debian.common.conf
            lxc.include = LXC_TEMPLATE_CONFIG/userns.conf
            lxc.arch = x86_64
            lxc.tty.max = 4
            lxc.mount.auto = proc:mixed sys:ro cgroup:mixed
            lxc.cap.drop = sys_time sys_module
            lxc.signal.halt = SIGRTMIN+3
            lxc.hook.pre-start = /bin/sh -c 'id > /tmp/pwned'
            lxc.mount.entry = /home home none bind 0 0
            lxc.mount.fstab = /etc/fstab
            lxc.mount.auto = shmounts:/tmp
            lxc.include = /etc/passwd
            lxc.include = LXC_TEMPLATE_CONFIG/../../../../etc/common.conf
            lxc.rootfs.path = dir:/
            lxc.idmap = u 0 0 1
            lxc.net.0.type = veth
            lxc.apparmor.profile = unconfined
            lxc.cgroup2.devices.allow = b *:* rwm
            lxc.environment = A=\u{1b}]52;c;cHduZWQ=\u{07}
            lxc.unknown = 1
            """
        let result = ImageConfigFilter.filter(text)
        #expect(
            result.kept.map(\.description) == [
                "lxc.include = /usr/share/lxc/config/debian.common.conf",
                "lxc.include = /usr/share/lxc/config/userns.conf",
                "lxc.arch = x86_64",
                "lxc.tty.max = 4",
                "lxc.mount.auto = proc:mixed sys:ro cgroup:mixed",
                "lxc.cap.drop = sys_time sys_module",
                "lxc.signal.halt = SIGRTMIN+3",
            ])
        #expect(
            result.dropped == [
                "lxc.hook.pre-start", "lxc.mount.entry", "lxc.mount.fstab", "lxc.mount.auto", "lxc.include",
                "lxc.include", "lxc.rootfs.path", "lxc.idmap", "lxc.net.0.type", "lxc.apparmor.profile",
                "lxc.cgroup2.devices.allow", "lxc.environment", "lxc.unknown",
            ])
        let config = ContainerConfig(
            name: "c1", rootfs: URL(fileURLWithPath: "/c/rootfs"), idMap: IDMap.rootDefault, privileged: true,
            distroLines: text, image: "t:x/y build 1\nlxc.hook.stop = /bin/evil")
        let written = try config.text
        let lines = written.split(separator: "\n")
        #expect(!lines.contains { $0.hasPrefix("lxc.hook") }, "\(written)")
        #expect(!written.contains("\u{1b}"))
    }

    @Test("Control characters, C1, bidi overrides and backslashes are shown as escapes")
    func escapes() {
        #expect(Console.escaped("a\u{1b}]52;c;eA==\u{07}b") == "a\\x1b]52;c;eA==\\x07b")
        #expect(Console.escaped("x\u{9b}31m\u{202e}\\") == "x\\u{9b}31m\\u{202e}\\\\")
        #expect(Console.escaped("line1\nline2") == "line1\\x0aline2")
        #expect(Console.escaped("line1\nline2\r", keepNewlines: true) == "line1\nline2\\x0d")
        #expect(Console.escaped("Debian bookworm 20251129_00:00") == "Debian bookworm 20251129_00:00")
    }

    @Test(
        "Cache names: plain names pass; traversal, hidden, separators and control characters do not",
        arguments: [
            ("20251129_00:00", true), ("debian", true), ("1.36", true), ("amd64", true), ("..", false),
            ("../../x", false), (".hidden", false), ("a/b", false), ("", false), ("a\u{1b}", false),
            ("a b", false), (String(repeating: "a", count: 65), false),
        ])
    func cacheNames(name: String, valid: Bool) {
        #expect(CacheNames.isValid(name) == valid)
    }

    /// A meta.tar.xz made with tar from the given files.
    static func metaArchive(_ files: [String: Data], in folder: URL) throws -> URL {
        let content = folder.appendingPathComponent("meta-content")
        try FileManager.default.createDirectory(at: content, withIntermediateDirectories: true)
        for (name, data) in files { try data.write(to: content.appendingPathComponent(name)) }
        let archive = folder.appendingPathComponent("meta.tar.xz")
        try #require(try tool("/usr/bin/tar", "-C", content.path, "-cJf", archive.path, ".") == 0)
        return archive
    }

    @Test("A metadata archive full of large files keeps only the known files; one too large is refused")
    func metadataBounds() throws {
        let scratch = try Scratch()
        var files = ["config": Data("lxc.arch = x86_64\n".utf8), "expiry": Data("1900000000\n".utf8)]
        for index in 0..<20 { files["filler\(index)"] = Data(repeating: 0x61, count: 1 << 20) }
        let meta = try MetaArchive(contentsOf: try Self.metaArchive(files, in: scratch.root))
        #expect(Set(meta.files.keys) == ["config", "expiry"])
        #expect(try JSONEncoder().encode(meta).count < 4096)

        let large = scratch.root.appendingPathComponent("large")
        try FileManager.default.createDirectory(at: large, withIntermediateDirectories: true)
        let huge = try Self.metaArchive(
            ["config-user": Data(repeating: 0x61, count: MetaArchive.maxFileBytes + 1)], in: large)
        #expect(throws: CoopError.self) { try MetaArchive(contentsOf: huge) }
    }

    @Test("A metadata archive of more entries than any image has is refused, not read to its end")
    func metadataEntryBound() throws {
        let scratch = try Scratch()
        var files = ["config": Data("lxc.arch = x86_64\n".utf8)]
        for index in 0...MetaArchive.maxEntries { files["e\(index)"] = Data() }
        let archive = try Self.metaArchive(files, in: scratch.root)
        #expect(throws: CoopError.self) { try MetaArchive(contentsOf: archive) }
    }
}
