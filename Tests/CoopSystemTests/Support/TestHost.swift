import Foundation
import Testing

/// What the end-to-end tests need from the machine, and whether it is there.
///
/// `make test` (and so CI) prepares all of it: the fixtures, a running nginx, an ordinary user with a
/// subuid range. Under CI a missing piece fails the tests that need it instead of skipping them.
enum TestHost {
    enum Need {
        case root, fixtures, server, ordinaryUser
    }

    static let environment = ProcessInfo.processInfo.environment
    static let inCI = environment["CI"] == "true"
    static let fixtures = URL(fileURLWithPath: environment["COOP_FIXTURES"] ?? "/var/tmp/coop-fixtures")
    static let serverState = environment["COOP_SERVER_STATE"].map { URL(fileURLWithPath: $0) }
    static let userName = environment["COOP_TEST_USER"] ?? "coop-test"

    static func has(_ need: Need) -> Bool {
        switch need {
        case .root: return getuid() == 0
        case .fixtures:
            return [".complete", "www/guests/.complete"].allSatisfy {
                FileManager.default.fileExists(atPath: fixtures.appendingPathComponent($0).path)
            }
        case .server: return serverPorts != nil
        case .ordinaryUser: return getuid() == 0 && getpwnam(userName) != nil
        }
    }

    /// For `.enabled(if:)`: true when the needs are met, and always under CI, where a gap is a failure.
    static func ready(_ needs: Need...) -> Bool {
        inCI || needs.allSatisfy(has)
    }

    static var serverPorts: (http: Int, https: Int)? {
        guard let serverState,
            let text = try? String(contentsOf: serverState.appendingPathComponent("ports"), encoding: .utf8)
        else { return nil }
        var values: [String: Int] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: "=")
            if parts.count == 2, let value = Int(parts[1]) { values[String(parts[0])] = value }
        }
        guard let http = values["HTTP_PORT"], let https = values["HTTPS_PORT"] else { return nil }
        return (http, https)
    }

    /// The fixture server's forward proxy for plain http.
    static var proxyPort: Int? {
        guard let serverState,
            let text = try? String(contentsOf: serverState.appendingPathComponent("ports"), encoding: .utf8),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("PROXY_PORT=") })
        else { return nil }
        return Int(line.dropFirst("PROXY_PORT=".count))
    }

    static func server() throws -> (http: Int, https: Int, ca: URL, state: URL) {
        let ports = try #require(serverPorts, "no fixture server: run the tests with 'make test'")
        let state = try #require(serverState)
        return (ports.http, ports.https, state.appendingPathComponent("tls/ca.pem"), state)
    }

    static var signerFingerprint: String {
        (try? String(contentsOf: fixtures.appendingPathComponent("keys/signer.fpr"), encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
    }

    static var signerKey: URL { fixtures.appendingPathComponent("keys/signer.asc") }
    static var wrongKey: URL { fixtures.appendingPathComponent("keys/wrong.asc") }

    static var guestsFingerprint: String {
        (try? String(contentsOf: fixtures.appendingPathComponent("keys/guests.fpr"), encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
    }

    static var guestsKey: URL { fixtures.appendingPathComponent("keys/guests.asc") }

    /// The user's uid and gid (it may have no subordinate ids).
    static func account(_ userName: String = userName) throws -> (uid: uid_t, gid: gid_t) {
        let entry = try #require(getpwnam(userName), "no user \(userName): run the tests with 'make test'")
        return (entry.pointee.pw_uid, entry.pointee.pw_gid)
    }

    /// The user's uid, gid and first subordinate uid and gid (the two files may give different ranges).
    static func user(_ userName: String = userName) throws -> (uid: uid_t, gid: gid_t, subuid: UInt32, subgid: UInt32) {
        let entry = try #require(getpwnam(userName), "no user \(userName): run the tests with 'make test'")
        func start(in file: String) throws -> UInt32 {
            let text = try String(contentsOfFile: file, encoding: .utf8)
            let line = try #require(text.split(separator: "\n").first { $0.hasPrefix("\(userName):") })
            return try #require(UInt32(line.split(separator: ":")[1]))
        }
        return (entry.pointee.pw_uid, entry.pointee.pw_gid, try start(in: "/etc/subuid"), try start(in: "/etc/subgid"))
    }

    /// The repository this test target was built from.
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    /// The coop binary with its supervisor beside it, copied once to a folder every user can read (the
    /// checkout may be private). cp copies, not this process: a child that another test forks while this
    /// process holds the copy open for writing would keep it open, and exec would fail (ETXTBSY).
    static let binary: URL = {
        let folder = URL(fileURLWithPath: "/tmp/coop-tests-bin-\(getpid())")
        try? FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        chmod(folder.path, 0o755)
        for name in ["coop-supervisor", "coop"] {
            let copy = folder.appendingPathComponent(name)
            _ = try? RunningCoop([
                "/bin/cp", "-f", repository.appendingPathComponent(".build/debug/\(name)").path, copy.path,
            ]).wait()
            chmod(copy.path, 0o755)
        }
        return folder.appendingPathComponent("coop")
    }()
}

extension TestHost {
    /// This machine's architecture as Debian names it.
    static var arch: String {
        (try? shell("/usr/bin/dpkg", "--print-architecture").stdout.trimmingCharacters(in: .whitespacesAndNewlines))
            ?? "amd64"
    }
}
