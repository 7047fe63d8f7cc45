import Foundation
import Testing

/// Real LXC and coop on each other's containers, as the test user: `lxc-start`, `lxc-attach` and `lxc-stop` on a
/// container `coop create` made, and `coop start`, `exec`, `stop` and `list` on one `lxc-create -t download` made.
///
/// Both use the slim bookworm build that the build tests publish (built once per run and shared): it has systemd
/// and procps. The LXC steps are those of Tests/Fixtures/lxc-interop.sh, on the sandbox's containers folder as the LXC
/// path (`lxc-* -P`).
@Suite("LXC interop", .serialized)
struct InteropTests {
    /// The published slim build on a server of its own, and a sandbox of the test user whose remote "p" is that
    /// server, trusting the publishing key. The sandbox's containers folder is the LXC path of the LXC steps.
    final class Published {
        let client: Sandbox
        let scratch: Sandbox
        let serve = TestHost.repository.appendingPathComponent("Tests/Fixtures/serve.sh").path
        /// host:port/path, as lxc-download takes it.
        let server: String
        var state: URL { scratch.root.appendingPathComponent("server") }
        var ca: URL { state.appendingPathComponent("tls/ca.pem") }

        init(_ name: String) throws {
            let (publisher, _) = try BuildPublishTests.Shared.shared.published()
            scratch = try Sandbox(asUser: false, "\(name)-server")
            client = try Sandbox(asUser: true, name)
            let state = scratch.root.appendingPathComponent("server")
            let started = try shell(serve, "start", publisher.root.appendingPathComponent("www").path, state.path)
            let port = started.stdout.split(separator: "\n").first { $0.hasPrefix("HTTPS_PORT=") }?.dropFirst(11)
            server = "127.0.0.1:\(port ?? "")/tree"
            try #require(started.status == 0 && port != nil, "\(started)")
            let key = client.root.appendingPathComponent("published.asc")
            let exported = try publisher.run(
                "key", "export", "--output", key.path, "--remote", "p", "--url", "https://\(server)")
            try #require(exported.status == 0, "\(exported)")
            try exported.stdout.write(
                to: client.config.appendingPathComponent("coop/images.index"), atomically: true, encoding: .utf8)
            client.extraEnvironment["CURL_CA_BUNDLE"] = ca.path
            try FileManager.default.createDirectory(at: client.containers, withIntermediateDirectories: true)
            try client.own()
        }

        deinit {
            _ = try? shell(serve, "stop", state.path)
        }

        /// Runs `steps` of lxc-interop.sh (create, start, destroy) as the test user on container `name`.
        func lxc(_ steps: String, _ name: String) throws -> CoopResult {
            let script = TestHost.repository.appendingPathComponent("Tests/Fixtures/lxc-interop.sh").path
            return try shell(
                "/usr/bin/env", "LXC_INTEROP_NAME=\(name)", "LXC_INTEROP_PATH=\(client.containers.path)",
                "LXC_INTEROP_STEPS=\(steps)", "LXC_INTEROP_VARIANT=slim", script, TestHost.userName, server, ca.path)
        }

        /// The containers LXC lists in the sandbox's containers folder.
        func lxcList() throws -> [String] {
            let asUser = TestHost.repository.appendingPathComponent("Tests/Fixtures/lxc-as-user.sh").path
            let listed = try shell(asUser, TestHost.userName, "lxc-ls", "-P", client.containers.path, "-1")
            #expect(listed.status == 0, "\(listed)")
            return listed.stdout.split(separator: "\n").map(String.init)
        }
    }

    /// The command of PID 1 in the output of `ps -e`.
    static func pid1(_ ps: String) -> String? {
        ps.split(separator: "\n").map { $0.split(separator: " ") }.first { $0.first == "1" }?.last.map(String.init)
    }

    /// The row of `coop list` for `name`, as its columns.
    static func listed(_ sandbox: Sandbox, _ name: String) throws -> [String] {
        let list = try sandbox.run("list")
        #expect(list.status == 0, "\(list)")
        return list.stdout.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
            .first { $0.first == name } ?? []
    }

    @Test(
        "lxc-start boots systemd in a container coop create made; lxc-attach reads bookworm; coop destroys it after",
        .enabled(if: TestHost.ready(.root, .ordinaryUser)), .timeLimit(.minutes(15)))
    func lxcStartsCoopContainer() throws {
        let published = try Published("lxcStartsCoop")
        let sandbox = published.client
        let name = "interop-coop"
        let created = try sandbox.run("create", name, "p:debian/bookworm/\(TestHost.arch)/slim")
        #expect(created.status == 0, "\(created)")
        #expect(try published.lxcList() == [name], "LXC sees coop's containers folder as an LXC path")

        // lxc-start with the config coop wrote, wait for RUNNING, lxc-attach, lxc-stop, wait for STOPPED.
        let ran = try published.lxc("start", name)
        #expect(ran.status == 0, "\(ran)")
        #expect(ran.stdout.contains("VERSION_CODENAME=bookworm"), "\(ran)")
        #expect(ran.stdout.contains("PID1=systemd"), "\(ran)")

        #expect(try Self.listed(sandbox, name).prefix(2) == [name, "stopped"])
        let destroyed = try sandbox.run("destroy", name)
        #expect(destroyed.status == 0, "\(destroyed)")
        #expect(!FileManager.default.fileExists(atPath: sandbox.containers.appendingPathComponent(name).path))
        #expect(try published.lxcList().isEmpty)
    }

    @Test(
        "coop starts, enters, stops and lists a container lxc-create -t download made; lxc-destroy removes it",
        .enabled(if: TestHost.ready(.root, .ordinaryUser)), .timeLimit(.minutes(15)))
    func coopStartsLXCContainer() throws {
        let published = try Published("coopStartsLXC")
        let sandbox = published.client
        let name = "interop-lxc"
        let created = try published.lxc("create", name)
        try #require(created.status == 0, "\(created)")
        let folder = sandbox.containers.appendingPathComponent(name)
        func console() -> String {
            (try? String(contentsOf: folder.appendingPathComponent("console.log"), encoding: .utf8)) ?? "<none>"
        }

        // The image's own init: systemd boots under coop as it does under lxc-start.
        let started = try sandbox.run("start", name)
        #expect(started.status == 0, "\(started)")
        let state = try sandbox.bootState(name)
        #expect(
            ["running", "degraded"].contains(state.stdout.trimmingCharacters(in: .whitespacesAndNewlines)),
            "\(state)\nconsole.log: \(console())")
        let ps = try sandbox.run("exec", name, "--", "ps", "-e")
        #expect(Self.pid1(ps.stdout) == "systemd", "\(ps)\nconsole.log: \(console())")
        let release = try sandbox.run("exec", name, "--", "cat", "/etc/os-release")
        #expect(release.stdout.contains("VERSION_CODENAME=bookworm"), "\(release)")
        #expect(try Self.listed(sandbox, name).prefix(2) == [name, "running"])
        let stopAsked = Date()
        let stopped = try sandbox.run("stop", name, "--timeout", "10")
        #expect(stopped.status == 0, "\(stopped)")
        #expect(
            Date().timeIntervalSince(stopAsked) < 8, "systemd powered off on the signal, not killed after the timeout")
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("state.json").path))
        #expect(try Self.listed(sandbox, name) == [name, "stopped", "-", "-", "-"])

        // A command as PID 1 in the foreground.
        let foreground = try sandbox.run("start", name, "--foreground", "--", "/bin/sh", "-c", "cat /etc/os-release")
        #expect(foreground.status == 0, "\(foreground)")
        #expect(foreground.stdout.contains("VERSION_CODENAME=bookworm"), "\(foreground)")

        let destroyed = try published.lxc("destroy", name)
        #expect(destroyed.status == 0, "\(destroyed)")
        #expect(!FileManager.default.fileExists(atPath: folder.path))
    }

    @Test(
        "lxc-as-user.sh sets up a user no step has set up yet (no /run/user/UID, no LXC cgroups), as on a fresh machine",
        .enabled(if: TestHost.ready(.root)))
    func asUserSetsUp() throws {
        let user = "coop-lxc-test"
        let fixtures = TestHost.repository.appendingPathComponent("Tests/Fixtures")
        try expectShell(fixtures.appendingPathComponent("make-test-user.sh").path, user)
        let uid = try #require(getpwnam(user)).pointee.pw_uid
        // What a fresh machine has: no runtime folder, no cgroup of the user's.
        try expectShell("/bin/rm", "-rf", "/run/user/\(uid)")
        _ = try shell("/usr/bin/find", "/sys/fs/cgroup", "-maxdepth", "3", "-path", "*/lxc-user/\(user)", "-delete")
        let asUser = fixtures.appendingPathComponent("lxc-as-user.sh").path
        let ran = try expectShell(asUser, user, "/bin/sh", "-c", "id -u; echo $XDG_RUNTIME_DIR; cat /proc/self/cgroup")
        let lines = ran.stdout.split(separator: "\n").map(String.init)
        #expect(lines.prefix(2) == ["\(uid)", "/run/user/\(uid)"], "\(ran)")
        #expect(lines.contains { $0.hasSuffix(":/lxc-user/\(user)") }, "in the user's LXC cgroups: \(ran)")
    }
}
