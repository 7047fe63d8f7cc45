import Foundation
import Testing

/// A private cache, containers folder and remote list for one test, run as root or as the test user.
final class Sandbox: @unchecked Sendable {
    let root: URL
    let asUser: Bool
    var cache: URL { root.appendingPathComponent("cache") }
    var containers: URL { root.appendingPathComponent("containers") }
    var config: URL { root.appendingPathComponent("config") }
    var extraEnvironment: [String: String] = ["COOP_STALL_TIMEOUT": "3"]

    init(asUser: Bool, _ name: String = #function) throws {
        self.asUser = asUser
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
        let user = try TestHost.user()
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
        var command = ["/usr/bin/env", "-i"] + environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        command += [TestHost.binary.path] + arguments
        if asUser {
            // setpriv execs: the pid it gets is coop's own, so a test can kill it.
            let user = try TestHost.user()
            command = ["/usr/bin/setpriv", "--reuid=\(user.uid)", "--regid=\(user.gid)", "--init-groups"] + command
        }
        return try RunningCoop(command)
    }

    @discardableResult
    func run(_ arguments: String...) throws -> CoopResult {
        try start(arguments).wait()
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

final class RunningCoop: @unchecked Sendable {
    let process = Process()
    private let out = Pipe()
    private let err = Pipe()
    private var outData = Data()
    private var errData = Data()
    private let readers = DispatchGroup()

    init(_ command: [String]) throws {
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst())
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        for (pipe, isOut) in [(out, true), (err, false)] {
            readers.enter()
            DispatchQueue.global().async { [self] in
                let data = pipe.fileHandleForReading.readDataToEndOfFile()
                if isOut { outData = data } else { errData = data }
                readers.leave()
            }
        }
    }

    var pid: Int32 { process.processIdentifier }

    func wait() -> CoopResult {
        process.waitUntilExit()
        readers.wait()
        return CoopResult(
            status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
            stderr: String(decoding: errData, as: UTF8.self))
    }
}
