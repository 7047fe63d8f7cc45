import Foundation
import Testing

/// A copy of the fixture signer's GnuPG home, to sign crafted files as a genuine remote would; its agent
/// is stopped when the signer goes away. (A short path: gpg's socket path must stay under 108 bytes.)
final class TestSigner {
    let home = URL(fileURLWithPath: "/tmp/coop-sign-\(UUID().uuidString.prefix(8))")

    init() throws {
        let copied = try shell(
            "/bin/cp", "-a", TestHost.fixtures.appendingPathComponent("gnupg/signer").path, home.path)
        try #require(copied.status == 0, "\(copied)")
    }

    deinit {
        _ = try? shell("/usr/bin/gpgconf", "--homedir", home.path, "--kill", "all")
        try? FileManager.default.removeItem(at: home)
    }

    func sign(_ file: URL) throws {
        let signed = try shell(
            "/usr/bin/gpg", "--homedir", home.path, "--batch", "--quiet", "--yes", "--armor", "--detach-sign",
            "--output", file.path + ".asc", file.path)
        try #require(signed.status == 0, "\(signed)")
    }
}

/// Images and exports made to attack the user: signed genuinely where the attack needs it, with the real
/// coop binary, the real fixture server or a file:// remote, real gpg and libarchive.
@Suite("Hostile images and exports", .serialized)
struct HostileImageTests {
    static let busybox = "t:busybox/1.36"

    /// A sandbox whose cache holds busybox fetched from the fixture server, exported to a file.
    func exported() throws -> (Sandbox, URL) {
        let source = try Sandbox(asUser: false)
        try source.remote()
        let fetched = try source.run("fetch", "t:busybox", "1.36")
        try #require(fetched.status == 0, "\(fetched)")
        let archive = source.root.appendingPathComponent("images.tar")
        let exported = try source.run("cache", "export", archive.path)
        try #require(exported.status == 0, "\(exported)")
        return (source, archive)
    }

    /// The export unpacked with tar, changed by `edit` (given the busybox build folder), and packed again
    /// (files only, as coop writes it).
    func rewrite(_ archive: URL, in sandbox: Sandbox, _ edit: (URL) throws -> Void) throws -> URL {
        let work = sandbox.root.appendingPathComponent("rewrite-\(UUID().uuidString.prefix(6))")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        let unpacked = try shell("/usr/bin/tar", "-C", work.path, "-xf", archive.path)
        try #require(unpacked.status == 0, "\(unpacked)")
        let product = work.appendingPathComponent("t/busybox/1.36")
        let arch = try #require(try FileManager.default.contentsOfDirectory(atPath: product.path).first)
        try edit(product.appendingPathComponent("\(arch)/default/20251129_00:00"))
        let files = ((FileManager.default.enumerator(atPath: work.path)?.allObjects as? [String]) ?? []).filter {
            var info = stat()
            return lstat(work.appendingPathComponent($0).path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
        }.sorted()
        let result = sandbox.root.appendingPathComponent("rewritten-\(UUID().uuidString.prefix(6)).tar")
        let packed = try RunningCoop(["/usr/bin/tar", "-C", work.path, "-cf", result.path] + files).wait()
        try #require(packed.status == 0, "\(packed)")
        return result
    }

    func editImageJSON(_ folder: URL, _ change: (inout [String: Any]) -> Void) throws {
        let file = folder.appendingPathComponent("image.json")
        var json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: file)) as? [String: Any])
        change(&json)
        try JSONSerialization.data(withJSONObject: json).write(to: file)
    }

    @Test(
        "cache import refuses a signed build whose image.json names a folder outside the cache, touching nothing",
        .enabled(if: TestHost.ready(.root, .server, .fixtures)))
    func importRefusesNamesOutsideTheCache() throws {
        let (source, archive) = try exported()
        let hostile = try rewrite(archive, in: source) { folder in
            try editImageJSON(folder) { $0["build"] = "../../../../../../victim" }
        }
        let target = try Sandbox(asUser: false)
        try target.remote()
        // cache/t/busybox/1.36/ARCH/default/../../../../../../victim is the sandbox's own folder `victim`.
        let victim = target.root.appendingPathComponent("victim")
        try FileManager.default.createDirectory(at: victim, withIntermediateDirectories: true)
        try Data("mine".utf8).write(to: victim.appendingPathComponent("keep"))

        let refused = try target.run("cache", "import", hostile.path)
        #expect(refused.status == 6, "\(refused)")
        #expect(refused.stderr.contains("image.json names"), "\(refused)")
        #expect(try String(contentsOf: victim.appendingPathComponent("keep"), encoding: .utf8) == "mine")
        #expect(try FileManager.default.contentsOfDirectory(atPath: victim.path) == ["keep"])
        #expect(!(try target.run("cache", "list").stdout.contains("busybox")))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: target.cache.path).filter {
            $0.hasPrefix(".import")
        }
        #expect(leftovers.isEmpty)
    }

    @Test(
        "cache import keeps only signed files and derives image.json's metadata again; create unpacks the verified rootfs",
        .enabled(if: TestHost.ready(.root, .server, .fixtures)))
    func importKeepsOnlySignedFiles() throws {
        let (source, archive) = try exported()
        let evil = source.root.appendingPathComponent("evil")
        try FileManager.default.createDirectory(at: evil, withIntermediateDirectories: true)
        try Data("planted".utf8).write(to: evil.appendingPathComponent("planted"))
        let hostile = try rewrite(archive, in: source) { folder in
            let made = try shell(
                "/usr/bin/tar", "-C", evil.path, "-cf", folder.appendingPathComponent("rootfs.tar").path, ".")
            try #require(made.status == 0)
            try Data("#!/bin/sh\n".utf8).write(to: folder.appendingPathComponent("extra.sh"))
            try editImageJSON(folder) { json in
                var meta = json["meta"] as? [String: Any] ?? [:]
                var files = meta["files"] as? [String: String] ?? [:]
                files["config"] = "lxc.hook.pre-start = /bin/sh -c 'touch /tmp/pwned'\n"
                files["config-user"] = files["config"]
                files["create-message"] = "planted message\n"
                meta["files"] = files
                json["meta"] = meta
                json["verifiedBy"] = "0000000000000000000000000000000000000000"
            }
        }
        let target = try Sandbox(asUser: false)
        try target.remote()
        let imported = try target.run("cache", "import", hostile.path)
        #expect(imported.status == 0, "\(imported)")
        #expect(imported.stderr.contains("left out") && imported.stderr.contains("rootfs.tar"), "\(imported)")
        let product = target.cache.appendingPathComponent("t/busybox/1.36")
        let arch = try #require(try FileManager.default.contentsOfDirectory(atPath: product.path).first)
        let entry = product.appendingPathComponent("\(arch)/default/20251129_00:00")
        #expect(
            Set(try FileManager.default.contentsOfDirectory(atPath: entry.path)).isSubset(of: [
                "image.json", "meta.tar.xz", "meta.tar.xz.asc", "rootfs.tar.xz", "rootfs.tar.xz.asc", "SHA256SUMS",
                "SHA256SUMS.asc",
            ]))
        let json = try String(contentsOf: entry.appendingPathComponent("image.json"), encoding: .utf8)
        #expect(!json.contains("pwned") && !json.contains("planted"))
        #expect(json.contains(TestHost.signerFingerprint) && !json.contains("0000000000000000000000000000000000000000"))

        let created = try target.run("create", "i1", Self.busybox, "--force-cache")
        #expect(created.status == 0, "\(created)")
        #expect(!created.stderr.contains("planted message"))
        let rootfs = target.containers.appendingPathComponent("i1/rootfs")
        #expect(!FileManager.default.fileExists(atPath: rootfs.appendingPathComponent("planted").path))
        #expect(FileManager.default.fileExists(atPath: rootfs.appendingPathComponent("bin").path))
        let config = try String(contentsOf: target.containers.appendingPathComponent("i1/config"), encoding: .utf8)
        #expect(!config.contains("lxc.hook"))
    }

    @Test(
        "cache import --no-verify records the builds as unverified, whatever image.json says",
        .enabled(if: TestHost.ready(.root, .server, .fixtures)))
    func importNoVerifyIsUnverified() throws {
        let (source, archive) = try exported()
        defer { withExtendedLifetime(source) {} }
        let target = try Sandbox(asUser: false)
        try target.remote()
        let imported = try target.run("cache", "import", archive.path, "--no-verify")
        #expect(imported.status == 0, "\(imported)")
        let list = try target.run("cache", "list")
        let row = try #require(list.stdout.split(separator: "\n").first { $0.contains("busybox") })
        #expect(row.hasSuffix(" no"), "\(list)")
    }

    @Test(
        "cache import of a remote the machine lacks shows its key's fingerprint and adds it only with --trust-remote",
        .enabled(if: TestHost.ready(.root, .server, .fixtures)))
    func importCarriesRemote() throws {
        let (source, archive) = try exported()
        defer { withExtendedLifetime(source) {} }
        let target = try Sandbox(asUser: false)
        let asked = try target.run("cache", "import", archive.path)
        #expect(asked.status == 5, "\(asked)")
        #expect(
            asked.stderr.contains(TestHost.signerFingerprint) && asked.stderr.contains("--trust-remote"), "\(asked)")
        #expect(!(try target.run("cache", "list").stdout.contains("busybox")))

        let wrong = try String(contentsOf: TestHost.fixtures.appendingPathComponent("keys/wrong.fpr"), encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let refused = try target.run("cache", "import", archive.path, "--trust-remote", wrong)
        #expect(refused.status == 5, "\(refused)")
        #expect(!FileManager.default.fileExists(atPath: target.config.appendingPathComponent("coop/images.index").path))

        let trusted = try target.run("cache", "import", archive.path, "--trust-remote", TestHost.signerFingerprint)
        #expect(trusted.status == 0, "\(trusted)")
        #expect(trusted.stderr.contains("imported t:busybox/1.36/"), "\(trusted)")
        #expect(!trusted.stderr.contains("t:t:"), "\(trusted)")
        let list = try String(contentsOf: target.config.appendingPathComponent("coop/images.index"), encoding: .utf8)
        #expect(list.contains("t;lxc;https://127.0.0.1:") && list.contains(TestHost.signerFingerprint), "\(list)")
        let rows = try target.run("cache", "list").stdout
        #expect(rows.split(separator: "\n").contains { $0.contains("busybox") && $0.hasSuffix(" yes") }, "\(rows)")
        #expect(try target.run("create", "i1", Self.busybox, "--force-cache").status == 0)
    }

    @Test(
        "cache list shows what an entry takes on disk, a file with two names counted once",
        .enabled(if: TestHost.ready(.root, .server, .fixtures)))
    func cacheListDiskUsage() throws {
        let sandbox = try Sandbox(asUser: false)
        try sandbox.remote()
        #expect(try sandbox.run("create", "c1", Self.busybox).status == 0)
        let product = sandbox.cache.appendingPathComponent("t/busybox/1.36")
        let arch = try #require(try FileManager.default.contentsOfDirectory(atPath: product.path).first)
        let entry = product.appendingPathComponent("\(arch)/default/20251129_00:00")
        // A second name of the rootfs takes no more room.
        #expect(
            link(
                entry.appendingPathComponent("rootfs.tar.xz").path,
                entry.appendingPathComponent("rootfs.tar.xz.link").path) == 0)
        let du = try shell("/usr/bin/du", "-s", "--block-size=1", entry.path)
        let bytes = try #require(Double(du.stdout.split(separator: "\t").first ?? ""))
        let list = try sandbox.run("cache", "list")
        let row = try #require(list.stdout.split(separator: "\n").first { $0.contains("busybox") })
        #expect(row.contains(String(format: "%.1f MB", bytes / 1e6)), "\(list) du: \(du)")
    }

    /// The fixture site `good` copied as a file:// remote `t`, with busybox's metadata or rootfs replaced by
    /// crafted files that the fixture key signs, as a compromised or hostile image publisher would.
    func craftedRemote(_ sandbox: Sandbox, meta: [String: String]? = nil, rootfs: URL? = nil) throws {
        let site = sandbox.root.appendingPathComponent("site")
        let copied = try shell("/bin/cp", "-a", TestHost.fixtures.appendingPathComponent("www/good").path, site.path)
        try #require(copied.status == 0, "\(copied)")
        let product = site.appendingPathComponent("images/busybox/1.36")
        let arch = try #require(try FileManager.default.contentsOfDirectory(atPath: product.path).first)
        let build = product.appendingPathComponent("\(arch)/default/20251129_00:00")
        for name in ["SHA256SUMS", "SHA256SUMS.asc"] { unlink(build.appendingPathComponent(name).path) }
        let signer = try TestSigner()
        if let meta {
            let work = sandbox.root.appendingPathComponent("meta-work")
            let archive = try Self.metaArchive(meta.mapValues { Data($0.utf8) }, in: work)
            unlink(build.appendingPathComponent("meta.tar.xz").path)
            try FileManager.default.copyItem(at: archive, to: build.appendingPathComponent("meta.tar.xz"))
            try signer.sign(build.appendingPathComponent("meta.tar.xz"))
        }
        if let rootfs {
            unlink(build.appendingPathComponent("rootfs.tar.xz").path)
            try FileManager.default.copyItem(at: rootfs, to: build.appendingPathComponent("rootfs.tar.xz"))
            try signer.sign(build.appendingPathComponent("rootfs.tar.xz"))
        }
        try sandbox.remotes([("t", "lxc", "file://" + site.path, TestHost.signerKey, TestHost.signerFingerprint)])
    }

    @Test(
        "A signed image's hooks, host mounts and includes never reach the config; its create-message is shown escaped",
        .enabled(if: TestHost.ready(.root, .fixtures)))
    func configAllowListAndEscapes() throws {
        let sandbox = try Sandbox(asUser: false)
        let hostile = """
            lxc.include = LXC_TEMPLATE_CONFIG/common.conf
            lxc.arch = x86_64
            lxc.tty.max = 4
            lxc.hook.pre-start = /bin/sh -c 'touch /tmp/coop-pwned'
            lxc.mount.entry = /home home none bind,create=dir 0 0
            lxc.include = /etc/passwd
            lxc.rootfs.path = dir:/
            lxc.idmap = u 0 0 1
            lxc.net.0.type = veth
            lxc.environment = A=\u{1b}]52;c;cHduZWQ=\u{07}

            """
        try craftedRemote(
            sandbox,
            meta: [
                "config": hostile, "config-user": hostile, "templates": "/etc/hostname\n",
                "create-message": "hello \u{1b}]52;c;cHduZWQ=\u{07} world\n", "expiry": "4102444800\n",
            ])
        let created = try sandbox.run("create", "c1", Self.busybox)
        #expect(created.status == 0, "\(created)")
        #expect(
            created.stderr.contains("lxc.hook.pre-start") && created.stderr.contains("lxc.mount.entry"), "\(created)")
        #expect(!created.stderr.contains("\u{1b}"), "\(created)")
        #expect(created.stderr.contains("hello \\x1b]52;c;cHduZWQ=\\x07 world"), "\(created)")
        let config = try String(contentsOf: sandbox.containers.appendingPathComponent("c1/config"), encoding: .utf8)
        let lines = config.split(separator: "\n").map(String.init)
        #expect(lines.contains("lxc.include = /usr/share/lxc/config/common.conf"))
        #expect(lines.contains("lxc.tty.max = 4"))
        for forbidden in ["lxc.hook", "lxc.mount.entry", "lxc.include = /etc/passwd", "lxc.rootfs.path = dir:/\n"] {
            #expect(!config.contains(forbidden), "\(forbidden) in \(config)")
        }
        #expect(!lines.contains("lxc.idmap = u 0 0 1") && !config.contains("veth") && !config.contains("\u{1b}"))
    }

    @Test(
        "A signed image refused as unsafe is not kept in the cache, leaves no .partial, cold and warm",
        .enabled(if: TestHost.ready(.root, .fixtures)))
    func refusedImageNotKept() throws {
        let sandbox = try Sandbox(asUser: false)
        try craftedRemote(
            sandbox, rootfs: TestHost.fixtures.appendingPathComponent("malicious/absolute.tar.xz"))
        let cold = try sandbox.run("create", "c1", Self.busybox)
        #expect(cold.status == 6, "\(cold)")
        #expect(!(try sandbox.run("cache", "list").stdout.contains("busybox")))
        #expect(sandbox.listing(sandbox.cache).isEmpty, "\(sandbox.listing(sandbox.cache))")
        #expect(sandbox.listing(sandbox.containers).isEmpty, "\(sandbox.listing(sandbox.containers))")

        // Fetched first (fetch does not unpack), then refused by create: it leaves the cache too.
        #expect(try sandbox.run("fetch", "t:busybox", "1.36").status == 0)
        let warm = try sandbox.run("create", "c2", Self.busybox)
        #expect(warm.status == 6, "\(warm)")
        #expect(!(try sandbox.run("cache", "list").stdout.contains("busybox")))
        #expect(!FileManager.default.fileExists(atPath: sandbox.cache.appendingPathComponent(".partial").path))
    }

    @Test(
        "An ordinary user destroys a container holding a tree deeper than PATH_MAX",
        .enabled(if: TestHost.ready(.root, .ordinaryUser, .server, .fixtures)))
    func destroyDeepTree() throws {
        let sandbox = try Sandbox(asUser: true)
        try sandbox.remote()
        let created = try sandbox.run("create", "d1", Self.busybox)
        try #require(created.status == 0, "\(created)")
        let user = try TestHost.user()
        let tmp = sandbox.containers.appendingPathComponent("d1/rootfs/tmp")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
        // As root of the container would make it: owned by the container's root (the user's first subuid).
        try TreeRemoverTests.deepChain(below: tmp, depth: 600, owner: user.subuid)
        let destroyed = try sandbox.run("destroy", "d1")
        #expect(destroyed.status == 0, "\(destroyed)")
        #expect(!FileManager.default.fileExists(atPath: sandbox.containers.appendingPathComponent("d1").path))
    }

    /// A meta.tar.xz made with tar from the given files.
    static func metaArchive(_ files: [String: Data], in folder: URL) throws -> URL {
        let content = folder.appendingPathComponent("meta-content")
        try FileManager.default.createDirectory(at: content, withIntermediateDirectories: true)
        for (name, data) in files { try data.write(to: content.appendingPathComponent(name)) }
        let archive = folder.appendingPathComponent("meta.tar.xz")
        let made = try shell("/usr/bin/tar", "-C", content.path, "-cJf", archive.path, ".")
        try #require(made.status == 0, "\(made)")
        return archive
    }
}
