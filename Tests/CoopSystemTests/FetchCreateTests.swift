import Foundation
import Testing

/// The verified fetch path end to end: the real coop binary, a real nginx on loopback, real images,
/// as root and as an ordinary user with a subuid range.
@Suite("Fetch and create", .serialized)
struct FetchCreateTests {
    static let busybox = "t:busybox/1.36"

    func ownerOf(_ url: URL) -> (uid: uid_t, gid: gid_t)? {
        var info = stat()
        guard lstat(url.path, &info) == 0 else { return nil }
        return (info.st_uid, info.st_gid)
    }

    @Test(
        "As an ordinary user over https, create unpacks bookworm owned by the user's subuids",
        .enabled(if: TestHost.ready(.root, .ordinaryUser, .server, .fixtures)))
    func createBookwormAsUser() throws {
        let sandbox = try Sandbox(asUser: true)
        try sandbox.remote()
        let user = try TestHost.user()
        let result = try sandbox.run("create", "c1", "t:debian/bookworm")
        #expect(result.status == 0, "\(result)")
        let rootfs = sandbox.containers.appendingPathComponent("c1/rootfs")
        let release = try String(contentsOf: rootfs.appendingPathComponent("etc/os-release"), encoding: .utf8)
        #expect(release.contains("VERSION_CODENAME=bookworm"))
        #expect(ownerOf(rootfs)?.uid == user.subuid)
        #expect(ownerOf(rootfs.appendingPathComponent("etc/os-release"))?.uid == user.subuid)
        // /etc/shadow belongs to group shadow (42) in the image: shifted by the same range.
        #expect(ownerOf(rootfs.appendingPathComponent("etc/shadow"))?.gid == user.subgid + 42)
        let hostname = try String(contentsOf: rootfs.appendingPathComponent("etc/hostname"), encoding: .utf8)
        #expect(hostname.trimmingCharacters(in: .whitespacesAndNewlines) == "c1")
        let config = try String(contentsOf: sandbox.containers.appendingPathComponent("c1/config"), encoding: .utf8)
        #expect(config.contains("lxc.idmap = u 0 \(user.subuid) 65536"))
        #expect(config.contains("lxc.rootfs.path = dir:\(rootfs.path)"))
        #expect(config.contains("lxc.uts.name = c1"))
        #expect(config.contains("lxc.include = /usr/share/lxc/config/userns.conf"))
        #expect(!FileManager.default.fileExists(atPath: rootfs.appendingPathComponent("dev/null").path))

        // Cold writes nothing but the container and the verified files: no decoded tar in the cache.
        let cached = FileManager.default.enumerator(atPath: sandbox.cache.path)?.allObjects as? [String] ?? []
        #expect(!cached.contains { $0.hasSuffix("/rootfs.tar") }, "\(cached)")
        // Warm: the second and third containers come from the cache, without a download: copies of the
        // build's unpacked base, each with its own name filled in, owned as the image says.
        for name in ["c2", "c3"] {
            let warm = try sandbox.run("create", name, "t:debian/bookworm")
            #expect(warm.status == 0, "\(warm)")
            #expect(warm.stderr.contains("cached image"), "\(warm)")
            let copy = sandbox.containers.appendingPathComponent("\(name)/rootfs")
            let copied = try String(contentsOf: copy.appendingPathComponent("etc/hostname"), encoding: .utf8)
            #expect(copied.trimmingCharacters(in: .whitespacesAndNewlines) == name)
            #expect(ownerOf(copy)?.uid == user.subuid)
            #expect(ownerOf(copy.appendingPathComponent("etc/shadow"))?.gid == user.subgid + 42)
            let copiedConfig = try String(
                contentsOf: sandbox.containers.appendingPathComponent("\(name)/config"), encoding: .utf8)
            #expect(copiedConfig.contains("lxc.uts.name = \(name)"), "\(copiedConfig)")
        }
        let bases = try FileManager.default.contentsOfDirectory(atPath: sandbox.containers.path + "/.bases")
        #expect(bases.filter { !$0.hasPrefix(".") }.count == 1, "\(bases)")

        let destroyed = try sandbox.run("destroy", "c1")
        #expect(destroyed.status == 0, "\(destroyed)")
        #expect(!FileManager.default.fileExists(atPath: sandbox.containers.appendingPathComponent("c1").path))
        let list = try sandbox.run("list")
        #expect(list.stdout.contains("c2") && !list.stdout.contains("c1 "), "\(list)")
    }

    @Test(
        "As root over http, fetch caches a verified build and create shifts ownership into root's own range",
        .enabled(if: TestHost.ready(.root, .server, .fixtures)))
    func fetchAndCreateAsRoot() throws {
        let sandbox = try Sandbox(asUser: false)
        try sandbox.remote(https: false)
        let fetched = try sandbox.run("fetch", "t:busybox", "1.36", "amd64")
        #expect(fetched.status == 0, "\(fetched)")
        #expect(fetched.stderr.contains("verified against \(TestHost.signerFingerprint)"), "\(fetched)")
        let entry = URL(fileURLWithPath: fetched.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        for name in [
            "rootfs.tar.xz", "rootfs.tar.xz.asc", "meta.tar.xz", "meta.tar.xz.asc", "SHA256SUMS", "image.json",
        ] {
            #expect(FileManager.default.fileExists(atPath: entry.appendingPathComponent(name).path), "\(name)")
        }
        let list = try sandbox.run("cache", "list", "--json")
        #expect(list.stdout.contains("\"build\" : \"20251129_00:00\""), "\(list)")

        let created = try sandbox.run("create", "r1", Self.busybox)
        #expect(created.status == 0, "\(created)")
        let rootfs = sandbox.containers.appendingPathComponent("r1/rootfs")
        // Root's range: the one coop reserves for it in /etc/subuid and /etc/subgid, which no user holds.
        func rootStart(_ file: String) throws -> UInt32 {
            let line = try #require(
                try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n").first { $0.hasPrefix("root:") }
            )
            return try #require(UInt32(line.split(separator: ":")[1]))
        }
        let (uidStart, gidStart) = (try rootStart("/etc/subuid"), try rootStart("/etc/subgid"))
        #expect(uidStart >= 1_000_000, "LXD's reservation for root, or after every range")
        #expect(ownerOf(rootfs.appendingPathComponent("bin/busybox"))?.uid == uidStart)
        #expect(ownerOf(rootfs.appendingPathComponent("etc/shadow"))?.gid == gidStart + 42)
        let release = try String(contentsOf: rootfs.appendingPathComponent("etc/os-release"), encoding: .utf8)
        #expect(release.contains("ID=busybox"))
    }

    @Test(
        "Simplestreams: the same tree fetched through streams/v1 with sha256, fingerprint and signatures",
        .enabled(if: TestHost.ready(.root, .ordinaryUser, .server, .fixtures)))
    func simplestreams() throws {
        let sandbox = try Sandbox(asUser: true)
        try sandbox.remote(imageProtocol: "simplestreams")
        let images = try sandbox.run("images", "t:")
        #expect(images.stdout.contains("busybox") && images.stdout.contains("bookworm"), "\(images)")
        let created = try sandbox.run("create", "s1", Self.busybox)
        #expect(created.status == 0, "\(created)")
        let user = try TestHost.user()
        #expect(ownerOf(sandbox.containers.appendingPathComponent("s1/rootfs/bin/busybox"))?.uid == user.subuid)
    }

    @Test(
        "A bad image is refused with a clear error, leaving cache and containers as they were",
        .enabled(if: TestHost.ready(.root, .ordinaryUser, .server, .fixtures)),
        arguments: [
            ("tampered", Int32(5), "truncated or tampered with"),
            ("wrongkey", Int32(5), "does not verify"),
            ("nosig", Int32(5), "is missing"),
            ("truncated", Int32(5), "truncated or tampered with"),
            ("missing", Int32(3), "HTTP 404"),
            ("err500", Int32(4), "HTTP 500"),
            ("stall", Int32(4), "stalled"),
        ])
    func refusesBadImages(site: String, status: Int32, message: String) throws {
        let sandbox = try Sandbox(asUser: true)
        try sandbox.remote(site: site)
        sandbox.extraEnvironment["COOP_STALL_TIMEOUT"] = "2"
        // Something already there must survive the failure untouched.
        try FileManager.default.createDirectory(at: sandbox.containers, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: sandbox.cache, withIntermediateDirectories: true)
        try sandbox.own()
        let cacheBefore = sandbox.listing(sandbox.cache)
        let containersBefore = sandbox.listing(sandbox.containers)
        let result = try sandbox.run("create", "bad", Self.busybox)
        #expect(result.status == status, "\(result)")
        #expect(result.stderr.contains(message), "\(result)")
        #expect(result.stderr.contains("fix:"), "\(result)")
        #expect(sandbox.listing(sandbox.cache) == cacheBefore)
        #expect(sandbox.listing(sandbox.containers) == containersBefore)
    }

    @Test(
        "--no-verify accepts an unsigned image, with a warning",
        .enabled(if: TestHost.ready(.root, .ordinaryUser, .server, .fixtures)))
    func noVerify() throws {
        let sandbox = try Sandbox(asUser: true)
        try sandbox.remote(site: "nosig")
        let result = try sandbox.run("fetch", "t:busybox", "1.36", "--no-verify")
        #expect(result.status == 0, "\(result)")
        #expect(result.stderr.contains("warning: not verifying"), "\(result)")
        #expect(result.stderr.contains("NOT verified"), "\(result)")
    }

    @Test(
        "A fetch killed halfway leaves no cache entry, and the next fetch resumes and completes",
        .enabled(if: TestHost.ready(.root, .ordinaryUser, .server, .fixtures)))
    func killedFetchResumes() throws {
        let sandbox = try Sandbox(asUser: true)
        try sandbox.remote(site: "slow")
        let running = try sandbox.start(["fetch", "t:debian", "bookworm", "amd64"])
        let partial = sandbox.cache.appendingPathComponent(".partial")
        var size: Int64 = 0
        for _ in 0..<300 where size < 8_000_000 {
            usleep(50_000)
            let folders = (try? FileManager.default.contentsOfDirectory(atPath: partial.path)) ?? []
            for folder in folders {
                let file = partial.appendingPathComponent(folder).appendingPathComponent("rootfs.tar.xz")
                size = ((try? FileManager.default.attributesOfItem(atPath: file.path))?[.size] as? Int64) ?? 0
            }
        }
        #expect(size >= 8_000_000, "the download did not get going")
        kill(running.pid, SIGKILL)
        let killed = running.wait()
        #expect(killed.status != 0, "\(killed)")
        let list = try sandbox.run("cache", "list", "--json")
        #expect(list.status == 0, "\(list)")
        #expect(!list.stdout.contains("bookworm"), "a killed fetch left a cache entry")

        try sandbox.remote(site: "good")
        let resumed = try sandbox.run("fetch", "t:debian", "bookworm", "amd64")
        #expect(resumed.status == 0, "\(resumed)")
        let log = try String(
            contentsOf: try TestHost.server().state.appendingPathComponent("access.log"), encoding: .utf8)
        // The second request for the rootfs asked for the rest only: a 206 Partial Content.
        #expect(
            log.split(separator: "\n").contains {
                $0.contains("/good/images/debian/bookworm") && $0.contains("rootfs.tar.xz HTTP")
                    && $0.contains("\" 206 ")
            })
        #expect(
            !FileManager.default.fileExists(
                atPath: partial.appendingPathComponent("t_debian_bookworm_amd64_default_20251129_00:00").path))
    }

    @Test(
        "Two fetches of one image at once download it once",
        .enabled(if: TestHost.ready(.root, .ordinaryUser, .server, .fixtures)))
    func concurrentFetches() throws {
        let sandbox = try Sandbox(asUser: true)
        try sandbox.remote(site: "slow")
        let logFile = try TestHost.server().state.appendingPathComponent("access.log")
        let path = "/slow/images/busybox/1.36/amd64/default/20251129_00:00/rootfs.tar.xz HTTP"
        let before = try String(contentsOf: logFile, encoding: .utf8).components(separatedBy: path).count
        let first = try sandbox.start(["fetch", "t:busybox", "1.36"])
        let second = try sandbox.start(["fetch", "t:busybox", "1.36"])
        let results = [first.wait(), second.wait()]
        for result in results { #expect(result.status == 0, "\(result)") }
        let fetched = results.filter { $0.stderr.contains("fetched t:busybox") }.count
        #expect(fetched == 1, "\(results)")
        let after = try String(contentsOf: logFile, encoding: .utf8).components(separatedBy: path).count
        #expect(after - before == 1)
    }

    @Test(
        "--force-cache works with the server stopped; without it an expired build falls back with a warning",
        .enabled(if: TestHost.ready(.root, .ordinaryUser, .fixtures)))
    func forceCacheOffline() throws {
        let sandbox = try Sandbox(asUser: true)
        let state = sandbox.root.appendingPathComponent("server")
        let serve = TestHost.repository.appendingPathComponent("Tests/Fixtures/serve.sh").path
        let started = try shell(serve, "start", TestHost.fixtures.appendingPathComponent("www").path, state.path)
        #expect(started.status == 0, "\(started)")
        let port = try #require(
            started.stdout.split(separator: "\n").first { $0.hasPrefix("HTTP_PORT=") }.map { $0.dropFirst(10) })
        try sandbox.remotes([
            ("t", "lxc", "http://127.0.0.1:\(port)/good", TestHost.signerKey, TestHost.signerFingerprint)
        ])
        try sandbox.expect(0, "fetch", "t:busybox", "1.36")
        try expectShell(serve, "stop", state.path)

        let offline = try sandbox.run("fetch", "t:busybox", "1.36", "--force-cache")
        #expect(offline.status == 0, "\(offline)")
        let created = try sandbox.run("create", "o1", Self.busybox, "--force-cache")
        #expect(created.status == 0, "\(created)")
        let fallback = try sandbox.run("fetch", "t:busybox", "1.36")
        #expect(fallback.status == 0, "\(fallback)")
        #expect(fallback.stderr.contains("using the cached build"), "\(fallback)")
        let missing = try sandbox.run("fetch", "t:debian", "trixie", "--force-cache")
        #expect(missing.status == 3, "\(missing)")
        #expect(missing.stderr.contains("is not in the cache"), "\(missing)")
    }

    @Test(
        "An expired build still offered by the remote is refreshed, not downloaded again",
        .enabled(if: TestHost.ready(.root, .server, .fixtures)))
    func expiryRefresh() throws {
        let sandbox = try Sandbox(asUser: false)
        try sandbox.remote()
        try sandbox.expect(0, "fetch", "t:busybox", "1.36")
        let entry = sandbox.cache.appendingPathComponent("t/busybox/1.36/amd64/default/20251129_00:00/image.json")
        func expiry() throws -> Int {
            let object = try JSONSerialization.jsonObject(with: Data(contentsOf: entry)) as? [String: Any]
            return try #require(object?["expiry"] as? Int)
        }
        let now = Int(Date().timeIntervalSince1970)
        // The fixture build expired long ago (its build date plus 30 days).
        #expect(try expiry() < now)
        let again = try sandbox.run("fetch", "t:busybox", "1.36")
        #expect(again.status == 0, "\(again)")
        #expect(again.stderr.contains("cached t:busybox"), "\(again)")
        #expect(try expiry() >= now + 29 * 86_400)

        let flushed = try sandbox.run("fetch", "t:busybox", "1.36", "--flush-cache")
        #expect(flushed.stderr.contains("fetched t:busybox"), "\(flushed)")
    }

    @Test(
        "cache export and import carry a build to another cache, verified again; a tampered export is refused",
        .enabled(if: TestHost.ready(.root, .server, .fixtures)))
    func exportImport() throws {
        let source = try Sandbox(asUser: false)
        try source.remote()
        try source.expect(0, "fetch", "t:busybox", "1.36")
        let archive = source.root.appendingPathComponent("images.tar")
        let exported = try source.run("cache", "export", archive.path)
        #expect(exported.status == 0, "\(exported)")

        let target = try Sandbox(asUser: false)
        try target.remote()
        let imported = try target.run("cache", "import", archive.path)
        #expect(imported.status == 0, "\(imported)")
        let cached = try target.expect(0, "cache", "list")
        #expect(cached.stdout.contains("busybox"), "\(cached)")
        try target.expect(0, "create", "i1", Self.busybox, "--force-cache")

        // Flip one byte inside the exported rootfs.tar.xz: the import must refuse and keep nothing.
        var data = try Data(contentsOf: archive)
        let marker = try #require(data.range(of: Data("rootfs.tar.xz".utf8)))
        data[marker.upperBound + 4096] ^= 0xff
        try data.write(to: archive)
        let clean = try Sandbox(asUser: false)
        try clean.remote()
        let refused = try clean.run("cache", "import", archive.path)
        #expect(refused.status == 5, "\(refused)")
        #expect(!(try clean.run("cache", "list").stdout.contains("busybox")))
    }

    @Test(
        "Downloads go through http_proxy, and around it for a host in no_proxy",
        .enabled(if: TestHost.ready(.root, .ordinaryUser, .server, .fixtures)))
    func proxyEnvironment() throws {
        let proxy = try #require(TestHost.proxyPort)
        let log = try TestHost.server().state.appendingPathComponent("proxy.log")
        func proxied() -> Int {
            ((try? String(contentsOf: log, encoding: .utf8)) ?? "").components(separatedBy: "/good/images/busybox")
                .count - 1
        }
        let before = proxied()
        let through = try Sandbox(asUser: true)
        try through.remote(https: false)
        through.extraEnvironment["http_proxy"] = "http://127.0.0.1:\(proxy)"
        let fetched = try through.run("fetch", "t:busybox", "1.36")
        #expect(fetched.status == 0, "\(fetched)")
        let afterProxy = proxied()
        #expect(afterProxy - before >= 5, "the image's files went through the proxy")

        let around = try Sandbox(asUser: true)
        try around.remote(https: false)
        around.extraEnvironment["http_proxy"] = "http://127.0.0.1:\(proxy)"
        around.extraEnvironment["no_proxy"] = "127.0.0.1"
        try around.expect(0, "fetch", "t:busybox", "1.36")
        #expect(proxied() == afterProxy)
    }

    @Test(
        "cache prune keeps the newest build, --all empties the cache",
        .enabled(if: TestHost.ready(.root, .server, .fixtures)))
    func prune() throws {
        let sandbox = try Sandbox(asUser: false)
        try sandbox.remote()
        try sandbox.expect(0, "fetch", "t:busybox", "1.36")
        // An older build of the same image, as a previous fetch would have left it.
        let product = sandbox.cache.appendingPathComponent("t/busybox/1.36/amd64/default")
        _ = try shell(
            "/bin/cp", "-a", product.appendingPathComponent("20251129_00:00").path,
            product.appendingPathComponent("20250101_00:00").path)
        #expect(try FileManager.default.contentsOfDirectory(atPath: product.path).count == 2)
        let pruned = try sandbox.run("cache", "prune")
        #expect(pruned.status == 0, "\(pruned)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: product.path) == ["20251129_00:00"])
        try sandbox.expect(0, "cache", "prune", "--all")
        #expect(!(try sandbox.run("cache", "list").stdout.contains("busybox")))
    }

    @Test(
        "An existing container name and a bad name are refused", .enabled(if: TestHost.ready(.root, .server, .fixtures))
    )
    func nameConflicts() throws {
        let sandbox = try Sandbox(asUser: false)
        try sandbox.remote()
        try sandbox.expect(0, "create", "n1", Self.busybox)
        let again = try sandbox.run("create", "n1", Self.busybox)
        #expect(again.status == 7, "\(again)")
        #expect(again.stderr.contains("already exists"), "\(again)")
        let bad = try sandbox.run("create", "../x", Self.busybox)
        #expect(bad.status == 2, "\(bad)")
    }

    @Test(
        "A bad line in images.index breaks only its remote, warned once; a user without subids can still list",
        .enabled(if: TestHost.ready(.root, .server, .fixtures)))
    func badRemoteLineAndNoSubordinateIDs() throws {
        let user = "coop-noids-test"
        if getpwnam(user) == nil {
            try expectShell("/usr/sbin/useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", user)
        }
        for file in ["/etc/subuid", "/etc/subgid"] {
            let text = try String(contentsOfFile: file, encoding: .utf8)
            let kept = text.split(separator: "\n").filter { !$0.hasPrefix(user + ":") }.joined(separator: "\n") + "\n"
            if kept != text { try kept.write(toFile: file, atomically: true, encoding: .utf8) }
        }
        let sandbox = try Sandbox(asUser: true, user: user)
        try sandbox.remote()
        let file = sandbox.config.appendingPathComponent("coop/images.index")
        let text = try String(contentsOf: file, encoding: .utf8) + "broken;ftp;ftp://127.0.0.1/x;key.asc\n"
        try text.write(to: file, atomically: true, encoding: .utf8)
        try sandbox.own()

        try sandbox.expect(0, "list")
        let images = try sandbox.expect(0, "images", "t:")
        #expect(images.stdout.contains("busybox"), "\(images)")
        let warnings = images.stderr.split(separator: "\n").filter { $0.contains("\(file.path) line 2") }
        #expect(warnings.count == 1 && images.stderr.contains("unknown protocol 'ftp'"), "\(images)")
        let broken = try sandbox.expect(2, "images", "broken:")
        #expect(broken.stderr.contains("remote 'broken'") && broken.stderr.contains("line 2"), "\(broken)")
    }

    @Test(
        "A connect timeout says what it is (host, seconds) and names COOP_CONNECT_TIMEOUT",
        .enabled(if: TestHost.ready(.root, .fixtures)))
    func connectTimeout() throws {
        // A listener whose accept queue is full: the kernel drops further SYNs, so a connect to it times out,
        // on loopback.
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listener, $0, length) == 0 && listen(listener, 0) == 0 && getsockname(listener, $0, &length) == 0
            }
        }
        try #require(bound, "loopback listener: \(String(cString: strerror(errno)))")
        var clients: [Int32] = []
        defer { clients.forEach { close($0) } }
        for _ in 0..<4 {
            let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            clients.append(client)
            _ = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(client, $0, length) }
            }
        }
        usleep(300_000)
        let port = UInt16(bigEndian: address.sin_port)
        let sandbox = try Sandbox(asUser: false)
        try sandbox.remotes([
            ("t", "lxc", "http://127.0.0.1:\(port)/good", TestHost.signerKey, TestHost.signerFingerprint)
        ])
        sandbox.extraEnvironment["COOP_CONNECT_TIMEOUT"] = "1"
        let fetched = try sandbox.expect(4, "fetch", "t:busybox", "1.36")
        #expect(
            fetched.stderr.contains("connect timeout: 127.0.0.1 did not accept a connection within 1 s")
                && fetched.stderr.contains("COOP_CONNECT_TIMEOUT"), "\(fetched)")
    }

    @Test(
        "fetch of a release the remote lacks names its releases and coop build; of an arch it lacks, its arches",
        .enabled(if: TestHost.ready(.root, .server, .fixtures)))
    func fetchMissingRelease() throws {
        let sandbox = try Sandbox(asUser: false)
        try sandbox.remote()
        let wheezy = try sandbox.expect(3, "fetch", "t:debian", "wheezy", "amd64")
        #expect(
            wheezy.stderr.contains("has no debian wheezy") && wheezy.stderr.contains("bookworm")
                && wheezy.stderr.contains("coop build debian wheezy"), "\(wheezy)")
        let arch = try sandbox.expect(3, "fetch", "t:debian", "bookworm", "s390x")
        #expect(arch.stderr.contains("\(TestHost.arch)/default"), "\(arch)")
    }

    @Test(
        "fetch from an unreachable default remote says so and names --force-cache, the cached images, other remotes",
        .enabled(if: TestHost.ready(.root, .server, .fixtures)))
    func fetchUnreachableDefault() throws {
        let sandbox = try Sandbox(asUser: false)
        let server = try TestHost.server()
        let good = "http://127.0.0.1:\(server.http)/good"
        try sandbox.remotes([("images", "lxc", good, TestHost.signerKey, TestHost.signerFingerprint)])
        try sandbox.expect(0, "fetch", "busybox", "1.36")
        // Port 1 on loopback: nothing listens there.
        try sandbox.remotes([
            ("images", "lxc", "http://127.0.0.1:1/good", TestHost.signerKey, TestHost.signerFingerprint),
            ("t", "lxc", good, TestHost.signerKey, TestHost.signerFingerprint),
        ])
        let failed = try sandbox.expect(4, "fetch", "debian", "wheezy", "amd64")
        for part in ["remote 'images'", "cannot be reached", "--force-cache", "busybox/1.36/", "other remotes: t"] {
            #expect(failed.stderr.contains(part), "\(part): \(failed)")
        }
    }

    @Test(
        "A full disk during unpack names the cause and the fix (no space left; COOP_CONTAINERS elsewhere)",
        .enabled(if: TestHost.ready(.root, .server, .fixtures)))
    func unpackDiskFull() throws {
        let sandbox = try Sandbox(asUser: false)
        try sandbox.remote()
        // The containers folder on a 20 MB tmpfs: bookworm does not fit.
        try FileManager.default.createDirectory(at: sandbox.containers, withIntermediateDirectories: true)
        try expectShell("/bin/mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", sandbox.containers.path)
        defer { _ = try? shell("/bin/umount", sandbox.containers.path) }
        let full = try sandbox.expect(9, "create", "full", "t:debian/bookworm")
        #expect(
            full.stderr.contains("no space left on device (\(sandbox.containers.path))")
                && full.stderr.contains("COOP_CONTAINERS"), "\(full)")
        #expect(!full.stderr.contains("Write failed"), "\(full)")
        #expect(sandbox.listing(sandbox.containers).isEmpty, "nothing of the container is left")
    }
}

/// Runs a command as root and collects its output.
func shell(_ arguments: String...) throws -> CoopResult {
    try RunningCoop(arguments).wait()
}

/// Runs a command as root and expects it to succeed; a failure shows the command and its output.
@discardableResult
func expectShell(_ arguments: String..., sourceLocation: SourceLocation = #_sourceLocation) throws -> CoopResult {
    let result = try RunningCoop(arguments).wait()
    #expect(result.status == 0, "\(arguments.joined(separator: " ")): \(result)", sourceLocation: sourceLocation)
    return result
}
