import Foundation
import Testing

/// The README's runtime examples as a user types them, and exec and attach behaving as `lxc-attach` does.
@Suite("Runtime as the README shows it", .serialized)
struct RuntimeUsageTests {
    func userSandbox(_ name: String = #function) throws -> Sandbox {
        let sandbox = try Sandbox(asUser: true, name)
        try sandbox.guestRemotes()
        return sandbox
    }

    @Test(
        "coop run IMAGE -- cat /etc/os-release finds the command in PATH; a missing one exits 127",
        .enabled(if: TestHost.ready(.root, .ordinaryUser, .server, .fixtures)))
    func runLooksUpPath() throws {
        let sandbox = try userSandbox()
        let run = try sandbox.run("run", "g:debian/bookworm/amd64/slim", "--", "cat", "/etc/os-release")
        #expect(run.status == 0, "\(run)")
        #expect(run.stdout.contains("VERSION_CODENAME=bookworm"), "\(run)")
        #expect(!run.stdout.contains("\r"), "\(run)")
        let missing = try sandbox.run("run", "g:debian/bookworm/amd64/slim", "--", "no-such-command")
        #expect(missing.status == 127, "\(missing)")
        #expect(missing.stderr.contains("no-such-command"), "\(missing)")
        #expect(try sandbox.run("create", "fg", "t:busybox/1.36").status == 0)
        let foreground = try sandbox.run("start", "fg", "--foreground", "--", "no-such-command")
        #expect(foreground.status == 127, "\(foreground)")
        let bare = try sandbox.run("start", "fg", "--foreground", "--", "sh", "-c", "echo found")
        #expect(bare.status == 0 && bare.stdout == "found\n", "\(bare)")
    }

    @Test(
        "coop run IMAGE -- /sbin/init boots systemd, and coop stop powers the throwaway container off",
        .enabled(if: TestHost.ready(.root, .ordinaryUser, .server, .fixtures)))
    func runBootsInit() throws {
        let sandbox = try userSandbox()
        let booting = try sandbox.start(["run", "g:debian/bookworm/amd64/slim", "--", "/sbin/init"])
        var name: String?
        for _ in 0..<200 where name == nil {
            usleep(100_000)
            name = try sandbox.run("list").stdout.split(separator: "\n").first {
                $0.hasPrefix("run-") && $0.contains("running")
            }
            .map { String($0.split(separator: " ")[0]) }
        }
        let container = try #require(name, "a run container shows in coop list")
        let state = try sandbox.bootState(container)
        #expect(
            ["running", "degraded"].contains(state.stdout.trimmingCharacters(in: .whitespacesAndNewlines)), "\(state)")
        #expect(try sandbox.run("stop", container, "--timeout", "20").status == 0)
        let ended = booting.wait()
        #expect(ended.stdout.contains("Welcome to") || ended.stdout.contains("systemd"), "\(ended)")
        #expect(!FileManager.default.fileExists(atPath: sandbox.containers.appendingPathComponent(container).path))
    }

    @Test(
        "exec: piped output is the command's bytes (no pty, no \\r), -t forces a pty without echoing piped input",
        .enabled(if: TestHost.ready(.root, .ordinaryUser, .server, .fixtures)))
    func execLikeLxcAttach() throws {
        let sandbox = try userSandbox()
        #expect(try sandbox.run("create", "ex", "t:busybox/1.36").status == 0)
        #expect(try sandbox.run("start", "ex").status == 0)
        let driver = TestHost.repository.appendingPathComponent("Tests/Fixtures/tty-attack.py").path
        // At a terminal, with stdout redirected: the bytes as written, no pty.
        let redirected = try RunningCoop(
            ["/usr/bin/python3", driver, "tpt", "0.1", "--"]
                + (try sandbox.commandLine(["exec", "ex", "--", "sh", "-c", "printf 'a\\nb\\n'; tty"]))
        ).wait()
        #expect(redirected.stdout.hasPrefix("a\nb\nnot a tty\n"), "\(redirected)")
        // -t: a pty, even with piped input, which is not echoed.
        let input = sandbox.root.appendingPathComponent("input")
        try "typed-by-a-pipe\n".write(to: input, atomically: true, encoding: .utf8)
        let forced = try RunningCoop(
            ["/bin/sh", "-c", "exec \"$@\" < \(input.path)", "sh"]
                + (try sandbox.commandLine(["exec", "-t", "ex", "--", "sh", "-c", "tty; read line; echo got $line"]))
        ).wait()
        #expect(forced.status == 0, "\(forced)")
        #expect(forced.stdout.hasPrefix("/dev/pts/"), "\(forced)")
        #expect(forced.stdout.contains("got typed-by-a-pipe"), "\(forced)")
        #expect(forced.stdout.components(separatedBy: "typed-by-a-pipe").count == 2, "not echoed: \(forced)")
        // -T at a terminal: no pty.
        let plain = try RunningCoop(
            ["/usr/bin/python3", driver, "ttt", "0.1", "--"]
                + (try sandbox.commandLine(["exec", "-T", "ex", "--", "sh", "-c", "tty"]))
        ).wait()
        #expect(plain.stdout.hasPrefix("not a tty"), "\(plain)")
        #expect(try sandbox.run("stop", "ex", "--timeout", "3").status == 0)
    }

    @Test(
        "exec and attach work in a container on the host's network (lxc.net.0.type = none)",
        .enabled(if: TestHost.ready(.root, .ordinaryUser, .server, .fixtures)))
    func execOnHostNetwork() throws {
        let sandbox = try userSandbox()
        #expect(try sandbox.run("create", "hn", "t:busybox/1.36").status == 0)
        let config = sandbox.containers.appendingPathComponent("hn/config")
        let text = try String(contentsOf: config, encoding: .utf8)
        try
            (text.split(separator: "\n").filter { !$0.hasPrefix("lxc.net.") }.joined(separator: "\n")
            + "\nlxc.net.0.type = none\n").write(to: config, atomically: true, encoding: .utf8)
        #expect(try sandbox.run("start", "hn").status == 0)
        let exec = try sandbox.run("exec", "hn", "--", "sh", "-c", "echo inside")
        #expect(exec.status == 0 && exec.stdout == "inside\n", "\(exec)")
        let driver = TestHost.repository.appendingPathComponent("Tests/Fixtures/pty-driver.py").path
        let steps =
            ##"[{"expect": "# "}, {"send": "echo attached-$((6*7))\n"}, {"expect": "attached-42"}, {"send": "exit 3\n"}]"##
        let attach = try RunningCoop(
            ["/usr/bin/python3", driver, "24", "80", steps, "--"] + (try sandbox.commandLine(["attach", "hn"]))
        ).wait()
        #expect(attach.status == 3, "\(attach)")
        #expect(try sandbox.run("stop", "hn", "--timeout", "3").status == 0)
    }
}
