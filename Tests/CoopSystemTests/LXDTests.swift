import Foundation
import Testing

/// Real clients of coop's published trees: Debian's LXD (its daemon started here, on its unix socket) launches
/// coop's image from the fixture server over https (TLS 1.3, the test CA), and the reference simplestreams
/// client verifies the tree with the publisher's key.
@Suite("LXD and simplestreams clients", .serialized)
struct LXDTests {
    static let fixtures = TestHost.repository.appendingPathComponent("Tests/Fixtures")

    /// A running LXD daemon of its own folder, stopped (instances, mounts and folder gone) by `stop`.
    struct Daemon {
        let state: URL
        let script = LXDTests.fixtures.appendingPathComponent("lxd.sh").path
        let ca: URL

        init(ca: URL, cluster: Bool = false) throws {
            self.ca = ca
            state = URL(fileURLWithPath: "/tmp/coop-tests/lxd-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(at: state, withIntermediateDirectories: true)
            if cluster {
                try expectShell(script, "start", state.path, ca.path, "cluster")
            } else {
                try expectShell(script, "start", state.path, ca.path)
            }
        }

        /// The lxc client against this daemon, trusting the test CA.
        func lxc(_ arguments: String...) throws -> CoopResult { try lxc(arguments) }

        func lxc(_ arguments: [String]) throws -> CoopResult {
            try RunningCoop(["/usr/bin/env", "SSL_CERT_FILE=\(ca.path)", script, "run", state.path] + arguments).wait()
        }

        func stop() {
            _ = try? shell(script, "stop", state.path)
        }
    }

    @Test(
        "LXD launches coop's image by its short alias (unprivileged, privileged); coop creates containers of what LXD exports",
        .enabled(if: TestHost.ready(.root, .server, .fixtures)), .timeLimit(.minutes(10)))
    func lxdLaunches() throws {
        let server = try TestHost.server()
        let daemon = try Daemon(ca: server.ca)
        defer { daemon.stop() }
        let added = try daemon.lxc(
            "remote", "add", "coop", "https://127.0.0.1:\(server.https)/guests", "--protocol", "simplestreams",
            "--public")
        #expect(added.status == 0, "\(added)")
        let listed = try daemon.lxc("image", "list", "coop:", "--format", "csv", "-c", "l")
        #expect(listed.stdout.contains("debian/bookworm (") || listed.stdout.contains("debian/bookworm\n"), "\(listed)")

        // Incus's own client reads the tree as well (its simplestreams reader takes the incus.tar.xz items).
        let incus = ["/usr/bin/env", "SSL_CERT_FILE=\(server.ca.path)", "INCUS_CONF=\(daemon.state.path)/incus"]
        let incusAdded = try RunningCoop(
            incus + [
                "/usr/bin/incus", "remote", "add", "coop", "https://127.0.0.1:\(server.https)/guests", "--protocol",
                "simplestreams", "--public",
            ]
        ).wait()
        #expect(incusAdded.status == 0, "\(incusAdded)")
        let incusListed = try RunningCoop(
            incus + ["/usr/bin/incus", "image", "info", "coop:debian/bookworm"]
        ).wait()
        #expect(incusListed.status == 0 && incusListed.stdout.contains("release: bookworm"), "\(incusListed)")

        for (name, options) in [("plain", [String]()), ("privileged", ["-c", "security.privileged=true"])] {
            let launched = try daemon.lxc(["launch", "coop:debian/bookworm", name] + options)
            #expect(launched.status == 0, "\(launched)")
            let inside = try daemon.lxc(
                "exec", name, "--", "sh", "-c",
                "cat /etc/hostname; grep ^VERSION_CODENAME= /etc/os-release; grep -c . /proc/self/uid_map; "
                    + "head -1 /proc/self/uid_map")
            #expect(inside.status == 0, "\(inside)")
            let lines = inside.stdout.split(separator: "\n").map { $0.split(separator: " ").joined(separator: " ") }
            // The template wrote the name: the image's /etc/hostname holds LXC's placeholder.
            #expect(lines.first == name, "\(inside)")
            #expect(lines.contains("VERSION_CODENAME=bookworm"), "\(inside)")
            // Unprivileged: root is LXD's range of root's; privileged: the host's ids as they are.
            let map = lines.last ?? ""
            #expect(name == "plain" ? !map.hasPrefix("0 0 ") : map.hasPrefix("0 0 "), "\(inside)")
        }
        let stopped = try daemon.lxc("stop", "plain", "privileged", "--force")
        #expect(stopped.status == 0, "\(stopped)")

        // The other way round: images LXD exports, unified (an instance published) and split (coop's image as
        // LXD keeps it), become coop containers with LXD's templates applied.
        let published = try daemon.lxc("publish", "plain", "--alias", "from-lxd")
        #expect(published.status == 0, "\(published)")
        let exports = daemon.state.appendingPathComponent("exports")
        try FileManager.default.createDirectory(at: exports, withIntermediateDirectories: true)
        let unified = try daemon.lxc("image", "export", "from-lxd", exports.appendingPathComponent("unified").path)
        #expect(unified.status == 0, "\(unified)")
        let split = try daemon.lxc(
            "image", "export", "coop:debian/bookworm", exports.appendingPathComponent("split").path)
        #expect(split.status == 0, "\(split)")
        let sandbox = try Sandbox(asUser: false)
        let imported = try sandbox.expect(0, "image", "import", exports.appendingPathComponent("unified.tar.gz").path)
        #expect(imported.stdout == "local:debian/bookworm/\(TestHost.arch)/default\n", "\(imported)")
        try sandbox.expect(0, "create", "from-unified", "local:debian/bookworm")
        try sandbox.expect(
            0, "create", "from-split", exports.appendingPathComponent("split").path,
            exports.appendingPathComponent("split.root").path)
        for name in ["from-unified", "from-split"] {
            let rootfs = sandbox.containers.appendingPathComponent("\(name)/rootfs")
            let hostname = try String(contentsOf: rootfs.appendingPathComponent("etc/hostname"), encoding: .utf8)
            #expect(hostname == "\(name)\n", "LXD's template, rendered by coop")
            #expect(FileManager.default.fileExists(atPath: rootfs.appendingPathComponent("usr/bin/bash").path))
            try sandbox.expect(0, "destroy", name)
        }
        // The metadata alone is no image, and a rootfs given first is no metadata: both say how to import.
        let alone = try sandbox.run("image", "import", exports.appendingPathComponent("split").path)
        #expect(alone.status == 2 && alone.stderr.contains("coop image import"), "\(alone)")
        let swapped = try sandbox.run("image", "import", exports.appendingPathComponent("split.root").path)
        #expect(swapped.status == 2 && swapped.stderr.contains("no metadata.yaml"), "\(swapped)")
        let deleted = try daemon.lxc("delete", "plain", "privileged")
        #expect(deleted.status == 0, "\(deleted)")
        let left = try daemon.lxc("list", "--format", "csv")
        #expect(left.stdout.isEmpty, "\(left)")
    }

    @Test(
        "sstream-query verifies the guests tree with the publisher's key, not another's; coop reads an sstream-mirror copy",
        .enabled(if: TestHost.ready(.root, .server, .fixtures)), .timeLimit(.minutes(5)))
    func sstreamQueryVerifies() throws {
        let server = try TestHost.server()
        let scratch = try Sandbox(asUser: false)
        let keyring = scratch.root.appendingPathComponent("guests.gpg")
        try expectShell(
            "/usr/bin/gpg", "--batch", "--yes", "--dearmor", "--output", keyring.path,
            TestHost.fixtures.appendingPathComponent("keys/guests.asc").path)
        let query = TestHost.fixtures.appendingPathComponent("simplestreams/bin/sstream-query").path
        let url = "https://127.0.0.1:\(server.https)/guests/streams/v1/index.sjson"
        let found = try shell(
            "/usr/bin/env", "SSL_CERT_FILE=\(server.ca.path)", query, "--keyring=\(keyring.path)", url,
            "--output-format=%(product_name)s %(ftype)s %(sha256)s")
        #expect(found.status == 0, "\(found)")
        let lines = found.stdout.split(separator: "\n")
        for kind in ["root.tar.xz", "lxd.tar.xz", "incus.tar.xz", "meta.tar.xz"] {
            #expect(
                lines.contains { $0.hasPrefix("debian:bookworm:\(TestHost.arch):default \(kind) ") }, "\(found)")
        }
        // Another key: the same tree is refused.
        let other = scratch.root.appendingPathComponent("other.gpg")
        try expectShell(
            "/usr/bin/gpg", "--batch", "--yes", "--dearmor", "--output", other.path,
            TestHost.repository.appendingPathComponent("keys/linuxcontainers.asc").path)
        let refused = try shell(
            "/usr/bin/env", "SSL_CERT_FILE=\(server.ca.path)", query, "--keyring=\(other.path)", url)
        #expect(refused.status != 0, "\(refused)")

        // A mirror made by sstream-mirror (one image) keeps the clearsigned index and products only, and no
        // file's signature: coop verifies it by the signed products' sha256s.
        let mirror = scratch.root.appendingPathComponent("mirror")
        let mirrored = try shell(
            "/usr/bin/env", "SSL_CERT_FILE=\(server.ca.path)",
            TestHost.fixtures.appendingPathComponent("simplestreams/bin/sstream-mirror").path,
            "--keyring=\(keyring.path)", "--max=1", url, mirror.path, "release=trixie")
        #expect(mirrored.status == 0, "\(mirrored)")
        #expect(!FileManager.default.fileExists(atPath: mirror.appendingPathComponent("streams/v1/index.json").path))
        try scratch.remotes([
            ("mm", "simplestreams", "file://\(mirror.path)", TestHost.guestsKey, TestHost.guestsFingerprint)
        ])
        let fetched = try scratch.expect(0, "fetch", "mm:debian", "trixie", "--variant", "slim")
        #expect(fetched.stderr.contains("verified against"), "\(fetched)")
        let products = mirror.appendingPathComponent("streams/v1/images.sjson")
        let text = try String(contentsOf: products, encoding: .utf8)
        try text.replacingOccurrences(of: "\"trixie\"", with: "\"trixiE\"").write(
            to: products, atomically: true, encoding: .utf8)
        let tampered = try scratch.run("fetch", "mm:debian", "trixie", "--variant", "slim", "--flush-cache")
        #expect(tampered.status == 5 && tampered.stderr.contains("does not verify"), "\(tampered)")
    }

    @Test(
        "coop creates a container from an LXD-format tree: LXD's metadata and templates, signed products, no .asc files",
        .enabled(if: TestHost.ready(.root, .fixtures)), .timeLimit(.minutes(5)))
    func lxdFormatTree() throws {
        let sandbox = try Sandbox(asUser: false)
        try sandbox.expect(0, "key", "create", "lxd-format")
        let key = sandbox.root.appendingPathComponent("lxd-format.asc")
        let exported = try sandbox.expect(0, "key", "export", "--output", key.path, "--remote", "m")
        let fingerprint = String(exported.stdout.split(separator: ";").last ?? "").trimmingCharacters(
            in: .whitespacesAndNewlines)
        // The bookworm build of the guests tree as LXD's tools publish it: its LXD metadata and rootfs only,
        // a products file without LXC's metadata, signed once (.json.gpg), and no signature beside any file.
        let guests = TestHost.fixtures.appendingPathComponent("www/guests")
        let tree = sandbox.root.appendingPathComponent("lxd-tree")
        let script = """
            import json, os, shutil, sys
            guests, tree = sys.argv[1], sys.argv[2]
            products = json.load(open(os.path.join(guests, "streams/v1/images.json")))
            keep = {}
            for name, product in products["products"].items():
                if not name.startswith("debian:bookworm:") or not name.endswith(":default"):
                    continue
                for version in product["versions"].values():
                    version["items"] = {k: v for k, v in version["items"].items() if v["ftype"] in ("lxd.tar.xz", "root.tar.xz")}
                    for item in version["items"].values():
                        target = os.path.join(tree, item["path"])
                        os.makedirs(os.path.dirname(target), exist_ok=True)
                        shutil.copyfile(os.path.join(guests, item["path"]), target)
                keep[name] = product
                # The same build with a squashfs rootfs alone, as LXD's servers may offer it.
                squashfs = json.loads(json.dumps(product))
                squashfs["release"] = "squashed"
                for version in squashfs["versions"].values():
                    root = version["items"].pop("root.tar.xz")
                    root["ftype"] = "squashfs"
                    root["path"] = root["path"].replace("rootfs.tar.xz", "rootfs.squashfs")
                    version["items"]["root.squashfs"] = root
                keep[name.replace(":bookworm:", ":squashed:")] = squashfs
            products["products"] = keep
            os.makedirs(os.path.join(tree, "streams/v1"), exist_ok=True)
            json.dump(products, open(os.path.join(tree, "streams/v1/images.json"), "w"), indent=1)
            shutil.copyfile(os.path.join(guests, "streams/v1/index.json"), os.path.join(tree, "streams/v1/index.json"))
            """
        try expectShell("/usr/bin/python3", "-c", script, guests.path, tree.path)
        try expectShell(
            "/usr/bin/gpg", "--homedir", sandbox.config.appendingPathComponent("coop/signing").path, "--batch",
            "--armor", "--detach-sign", "--output", tree.appendingPathComponent("streams/v1/images.json.gpg").path,
            tree.appendingPathComponent("streams/v1/images.json").path)
        try sandbox.remotes([("m", "simplestreams", "file://\(tree.path)", key, fingerprint)])
        let created = try sandbox.expect(0, "create", "lxd1", "m:debian/bookworm")
        #expect(!created.stderr.contains("warning"), "\(created)")
        let rootfs = sandbox.containers.appendingPathComponent("lxd1/rootfs")
        // LXD's templates, rendered for the container: the image itself holds LXC's placeholder there.
        let hostname = try String(contentsOf: rootfs.appendingPathComponent("etc/hostname"), encoding: .utf8)
        #expect(hostname == "lxd1\n")
        let hosts = try String(contentsOf: rootfs.appendingPathComponent("etc/hosts"), encoding: .utf8)
        #expect(hosts.contains("127.0.1.1\tlxd1\n"), "\(hosts)")
        var info = stat()
        #expect(stat(rootfs.appendingPathComponent("etc/hostname").path, &info) == 0)
        #expect(info.st_uid != 0, "the written file is the container's root's, not the host's")
        // A squashfs-only build is named, and refused with the way to get it, not skipped as if absent.
        let squashed = try sandbox.run("create", "sq", "m:debian/squashed")
        #expect(squashed.status == 3 && squashed.stderr.contains("squashfs only"), "\(squashed)")
        #expect(squashed.stderr.contains("coop image import"), "\(squashed)")
        // A changed products file no longer matches its signature: refused.
        try expectShell(
            "/bin/sh", "-c", "sed -i 's/bookworm/bookwerm/' '\(tree.path)/streams/v1/images.json'")
        let refused = try sandbox.run("create", "lxd2", "m:debian/bookwerm", "--flush-cache")
        #expect(refused.status != 0 && refused.stderr.contains("signature"), "\(refused)")
        try sandbox.expect(0, "destroy", "lxd1")
    }

    @Test(
        "The same fleet file comes up on a one-node LXD cluster (--on) and locally; nodes reach each other by name",
        .enabled(if: TestHost.ready(.root, .ordinaryUser, .server, .fixtures)), .timeLimit(.minutes(10)))
    func fleetOnCluster() throws {
        let server = try TestHost.server()
        let daemon = try Daemon(ca: server.ca, cluster: true)
        defer { daemon.stop() }
        let members = try daemon.lxc("cluster", "list", "--format", "csv")
        #expect(members.stdout.contains("coop-test-node"), "a cluster of one: \(members)")
        let text = """
            name: lab
            image: g:debian/bookworm
            nodes: 3
            limits:
              pids: 1000
            network:
              subnet: 10.127.0.0/24
              outbound: false
            run:
              - echo provisioned > /var/tmp/provisioned

            """
        // On the cluster, driven as root through the daemon's socket; the image comes from the guests tree.
        let sandbox = try Sandbox(asUser: false)
        try sandbox.remotes([
            (
                "g", "simplestreams", "https://127.0.0.1:\(server.https)/guests", TestHost.guestsKey,
                TestHost.guestsFingerprint
            )
        ])
        try "lab;lxd;unix:\(daemon.state.path)/lxd/unix.socket\n".write(
            to: sandbox.config.appendingPathComponent("coop/remotes"), atomically: true, encoding: .utf8)
        let file = sandbox.root.appendingPathComponent("lab.yaml")
        try text.write(to: file, atomically: true, encoding: .utf8)
        let up = try sandbox.expect(0, "fleet", "up", file.path, "--on", "lab")
        #expect(up.stderr.contains("fleet lab up on lab: 3 nodes booted"), "\(up)")
        let listed = try daemon.lxc("list", "--format", "csv", "-c", "ns")
        #expect(
            listed.stdout.split(separator: "\n").sorted() == ["lab-1,RUNNING", "lab-2,RUNNING", "lab-3,RUNNING"],
            "\(listed)")
        let status = try sandbox.expect(0, "fleet", "status", file.path, "--on", "lab")
        #expect(status.stdout.contains("lab-3  running  10.127.0.4"), "\(status)")
        let provisioned = try sandbox.expect(
            0, "fleet", "exec", file.path, "--on", "lab", "--", "sh", "-c",
            "cat /var/tmp/provisioned; getent hosts lab-2; cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max"
        )
        for node in 1...3 {
            #expect(provisioned.stdout.contains("lab-\(node)| provisioned"), "\(provisioned)")
            #expect(provisioned.stdout.contains("lab-\(node)| 10.127.0.3"), "\(provisioned)")
            #expect(provisioned.stdout.contains("lab-\(node)| 1000"), "the limit: \(provisioned)")
        }
        // By name over TCP, across the cluster's bridge.
        try sandbox.expect(
            0, "fleet", "exec", file.path, "lab-2", "--on", "lab", "--", "setsid", "-f", "systemd-socket-activate",
            "-l", "7000", "-a", "--inetd", "/usr/bin/hostname")
        let asked = try sandbox.expect(
            0, "fleet", "exec", file.path, "lab-1", "lab-3", "--on", "lab", "--", "bash", "-c",
            "for i in $(seq 50); do exec 3<>/dev/tcp/lab-2/7000 && cat <&3 && exit 0; sleep 0.1; done; exit 1")
        #expect(asked.stdout.contains("lab-1| lab-2") && asked.stdout.contains("lab-3| lab-2"), "\(asked)")
        let failed = try sandbox.run(
            "fleet", "exec", file.path, "--on", "lab", "--", "sh", "-c", "test $(hostname) = lab-1")
        #expect(failed.status == 1 && failed.stderr.contains("1 of 3 nodes succeeded"), "\(failed)")
        let down = try sandbox.expect(0, "fleet", "down", file.path, "--on", "lab")
        #expect(down.stderr.contains("3 nodes removed"), "\(down)")
        let left = try daemon.lxc("list", "--format", "csv")
        #expect(left.stdout.isEmpty, "\(left)")

        // The same file on this host, as the ordinary user.
        let local = try Sandbox(asUser: true)
        try local.guestRemotes()
        let localFile = local.root.appendingPathComponent("lab.yaml")
        try text.write(to: localFile, atomically: true, encoding: .utf8)
        let user = try TestHost.account(local.userName)
        chown(localFile.path, user.uid, user.gid)
        let localUp = try local.expect(0, "fleet", "up", localFile.path)
        #expect(localUp.stderr.contains("fleet lab up: 3 nodes booted"), "\(localUp)")
        let names = try local.expect(0, "fleet", "exec", localFile.path, "--", "getent", "hosts", "lab-2")
        #expect(names.stdout.components(separatedBy: "10.127.0.3").count == 4, "\(names)")
        try local.expect(0, "fleet", "down", localFile.path)
    }
}
