import Foundation
import Testing

/// Root inside a container and other local users attack the owner: each test runs one attack.
@Suite("Hostile root inside and hostile neighbours", .serialized)
struct HostileNeighbourTests {
    func userSandbox(_ name: String = #function) throws -> Sandbox {
        let sandbox = try Sandbox(asUser: true, name)
        try sandbox.remote()
        return sandbox
    }

    /// Compiles one of Tests/Fixtures/attacks/*.c statically into the sandbox (the container has no compiler).
    func attack(_ name: String, in sandbox: Sandbox) throws -> URL {
        let source = TestHost.repository.appendingPathComponent("Tests/Fixtures/attacks/\(name).c")
        let binary = sandbox.root.appendingPathComponent(name)
        let gcc = try RunningCoop(["/usr/bin/gcc", "-static", "-O2", "-o", binary.path, source.path]).wait()
        try #require(gcc.status == 0, "\(gcc)")
        chmod(binary.path, 0o755)
        return binary
    }

    /// Copies `file` into the running container `name` as `/NAME`, executable.
    func copy(_ file: URL, into name: String, sandbox: Sandbox) throws {
        let target = "/" + file.lastPathComponent
        let command = try sandbox.commandLine(["exec", name, "--", "sh", "-c", "cat > \(target); chmod 755 \(target)"])
        let result = try RunningCoop(["/bin/sh", "-c", "exec \"$@\" < \(file.path)", "sh"] + command).wait()
        try #require(result.status == 0, "\(result)")
    }

    /// Runs `arguments` of coop through Tests/Fixtures/tty-attack.py: a terminal of its own as the
    /// controlling terminal, stdio per `modes`; returns what came out and what was typed into the terminal.
    func onTerminal(_ modes: String, _ sandbox: Sandbox, _ arguments: [String], wait: Double = 2.5) throws
        -> (result: CoopResult, typed: String)
    {
        let driver = TestHost.repository.appendingPathComponent("Tests/Fixtures/tty-attack.py").path
        let result = try RunningCoop(
            ["/usr/bin/python3", driver, modes, String(wait), "--"] + (try sandbox.commandLine(arguments))
        ).wait()
        let typed = result.stdout.components(separatedBy: "\ntyped: ").last ?? ""
        return (result, typed)
    }

    @Test(
        "exec: root inside cannot ptrace the helper while it still has the owner's credentials",
        .enabled(if: TestHost.ready(.root, .ordinaryUser, .server, .fixtures)))
    func execCannotBeSeized() throws {
        let sandbox = try userSandbox()
        #expect(try sandbox.run("create", "px", "t:busybox/1.36").status == 0)
        #expect(try sandbox.run("start", "px").status == 0)
        try copy(try attack("seize", in: sandbox), into: "px", sandbox: sandbox)
        let watcher = try sandbox.start(["exec", "px", "--", "/seize", "6"])
        usleep(300_000)
        for _ in 0..<25 {
            let exec = try sandbox.run("exec", "px", "--", "sleep", "0.1")
            #expect(exec.status == 0, "\(exec)")
        }
        let report = watcher.wait()
        #expect(report.status == 0, "\(report)")
        // The attacker works (it catches the commands once they run as the container's root) ...
        #expect(report.stdout.contains("seized pid"), "\(report)")
        // ... and never catches one that still holds the owner's ids.
        #expect(!report.stdout.contains("HIJACK"), "\(report)")
        #expect(try sandbox.run("stop", "px", "--timeout", "3").status == 0)
    }

    @Test(
        "No terminal of the user's reaches a container: TIOCSTI from inside types nothing, now or later",
        .enabled(if: TestHost.ready(.root, .ordinaryUser, .server, .fixtures)))
    func noTerminalReachesTheContainer() throws {
        let sandbox = try userSandbox()
        #expect(try sandbox.run("create", "tt", "t:busybox/1.36").status == 0)
        #expect(try sandbox.run("start", "tt").status == 0)
        try copy(try attack("inject", in: sandbox), into: "tt", sandbox: sandbox)
        // exec with stdout redirected (no pty), with everything on the terminal (pty), forced -T.
        for (modes, extra) in [("tpt", [String]()), ("ttt", []), ("ttt", ["-T"]), ("tnt", [])] {
            let attempt = try onTerminal(modes, sandbox, ["exec"] + extra + ["tt", "--", "/inject", "1"])
            #expect(attempt.result.status == 0, "\(modes) \(extra): \(attempt.result)")
            #expect(!attempt.typed.contains("INJECTED"), "\(modes) \(extra): \(attempt.result)")
        }
        #expect(try sandbox.run("stop", "tt", "--timeout", "3").status == 0)
        // A command as PID 1 in the foreground, at a terminal and with output redirected.
        for modes in ["ttt", "tpt"] {
            let attempt = try onTerminal(modes, sandbox, ["start", "tt", "--foreground", "--", "/inject", "0"])
            #expect(attempt.result.status == 0, "\(modes): \(attempt.result)")
            #expect(!attempt.typed.contains("INJECTED"), "\(modes): \(attempt.result)")
        }
        // What coop run gives its command: no descriptor on a terminal of the host's, no /dev/tty.
        let probe = "readlink /proc/self/fd/0 /proc/self/fd/1 /proc/self/fd/2; echo > /dev/tty && echo TTY-OPEN"
        let run = try onTerminal("tpt", sandbox, ["run", "t:busybox/1.36", "--", "sh", "-c", probe], wait: 0.2)
        #expect(!run.result.stdout.contains("TTY-OPEN"), "\(run.result)")
        #expect(!run.result.stdout.contains("/dev/pts/"), "\(run.result)")
    }

    @Test(
        "exec and attach get a new session keyring and no supplementary group of the caller's",
        .enabled(if: TestHost.ready(.root, .ordinaryUser, .server, .fixtures)))
    func keyringAndGroups() throws {
        let sandbox = try userSandbox()
        #expect(try sandbox.run("create", "kr", "t:busybox/1.36").status == 0)
        #expect(try sandbox.run("start", "kr").status == 0)
        let probe = try attack("keyring", in: sandbox)
        try copy(probe, into: "kr", sandbox: sandbox)
        // The caller with supplementary groups of its own, and its session keyring.
        let caller = try sandbox.commandLine([
            "exec", "kr", "--", "sh", "-c", "/keyring; grep ^Groups: /proc/self/status",
        ])
        .map { $0 == "--init-groups" ? "--groups=100,65534" : $0 }
        let inside = try RunningCoop(caller).wait()
        #expect(inside.status == 0, "\(inside)")
        let user = try TestHost.user()
        let outside = try RunningCoop(
            ["/usr/bin/setpriv", "--reuid=\(user.uid)", "--regid=\(user.gid)", "--groups=100,65534", probe.path]
        ).wait()
        let callerKeyring = outside.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(callerKeyring.hasPrefix("session keyring "), "\(outside)")
        #expect(!inside.stdout.contains(callerKeyring + "\n"), "inside: \(inside) caller: \(outside)")
        let groups = inside.stdout.split(separator: "\n").first { $0.hasPrefix("Groups:") }
        #expect(
            groups?.dropFirst("Groups:".count).trimmingCharacters(in: .whitespaces) == "",
            "no supplementary groups: \(inside)")
        #expect(try sandbox.run("stop", "kr", "--timeout", "3").status == 0)
    }

    @Test(
        "Another local user can read nothing of a user's containers and write nothing into them",
        .enabled(if: TestHost.ready(.root, .ordinaryUser, .server, .fixtures)))
    func otherUsersAreKeptOut() throws {
        let sandbox = try userSandbox()
        #expect(try sandbox.run("create", "pv", "t:busybox/1.36").status == 0)
        #expect(try sandbox.run("start", "pv").status == 0)
        let folder = sandbox.containers.appendingPathComponent("pv")
        // nobody: any other account of the host.
        for probe in [
            "cat \(folder.path)/config", "cat \(folder.path)/console.log", "cat \(folder.path)/state.json",
            "ls \(folder.path)/rootfs/", "touch \(folder.path)/rootfs/tmp/planted", "ls \(sandbox.containers.path)",
            "\(folder.path)/rootfs/bin/busybox true",
        ] {
            let result = try RunningCoop([
                "/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                "/bin/sh", "-c", probe,
            ]).wait()
            #expect(result.status != 0, "nobody could: \(probe): \(result)")
        }
        var info = stat()
        #expect(stat(folder.path, &info) == 0 && info.st_mode & 0o007 == 0, "mode \(String(info.st_mode, radix: 8))")
        #expect(try sandbox.run("stop", "pv", "--timeout", "3").status == 0)
        #expect(try sandbox.run("destroy", "pv").status == 0)
    }

    @Test(
        "Root's containers run on a range no user holds, in a folder no user can enter",
        .enabled(if: TestHost.ready(.root, .ordinaryUser, .server, .fixtures)))
    func rootsRangeIsItsOwn() throws {
        let sandbox = try Sandbox(asUser: false)
        try sandbox.remote()
        #expect(try sandbox.run("create", "r1", "t:busybox/1.36").status == 0)
        let user = try TestHost.user()
        let rootfs = sandbox.containers.appendingPathComponent("r1/rootfs")
        var info = stat()
        #expect(stat(rootfs.path, &info) == 0)
        let userRange = UInt32(user.subuid)..<UInt32(user.subuid) + 65_536
        #expect(!userRange.contains(info.st_uid), "root's container root \(info.st_uid) is in the user's range")
        #expect(stat(sandbox.containers.path, &info) == 0 && info.st_mode & 0o001 == 0)
        let subuid = (try? String(contentsOfFile: "/etc/subuid", encoding: .utf8)) ?? ""
        #expect(subuid.split(separator: "\n").contains { $0.hasPrefix("root:") }, "\(subuid)")
        // A container of root's whose ids the user holds (as made before root had a range) is refused.
        let config = sandbox.containers.appendingPathComponent("r1/config")
        var text = try String(contentsOf: config, encoding: .utf8)
        text =
            text.split(separator: "\n").filter { !$0.hasPrefix("lxc.idmap") }.joined(separator: "\n")
            + "\nlxc.idmap = u 0 \(user.subuid) 65536\nlxc.idmap = g 0 \(user.subgid) 65536\n"
        try text.write(to: config, atomically: true, encoding: .utf8)
        let start = try sandbox.run("start", "r1", "--foreground", "--", "/bin/true")
        #expect(start.status == 8, "\(start)")
        #expect(start.stderr.contains("overlap the range of user '\(TestHost.userName)'"), "\(start)")
    }

    @Test(
        "destroy never removes a running container, and stop gives up on a PID 1 it cannot signal",
        .enabled(if: TestHost.ready(.root, .ordinaryUser, .server, .fixtures)))
    func destroyRacesStart() throws {
        let sandbox = try userSandbox()
        #expect(try sandbox.run("create", "dr", "t:busybox/1.36").status == 0)
        for _ in 0..<4 {
            let start = try sandbox.start(["start", "dr"])
            let destroy = try sandbox.start(["destroy", "dr"])
            let (started, destroyed) = (start.wait(), destroy.wait())
            if destroyed.status == 0 {
                // destroy won: start found nothing, or nothing of it is left running.
                #expect(started.status != 0 || !FileManager.default.fileExists(atPath: sandbox.containers.path + "/dr"))
                #expect(try sandbox.run("create", "dr", "t:busybox/1.36").status == 0)
            } else {
                #expect(destroyed.status == 7, "\(destroyed)")
                #expect(FileManager.default.fileExists(atPath: sandbox.containers.path + "/dr/rootfs/bin"))
                #expect(try sandbox.run("stop", "dr", "--timeout", "3").status == 0)
            }
        }
        // A state naming a process of another user's (PID 1 of the host): stop says so instead of waiting.
        #expect(try sandbox.run("start", "dr").status == 0)
        let pid = try sandbox.initPID("dr")
        let stateFile = sandbox.containers.appendingPathComponent("dr/state.json")
        var state = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: stateFile)) as? [String: Any])
        let hostInit = try String(contentsOfFile: "/proc/1/stat", encoding: .utf8)
        state["pid"] = 1
        state["startTicks"] = Int(hostInit.split(separator: ")").last!.split(separator: " ")[19])
        try JSONSerialization.data(withJSONObject: state).write(to: stateFile)
        let stop = try sandbox.run("stop", "dr", "--timeout", "1")
        #expect(stop.status == 7, "\(stop)")
        #expect(stop.stderr.contains("cannot be signalled"), "\(stop)")
        kill(pid, SIGKILL)
    }

    @Test(
        "exec joins the container's cgroups by their host paths, whatever root inside does to /sys/fs/cgroup",
        .enabled(if: TestHost.ready(.root, .ordinaryUser, .server, .fixtures)))
    func execKeepsTheLimits() throws {
        let sandbox = try userSandbox()
        #expect(try sandbox.run("create", "lim", "t:busybox/1.36").status == 0)
        let config = sandbox.containers.appendingPathComponent("lim/config")
        let text = try String(contentsOf: config, encoding: .utf8)
        try (text + "lxc.cgroup2.pids.max = 40\n").write(to: config, atomically: true, encoding: .utf8)
        // A command as PID 1 (no init) with a limit; root inside hides /sys/fs/cgroup.
        #expect(try sandbox.run("start", "lim", "--", "/bin/sh", "-c", "sleep 300").status == 0)
        _ = try sandbox.run("exec", "lim", "--", "sh", "-c", "mount -t tmpfs none /sys/fs/cgroup")
        let pid = try sandbox.initPID("lim")
        let initCgroups = try String(contentsOfFile: "/proc/\(pid)/cgroup", encoding: .utf8)
        let exec = try sandbox.run("exec", "lim", "--", "sh", "-c", "cat /proc/self/cgroup")
        #expect(exec.status == 0, "\(exec)")
        // In its cgroup namespace, a process in the container's own cgroups sees "/" in each that has a limit.
        let pidsLine = exec.stdout.split(separator: "\n").first { $0.contains(":pids:") || $0.hasPrefix("0::") }
        #expect(pidsLine?.hasSuffix(":/") == true, "exec: \(exec.stdout) init: \(initCgroups)")
        #expect(try sandbox.run("stop", "lim", "--timeout", "3").status == 0)
    }

    @Test(
        "From inside: no inherited descriptor, a reduced capability bounding set, the seccomp filter",
        .enabled(if: TestHost.ready(.root, .ordinaryUser, .server, .fixtures)))
    func confinementSeenFromInside() throws {
        let sandbox = try userSandbox()
        #expect(try sandbox.run("create", "cf", "t:busybox/1.36").status == 0)
        let probe =
            "ls /proc/self/fd | tr '\\n' ' '; echo; grep -E '^(CapBnd|Seccomp):' /proc/self/status; "
            + "swapon /dev/null 2>&1; echo swapon=$?"
        // PID 1 and exec, each with a descriptor of the caller's open (fd 5) that must not get in.
        let pid1 = try RunningCoop(
            ["/bin/sh", "-c", "exec 5</etc/hostname; exec \"$@\"", "sh"]
                + (try sandbox.commandLine(["start", "cf", "--foreground", "--", "sh", "-c", probe]))
        ).wait()
        #expect(try sandbox.run("start", "cf").status == 0)
        let exec = try RunningCoop(
            ["/bin/sh", "-c", "exec 5</etc/hostname; exec \"$@\"", "sh"]
                + (try sandbox.commandLine(["exec", "cf", "--", "sh", "-c", probe]))
        ).wait()
        for result in [pid1, exec] {
            #expect(result.status == 0, "\(result)")
            let lines = result.stdout.split(separator: "\n").map(String.init)
            // ls itself holds one more: the listing of the folder.
            #expect(lines.first?.split(separator: " ").sorted() == ["0", "1", "2", "3"], "\(result)")
            let bounding = lines.first { $0.hasPrefix("CapBnd:") }.flatMap {
                UInt64($0.dropFirst(7).trimmingCharacters(in: .whitespaces), radix: 16)
            }
            let bounds = try #require(bounding, "\(result)")
            for capability in [16, 17, 25, 32, 33] {
                #expect(bounds & (1 << UInt64(capability)) == 0, "cap \(capability): \(result)")
            }
            #expect(bounds & (1 << 21) != 0, "CAP_SYS_ADMIN stays for the container's own namespaces: \(result)")
            #expect(lines.contains { $0.hasPrefix("Seccomp:") && $0.hasSuffix("2") }, "\(result)")
            #expect(
                result.stdout.contains("Operation not permitted") && result.stdout.contains("swapon=1"), "\(result)")
        }
        #expect(try sandbox.run("stop", "cf", "--timeout", "3").status == 0)
    }

    @Test(
        "Symbolic links planted where the runtime mounts (/dev, /proc, /sys) are refused, not followed, and named",
        .enabled(if: TestHost.ready(.root, .ordinaryUser, .server, .fixtures)))
    func plantedLinksAreRefused() throws {
        let sandbox = try userSandbox()
        #expect(try sandbox.run("create", "sl", "t:busybox/1.36").status == 0)
        let rootfs = sandbox.containers.appendingPathComponent("sl/rootfs")
        // What root inside can do to its own rootfs: a link in place of a folder the runtime mounts on.
        let target = sandbox.root.appendingPathComponent("host-folder")
        try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)
        for name in ["dev", "proc", "sys"] {
            let folder = rootfs.appendingPathComponent(name)
            let saved = rootfs.appendingPathComponent(name + ".saved")
            #expect(rename(folder.path, saved.path) == 0)
            #expect(symlink(target.path, folder.path) == 0)
            let start = try sandbox.run("start", "sl", "--foreground", "--", "/bin/true")
            #expect(start.status == 8, "\(name): \(start)")
            #expect(start.stderr.contains("symbolic links"), "\(name): \(start)")
            // The message names the stage and the path that was refused.
            #expect(start.stderr.contains("mount of /\(name) failed: openat2 \(folder.path) "), "\(name): \(start)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: target.path).isEmpty)
            #expect(unlink(folder.path) == 0)
            #expect(rename(saved.path, folder.path) == 0)
        }
        let fine = try sandbox.run("start", "sl", "--foreground", "--", "/bin/true")
        #expect(fine.status == 0, "\(fine)")
    }
}
