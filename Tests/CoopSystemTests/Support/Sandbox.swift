import Foundation
import Testing

/// A private cache, containers folder and remote list for one test, run as root or as the test user.
final class Sandbox: @unchecked Sendable {
    let root: URL
    let asUser: Bool
    /// The ordinary user the sandbox belongs to when `asUser`.
    let userName: String
    var cache: URL { root.appendingPathComponent("cache") }
    var containers: URL { root.appendingPathComponent("containers") }
    var config: URL { root.appendingPathComponent("config") }
    var extraEnvironment: [String: String] = ["COOP_STALL_TIMEOUT": "3"]

    init(asUser: Bool, user: String = TestHost.userName, _ name: String = #function) throws {
        self.asUser = asUser
        userName = user
        let slug = name.filter { $0.isLetter || $0.isNumber }.prefix(40)
        root = URL(fileURLWithPath: "/tmp/coop-tests/\(slug)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(
            at: config.appendingPathComponent("coop"), withIntermediateDirectories: true)
        chmod("/tmp/coop-tests", 0o755)
        try own()
    }

    deinit {
        try? FileManager.default.removeItem(at: root)
    }

    /// Gives the sandbox to the test user (or leaves it to root).
    func own() throws {
        guard asUser else { return }
        let user = try TestHost.account(userName)
        let walker = FileManager.default.enumerator(atPath: root.path)
        chown(root.path, user.uid, user.gid)
        while let relative = walker?.nextObject() as? String {
            lchown(root.appendingPathComponent(relative).path, user.uid, user.gid)
        }
    }

    /// Writes the remote list: each remote as (name, protocol, url, key file, fingerprint).
    func remotes(_ lines: [(String, String, String, URL, String)]) throws {
        let text = lines.map { "\($0.0);\($0.1);\($0.2);\($0.3.path);\($0.4)" }.joined(separator: "\n") + "\n"
        try text.write(to: config.appendingPathComponent("coop/images.index"), atomically: true, encoding: .utf8)
        try own()
    }

    /// Two remotes on the fixture server: `t` (the test images) and `g` (debian bookworm and trixie with
    /// systemd, built and published by coop itself).
    func guestRemotes() throws {
        let server = try TestHost.server()
        let base = "https://127.0.0.1:\(server.https)"
        try remotes([
            ("t", "lxc", base + "/good", TestHost.signerKey, TestHost.signerFingerprint),
            ("g", "lxc", base + "/guests", TestHost.guestsKey, TestHost.guestsFingerprint),
        ])
    }

    /// One remote named `name` on the fixture server: `site` over https (or http), signed by the test key.
    func remote(
        _ name: String = "t", site: String = "good", https: Bool = true, imageProtocol: String = "lxc",
        key: URL = TestHost.signerKey, fingerprint: String = TestHost.signerFingerprint
    ) throws {
        let server = try TestHost.server()
        let url =
            https ? "https://127.0.0.1:\(server.https)/\(site)" : "http://127.0.0.1:\(server.http)/\(site)"
        try remotes([(name, imageProtocol, url, key, fingerprint)])
    }

    var environment: [String: String] {
        var values = [
            "HOME": root.path, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "XDG_CONFIG_HOME": config.path,
            "COOP_CACHE": cache.path, "COOP_CONTAINERS": containers.path, "LANG": "C.UTF-8",
        ]
        if let server = try? TestHost.server() { values["CURL_CA_BUNDLE"] = server.ca.path }
        for (key, value) in extraEnvironment { values[key] = value }
        return values
    }

    /// Starts coop with `arguments`, as the test user when the sandbox is the user's.
    func start(_ arguments: [String]) throws -> RunningCoop {
        try RunningCoop(commandLine(arguments))
    }

    /// The command line that runs coop with `arguments` in this sandbox.
    func commandLine(_ arguments: [String]) throws -> [String] {
        var command = ["/usr/bin/env", "-i"] + environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        command += [TestHost.binary.path] + arguments
        if asUser {
            // setpriv execs: the pid it gets is coop's own, so a test can kill it.
            let user = try TestHost.account(userName)
            command = ["/usr/bin/setpriv", "--reuid=\(user.uid)", "--regid=\(user.gid)", "--init-groups"] + command
        }
        return command
    }

    @discardableResult
    func run(_ arguments: String...) throws -> CoopResult {
        try start(arguments).wait()
    }

    /// Runs coop with `arguments` and expects exit status `status`; a failure shows the command and its
    /// stdout and stderr.
    @discardableResult
    func expect(_ status: Int32, _ arguments: String..., sourceLocation: SourceLocation = #_sourceLocation) throws
        -> CoopResult
    {
        let result = try start(arguments).wait()
        #expect(
            result.status == status, "coop \(arguments.joined(separator: " ")): \(result)",
            sourceLocation: sourceLocation)
        return result
    }

    /// PID 1 of the running container `name`, as `coop start` recorded it in state.json.
    func initPID(_ name: String) throws -> Int32 {
        let state =
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: containers.appendingPathComponent("\(name)/state.json"))) as? [String: Any]
        return Int32(try #require(state?["pid"] as? Int))
    }

    /// `systemctl is-system-running --wait` in the started container `name`: start returns once PID 1
    /// runs, and systemd's bus comes a moment later, so it is asked again until it answers (10 s at most).
    func bootState(_ name: String) throws -> CoopResult {
        var state = try run("exec", name, "--", "systemctl", "is-system-running", "--wait")
        for _ in 0..<100 where state.stderr.contains("Failed to connect to") {
            usleep(100_000)
            state = try run("exec", name, "--", "systemctl", "is-system-running", "--wait")
        }
        return state
    }

    /// Every path below a folder, except lock files, which stay by design.
    func listing(_ folder: URL) -> [String] {
        let all = (FileManager.default.enumerator(atPath: folder.path)?.allObjects as? [String]) ?? []
        return all.filter { !$0.hasPrefix(".locks") }.sorted()
    }
}

struct CoopResult: CustomStringConvertible {
    var status: Int32
    var stdout: String
    var stderr: String

    var description: String { "status \(status)\nstdout: \(stdout)\nstderr: \(stderr)" }
}

/// A started command whose output goes to files, not pipes: a server it leaves running (which would
/// inherit a pipe) cannot keep the test waiting for end-of-file. Spawned and reaped directly with
/// posix_spawn and waitpid.
final class RunningCoop: @unchecked Sendable {
    let pid: pid_t
    private let output: URL
    private let errors: URL

    init(_ command: [String]) throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("coop-run-\(UUID().uuidString)")
        output = base.appendingPathExtension("out")
        errors = base.appendingPathExtension("err")
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output.path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, errors.path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let argv = command.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var child: pid_t = 0
        let result = posix_spawn(&child, command[0], &actions, nil, argv, environ)
        guard result == 0 else {
            throw CocoaError(.fileReadUnknown, userInfo: [NSLocalizedDescriptionKey: "spawn \(command[0]): \(result)"])
        }
        pid = child
    }

    func wait() -> CoopResult {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        defer {
            try? FileManager.default.removeItem(at: output)
            try? FileManager.default.removeItem(at: errors)
        }
        let exit = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return CoopResult(
            status: exit,
            stdout: (try? String(contentsOf: output, encoding: .utf8)) ?? "",
            stderr: (try? String(contentsOf: errors, encoding: .utf8)) ?? "")
    }
}
