import CoopFormats
import CoopSupport
import Foundation
import Testing

/// A hostile network or mirror: crafted image indexes, served from a `file://` remote built in the test's
/// sandbox (signed with the fixture key where the test needs a genuine signature) or from the fixture
/// nginx. Every test here failed on the code before these checks existed.
@Suite("Hostile indexes and transfers", .serialized)
struct HostileIndexTests {
    static let ready = TestHost.ready(.root, .server, .fixtures)

    // MARK: - End to end, against crafted remotes

    @Test(
        "A newline in a simplestreams version key reaches nothing: refused unsigned, and refused with --no-verify",
        .enabled(if: ready))
    func injectedVersionKey() throws {
        let sandbox = try Sandbox(asUser: false)
        let site = try CraftedSite(sandbox)
        let build = "20251129_00:00\nlxc.hook.pre-start = /bin/touch /tmp/coop-hostile-hook"
        try site.addFiles(at: "images/b1", signatures: true)
        try site.writeStreams([(build, "images/b1", true)], sign: false)
        try sandbox.remotes([site.remoteLine("simplestreams")])

        let unsigned = try sandbox.run("create", "c1", "t:busybox/1.36/amd64")
        #expect(unsigned.status == 5, "\(unsigned)")
        #expect(unsigned.stderr.contains("images.json"), "\(unsigned)")
        #expect(unsigned.stderr.contains("--no-verify"), "\(unsigned)")

        let unverified = try sandbox.run("create", "c1", "t:busybox/1.36/amd64", "--no-verify")
        #expect(unverified.status == 5, "\(unverified)")
        #expect(unverified.stderr.contains("field version"), "\(unverified)")
        #expect(unverified.stderr.contains("\\nlxc.hook.pre-start"), "the value is shown escaped: \(unverified)")
        #expect(!FileManager.default.fileExists(atPath: sandbox.containers.appendingPathComponent("c1").path))
        #expect(!sandbox.listing(sandbox.cache).contains { $0.contains("lxc.hook") })
    }

    @Test(
        "An unsigned index is refused for a remote with a key, on both protocols",
        .enabled(if: ready), arguments: ["lxc", "simplestreams"])
    func unsignedIndex(imageProtocol: String) throws {
        let sandbox = try Sandbox(asUser: false)
        let site = try CraftedSite(sandbox)
        // The build's own files are genuinely signed: only the index is not.
        try site.addFiles(at: "images/b1", signatures: true)
        try site.writeLXCIndex(["busybox;1.36;amd64;default;20251129_00:00;/images/b1/"], sign: false)
        try site.writeStreams([("20251129_00:00", "images/b1", true)], sign: false)
        try sandbox.remotes([site.remoteLine(imageProtocol)])
        let result = try sandbox.run("fetch", "t:busybox", "1.36", "amd64")
        #expect(result.status == 5, "\(result)")
        #expect(result.stderr.contains(imageProtocol == "lxc" ? "index-" : "images.json"), "\(result)")
        #expect(result.stderr.contains("is missing"), "\(result)")
        #expect(result.stderr.contains("--no-verify"), "\(result)")
        #expect(!(try sandbox.run("cache", "list").stdout.contains("busybox")))
    }

    @Test(
        "A signed index offering an older build than one fetched before is refused; a lost record starts over",
        .enabled(if: ready))
    func rollback() throws {
        let sandbox = try Sandbox(asUser: false)
        let site = try CraftedSite(sandbox)
        try site.addFiles(at: "images/new", signatures: true)
        try site.addFiles(at: "images/old", signatures: true)
        try site.writeLXCIndex(["busybox;1.36;amd64;default;20251129_00:00;/images/new/"], sign: true)
        try sandbox.remotes([site.remoteLine("lxc")])
        let first = try sandbox.run("fetch", "t:busybox", "1.36", "amd64")
        #expect(first.status == 0, "\(first)")

        // An old, genuinely signed index comes back (the fixture build has long expired, so fetch asks).
        try site.writeLXCIndex(["busybox;1.36;amd64;default;20251101_00:00;/images/old/"], sign: true)
        let rolled = try sandbox.run("fetch", "t:busybox", "1.36", "amd64")
        #expect(rolled.status == 5, "\(rolled)")
        #expect(rolled.stderr.contains("older than build 20251129_00:00"), "\(rolled)")
        let flushed = try sandbox.run("fetch", "t:busybox", "1.36", "amd64", "--flush-cache")
        #expect(flushed.status == 5, "\(flushed)")
        #expect(!(try sandbox.run("cache", "list").stdout.contains("20251101_00:00")))

        // A damaged record is an error naming the file; a removed one starts over.
        let record = sandbox.cache.appendingPathComponent(".verified/t.json")
        #expect(FileManager.default.fileExists(atPath: record.path))
        try Data("{".utf8).write(to: record)
        let damaged = try sandbox.run("fetch", "t:busybox", "1.36", "amd64")
        #expect(damaged.status == 9, "\(damaged)")
        #expect(damaged.stderr.contains(record.path) && damaged.stderr.contains("remove the file"), "\(damaged)")
        try FileManager.default.removeItem(at: record)
        let again = try sandbox.run("fetch", "t:busybox", "1.36", "amd64")
        #expect(again.status == 0, "\(again)")
    }

    @Test(
        "An old build relabelled 99991231_23:59 in an unsigned index is refused and pins nothing",
        .enabled(if: ready), arguments: ["lxc", "simplestreams"])
    func relabel(imageProtocol: String) throws {
        let sandbox = try Sandbox(asUser: false)
        let site = try CraftedSite(sandbox)
        try site.addFiles(at: "images/b1", signatures: true)
        try site.writeLXCIndex(["busybox;1.36;amd64;default;20251129_00:00;/images/b1/"], sign: true)
        try site.writeStreams([("20251129_00:00", "images/b1", true)], sign: true)
        try sandbox.remotes([site.remoteLine(imageProtocol)])
        #expect(try sandbox.run("fetch", "t:busybox", "1.36", "amd64").status == 0)

        try site.writeLXCIndex(["busybox;1.36;amd64;default;99991231_23:59;/images/b1/"], sign: false)
        try site.writeStreams([("99991231_23:59", "images/b1", true)], sign: false)
        let relabelled = try sandbox.run("fetch", "t:busybox", "1.36", "amd64", "--flush-cache")
        #expect(relabelled.status == 5, "\(relabelled)")
        #expect(relabelled.stderr.contains("is missing"), "\(relabelled)")
        #expect(!(try sandbox.run("cache", "list").stdout.contains("9999")))
    }

    @Test("An index larger than the limit is refused at the limit, without growing memory", .enabled(if: ready))
    func oversizedIndex() throws {
        let sandbox = try Sandbox(asUser: false)
        let site = try CraftedSite(sandbox)
        for name in ["index-system", "index-user"] {
            let file = site.root.appendingPathComponent("meta/1.0/\(name)")
            try FileManager.default.createDirectory(
                at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
            #expect(try shell("/usr/bin/truncate", "-s", "1G", file.path).status == 0)
            try Data("not a signature\n".utf8).write(to: file.appendingPathExtension("asc"))
        }
        try sandbox.remotes([site.remoteLine("lxc")])
        let result = try RunningCoop(
            ["/usr/bin/time", "-f", "maxrss=%M"] + (try sandbox.commandLine(["fetch", "t:busybox", "1.36", "amd64"]))
        ).wait()
        #expect(result.status == 5, "\(result)")
        #expect(result.stderr.contains("64 MiB"), "\(result)")
        let line = try #require(result.stderr.split(separator: "\n").last { $0.hasPrefix("maxrss=") })
        let kilobytes = try #require(Int(line.dropFirst("maxrss=".count)))
        #expect(kilobytes < 200 * 1024, "coop grew to \(kilobytes) KiB")
    }

    @Test("A server dripping bytes hits the overall deadline", .enabled(if: ready))
    func drippingServer() throws {
        let sandbox = try Sandbox(asUser: false)
        try sandbox.remote(site: "stall")
        sandbox.extraEnvironment["COOP_STALL_TIMEOUT"] = "120"
        sandbox.extraEnvironment["COOP_TRANSFER_DEADLINE"] = "4"
        let started = Date()
        let result = try sandbox.run("fetch", "t:busybox", "1.36", "amd64")
        let elapsed = Date().timeIntervalSince(started)
        #expect(result.status == 4, "\(result)")
        #expect(result.stderr.contains("deadline"), "\(result)")
        #expect(result.stderr.contains("COOP_TRANSFER_DEADLINE"), "\(result)")
        #expect(elapsed < 30, "took \(elapsed) s")
    }

    @Test("%2e%2e in a file:// remote's signed index does not read outside the remote's folder", .enabled(if: ready))
    func percentEscapedDotDot() throws {
        let sandbox = try Sandbox(asUser: false)
        let site = try CraftedSite(sandbox)
        // A complete, signed build just outside the remote's folder.
        let outside = CraftedSite(root: site.root.deletingLastPathComponent().appendingPathComponent("outside"))
        try outside.addFiles(at: "b1", signatures: true)
        try site.writeLXCIndex(["busybox;1.36;amd64;default;20251129_00:00;/%2e%2e/outside/b1/"], sign: true)
        try sandbox.remotes([site.remoteLine("lxc")])
        let result = try sandbox.run("fetch", "t:busybox", "1.36", "amd64")
        #expect(result.status == 5, "\(result)")
        #expect(result.stderr.contains("%2e%2e"), "\(result)")
        #expect(!(try sandbox.run("cache", "list").stdout.contains("busybox")))
    }

    @Test(
        "A clearsigned images.sjson is what counts when images.json has no signature of its own",
        .enabled(if: ready))
    func clearsignedStreams() throws {
        let sandbox = try Sandbox(asUser: false)
        let site = try CraftedSite(sandbox)
        try site.addFiles(at: "images/b1", signatures: true)
        try site.writeStreams([("20251129_00:00", "images/b1", true)], sign: false)
        let json = site.root.appendingPathComponent("streams/v1/images.json")
        try CraftedSite.sign(json, clear: true)
        // The unsigned images.json is replaced by one that lists another build: it must not be used.
        let good = try Data(contentsOf: json)
        try site.writeStreams([("20251130_00:00", "images/b1", true)], sign: false)
        #expect(try Data(contentsOf: json) != good)
        try sandbox.remotes([site.remoteLine("simplestreams")])
        let result = try sandbox.run("fetch", "t:busybox", "1.36", "amd64")
        #expect(result.status == 0, "\(result)")
        #expect(try sandbox.run("cache", "list").stdout.contains("20251129_00:00"))

        // A changed clearsigned text does not verify.
        var text = try String(contentsOf: site.root.appendingPathComponent("streams/v1/images.sjson"), encoding: .utf8)
        text = text.replacingOccurrences(of: "20251129_00:00", with: "20251130_00:00")
        try text.write(
            to: site.root.appendingPathComponent("streams/v1/images.sjson"), atomically: true, encoding: .utf8)
        let changed = try sandbox.run("fetch", "t:busybox", "1.36", "amd64", "--flush-cache")
        #expect(changed.status == 5, "\(changed)")
        #expect(changed.stderr.contains("images.sjson"), "\(changed)")
    }

    @Test("The rootfs download stops at the size the signed list gives", .enabled(if: ready))
    func rootfsStopsAtListedSize() throws {
        let sandbox = try Sandbox(asUser: false)
        let site = try CraftedSite(sandbox)
        try site.addFiles(at: "images/b1", signatures: true)
        try site.writeStreams([("20251129_00:00", "images/b1", true)], sign: true, rootfsSizeDelta: -4096)
        try sandbox.remotes([site.remoteLine("simplestreams")])
        let result = try sandbox.run("create", "s1", "t:busybox/1.36/amd64")
        #expect(result.status == 5, "\(result)")
        #expect(result.stderr.contains("the size its index lists"), "\(result)")
        #expect(!FileManager.default.fileExists(atPath: sandbox.containers.appendingPathComponent("s1").path))
    }

    @Test("A signed simplestreams list whose items carry no sha256 vouches for nothing", .enabled(if: ready))
    func itemsWithoutSHA256() throws {
        let sandbox = try Sandbox(asUser: false)
        let site = try CraftedSite(sandbox)
        try site.addFiles(at: "images/b1", signatures: false)
        try site.writeStreams([("20251129_00:00", "images/b1", false)], sign: true)
        try sandbox.remotes([site.remoteLine("simplestreams")])
        let result = try sandbox.run("fetch", "t:busybox", "1.36", "amd64")
        #expect(result.status == 5, "\(result)")
        #expect(result.stderr.contains("no sha256"), "\(result)")
        #expect(!(try sandbox.run("cache", "list").stdout.contains("busybox")))
    }
}

/// An image remote made in a test's sandbox, served as `file://`, with the busybox fixture build's files.
struct CraftedSite {
    let root: URL
    static let source = TestHost.fixtures.appendingPathComponent(
        "www/good/images/busybox/1.36/amd64/default/20251129_00:00")

    init(root: URL) { self.root = root }

    init(_ sandbox: Sandbox) throws {
        root = sandbox.root.appendingPathComponent("remote/site")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    }

    func remoteLine(_ imageProtocol: String) -> (String, String, String, URL, String) {
        ("t", imageProtocol, "file://" + root.path, TestHost.signerKey, TestHost.signerFingerprint)
    }

    /// Copies the build's files to `folder`, with their signatures and SHA256SUMS or without.
    func addFiles(at folder: String, signatures: Bool) throws {
        let target = root.appendingPathComponent(folder)
        try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)
        var names = ["rootfs.tar.xz", "meta.tar.xz"]
        if signatures { names += ["rootfs.tar.xz.asc", "meta.tar.xz.asc", "SHA256SUMS", "SHA256SUMS.asc"] }
        for name in names {
            try FileManager.default.copyItem(
                at: Self.source.appendingPathComponent(name), to: target.appendingPathComponent(name))
        }
    }

    /// `meta/1.0/index-system` and `index-user`, signed by the fixture key or not (old signatures removed).
    func writeLXCIndex(_ lines: [String], sign: Bool) throws {
        for name in ["index-system", "index-user"] {
            try write(Data((lines.joined(separator: "\n") + "\n").utf8), to: "meta/1.0/\(name)", sign: sign)
        }
    }

    /// `streams/v1/index.json` and `images.json` listing busybox 1.36 amd64 with the given versions, each
    /// (version key, folder, whether items carry sha256 and size).
    func writeStreams(_ versions: [(String, String, Bool)], sign: Bool, rootfsSizeDelta: Int = 0) throws {
        var entries: [String: Any] = [:]
        let meta = try Data(contentsOf: Self.source.appendingPathComponent("meta.tar.xz"))
        let rootfs = try Data(contentsOf: Self.source.appendingPathComponent("rootfs.tar.xz"))
        for (key, folder, hashes) in versions {
            var root: [String: Any] = ["ftype": "root.tar.xz", "path": folder + "/rootfs.tar.xz"]
            var lxd: [String: Any] = ["ftype": "lxd.tar.xz", "path": folder + "/meta.tar.xz"]
            if hashes {
                root["sha256"] = try Self.sha256(rootfs)
                root["size"] = rootfs.count + rootfsSizeDelta
                lxd["sha256"] = try Self.sha256(meta)
                lxd["size"] = meta.count
                lxd["combined_rootxz_sha256"] = try Self.sha256(meta + rootfs)
            }
            entries[key] = ["items": ["root.tar.xz": root, "lxd.tar.xz": lxd]]
        }
        let products: [String: Any] = [
            "format": "products:1.0", "datatype": "image-downloads",
            "products": [
                "busybox:1.36:amd64:default": [
                    "arch": "amd64", "os": "Busybox", "release": "1.36", "variant": "default", "versions": entries,
                ]
            ],
        ]
        let index: [String: Any] = [
            "format": "index:1.0",
            "index": ["images": ["datatype": "image-downloads", "path": "streams/v1/images.json"]],
        ]
        try write(try JSONSerialization.data(withJSONObject: index), to: "streams/v1/index.json", sign: false)
        try write(try JSONSerialization.data(withJSONObject: products), to: "streams/v1/images.json", sign: sign)
    }

    static func sha256(_ data: Data) throws -> String {
        let hasher = try SHA256Hasher()
        data.withUnsafeBytes { hasher.update($0) }
        return hasher.finalize()
    }

    private func write(_ data: Data, to path: String, sign: Bool) throws {
        let file = root.appendingPathComponent(path)
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        try data.write(to: file)
        let signature = file.appendingPathExtension("asc")
        try? FileManager.default.removeItem(at: signature)
        if sign { try Self.sign(file) }
    }

    /// A detached armored signature by the fixture signing key, made in a copy of its GnuPG home whose agent
    /// is stopped afterwards.
    static func sign(_ file: URL, clear: Bool = false) throws {
        var template = Array("/tmp/coop-sign-XXXXXX".utf8CString)
        let home = String(cString: try #require(mkdtemp(&template)))
        defer {
            _ = try? shell("/usr/bin/gpgconf", "--homedir", home, "--kill", "all")
            try? FileManager.default.removeItem(atPath: home)
        }
        let copied = try shell(
            "/bin/cp", "-a", TestHost.fixtures.appendingPathComponent("gnupg/signer").path + "/.", home)
        #expect(copied.status == 0, "\(copied)")
        let output = clear ? file.deletingPathExtension().path + ".sjson" : file.path + ".asc"
        let signed = try shell(
            "/usr/bin/gpg", "--homedir", home, "--batch", "--quiet", "--yes", "--armor",
            clear ? "--clearsign" : "--detach-sign", "--output", output, file.path)
        #expect(signed.status == 0, "\(signed)")
    }
}
