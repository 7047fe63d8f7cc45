import CoopSupport
import CoopTransfer
import Foundation

/// An LXD or Incus server or cluster that fleets can run on, as `~/.config/coop/remotes` names it, one line
/// each:
///
///     NAME;lxd;unix:/var/lib/lxd/unix.socket
///     NAME;lxd;https://HOST:8443;CLIENT.crt;CLIENT.key[;SERVER-OR-CA.crt]
///
/// (`incus` for the protocol names the same API.) Relative file names are below `~/.config/coop`.
public struct ClusterRemote: Sendable, Equatable {
    public var name: String
    public var endpoint: APIRequest.Endpoint

    public static func named(_ name: String, in file: URL) throws -> ClusterRemote {
        let text = (try? String(contentsOf: file, encoding: .utf8)) ?? ""
        var known: [String] = []
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            let fields = trimmed.split(separator: ";", omittingEmptySubsequences: false).map(String.init)
            known.append(fields[0])
            guard fields[0] == name else { continue }
            let place = "\(file.path) line \(number + 1)"
            guard fields.count >= 3, ["lxd", "incus"].contains(fields[1]) else {
                throw CoopError(
                    .usage, place, cause: "is not NAME;lxd;ADDRESS",
                    fix: "write NAME;lxd;unix:SOCKET or NAME;lxd;https://HOST:PORT;CERT;KEY[;CA]")
            }
            func local(_ path: String) -> String {
                path.hasPrefix("/") ? path : file.deletingLastPathComponent().appendingPathComponent(path).path
            }
            if fields[2].hasPrefix("unix:") {
                return ClusterRemote(name: name, endpoint: .unixSocket(local(String(fields[2].dropFirst(5)))))
            }
            guard fields[2].hasPrefix("https://"), fields.count >= 5 else {
                throw CoopError(
                    .usage, place, cause: "an https server needs the client's certificate and key",
                    fix: "write NAME;lxd;https://HOST:PORT;CERT;KEY[;CA] (lxc remote add makes client.crt/.key)")
            }
            return ClusterRemote(
                name: name,
                endpoint: .https(
                    url: fields[2], certificate: local(fields[3]), key: local(fields[4]),
                    trust: fields.count > 5 && !fields[5].isEmpty ? local(fields[5]) : nil))
        }
        throw CoopError(
            .notFound, "cluster remote '\(name)'",
            cause: "is not in \(file.path) (known: \(known.isEmpty ? "none" : known.joined(separator: ", ")))",
            fix: "add a line \(name);lxd;unix:SOCKET or \(name);lxd;https://HOST:PORT;CERT;KEY[;CA]")
    }
}

/// The few calls of LXD's REST API (the same as Incus's) a fleet needs: instances made, started, stopped and
/// deleted, commands run with their output recorded, and the answers' errors said in coop's words.
public struct LXDClient: Sendable {
    public var remote: ClusterRemote
    var request: APIRequest

    /// How long one operation (an instance's image download and unpack, a command) may take.
    static let operationLimit: TimeInterval = 3600

    public init(remote: ClusterRemote) {
        self.remote = remote
        request = APIRequest(endpoint: remote.endpoint)
    }

    /// The `metadata` of a synchronous answer, or of the operation an asynchronous one started, once done.
    @discardableResult
    func call(_ method: String, _ path: String, _ body: [String: Any]? = nil, what: String) throws -> Any? {
        let data = try body.map { try JSONSerialization.data(withJSONObject: $0) }
        let (status, answer) = try request.send(method, path, body: data)
        let json = (try? JSONSerialization.jsonObject(with: answer)) as? [String: Any] ?? [:]
        guard (200..<300).contains(status) else {
            throw failure(what, json["error"] as? String ?? "HTTP status \(status)")
        }
        guard json["type"] as? String == "async", let operation = json["operation"] as? String else {
            return json["metadata"]
        }
        let id = operation.split(separator: "?")[0].split(separator: "/").last.map(String.init) ?? ""
        // An instance made from an image new to the cluster waits for its download: asked again while the
        // operation runs, up to `operationLimit`.
        let deadline = Date().addingTimeInterval(Self.operationLimit)
        var waited = 0
        var result: [String: Any] = [:]
        var metadata: [String: Any] = [:]
        repeat {
            let answer = try request.send("GET", "/1.0/operations/\(id)/wait?timeout=60")
            waited = answer.status
            result = (try? JSONSerialization.jsonObject(with: answer.body)) as? [String: Any] ?? [:]
            metadata = result["metadata"] as? [String: Any] ?? [:]
        } while waited == 200 && metadata["status"] as? String == "Running" && Date() < deadline
        guard waited == 200, metadata["status"] as? String == "Success" else {
            let error = metadata["err"] as? String ?? result["error"] as? String ?? "HTTP status \(waited)"
            throw failure(what, error.isEmpty ? "the operation ended as \(metadata["status"] ?? "?")" : error)
        }
        return metadata["metadata"]
    }

    func failure(_ what: String, _ said: String) -> CoopError {
        CoopError(
            .conflict, "\(what) on \(remote.name)", cause: "the server said: \(Console.escaped(said))",
            fix: "see 'lxc info' and 'lxc operation list' on the server; 'coop fleet down FILE --on \(remote.name)' "
                + "removes what the fleet made")
    }

    /// Instances with their config and state (addresses), by name.
    public func instances() throws -> [[String: Any]] {
        try call("GET", "/1.0/instances?recursion=2", what: "list of instances") as? [[String: Any]] ?? []
    }

    public func create(
        _ name: String, source: [String: String], config: [String: String], devices: [String: [String: String]]
    ) throws {
        try call(
            "POST", "/1.0/instances",
            ["name": name, "type": "container", "source": source, "config": config, "devices": devices],
            what: "instance \(name)")
    }

    public func setState(_ name: String, _ action: String, force: Bool = false) throws {
        try call(
            "PUT", "/1.0/instances/\(name)/state", ["action": action, "timeout": 30, "force": force],
            what: "\(action) of \(name)")
    }

    public func delete(_ name: String) throws {
        try call("DELETE", "/1.0/instances/\(name)", what: "removal of \(name)")
    }

    /// Runs `command` in the instance; returns its exit status and output (recorded by the server).
    public func exec(_ name: String, _ command: [String]) throws -> (status: Int32, stdout: Data, stderr: Data) {
        let metadata =
            try call(
                "POST", "/1.0/instances/\(name)/exec",
                [
                    "command": command, "wait-for-websocket": false, "interactive": false, "record-output": true,
                    "environment": ["PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                ], what: "command on \(name)") as? [String: Any] ?? [:]
        let status = (metadata["return"] as? NSNumber)?.int32Value ?? 255
        var streams: [Data] = []
        let output = metadata["output"] as? [String: String] ?? [:]
        for key in ["1", "2"] {
            guard let log = output[key] else {
                streams.append(Data())
                continue
            }
            let (code, body) = try request.send("GET", log)
            streams.append(code == 200 ? body : Data())
            _ = try? request.send("DELETE", log)
        }
        return (status, streams[0], streams[1])
    }
}
