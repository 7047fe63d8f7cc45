import CoopContainer
import CoopFetch
import CoopFormats
import CoopRuntime
import CoopSupport
import CoopSystem
import Foundation
import Synchronization

/// A fleet on this host: its nodes are copy-on-write containers named as the file says, on the fleet's
/// private network. `up`, `status`, `exec` and `down` work from the file and from what is on disk, so
/// `coop exec`, `attach`, `list` and `stop` work on each node as on any container.
public struct Fleet: Sendable {
    public var file: FleetFile
    public var containers: ContainerStore
    /// Where the steps of `up` are told as they finish.
    public var progress: @Sendable (String) -> Void

    public init(file: FleetFile, containers: ContainerStore, progress: @escaping @Sendable (String) -> Void = { _ in })
    {
        self.file = file
        self.containers = containers
        self.progress = progress
    }

    /// How many nodes are worked on at once: more only makes them wait for the two kinds of lock they share.
    static let parallelism = max(4, ProcessInfo.processInfo.activeProcessorCount * 2)

    /// The settings a node's folder must hold to be one of this fleet's.
    func networkSettings(_ index: Int) -> ContainerNetwork {
        ContainerNetwork(mode: .fleet, fleet: file.name, address: file.network.subnet.address(ofNode: index))
    }

    /// Whether the container `name` is a node of this fleet (by its network settings).
    func isNode(_ name: String) -> Bool {
        guard let definition = try? ContainerDefinition(folder: containers.folder(name)) else { return false }
        return definition.network.mode == .fleet && definition.network.fleet == file.name
    }

    /// The containers that are nodes of this fleet now, whatever the file says (a file changed since
    /// `up` still takes all of them down).
    public func nodesOnDisk() -> [String] {
        containers.names().filter(isNode)
    }

    /// Two commands on one fleet at once (an `up` racing a `down`, or two `up`s that would each make a
    /// network) take turns: the lock is beside the containers' own, under a name no container can have.
    func lockFleet() throws -> FileLock {
        try containers.makeRoot()
        return try FileLock(path: containers.root.appendingPathComponent(".locks/.fleet-\(file.name).lock"))
    }

    // MARK: up

    /// Creates the nodes that are missing (copy-on-write, from one base), brings up the network, starts
    /// every node, waits until all are booted, then copies the files in and runs the commands once on
    /// each new node. Returns what happened to each node, in file order.
    public func up(creator: ContainerCreator, image: ImageReference, options: FetchOptions, timeout: Double) throws
        -> [String]
    {
        // Every name is checked before anything is made: a container of the same name that is not this
        // fleet's is never touched.
        for node in file.nodes where containers.exists(node.name) && !isNode(node.name) {
            throw CoopError(
                .conflict, "container \(node.name)", cause: "exists and is not a node of fleet \(file.name)",
                fix: "rename the fleet or its nodes in the file, or destroy that container first")
        }
        let lock = try lockFleet()
        defer { lock.unlock() }
        let idMap = containers.idMap
        let running = file.nodes.filter { ContainerState.read(containers.folder($0.name))?.isRunning == true }
        try InotifyBudget.check(nodes: file.nodes.count - running.count, what: "fleet \(file.name)")
        let missing = file.nodes.indices.filter { !containers.exists(file.nodes[$0].name) }
        var phase = PhaseClock(progress)
        let ranges = file.isolated ? try IDMap.allForCurrentUser() : [idMap]
        if file.isolated {
            try createIsolated(missing, ranges: ranges, creator: creator, image: image, options: options)
        } else {
            try create(missing, creator: creator, image: image, options: options)
        }
        phase("created \(missing.count) nodes")
        let network =
            try FleetNetwork.running(fleet: file.name, containers: containers.root)
            ?? startNetwork(idMap, moreMaps: Array(ranges.dropFirst()))
        try writeNameFiles(network)
        // An isolated node's root reads the name files under its own id.
        for node in file.nodes where file.isolated {
            let map = containers.idMap(of: node.name)
            for folder in [containers.root, network.folder.deletingLastPathComponent(), network.folder] {
                try ContainerFolder.makePrivate(folder, for: map)
            }
        }
        phase("network \(file.network.subnet) up")
        // Each node started here tells its boot on a pipe (systemd's READY=1): waiting costs nothing. A
        // node that ran already is asked once with systemctl.
        let toStart = file.nodes.filter { ContainerState.read(containers.folder($0.name))?.isRunning != true }
        let watches = Dictionary(uniqueKeysWithValues: toStart.map { ($0.name, BootWatch()) })
        try Self.forEach(toStart) { node in
            let definition = try ContainerDefinition(folder: containers.folder(node.name))
            _ = try ContainerRuntime.start(definition, command: nil, foreground: false, boot: watches[node.name])
        }
        phase("started \(toStart.count) nodes")
        try Self.forEach(file.nodes, parallelism: file.nodes.count) { node in
            if let watch = watches[node.name] {
                try watch.wait(timeout: timeout, container: node.name)
            } else {
                _ = try ContainerRuntime.waitUntilBooted(
                    try ContainerDefinition(folder: containers.folder(node.name)), timeout: timeout)
            }
        }
        phase("all \(file.nodes.count) nodes booted")
        let fresh = Set(missing.map { file.nodes[$0].name })
        try Self.forEach(file.nodes.filter { fresh.contains($0.name) }) { node in try provision(node.name) }
        return file.nodes.map { fresh.contains($0.name) ? "\($0.name): created and booted" : "\($0.name): booted" }
    }

    /// Creates the nodes at `indices`: the first from the image (which fetches it if needed and fails
    /// before any node exists when it cannot be had), every other as a copy of that one.
    func create(_ indices: [Int], creator: ContainerCreator, image: ImageReference, options: FetchOptions) throws {
        guard let first = indices.first else { return }
        let firstNode = file.nodes[first]
        _ = try creator.create(name: firstNode.name, image: image, options: options, quiet: true, cow: true)
        do {
            try configure(first)
            try Self.forEach(Array(indices.dropFirst())) { index in
                _ = try containers.copy(firstNode.name, to: file.nodes[index].name)
                try configure(index)
            }
        } catch {
            // Nodes made by this call that are not complete go again: a second `up` makes them afresh.
            for index in indices where containers.exists(file.nodes[index].name) {
                try? containers.destroy(file.nodes[index].name)
            }
            throw error
        }
    }

    /// Creates the nodes at `indices` of an isolated fleet: each on a range of 65536 ids that no other
    /// container of the user's has (so that no node's root owns another's files or processes), with a
    /// private unpack of the image on it.
    func createIsolated(
        _ indices: [Int], ranges: [IDMap], creator: ContainerCreator, image: ImageReference, options: FetchOptions
    ) throws {
        guard !indices.isEmpty else { return }
        let used = Set(containers.names().map { containers.idMap(of: $0).uidStart } + [ranges[0].uidStart])
        let free = ranges.dropFirst().filter { !used.contains($0.uidStart) }
        guard free.count >= indices.count else {
            let user = CoopPaths.userName
            throw CoopError(
                .hostSetup, "isolated fleet \(file.name)",
                cause: "needs \(indices.count) ranges of 65536 subordinate ids that no container uses, and user "
                    + "\(user) has \(free.count) (its first range is its ordinary containers')",
                fix:
                    "as root, run 'coop setup-host --user \(user) --ranges \(ranges.count + indices.count - free.count)'"
            )
        }
        // One after another: each is a whole unpack, which takes what the machine has.
        do {
            for (index, range) in zip(indices, free) {
                try createIsolated(index, range: range, creator: creator, image: image, options: options)
            }
        } catch {
            for index in indices where containers.exists(file.nodes[index].name) {
                try? containers.destroy(file.nodes[index].name)
            }
            throw error
        }
    }

    func createIsolated(
        _ index: Int, range: IDMap, creator: ContainerCreator, image: ImageReference, options: FetchOptions
    ) throws {
        let store = ContainerStore(root: containers.root, idMap: range, privileged: containers.privileged)
        _ = try ContainerCreator(fetcher: creator.fetcher, containers: store).create(
            name: file.nodes[index].name, image: image, options: options, quiet: true, privateUnpack: true)
        try configure(index)
    }

    /// A node's network settings and limits, in its folder.
    func configure(_ index: Int) throws {
        let node = file.nodes[index]
        let folder = containers.folder(node.name)
        try networkSettings(index).write(to: folder)
        let lines = node.limits.cgroupLines
        guard !lines.isEmpty else { return }
        var config = try LXCConfig.read(containerFolder: folder, name: node.name)
        for line in lines {
            try config.set("lxc.cgroup2.\(line.key)", line.value)
        }
        try FileSystem.writeAtomically(try config.formatted(), to: folder.appendingPathComponent("config"))
    }

    func startNetwork(_ idMap: IDMap, moreMaps: [IDMap]) throws -> FleetNetwork {
        let subnet = file.network.subnet
        let addresses = Dictionary(
            uniqueKeysWithValues: file.nodes.enumerated().map { ($1.name, subnet.address(ofNode: $0)) })
        let ports = file.network.ports.compactMap { port in
            addresses[port.node].map { (host: port.host, address: $0, port: port.port) }
        }
        return try FleetNetwork.start(
            fleet: file.name, containers: containers.root, idMap: idMap, moreMaps: moreMaps, gateway: subnet.gateway,
            prefix: subnet.prefix, subnet: subnet.description, outbound: file.network.outbound, ports: ports)
    }

    /// The lines of every node's /etc/hosts: localhost, and each node's name at its address on the subnet.
    static func hosts(of file: FleetFile) -> String {
        var hosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
        for (index, node) in file.nodes.enumerated() {
            hosts += "\(file.network.subnet.address(ofNode: index))\t\(node.name)\n"
        }
        return hosts
    }

    /// Every node's name in every node's /etc/hosts; DNS through pasta's gateway when there is outbound.
    func writeNameFiles(_ network: FleetNetwork) throws {
        var hosts = Self.hosts(of: file)
        if let gateway = network.hostGateway { hosts += "\(gateway)\thost.coop.internal\n" }
        try FileSystem.writeAtomically(hosts, to: FleetNetwork.hostsFile(network.folder), durable: false)
        let resolv =
            network.hostGateway.map { "nameserver \($0)\n" } ?? "# fleet \(file.name) has no outbound network\n"
        try FileSystem.writeAtomically(resolv, to: FleetNetwork.resolvFile(network.folder), durable: false)
    }

    /// The files, then the commands, on a node that has just booted for the first time.
    func provision(_ name: String) throws {
        let definition = try ContainerDefinition(folder: containers.folder(name))
        for copy in file.files {
            let source = open(copy.from.path, O_RDONLY | O_CLOEXEC)
            guard source >= 0 else {
                throw CoopError(
                    .notFound, "file \(copy.from.path) of fleet \(file.name)", cause: String(cString: strerror(errno)),
                    fix: "fix 'from' in the fleet file's 'files'")
            }
            defer { close(source) }
            // The node's own shell writes the file, so its path is resolved inside the node, never on the host.
            let mode = String(copy.mode ?? 0o644, radix: 8)
            let script = "mkdir -p -- \"$(dirname -- \"$1\")\" && cat > \"$1\" && chmod \(mode) -- \"$1\""
            let nothing = open("/dev/null", O_WRONLY | O_CLOEXEC)
            defer { if nothing >= 0 { close(nothing) } }
            let started = try ContainerRuntime.startExec(
                definition, command: ["/bin/sh", "-c", script, "sh", copy.to], input: source, output: nothing,
                error: nothing)
            let status = try started.finish()
            guard status == 0 else {
                throw CoopError(
                    .io, "copy of \(copy.from.lastPathComponent) to \(copy.to) on \(name)",
                    cause: "the node's shell ended with status \(status)", fix: "check the path 'to' in the fleet file")
            }
        }
        for command in file.run {
            let status = try FleetExec.run(definition, command: ["/bin/sh", "-c", command], prefix: name)
            guard status == 0 else {
                throw CoopError(
                    .conflict, "command '\(Console.escaped(command))' on \(name)", cause: "ended with status \(status)",
                    fix: "fix the command in 'run' of the fleet file; 'coop fleet down' then 'up' runs it again")
            }
        }
    }

    // MARK: status, down

    public struct NodeStatus: Sendable, Encodable {
        public var name: String
        public var state: String
        public var address: String
        public var pid: Int32?
    }

    public func status() -> [NodeStatus] {
        let names = Set(nodesOnDisk())
        return file.nodes.enumerated().map { index, node in
            let state = ContainerState.read(containers.folder(node.name)).flatMap { $0.isRunning ? $0 : nil }
            return NodeStatus(
                name: node.name, state: !names.contains(node.name) ? "absent" : state == nil ? "stopped" : "running",
                address: file.network.subnet.address(ofNode: index), pid: state?.pid)
        }
    }

    /// Kills and removes every node (in parallel), then the network; nothing of the fleet is left.
    /// Returns the names removed.
    public func down() throws -> [String] {
        let lock = try lockFleet()
        defer { lock.unlock() }
        let nodes = nodesOnDisk()
        // Every node is killed at once, so that the kernel tears them all down together; then each is
        // waited for and its cgroups cleared, and one removal takes all their files.
        let definitions = nodes.compactMap { try? ContainerDefinition(folder: containers.folder($0)) }
        for definition in definitions {
            if let state = ContainerState.read(definition.folder), state.isRunning { Glibc.kill(state.pid, SIGKILL) }
        }
        // Quiet when there is nothing to take down.
        let quiet: @Sendable (String) -> Void = { _ in }
        var phase = PhaseClock(nodes.isEmpty ? quiet : progress)
        try Self.forEach(definitions, parallelism: max(1, definitions.count)) { try ContainerRuntime.forceStop($0) }
        phase("stopped \(definitions.count) nodes")
        try containers.destroy(all: nodes)
        phase("removed their files")
        // A network whose holder is gone still leaves its folder (and perhaps its pasta).
        if let network = FleetNetwork.running(fleet: file.name, containers: containers.root) {
            network.stop()
        } else {
            FleetNetwork.remove(fleet: file.name, containers: containers.root)
        }
        return nodes
    }

    // MARK: parallel work

    /// Tells each step of a command as it finishes, with the seconds it took.
    struct PhaseClock {
        let progress: @Sendable (String) -> Void
        var started = Date()

        init(_ progress: @escaping @Sendable (String) -> Void) { self.progress = progress }

        mutating func callAsFunction(_ text: String) {
            progress("\(text) (\(String(format: "%.2f", Date().timeIntervalSince(started))) s)")
            started = Date()
        }
    }

    /// Runs `body` for each item, `parallelism` at a time; the first error is thrown once all are done.
    static func forEach<Item: Sendable>(
        _ items: [Item], parallelism: Int = Fleet.parallelism, _ body: @Sendable @escaping (Item) throws -> Void
    ) throws {
        guard !items.isEmpty else { return }
        let errors = Mutex<[(Int, any Error)]>([])
        let slots = DispatchSemaphore(value: parallelism)
        let group = DispatchGroup()
        for (index, item) in items.enumerated() {
            slots.wait()
            group.enter()
            Thread.detachNewThread {
                defer {
                    slots.signal()
                    group.leave()
                }
                do { try body(item) } catch { errors.withLock { $0.append((index, error)) } }
            }
        }
        group.wait()
        if let first = errors.withLock({ $0.min { $0.0 < $1.0 } }) { throw first.1 }
    }
}

extension Fleet {
    /// Exit status of a command on one node.
    public struct NodeResult: Sendable {
        public var node: String
        public var status: Int32
    }

    /// Runs `command` on `names` (all nodes when empty) in parallel, output prefixed by node.
    public func exec(nodes names: [String], command: [String]) throws -> [NodeResult] {
        try Self.runOnNodes(
            file, names, isNode: isNode, where: "here", fleet: "fleet \(file.name)",
            upFix: "bring it up first with 'coop fleet up FILE'"
        ) { name in
            let definition = try ContainerDefinition(folder: containers.existingFolder(name))
            return try FleetExec.run(definition, command: command, prefix: name)
        }
    }

    /// Runs `run` for the nodes `names` of `file` (all when empty) in parallel, each prefixed line of output
    /// its own; a name that is not a node is refused first, and a node that is not there (`isNode` says, at
    /// `place`) or fails to run says so on its line; `fleet` names the fleet when none is up. Returns each node's exit status.
    static func runOnNodes(
        _ file: FleetFile, _ names: [String], isNode: @Sendable @escaping (String) -> Bool, where place: String,
        fleet: String, upFix: String, _ run: @Sendable @escaping (String) throws -> Int32
    ) throws -> [NodeResult] {
        let known = file.nodes.map(\.name)
        for name in names where !known.contains(name) {
            throw CoopError(
                .notFound, "node \(Console.escaped(name))", cause: "is not a node of fleet \(file.name)",
                fix: "name one of: \(known.joined(separator: ", "))")
        }
        let chosen = names.isEmpty ? known : names
        guard chosen.contains(where: isNode) else {
            throw CoopError(
                .conflict, fleet, cause: "is not up: none of its nodes exists", fix: upFix)
        }
        let results = Mutex<[String: Int32]>([:])
        try forEach(chosen) { name in
            let status: Int32
            // Whatever of that name is not this fleet's node is never entered.
            guard isNode(name) else {
                Console.status("\(name)| error: no node of fleet \(file.name) by this name runs \(place)")
                results.withLock { $0[name] = CoopError.Code.notFound.rawValue }
                return
            }
            do {
                status = try run(name)
            } catch let error as CoopError {
                Console.status("\(name)| error: \(Console.escaped("\(error)", keepNewlines: true))")
                status = error.code.rawValue
            }
            results.withLock { $0[name] = status }
        }
        let statuses = results.withLock { $0 }
        return chosen.map { NodeResult(node: $0, status: statuses[$0] ?? 255) }
    }
}
