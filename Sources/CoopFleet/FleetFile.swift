import CoopSupport
import Foundation

/// A fleet as its file describes it: many nodes from one image, on one private network.
///
/// The file is checked whole before anything runs, so a typo on line 40 fails before the first node starts,
/// and every error names the line it came from.
public struct FleetFile: Sendable, Equatable {
    /// Names the fleet, and through it every node that has no name of its own.
    public var name: String
    /// The image every node starts from, as `coop` takes it (`debian/bookworm`, `local:debian/bookworm/amd64`).
    public var image: String
    /// The nodes in file order; their addresses follow that order.
    public var nodes: [Node]
    /// The limits every node has unless it sets its own.
    public var limits: Limits
    public var network: Network
    /// Shell commands run once on each node after it boots, in order.
    public var run: [String]
    /// Files copied into each node before `run`.
    public var files: [FileCopy]
    /// The file's `isolated` switch, read here for the code that starts the fleet; off unless the file turns it on.
    public var isolated: Bool

    public init(
        name: String, image: String, nodes: [Node], limits: Limits = Limits(), network: Network = Network(),
        run: [String] = [], files: [FileCopy] = [], isolated: Bool = false
    ) {
        self.name = name
        self.image = image
        self.nodes = nodes
        self.limits = limits
        self.network = network
        self.run = run
        self.files = files
        self.isolated = isolated
    }

    /// One container of the fleet.
    public struct Node: Sendable, Equatable {
        public var name: String
        /// The fleet's shared limits with this node's own laid over them.
        public var limits: Limits

        public init(name: String, limits: Limits = Limits()) {
            self.name = name
            self.limits = limits
        }
    }

    /// Resource limits of a node, applied through cgroup v2; nil leaves a resource unlimited.
    public struct Limits: Sendable, Equatable {
        /// Bytes of memory.
        public var memory: UInt64?
        /// CPUs' worth of time per period, fractions allowed.
        public var cpus: Double?
        /// Processes and threads.
        public var pids: Int?

        public init(memory: UInt64? = nil, cpus: Double? = nil, pids: Int? = nil) {
            self.memory = memory
            self.cpus = cpus
            self.pids = pids
        }

        /// These limits, with each one that is unset taken from `base`.
        public func overriding(_ base: Limits) -> Limits {
            Limits(memory: memory ?? base.memory, cpus: cpus ?? base.cpus, pids: pids ?? base.pids)
        }

        /// The period `cpu.max` measures quotas in, in microseconds (the kernel's default).
        public static let cpuPeriod = 100_000

        /// The cgroup v2 files and values that set these limits, in a stable order.
        public var cgroupLines: [(key: String, value: String)] {
            var lines: [(key: String, value: String)] = []
            if let memory { lines.append((key: "memory.max", value: String(memory))) }
            if let cpus {
                lines.append((key: "cpu.max", value: "\(Int(cpus * Double(Self.cpuPeriod))) \(Self.cpuPeriod)"))
            }
            if let pids { lines.append((key: "pids.max", value: String(pids))) }
            return lines
        }
    }

    /// The fleet's own network: a bridge with the gateway on the host side.
    public struct Network: Sendable, Equatable {
        public static let defaultSubnet = IPv4Subnet("10.123.0.0/24")!

        public var subnet: IPv4Subnet
        /// Whether nodes may reach beyond the fleet's network (through NAT on the host).
        public var outbound: Bool
        /// Host ports forwarded to nodes.
        public var ports: [Port]

        public init(subnet: IPv4Subnet = Network.defaultSubnet, outbound: Bool = true, ports: [Port] = []) {
            self.subnet = subnet
            self.outbound = outbound
            self.ports = ports
        }
    }

    /// A port of the host forwarded to a port of one node.
    public struct Port: Sendable, Equatable {
        public var host: UInt16
        public var node: String
        public var port: UInt16

        public init(host: UInt16, node: String, port: UInt16) {
            self.host = host
            self.node = node
            self.port = port
        }
    }

    /// A file of the host copied into every node.
    public struct FileCopy: Sendable, Equatable {
        /// On the host; a relative path in the file is taken from the fleet file's folder, not the working one.
        public var from: URL
        /// An absolute path inside the node.
        public var to: String
        /// Permission bits; nil keeps those of `from`.
        public var mode: UInt16?

        public init(from: URL, to: String, mode: UInt16? = nil) {
            self.from = from
            self.to = to
            self.mode = mode
        }
    }

    /// Reads and checks the fleet file at `url`.
    public static func read(_ url: URL) throws -> FleetFile {
        let path = url.path
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            let missing = !FileManager.default.fileExists(atPath: path)
            throw CoopError(
                .notFound, "fleet file \(Console.escaped(path))",
                cause: missing ? "no such file" : "it cannot be read",
                fix: missing ? "check the path, or write the file first" : "check the file's permissions",
                wrapping: error)
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw CoopError(
                .usage, "fleet file \(Console.escaped(path))", cause: "it is not UTF-8 text",
                fix: "save the file as UTF-8")
        }
        return try parse(text, path: path, folder: url.deletingLastPathComponent())
    }

    /// Checks the fleet file `text`; `path` names it in errors and `folder` anchors its relative paths.
    public static func parse(_ text: String, path: String, folder: URL) throws -> FleetFile {
        try FleetFileParser(path: path, folder: folder).parse(text)
    }
}
