import Foundation
import Testing

/// Fleets as an ordinary user: nodes as copy-on-write containers on a private bridge, reaching each other by
/// name and the outside through one pasta; `fleet down` leaves nothing; bad fleet files create nothing.
@Suite("Fleets", .serialized)
struct FleetTests {
    func userSandbox(_ name: String = #function) throws -> Sandbox {
        let sandbox = try Sandbox(asUser: true, name)
        try sandbox.guestRemotes()
        return sandbox
    }

    /// Writes `text` as the fleet file `name` in the sandbox, owned by the test user.
    func fleetFile(_ sandbox: Sandbox, _ name: String, _ text: String) throws -> String {
        let file = sandbox.root.appendingPathComponent(name)
        try text.write(to: file, atomically: true, encoding: .utf8)
        // This file only: the sandbox's containers hold files of the containers' own ids.
        let user = try TestHost.account(sandbox.userName)
        chown(file.path, user.uid, user.gid)
        return file.path
    }

    /// Whether process `pid` runs (a zombie of another parent counts as gone).
    func runs(_ pid: String) -> Bool {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return false }
        return !status.contains("State:\tZ")
    }

    /// Everything of the node's that lives outside its folder: supervisor, PID 1, cgroup folders.
    func traces(of sandbox: Sandbox, _ node: String) throws -> (pids: [String], cgroups: [String]) {
        let data = try Data(contentsOf: sandbox.containers.appendingPathComponent("\(node)/state.json"))
        let state = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let pids = ["pid", "supervisor"].compactMap { (state[$0] as? NSNumber).map { "\($0.intValue)" } }
        return (pids, state["cgroups"] as? [String] ?? [])
    }

    @Test(
        "A 5-node fleet boots as an ordinary user; nodes reach each other by name and the host; down leaves nothing",
        .enabled(if: TestHost.ready(.root, .ordinaryUser, .server, .fixtures)))
    func fiveNodes() throws {
        let sandbox = try userSandbox()
        let server = try TestHost.server()
        let greeting = sandbox.root.appendingPathComponent("greeting")
        try "hello from the host\n".write(to: greeting, atomically: true, encoding: .utf8)
        let file = try fleetFile(
            sandbox, "web.yaml",
            """
            name: tf
            image: g:debian/bookworm/amd64/slim
            nodes: 5
            limits:
              pids: 2000
            network:
              subnet: 10.124.0.0/24
              outbound: true
              ports: ["18181:tf-3:7000"]
            files:
              - from: greeting
                to: /etc/coop-greeting
                mode: "0640"
            run:
              - echo provisioned > /var/tmp/provisioned

            """)
        let up = try sandbox.expect(0, "fleet", "up", file)
        #expect(up.stderr.contains("fleet tf up: 5 nodes booted"), "\(up)")
        let status = try sandbox.expect(0, "fleet", "status", file)
        #expect(status.stdout.split(separator: "\n").filter { $0.contains(" running ") }.count == 5, "\(status)")
        let fifth = status.stdout.split(separator: "\n").first { $0.hasPrefix("tf-5 ") } ?? ""
        #expect(fifth.contains("running") && fifth.contains("10.124.0.6"), "\(status)")
        let list = try sandbox.expect(0, "list")
        #expect((1...5).allSatisfy { list.stdout.contains("tf-\($0) ") }, "each node is a container: \(list)")

        let booted = try sandbox.expect(0, "fleet", "exec", file, "--", "systemctl", "is-system-running")
        for node in 1...5 {
            #expect(
                booted.stdout.contains("tf-\(node)| running") || booted.stdout.contains("tf-\(node)| degraded"),
                "\(booted)")
        }
        #expect(booted.stderr.contains("5 of 5 nodes succeeded"), "\(booted)")
        // The files, the commands and the limits went to every node.
        let provisioned = try sandbox.expect(
            0, "fleet", "exec", file, "--", "sh", "-c",
            "cat /etc/coop-greeting /var/tmp/provisioned; stat -c %a /etc/coop-greeting; cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max"
        )
        #expect(
            provisioned.stdout.components(separatedBy: "| hello from the host").count == 6, "\(provisioned)")
        #expect(provisioned.stdout.components(separatedBy: "| provisioned").count == 6, "\(provisioned)")
        #expect(provisioned.stdout.components(separatedBy: "| 640").count == 6, "\(provisioned)")
        #expect(provisioned.stdout.components(separatedBy: "| 2000").count == 6, "the shared limit: \(provisioned)")

        // By name over TCP: tf-3 answers with its hostname, to tf-1 and tf-5 alike.
        try sandbox.expect(
            0, "exec", "tf-3", "--", "setsid", "-f", "systemd-socket-activate", "-l", "7000", "-a", "--inetd",
            "/usr/bin/hostname")
        let asked = try sandbox.expect(
            0, "fleet", "exec", file, "tf-1", "tf-5", "--", "bash", "-c",
            "for i in $(seq 50); do exec 3<>/dev/tcp/tf-3/7000 && cat <&3 && exit 0; sleep 0.1; done; exit 1")
        #expect(asked.stdout.contains("tf-1| tf-3") && asked.stdout.contains("tf-5| tf-3"), "\(asked)")
        // The published port: the host's 127.0.0.1:18181 is tf-3's port 7000.
        let published = Process()
        published.executableURL = URL(fileURLWithPath: "/bin/bash")
        published.arguments = ["-c", "exec 3<>/dev/tcp/127.0.0.1/18181 && timeout 5 cat <&3"]
        let answer = Pipe()
        published.standardOutput = answer
        try published.run()
        published.waitUntilExit()
        let said = String(decoding: answer.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(said == "tf-3\n", "published port: \(said)")
        let names = try sandbox.expect(0, "exec", "tf-2", "--", "getent", "hosts", "tf-4")
        #expect(names.stdout.hasPrefix("10.124.0.5"), "\(names)")
        // Outbound: the host's loopback server through the fleet's one pasta, behind NAT.
        let outbound = try sandbox.expect(
            0, "exec", "tf-4", "--", "bash", "-c",
            "exec 3<>/dev/tcp/host.coop.internal/\(server.http) && printf 'GET /good/meta/1.0/index-user HTTP/1.0\\r\\n\\r\\n' >&3 && cat <&3"
        )
        #expect(outbound.stdout.contains("busybox"), "\(outbound)")

        // A failing command: its node is named, and the exit status says so.
        let failed = try sandbox.run("fleet", "exec", file, "tf-2", "tf-3", "--", "sh", "-c", "test $(hostname) = tf-2")
        #expect(failed.status == 1, "\(failed)")
        #expect(failed.stderr.contains("1 of 2 nodes succeeded; failed: tf-3 (1)"), "\(failed)")

        let traces = try (1...5).map { try self.traces(of: sandbox, "tf-\($0)") }
        let network = try String(
            contentsOf: sandbox.containers.appendingPathComponent(".fleets/tf/network.conf"), encoding: .utf8)
        let holder = try #require(
            network.split(separator: "\n").first { $0.hasPrefix("holder =") }?.split(separator: " ").last)
        let pasta = try String(
            contentsOf: sandbox.containers.appendingPathComponent(".fleets/tf/pasta.pid"), encoding: .utf8
        ).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(runs(String(holder)) && runs(pasta))

        let down = try sandbox.expect(0, "fleet", "down", file)
        #expect(down.stderr.contains("fleet tf down: 5 nodes removed"), "\(down)")
        // Nothing is left: processes, cgroups, the network's holder and pasta, the folders and overlays.
        let pids = traces.flatMap(\.pids) + [String(holder), pasta]
        var alive = pids.filter(runs)
        for _ in 0..<50 where !alive.isEmpty {
            usleep(100_000)
            alive = pids.filter(runs)
        }
        #expect(alive.isEmpty, "processes left: \(alive)")
        let cgroups = traces.flatMap(\.cgroups).filter { FileManager.default.fileExists(atPath: $0) }
        #expect(cgroups.isEmpty, "cgroups left: \(cgroups)")
        let left = try FileManager.default.contentsOfDirectory(atPath: sandbox.containers.path).filter {
            $0.hasPrefix("tf-") || $0.contains("destroying")
        }
        #expect(left.isEmpty, "folders left: \(left)")
        #expect(!FileManager.default.fileExists(atPath: sandbox.containers.appendingPathComponent(".fleets/tf").path))
        let mounts = try String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)
        #expect(!mounts.contains(sandbox.containers.path), "mounts left")
        let base = try FileManager.default.contentsOfDirectory(
            atPath: sandbox.containers.appendingPathComponent(".bases").path)
        #expect(!base.filter { !$0.hasPrefix(".") }.isEmpty, "the shared base stays for the next fleet")
    }

    @Test(
        "Bad fleet files get an error naming the line and the fix, and create nothing",
        .enabled(if: TestHost.ready(.root, .ordinaryUser, .server, .fixtures)))
    func badFiles() throws {
        let sandbox = try userSandbox()
        let cases: [(String, String, Int32, [String])] = [
            (
                "name: bf\nimage: g:debian/bookworm/amd64/slim\nnodes: 2\nnetwork:\n  subnett: 10.1.0.0/24\n", "typo",
                2, ["line 5", "subnett", "subnet"]
            ),
            (
                "name: bf\nimage: g:debian/bookworm/amd64/slim\nnodes: 2\nnetwork:\n  subnet: 10.1.0.7/24\n",
                "host bits",
                2, ["line 5", "10.1.0.7/24"]
            ),
            ("name: bf\nimage: g:debian/bookworm/amd64/slim\nnodes: [a, b, a]\n", "duplicate", 2, ["line 3", "a"]),
            ("name: bf\nimage: g:debian/nosuch/amd64/slim\nnodes: 2\n", "no such image", 3, ["nosuch"]),
        ]
        for (text, label, status, words) in cases {
            let file = try fleetFile(sandbox, "bad.yaml", text)
            let result = try sandbox.run("fleet", "up", file)
            #expect(result.status == status, "\(label): \(result)")
            for word in words { #expect(result.stderr.contains(word), "\(label): \(word): \(result)") }
            #expect(result.stderr.contains("fix:"), "\(label): \(result)")
            let made = (try? FileManager.default.contentsOfDirectory(atPath: sandbox.containers.path)) ?? []
            #expect(made.allSatisfy { $0.hasPrefix(".") }, "\(label): nothing created: \(made)")
            #expect(
                !FileManager.default.fileExists(atPath: sandbox.containers.appendingPathComponent(".fleets/bf").path),
                "\(label)")
        }
        // A container of the same name that is not a node is never touched.
        try sandbox.expect(0, "create", "bf-1", "g:debian/bookworm/amd64/slim", "--cow")
        let file = try fleetFile(sandbox, "ok.yaml", "name: bf\nimage: g:debian/bookworm/amd64/slim\nnodes: 2\n")
        let clash = try sandbox.run("fleet", "up", file)
        #expect(clash.status == 7 && clash.stderr.contains("bf-1"), "\(clash)")
        #expect(!FileManager.default.fileExists(atPath: sandbox.containers.appendingPathComponent("bf-2").path))
        let down = try sandbox.expect(0, "fleet", "down", file)
        #expect(down.stderr.contains("0 nodes removed"), "\(down)")
        #expect(FileManager.default.fileExists(atPath: sandbox.containers.appendingPathComponent("bf-1").path))
        try sandbox.expect(2, "fleet", "exec", file, "--")
        try sandbox.expect(3, "fleet", "exec", file, "nosuch", "--", "true")
        let notUp = try sandbox.expect(7, "fleet", "exec", file, "--", "true")
        #expect(notUp.stderr.contains("is not up"), "\(notUp)")
    }

    @Test(
        "start --wait returns once systemd has booted (its READY=1); a fleet node stopped by hand starts again",
        .enabled(if: TestHost.ready(.root, .ordinaryUser, .server, .fixtures)))
    func startWait() throws {
        let sandbox = try userSandbox()
        try sandbox.expect(0, "create", "sw", "g:debian/bookworm/amd64/slim", "--cow")
        let started = try sandbox.expect(0, "start", "sw", "--wait")
        #expect(started.stderr.contains("sw booted"), "\(started)")
        // Asked right away, without waiting: systemd has finished.
        let state = try sandbox.expect(0, "exec", "sw", "--", "systemctl", "is-system-running")
        #expect(["running", "degraded"].contains(state.stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
        try sandbox.expect(0, "stop", "sw", "--timeout", "0")
        try sandbox.expect(2, "start", "sw", "--wait", "--foreground")

        let file = try fleetFile(sandbox, "one.yaml", "name: one\nimage: g:debian/bookworm/amd64/slim\nnodes: 1\n")
        try sandbox.expect(0, "fleet", "up", file)
        try sandbox.expect(0, "stop", "one-1", "--timeout", "0")
        // The network goes with `fleet down` only; a node stopped by hand starts again on it.
        try sandbox.expect(0, "start", "one-1", "--wait")
        try sandbox.expect(0, "fleet", "down", file)
        try sandbox.expect(0, "destroy", "sw")
    }

    @Test(
        "isolated: true gives each node a range of its own, not the user's first; too few ranges name setup-host",
        .enabled(if: TestHost.ready(.root, .ordinaryUser, .server, .fixtures)))
    func isolatedNodes() throws {
        let sandbox = try userSandbox()
        let user = try TestHost.user(sandbox.userName)
        // The test setup gives the user four ranges: its own and three for isolated nodes.
        let tooMany = try fleetFile(
            sandbox, "big.yaml", "name: big\nimage: g:debian/bookworm/amd64/slim\nnodes: 4\nisolated: true\n")
        let refused = try sandbox.expect(8, "fleet", "up", tooMany)
        #expect(refused.stderr.contains("needs 4 ranges") && refused.stderr.contains("--ranges 5"), "\(refused)")
        #expect(try sandbox.expect(0, "list").stdout.split(separator: "\n").count <= 1, "nothing was created")

        let file = try fleetFile(
            sandbox, "iso.yaml",
            """
            name: iso
            image: g:debian/bookworm/amd64/slim
            nodes: 2
            isolated: true
            network:
              subnet: 10.125.0.0/24
              outbound: false

            """)
        try sandbox.expect(0, "fleet", "up", file)
        var roots: [UInt32] = []
        for node in ["iso-1", "iso-2"] {
            let pid = try #require(try traces(of: sandbox, node).pids.first)
            let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
            let uid = try #require(
                status.split(separator: "\n").first { $0.hasPrefix("Uid:") }?.split(separator: "\t").dropFirst().first
                    .flatMap { UInt32($0) })
            roots.append(uid)
            var info = stat()
            #expect(stat(sandbox.containers.appendingPathComponent("\(node)/rootfs/etc/passwd").path, &info) == 0)
            #expect(info.st_uid == uid, "\(node)'s files are its root's")
            let inside = try sandbox.expect(0, "exec", node, "--", "cat", "/proc/self/uid_map")
            #expect(inside.stdout.split(separator: "\n").count == 1 && inside.stdout.hasSuffix(" 65536\n"), "\(inside)")
        }
        #expect(roots[0] != roots[1], "each node's root is another host id: \(roots)")
        #expect(
            roots.allSatisfy { $0 >= user.subuid + 65_536 || $0 < user.subuid },
            "no node runs on the user's first range, which its other containers use: \(roots)")
        // Still one network: iso-2 answers iso-1 by name over TCP.
        try sandbox.expect(
            0, "exec", "iso-2", "--", "setsid", "-f", "systemd-socket-activate", "-l", "7000", "-a", "--inetd",
            "/usr/bin/hostname")
        let asked = try sandbox.expect(
            0, "exec", "iso-1", "--", "bash", "-c",
            "for i in $(seq 50); do exec 3<>/dev/tcp/iso-2/7000 && cat <&3 && exit 0; sleep 0.1; done; exit 1")
        #expect(asked.stdout == "iso-2\n", "\(asked)")
        // A container on the user's first range that claims to be a node of this isolated fleet (its network
        // settings copied from one) would run as the fleet's root, which reaches every node's ids: refused.
        try sandbox.expect(0, "create", "intruder", "g:debian/bookworm/amd64/slim", "--cow")
        let settings = "coop-network.conf"
        try expectShell(
            "/bin/cp", "-p", sandbox.containers.appendingPathComponent("iso-1/\(settings)").path,
            sandbox.containers.appendingPathComponent("intruder/\(settings)").path)
        let intruder = try sandbox.run("start", "intruder")
        #expect(intruder.status == 7 && intruder.stderr.contains("an isolated range"), "\(intruder)")
        try sandbox.expect(0, "destroy", "intruder")
        try sandbox.expect(0, "fleet", "down", file)
        let left = try FileManager.default.contentsOfDirectory(atPath: sandbox.containers.path).filter {
            $0.hasPrefix("iso-") || $0.contains("destroying")
        }
        #expect(left.isEmpty, "folders left: \(left)")
    }
}
