import Foundation
import Testing

/// Real guests and the host's share: systemd as PID 1 in Debian bookworm and trixie, cgroup limits that
/// hold, setup-host, attach on a pty, the host's network on request, and nothing left behind.
@Suite("Guests, limits and attach", .serialized)
struct GuestTests {
    func userSandbox(_ name: String = #function) throws -> Sandbox {
        let sandbox = try Sandbox(asUser: true, name)
        try sandbox.guestRemotes()
        return sandbox
    }

    /// The container's cgroup folders on the host, in every hierarchy.
    func cgroupFolders(of name: String, user: String = TestHost.userName) -> [String] {
        let roots = (try? FileManager.default.contentsOfDirectory(atPath: "/sys/fs/cgroup")) ?? []
        return roots.flatMap { root -> [String] in
            let folder = "/sys/fs/cgroup/\(root)/coop/\(user)"
            let entries = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
            return entries.filter { $0.hasPrefix(name + "-") }.map { folder + "/" + $0 }
        }
    }

    /// Mounts of the host that lie in the container's folder, and processes whose root is its rootfs.
    func leftovers(of sandbox: Sandbox, _ name: String) throws -> (mounts: [String], processes: [String]) {
        let rootfs = sandbox.containers.appendingPathComponent("\(name)/rootfs").path
        let mounts = try String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8).split(separator: "\n")
            .filter { $0.contains(sandbox.containers.path) }.map(String.init)
        let pids = try FileManager.default.contentsOfDirectory(atPath: "/proc").filter { Int($0) != nil }
        let processes = pids.filter { pid in
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/root")) == rootfs
        }
        return (mounts, processes)
    }

    @Test(
        "Debian bookworm and trixie boot systemd as PID 1 to running, as an ordinary user; stop leaves nothing",
        .enabled(if: TestHost.ready(.root, .ordinaryUser, .server, .fixtures)),
        arguments: ["bookworm", "trixie"])
    func systemdBoots(release: String) throws {
        let sandbox = try userSandbox("systemd-\(release)")
        let name = "sd-\(release)"
        let created = try sandbox.run("create", name, "g:debian/\(release)/amd64/slim")
        #expect(created.status == 0, "\(created)")
        let started = try sandbox.run("start", name)
        #expect(started.status == 0, "\(started)")
        #expect(!started.stderr.contains("warning"), "\(started)")
        let state = try sandbox.bootState(name)
        let log = sandbox.containers.appendingPathComponent("\(name)/console.log")
        var console = ""
        for _ in 0..<100 where !console.contains("login:") {
            console = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            usleep(100_000)
        }
        #expect(
            ["running", "degraded"].contains(state.stdout.trimmingCharacters(in: .whitespacesAndNewlines)),
            "\(state)\n\(console)")
        #expect(console.contains("login:"), "getty runs on the console: \(console.suffix(2000))")
        let apt = try sandbox.run("exec", name, "--", "apt-get", "--version")
        #expect(apt.status == 0 && apt.stdout.hasPrefix("apt "), "\(apt)")
        let ps = try sandbox.run("exec", name, "--", "ps", "-e", "-o", "pid=,comm=")
        let processes = ps.stdout.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        #expect(processes.first == "1 systemd", "\(ps)")
        #expect(processes.count < 20, "no host process is visible: \(ps)")
        #expect(!ps.stdout.contains("nginx") && !ps.stdout.contains("swift"), "\(ps)")
        // systemd made its own cgroups below the container's, owned by the container's root.
        let folders = cgroupFolders(of: name)
        #expect(folders.contains { FileManager.default.fileExists(atPath: $0 + "/init.scope") }, "\(folders)")

        let stopped = try sandbox.run("stop", name)
        #expect(stopped.status == 0, "\(stopped)")
        #expect(cgroupFolders(of: name).isEmpty, "the container's cgroups are removed")
        let left = try leftovers(of: sandbox, name)
        #expect(left.mounts.isEmpty && left.processes.isEmpty, "\(left)")
    }

    @Test(
        "As root too: the container's root is root's own reserved range (1000000), and systemd boots",
        .enabled(if: TestHost.ready(.root, .server, .fixtures)))
    func asRoot() throws {
        let sandbox = try Sandbox(asUser: false)
        try sandbox.guestRemotes()
        try sandbox.expect(0, "create", "rootbb", "t:busybox/1.36")
        let map = try sandbox.run("start", "rootbb", "--foreground", "--", "/bin/sh", "-c", "cat /proc/self/uid_map")
        // Root's range is the one coop reserves for it when it has none (as LXD's package does): no user's.
        let rootRange = try #require(
            (try String(contentsOfFile: "/etc/subuid", encoding: .utf8)).split(separator: "\n")
                .first { $0.hasPrefix("root:") }?.split(separator: ":").dropFirst().first)
        #expect(
            map.stdout.split(separator: " ", omittingEmptySubsequences: true) == ["0", "\(rootRange)", "65536\n"],
            "\(map)")
        try sandbox.expect(0, "create", "rootsd", "g:debian/bookworm/amd64/slim")
        try sandbox.expect(0, "start", "rootsd")
        let state = try sandbox.bootState("rootsd")
        #expect(
            ["running", "degraded"].contains(state.stdout.trimmingCharacters(in: .whitespacesAndNewlines)), "\(state)")
        try sandbox.expect(0, "stop", "rootsd")
        #expect(cgroupFolders(of: "rootsd", user: "root").isEmpty)
    }

    @Test(
        "Limits hold: a memory hog is OOM-killed at 64 MiB, a fork bomb stops at pids.max, root cannot raise them",
        .enabled(if: TestHost.ready(.root, .ordinaryUser, .server, .fixtures)))
    func limits() throws {
        let sandbox = try userSandbox()
        try sandbox.expect(0, "create", "lim", "t:busybox/1.36")
        let config = sandbox.containers.appendingPathComponent("lim/config")
        let text = try String(contentsOf: config, encoding: .utf8)
        try (text + "lxc.cgroup2.memory.max = 64M\nlxc.cgroup2.pids.max = 32\nlxc.cgroup2.cpu.max = 50000 100000\n")
            .write(
                to: config, atomically: false, encoding: .utf8)
        let started = try sandbox.run("start", "lim")
        #expect(started.status == 0 && !started.stderr.contains("could not apply"), "\(started)")
        // cgroup2 names, translated for this host's v1 hierarchies.
        let cpu = try #require(cgroupFolders(of: "lim").first { $0.contains("/cpu/") })
        let quota = try String(contentsOfFile: cpu + "/cpu.cfs_quota_us", encoding: .utf8)
        #expect(quota.trimmingCharacters(in: .whitespacesAndNewlines) == "50000", "half a core: \(quota)")
        // tail keeps a line that never ends in memory: it grows until the kernel kills it.
        let hog = try sandbox.run("exec", "lim", "--", "sh", "-c", "tail /dev/zero")
        #expect(hog.status == 128 + SIGKILL, "\(hog)")
        let folder = try #require(cgroupFolders(of: "lim").first { $0.contains("/memory/") })
        let failures = try String(contentsOfFile: folder + "/memory.failcnt", encoding: .utf8)
        #expect((Int(failures.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0) > 0)
        let bomb = try sandbox.run(
            "exec", "lim", "--", "sh", "-c", "i=0; while [ $i -lt 200 ]; do sleep 30 & i=$((i+1)); done; echo spawned")
        #expect(bomb.stderr.contains("can't fork"), "\(bomb)")
        let pidsFolder = try #require(cgroupFolders(of: "lim").first { $0.contains("/pids/") })
        let peak = try String(contentsOfFile: pidsFolder + "/pids.peak", encoding: .utf8)
        #expect(Int(peak.trimmingCharacters(in: .whitespacesAndNewlines)) == 32, "at most pids.max: \(peak)")
        let raise = try sandbox.run("exec", "lim", "--", "sh", "-c", "echo max > /sys/fs/cgroup/pids/pids.max")
        #expect(raise.status != 0, "root inside cannot raise its limit: \(raise)")
        // The host and the container stay responsive.
        let alive = try sandbox.run("exec", "lim", "--", "sh", "-c", "pkill sleep; echo alive")
        #expect(alive.stdout.contains("alive"), "\(alive)")
        try sandbox.expect(0, "stop", "lim", "--timeout", "3")
        #expect(cgroupFolders(of: "lim").isEmpty)
    }

    @Test(
        "setup-host gives a new user subordinate ids and a cgroup subtree, and changes nothing when run again",
        .enabled(if: TestHost.ready(.root)))
    func setupHost() throws {
        let user = "coop-setup-test"
        if getpwnam(user) == nil {
            try expectShell("/usr/sbin/useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", user)
        }
        // Start from a user without ranges, as useradd on a host without /etc/subuid defaults gives.
        for file in ["/etc/subuid", "/etc/subgid"] {
            let text = try String(contentsOfFile: file, encoding: .utf8)
            let kept = text.split(separator: "\n").filter { !$0.hasPrefix(user + ":") }.joined(separator: "\n") + "\n"
            try kept.write(toFile: file, atomically: true, encoding: .utf8)
        }
        let coop = TestHost.binary.path
        let first = try shell(coop, "setup-host", "--user", user)
        #expect(first.status == 0, "\(first)")
        #expect(first.stdout.contains("subordinate uids: gave \(user)"), "\(first)")
        // Root's own range is reserved by then too, so that no user is ever given it.
        #expect(first.stdout.contains("root's containers use"), "\(first)")
        let ranges = try String(contentsOfFile: "/etc/subuid", encoding: .utf8).split(separator: "\n")
        let mine = try #require(ranges.first { $0.hasPrefix(user + ":") })
        let start = try #require(UInt32(mine.split(separator: ":")[1]))
        #expect(mine.hasSuffix(":65536"))
        for other in ranges where !other.hasPrefix(user + ":") {
            let fields = other.split(separator: ":")
            guard fields.count == 3, let otherStart = UInt32(fields[1]), let count = UInt32(fields[2]) else { continue }
            #expect(start >= otherStart + count || start + 65_536 <= otherStart, "overlaps \(other)")
        }
        let uid = try #require(getpwnam(user)).pointee.pw_uid
        var info = stat()
        #expect(stat("/sys/fs/cgroup/memory/coop/\(user)", &info) == 0 && info.st_uid == uid)
        #expect(stat("/sys/fs/cgroup/memory/coop/\(user)/cgroup.procs", &info) == 0 && info.st_uid == uid)

        let second = try shell(coop, "setup-host", "--user", user)
        #expect(second.status == 0, "\(second)")
        #expect(second.stdout.contains("subordinate uids: \(user) has \(start)-"), "\(second)")
        #expect(
            try String(contentsOfFile: "/etc/subuid", encoding: .utf8).split(separator: "\n").filter {
                $0.hasPrefix(user + ":")
            }.count == 1)
        let refused = try shell(coop, "setup-host", "--user", "no-such-user-here")
        #expect(refused.status == 3 && refused.stderr.contains("does not exist"), "\(refused)")
    }

    @Test(
        "Without delegated cgroups the container still starts, and coop names the limits it could not apply",
        .enabled(if: TestHost.ready(.root, .server, .fixtures)))
    func withoutDelegation() throws {
        let user = "coop-plain-test"
        if getpwnam(user) == nil {
            try expectShell("/usr/sbin/useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", user)
        }
        let ranges = try String(contentsOfFile: "/etc/subuid", encoding: .utf8)
        if !ranges.contains("\(user):") {
            let added = try shell(
                "/usr/sbin/usermod", "--add-subuids", "400000-465535", "--add-subgids", "400000-465535", user)
            #expect(added.status == 0, "\(added)")
        }
        // No setup-host for this user: nothing under coop/ is theirs.
        _ = try shell("/usr/bin/find", "/sys/fs/cgroup", "-maxdepth", "3", "-path", "*/coop/\(user)", "-delete")
        let sandbox = try Sandbox(asUser: true, user: user)
        try sandbox.guestRemotes()
        try sandbox.expect(0, "create", "plain", "t:busybox/1.36")
        let config = sandbox.containers.appendingPathComponent("plain/config")
        let text = try String(contentsOf: config, encoding: .utf8)
        try (text + "lxc.cgroup2.memory.max = 64M\n").write(to: config, atomically: false, encoding: .utf8)
        let result = try sandbox.run("start", "plain", "--foreground", "--", "/bin/sh", "-c", "echo inside")
        #expect(result.status == 0 && result.stdout.contains("inside"), "\(result)")
        #expect(
            result.stderr.contains("could not apply the limits of plain: lxc.cgroup2.memory.max = 64M"), "\(result)")
        #expect(result.stderr.contains("coop setup-host --user \(user)"), "\(result)")
        let check = try sandbox.run("check")
        #expect(check.stdout.contains("gap  cgroup limits"), "\(check)")
    }

    @Test(
        "attach: a login shell on a pty with job control, window size, and Ctrl-C reaching the container",
        .enabled(if: TestHost.ready(.root, .ordinaryUser, .server, .fixtures)))
    func attach() throws {
        let sandbox = try userSandbox()
        try sandbox.expect(0, "create", "att", "t:busybox/1.36")
        try sandbox.expect(0, "start", "att")
        let steps: [[String: Any]] = [
            ["expect": "# "], ["send": "echo $0; tty; stty size\n"], ["expect": "40 100"],
            ["send": "sleep 300 &\n"], ["send": "jobs\n"], ["expect": "Running"],
            ["send": "kill %1; sleep 100\n"], ["expect": "sleep 100"], ["pause": 0.5], ["send": "\u{3}"],
            ["send": "echo interrupted $?\n"], ["expect": "interrupted 130"],
            ["resize": [30, 80]], ["send": "stty size\n"], ["expect": "30 80"], ["send": "exit 5\n"],
        ]
        let json = String(decoding: try JSONSerialization.data(withJSONObject: steps), as: UTF8.self)
        let driver = TestHost.repository.appendingPathComponent("Tests/Fixtures/pty-driver.py").path
        let result = try RunningCoop(
            ["/usr/bin/python3", driver, "40", "100", json, "--"] + (try sandbox.commandLine(["attach", "att"]))
        ).wait()
        #expect(result.status == 5, "\(result)")
        #expect(result.stdout.contains("-sh"), "a login shell: \(result.stdout)")
        #expect(result.stdout.contains("/dev/pts/"), "\(result.stdout)")
        // exec from a terminal: the command gets a pty of the container's, never the user's terminal.
        let exec = try RunningCoop(
            ["/usr/bin/python3", driver, "40", "100", "[]", "--"]
                + (try sandbox.commandLine(["exec", "att", "--", "sh", "-c", "tty; exit 4"]))
        ).wait()
        #expect(exec.status == 4, "\(exec)")
        #expect(exec.stdout.hasPrefix("/dev/pts/"), "\(exec)")
        try sandbox.expect(0, "stop", "att", "--timeout", "3")
    }

    @Test(
        "A busybox container runs its own init with /dev/console on the supervisor's pty",
        .enabled(if: TestHost.ready(.root, .ordinaryUser, .server, .fixtures)))
    func busyboxInit() throws {
        let sandbox = try userSandbox()
        try sandbox.expect(0, "create", "bb", "t:busybox/1.36")
        try sandbox.expect(0, "start", "bb")
        let ps = try sandbox.run("exec", "bb", "--", "ps")
        #expect(ps.stdout.contains("    1 root     init"), "\(ps)")
        let console = try sandbox.run("exec", "bb", "--", "sh", "-c", "test -c /dev/console && echo tty")
        #expect(console.stdout.contains("tty"), "\(console)")
        let log = sandbox.containers.appendingPathComponent("bb/console.log")
        var text = ""
        for _ in 0..<50 where !text.contains("activate this console") {
            text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            usleep(100_000)
        }
        #expect(text.contains("Please press Enter to activate this console"), "\(text)")
        try sandbox.expect(0, "stop", "bb", "--timeout", "3")
    }

    @Test(
        "Network: a private namespace with pasta's interface by default; lxc.net.0.type = none shares the host's",
        .enabled(if: TestHost.ready(.root, .ordinaryUser, .server, .fixtures)))
    func network() throws {
        let sandbox = try userSandbox()
        try sandbox.expect(0, "create", "net", "t:busybox/1.36")
        let hostNet = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/net")
        let script = "ls /sys/class/net; cat /proc/net/dev | wc -l; ls -l /proc/self/ns/net"
        let own = try sandbox.run("start", "net", "--foreground", "--", "/bin/sh", "-c", script)
        #expect(own.status == 0, "\(own)")
        // The default is a namespace of its own that pasta gives an interface beside loopback.
        #expect(own.stdout.contains("lo\n") && own.stdout.split(separator: "\n").count > 3, "\(own)")
        #expect(!own.stdout.contains(hostNet), "\(own)")
        let config = sandbox.containers.appendingPathComponent("net/config")
        let text = try String(contentsOf: config, encoding: .utf8)
        try text.replacingOccurrences(of: "lxc.net.0.type = empty", with: "lxc.net.0.type = none").write(
            to: config, atomically: false, encoding: .utf8)
        let shared = try sandbox.run("start", "net", "--foreground", "--", "/bin/sh", "-c", script)
        #expect(shared.status == 0, "\(shared)")
        #expect(shared.stdout.contains(hostNet), "the host's network namespace: \(shared)")
    }

    @Test(
        "A container whose init crashes or is killed leaves no mounts and no processes on the host",
        .enabled(if: TestHost.ready(.root, .ordinaryUser, .server, .fixtures)))
    func nothingLeftBehind() throws {
        let sandbox = try userSandbox()
        try sandbox.expect(0, "create", "gone", "t:busybox/1.36")
        try sandbox.expect(0, "start", "gone")
        _ = try sandbox.run("exec", "gone", "--", "sh", "-c", "sleep 300 & sleep 300 &")
        #expect(kill(try sandbox.initPID("gone"), SIGKILL) == 0)
        var left = try leftovers(of: sandbox, "gone")
        for _ in 0..<100 where !(left.mounts.isEmpty && left.processes.isEmpty) {
            usleep(20_000)
            left = try leftovers(of: sandbox, "gone")
        }
        #expect(left.mounts.isEmpty && left.processes.isEmpty, "\(left)")
        let listed = try sandbox.expect(0, "list")
        #expect(listed.stdout.contains("gone  stopped"), "\(listed)")
        #expect(!cgroupFolders(of: "gone").isEmpty, "nobody has removed them yet")
        let restarted = try sandbox.run("start", "gone", "--foreground", "--", "/bin/true")
        #expect(restarted.status == 0, "a new start clears what the killed one left: \(restarted)")
        // A foreground init that ends while its children still run: they go with it.
        let ended = try sandbox.run("start", "gone", "--foreground", "--", "/bin/sh", "-c", "sleep 300 & exit 3")
        #expect(ended.status == 3, "\(ended)")
        left = try leftovers(of: sandbox, "gone")
        #expect(left.mounts.isEmpty && left.processes.isEmpty, "\(left)")
        #expect(cgroupFolders(of: "gone").isEmpty, "\(cgroupFolders(of: "gone"))")
        // And destroy clears them after a killed init.
        try sandbox.expect(0, "start", "gone")
        #expect(kill(try sandbox.initPID("gone"), SIGKILL) == 0)
        usleep(200_000)
        let destroyed = try sandbox.run("destroy", "gone")
        #expect(destroyed.status == 0, "\(destroyed)")
        #expect(cgroupFolders(of: "gone").isEmpty, "\(cgroupFolders(of: "gone"))")
    }
}
