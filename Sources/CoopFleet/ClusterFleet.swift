import CoopFormats
import CoopSupport
import Foundation
import Synchronization

/// The same fleet file on an LXD or Incus server or cluster (`coop fleet up FILE --on REMOTE`): each node an
/// instance launched from the image server that publishes the fleet's image, on the cluster's own network
/// (the default profile's), with the fleet's limits, files and commands. The nodes take the fleet's addresses
/// on that network beside what the cluster gives them, and every node's name is in every node's
/// /etc/hosts, so nodes reach each other by name as on one host. Instances carry `user.coop.fleet=NAME`:
/// only those are ever touched.
public struct ClusterFleet: Sendable {
    public var file: FleetFile
    public var client: LXDClient
    public var progress: @Sendable (String) -> Void

    static let marker = "user.coop.fleet"

    public init(file: FleetFile, client: LXDClient, progress: @escaping @Sendable (String) -> Void = { _ in }) {
        self.file = file
        self.client = client
        self.progress = progress
    }

    /// An instance of the fleet, as the server lists it.
    struct Instance: Sendable {
        /// `Running`, `Stopped`, …
        var status: String
        var pid: Int32?
    }

    /// The fleet's instances on the cluster, by name, and every other instance's name.
    func instances() throws -> (nodes: [String: Instance], others: Set<String>) {
        var nodes: [String: Instance] = [:]
        var others: Set<String> = []
        for instance in try client.instances() {
            guard let name = instance["name"] as? String else { continue }
            if (instance["config"] as? [String: Any])?[Self.marker] as? String == file.name {
                let pid = ((instance["state"] as? [String: Any])?["pid"] as? NSNumber)?.int32Value
                nodes[name] = Instance(status: instance["status"] as? String ?? "unknown", pid: pid)
            } else {
                others.insert(name)
            }
        }
        return (nodes, others)
    }

    // MARK: up

    /// Launches the missing nodes from `server` (the image's tree, read as simplestreams), starts them all,
    /// waits until each is booted, gives them their addresses and names, then copies the files in and runs
    /// the commands once on each new node.
    public func up(image: ImageReference, server: String, timeout: Double) throws -> [String] {
        let (existing, others) = try instances()
        for node in file.nodes where others.contains(node.name) {
            throw CoopError(
                .conflict, "instance \(node.name) on \(client.remote.name)",
                cause: "exists and is not a node of fleet \(file.name)",
                fix: "rename the fleet or its nodes in the file, or delete that instance first")
        }
        let missing = file.nodes.filter { existing[$0.name] == nil }
        let source: [String: String] = [
            "type": "image", "mode": "pull", "server": server, "protocol": "simplestreams",
            "alias": "\(image.distro)/\(image.release)/\(image.variant)",
        ]
        var phase = Fleet.PhaseClock(progress)
        do {
            try Fleet.forEach(missing) { node in
                try client.create(node.name, source: source, config: config(node), devices: devices(node.name))
            }
            phase("created \(missing.count) nodes on \(client.remote.name)")
            let stopped = file.nodes.filter { existing[$0.name]?.status != "Running" }
            try Fleet.forEach(stopped) { node in try client.setState(node.name, "start") }
            phase("started \(stopped.count) nodes")
            try Fleet.forEach(file.nodes, parallelism: file.nodes.count) { node in
                try waitUntilBooted(node.name, timeout: timeout)
            }
            phase("all \(file.nodes.count) nodes booted")
            try Fleet.forEach(Array(file.nodes.enumerated())) { index, node in try connect(node.name, index: index) }
            phase("network \(file.network.subnet) on the cluster's network")
            try Fleet.forEach(missing) { node in try provision(node.name) }
        } catch {
            // Nodes made by this call that are not complete go again: a second `up` makes them afresh.
            let made = Set((try? instances().nodes.keys).map(Array.init) ?? [])
            try? Fleet.forEach(missing.filter { made.contains($0.name) }) { node in
                try? client.setState(node.name, "stop", force: true)
                try client.delete(node.name)
            }
            throw error
        }
        let fresh = Set(missing.map(\.name))
        return file.nodes.map { fresh.contains($0.name) ? "\($0.name): created and booted" : "\($0.name): booted" }
    }

    /// LXD's keys for the node's limits, and the mark of the fleet.
    func config(_ node: FleetFile.Node) -> [String: String] {
        var config = [Self.marker: file.name]
        if let memory = node.limits.memory { config["limits.memory"] = "\(memory)B" }
        if let cpus = node.limits.cpus {
            config["limits.cpu.allowance"] = "\(Int(cpus * 100))ms/100ms"
        }
        if let pids = node.limits.pids { config["limits.processes"] = String(pids) }
        return config
    }

    /// Published ports as LXD's proxy devices: the cluster member's 127.0.0.1:HOST to the node's PORT.
    func devices(_ node: String) -> [String: [String: String]] {
        var devices: [String: [String: String]] = [:]
        for port in file.network.ports where port.node == node {
            devices["coop-port-\(port.host)"] = [
                "type": "proxy", "listen": "tcp:127.0.0.1:\(port.host)", "connect": "tcp:127.0.0.1:\(port.port)",
            ]
        }
        return devices
    }

    /// systemd's boot, as `systemctl is-system-running --wait` tells it. Asked again while systemd is not
    /// up yet to answer (just after the start), until `timeout`.
    func waitUntilBooted(_ name: String, timeout: Double) throws {
        let deadline = Date().addingTimeInterval(timeout)
        var said = ""
        while true {
            let result = try client.exec(name, ["systemctl", "is-system-running", "--wait"])
            let state = String(decoding: result.stdout, as: UTF8.self).trimmed
            if ["running", "degraded"].contains(state) { return }
            said = state.isEmpty ? String(decoding: result.stderr, as: UTF8.self).trimmed : state
            guard Date() < deadline, ["", "offline", "initializing", "starting", "unknown"].contains(state) else {
                break
            }
            usleep(200_000)
        }
        throw CoopError(
            .conflict, "node \(name) on \(client.remote.name)",
            cause: "did not boot: systemd says '\(Console.escaped(said))'",
            fix: "look inside with 'lxc exec \(name) -- systemctl --failed'")
    }

    /// The node's address on the fleet's subnet (beside what the cluster's network gives it) and every node's
    /// name in its /etc/hosts.
    func connect(_ name: String, index: Int) throws {
        let subnet = file.network.subnet
        let hosts = Fleet.hosts(of: file)
        let script =
            "ip address replace \"$1\" dev eth0 && ip link set eth0 up && printf '%s' \"$2\" > /etc/hosts"
        let result = try client.exec(
            name, ["/bin/sh", "-c", script, "sh", "\(subnet.address(ofNode: index))/\(subnet.prefix)", hosts])
        guard result.status == 0 else {
            throw CoopError(
                .conflict, "network of node \(name) on \(client.remote.name)",
                cause: "its address could not be set (status \(result.status)): "
                    + Console.escaped(String(decoding: result.stderr, as: UTF8.self).trimmed),
                fix: "the node needs an eth0 on the cluster's network (the default profile's) and the ip command")
        }
    }

    /// The files, then the commands, on a node that has just booted for the first time.
    func provision(_ name: String) throws {
        for copy in file.files {
            guard let data = FileManager.default.contents(atPath: copy.from.path) else {
                throw CoopError(
                    .notFound, "file \(copy.from.path) of fleet \(file.name)", cause: "cannot be read",
                    fix: "fix 'from' in the fleet file's 'files'")
            }
            let mode = String(copy.mode ?? 0o644, radix: 8)
            let script =
                "mkdir -p -- \"$(dirname -- \"$2\")\" && printf '%s' \"$1\" | base64 -d > \"$2\" && chmod \(mode) -- \"$2\""
            let result = try client.exec(name, ["/bin/sh", "-c", script, "sh", data.base64EncodedString(), copy.to])
            guard result.status == 0 else {
                throw CoopError(
                    .io, "copy of \(copy.from.lastPathComponent) to \(copy.to) on \(name)",
                    cause: "the node's shell ended with status \(result.status)",
                    fix: "check the path 'to' in the fleet file")
            }
        }
        for command in file.run {
            let result = try client.exec(name, ["/bin/sh", "-c", command])
            FleetExec.emit(all: result.stdout, to: STDOUT_FILENO, prefix: name)
            FleetExec.emit(all: result.stderr, to: STDERR_FILENO, prefix: name)
            guard result.status == 0 else {
                throw CoopError(
                    .conflict, "command '\(Console.escaped(command))' on \(name)",
                    cause: "ended with status \(result.status)",
                    fix: "fix the command in 'run' of the fleet file; 'coop fleet down' then 'up' runs it again")
            }
        }
    }

    // MARK: status, exec, down

    public func status() throws -> [Fleet.NodeStatus] {
        let nodes = try instances().nodes
        return file.nodes.enumerated().map { index, node in
            let instance = nodes[node.name]
            return Fleet.NodeStatus(
                name: node.name, state: instance?.status.lowercased() ?? "absent",
                address: file.network.subnet.address(ofNode: index), pid: instance?.pid)
        }
    }

    public func exec(nodes names: [String], command: [String]) throws -> [Fleet.NodeResult] {
        let nodes = Set(try instances().nodes.keys)
        return try Fleet.runOnNodes(
            file, names, isNode: { nodes.contains($0) }, where: "there",
            fleet: "fleet \(file.name) on \(client.remote.name)",
            upFix: "bring it up first with 'coop fleet up FILE --on \(client.remote.name)'"
        ) { name in
            let result = try client.exec(name, command)
            FleetExec.emit(all: result.stdout, to: STDOUT_FILENO, prefix: name)
            FleetExec.emit(all: result.stderr, to: STDERR_FILENO, prefix: name)
            return result.status
        }
    }

    /// Stops and deletes every instance of the fleet (in parallel); returns their names.
    public func down() throws -> [String] {
        let nodes = try instances().nodes
        try Fleet.forEach(Array(nodes.keys.sorted())) { name in
            if nodes[name]?.status == "Running" { try client.setState(name, "stop", force: true) }
            try client.delete(name)
        }
        return nodes.keys.sorted()
    }
}
