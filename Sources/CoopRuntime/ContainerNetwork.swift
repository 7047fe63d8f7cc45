import CoopSupport
import CoopSystem
import Foundation

/// How a container reaches the network, kept in `coop-network.conf` in its folder, where LXC does not
/// read it (LXC gives such a container the loopback of its `lxc.net.0.type = empty`).
public struct ContainerNetwork: Sendable, Equatable {
    public enum Mode: String, Sendable, CaseIterable {
        /// A network namespace of its own with outbound access through pasta, run as the user.
        case pasta
        /// A network namespace of its own with loopback only.
        case none
        /// The host's network namespace.
        case host
        /// A node of a fleet: a link on the fleet's private bridge (`FleetNetwork`).
        case fleet
    }

    /// A published TCP port: the host's 127.0.0.1:`host` reaches the container's `container`.
    public struct Port: Sendable, Equatable, CustomStringConvertible {
        public var host: UInt16
        public var container: UInt16

        /// `HOSTPORT:CONTAINERPORT`, or one port for both.
        public init(host: UInt16, container: UInt16) {
            self.host = host
            self.container = container
        }

        public init?(_ text: String) {
            let parts = text.split(separator: ":", omittingEmptySubsequences: false).map { UInt16($0) }
            guard parts.count == 1 || parts.count == 2, let first = parts[0], let last = parts[parts.count - 1],
                first > 0, last > 0
            else { return nil }
            host = first
            container = last
        }

        public var description: String { "\(host):\(container)" }
    }

    public var mode: Mode
    public var ports: [Port]
    /// For a node: its fleet's name and its address on the fleet's subnet.
    public var fleet: String?
    public var address: String?

    public init(mode: Mode, ports: [Port] = [], fleet: String? = nil, address: String? = nil) {
        self.mode = mode
        self.ports = ports
        self.fleet = fleet
        self.address = address
    }

    static let fileName = "coop-network.conf"

    /// The default of a new container: pasta for a user; loopback only for root, whose containers are
    /// not meant to reach out unless asked.
    public static var standard: ContainerNetwork { ContainerNetwork(mode: getuid() == 0 ? .none : .pasta) }

    /// The container's settings, or nil when it has none of coop's (an LXC container, or one made before).
    static func read(_ folder: URL) throws -> ContainerNetwork? {
        let file = folder.appendingPathComponent(fileName)
        guard let text = try? String(contentsOf: file, encoding: .utf8) else { return nil }
        var network = ContainerNetwork.standard
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let pair = line.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard pair.count == 2 else { continue }
            switch pair[0] {
            case "mode":
                guard let mode = Mode(rawValue: pair[1]) else { throw invalid(file, line: String(line)) }
                network.mode = mode
            case "publish":
                guard let port = Port(pair[1]) else { throw invalid(file, line: String(line)) }
                network.ports.append(port)
            case "fleet":
                guard pair[1].allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }), !pair[1].isEmpty
                else {
                    throw invalid(file, line: String(line))
                }
                network.fleet = pair[1]
            case "address":
                guard FleetNetwork.number(pair[1]) != nil else { throw invalid(file, line: String(line)) }
                network.address = pair[1]
            default: throw invalid(file, line: String(line))
            }
        }
        if network.mode == .fleet, network.fleet == nil || network.address == nil {
            throw invalid(file, line: "mode = fleet (without 'fleet = NAME' and 'address = A.B.C.D')")
        }
        return network
    }

    static func invalid(_ file: URL, line: String) -> CoopError {
        CoopError(
            .usage, "network settings \(file.path)", cause: "cannot read the line '\(line)'",
            fix: "write 'mode = pasta|none|host' and 'publish = HOSTPORT:CONTAINERPORT' lines, or remove the file")
    }

    /// Writes the settings into the container's folder.
    public func write(to folder: URL) throws {
        var text = "# coop's network settings (LXC does not read this file)\nmode = \(mode.rawValue)\n"
        for port in ports { text += "publish = \(port)\n" }
        if let fleet { text += "fleet = \(fleet)\n" }
        if let address { text += "address = \(address)\n" }
        try FileSystem.writeAtomically(text, to: folder.appendingPathComponent(Self.fileName))
    }
}
