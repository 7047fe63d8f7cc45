import CCoopNamespace
import CoopSupport
import CoopSystem
import Foundation

/// The private network of a fleet: a bridge in a network namespace of the user's own, held by a small
/// process (`coop-supervisor --fleet-network`) in the fleet's user namespace, which maps the user's id
/// range as each node's would. The nodes join that user namespace, so the fleet's root may give each node
/// a veth on the bridge; outbound traffic leaves through one pasta on the fleet's namespace, behind NAT.
/// Nothing of the host's own network changes. Its state is kept in `CONTAINERS/.fleets/NAME/`.
public struct FleetNetwork: Sendable {
    public var name: String
    public var folder: URL
    /// The subnet's first address, on the bridge: the nodes' gateway.
    public var gateway: String
    public var prefix: Int
    /// `A.B.C.D/P`, for the NAT rule.
    public var subnet: String
    public var outbound: Bool
    public var holder: Int32
    public var holderTicks: UInt64
    /// The gateway of pasta (the host's default gateway), which is also the host's loopback: DNS and
    /// host.coop.internal. Nil without outbound.
    public var hostGateway: String?

    static let bridge = "coop0"

    /// The folder of fleet `name` among the containers (a name no container can have).
    public static func folder(fleet name: String, containers: URL) -> URL {
        containers.appendingPathComponent(".fleets/\(name)")
    }

    static func stateFile(_ folder: URL) -> URL { folder.appendingPathComponent("network.conf") }
    public static func hostsFile(_ folder: URL) -> URL { folder.appendingPathComponent("hosts") }
    public static func resolvFile(_ folder: URL) -> URL { folder.appendingPathComponent("resolv.conf") }

    /// The fleet's network when it is up (its holder runs), else nil.
    public static func running(fleet name: String, containers: URL) -> FleetNetwork? {
        let folder = folder(fleet: name, containers: containers)
        guard let text = try? String(contentsOf: stateFile(folder), encoding: .utf8) else { return nil }
        var fields: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let pair = line.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if pair.count == 2 { fields[pair[0]] = pair[1] }
        }
        guard let gateway = fields["gateway"], let prefix = fields["prefix"].flatMap({ Int($0) }),
            let subnet = fields["subnet"], let holder = fields["holder"].flatMap({ Int32($0) }),
            let ticks = fields["holder-ticks"].flatMap({ UInt64($0) }), ProcessStart.ticks(of: holder) == ticks
        else { return nil }
        return FleetNetwork(
            name: name, folder: folder, gateway: gateway, prefix: prefix, subnet: subnet,
            outbound: fields["outbound"] == "true", holder: holder, holderTicks: ticks,
            hostGateway: fields["host-gateway"])
    }

    /// Makes the fleet's namespaces, bridge and NAT, and its pasta when `outbound`. Fails with the fix when
    /// pasta cannot work here and outbound is asked.
    public static func start(
        fleet name: String, containers: URL, idMap: IDMap, moreMaps: [IDMap] = [], gateway: String, prefix: Int,
        subnet: String,
        outbound: Bool, ports: [(host: UInt16, address: String, port: UInt16)] = []
    ) throws -> FleetNetwork {
        if outbound, let problem = Pasta.unusable() {
            throw CoopError(
                .hostSetup, "outbound network of fleet \(name)", cause: problem.cause,
                fix: "\(problem.fix), or set 'outbound: false' in the fleet file")
        }
        let folder = folder(fleet: name, containers: containers)
        // Private as a container's folder: the nodes' root (the range's first id) reads the name files here.
        for level in [folder.deletingLastPathComponent(), folder] {
            try FileSystem.createDirectory(level, mode: 0o700)
            try ContainerFolder.makePrivate(level, for: idMap)
        }
        let ready = try Pipe.make()
        let nothing = open("/dev/null", O_RDWR | O_CLOEXEC)
        let log = open(
            folder.appendingPathComponent("network.log").path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        let holder: SpawnedProcess
        do {
            defer {
                close(ready.write)
                if nothing >= 0 { close(nothing) }
                if log >= 0 { close(log) }
            }
            try checkSystemCall(fcntl(ready.write, F_SETFD, 0), "ready pipe of the fleet's network")
            holder = try SpawnedProcess(
                arguments: [
                    try CoopPaths.helperPath("coop-supervisor"), "--fleet-network", bridge, gateway, String(prefix),
                    String(ready.write),
                ], environment: [:], idMap: idMap, moreMaps: moreMaps, mapOwner: false, input: nothing, output: nothing,
                error: log,
                newSession: true)
        } catch {
            close(ready.read)
            throw error
        }
        var byte: UInt8 = 0
        let got = read(ready.read, &byte, 1)
        close(ready.read)
        guard got == 1, let ticks = ProcessStart.ticks(of: holder.pid) else {
            let status = holder.wait()
            let said = (try? String(contentsOf: folder.appendingPathComponent("network.log"), encoding: .utf8)) ?? ""
            throw CoopError(
                .hostSetup, "network of fleet \(name)",
                cause: "its namespace could not be made (status \(status)): \(said.trimmed)",
                fix: "'coop check' tells what the host lacks")
        }
        var network = FleetNetwork(
            name: name, folder: folder, gateway: gateway, prefix: prefix, subnet: subnet, outbound: outbound,
            holder: holder.pid, holderTicks: ticks, hostGateway: nil)
        do {
            if outbound {
                try network.addRules(ports: ports)
                guard let hostGateway = Pasta.gateway() else {
                    throw CoopError(
                        .hostSetup, "outbound network of fleet \(name)", cause: "the host has no IPv4 default route",
                        fix: "add a default route, or set 'outbound: false'")
                }
                try Pasta.configure(
                    pid: holder.pid,
                    network: ContainerNetwork(
                        mode: .pasta, ports: ports.map { .init(host: $0.host, container: $0.host) }),
                    gateway: hostGateway, folder: folder, loopbackOnly: true)
                network.hostGateway = hostGateway
            }
            try network.writeState()
        } catch {
            network.stop()
            throw error
        }
        return network
    }

    func writeState() throws {
        var text = "# the network of fleet \(name), as coop fleet up made it\n"
        text += "holder = \(holder)\nholder-ticks = \(holderTicks)\ngateway = \(gateway)\nprefix = \(prefix)\n"
        text += "subnet = \(subnet)\noutbound = \(outbound)\n"
        if let hostGateway { text += "host-gateway = \(hostGateway)\n" }
        try FileSystem.writeAtomically(text, to: Self.stateFile(folder))
    }

    /// NAT for the nodes' traffic out through pasta's tap, and published ports to their nodes, in the
    /// fleet's own namespace (nft run there as the fleet's root).
    func addRules(ports: [(host: UInt16, address: String, port: UInt16)]) throws {
        var rules = "add table ip coop\n"
        rules += "add chain ip coop post { type nat hook postrouting priority srcnat; }\n"
        rules += "add rule ip coop post ip saddr \(subnet) oifname != \"\(Self.bridge)\" masquerade\n"
        // pasta sends bare window updates (no flag set), which conntrack calls invalid and so leaves
        // un-NATed: the namespace's own stack would answer them with a reset of the node's connection.
        rules += "add chain ip coop in { type filter hook input priority filter; }\n"
        rules += "add rule ip coop in iifname != \"\(Self.bridge)\" ct state invalid drop\n"
        if !ports.isEmpty {
            // pasta brings a published port's connections from the host's loopback through the
            // namespace's loopback (output), and the others through its tap (prerouting); both go on to
            // the node, and those from loopback leave with the bridge's address.
            rules += "add chain ip coop pre { type nat hook prerouting priority dstnat; }\n"
            rules += "add chain ip coop out { type nat hook output priority -100; }\n"
            rules += "add rule ip coop post oifname \"\(Self.bridge)\" ip saddr 127.0.0.0/8 masquerade\n"
            for port in ports {
                let target = "tcp dport \(port.host) dnat to \(port.address):\(port.port)"
                rules += "add rule ip coop pre iifname != \"\(Self.bridge)\" \(target)\n"
                rules += "add rule ip coop out ip daddr 127.0.0.1 \(target)\n"
            }
        }
        try join(["/usr/sbin/nft", "-f", "-"], input: rules, what: "NAT rules of fleet \(name)")
    }

    /// Runs `command` as root in the fleet's namespaces, with `input` on its stdin.
    func join(_ command: [String], input: String, what: String) throws {
        guard FileManager.default.isExecutableFile(atPath: command[0]) else {
            throw CoopError(.hostSetup, what, cause: "\(command[0]) is missing", fix: "apt-get install nftables")
        }
        let pipe = try Pipe.make()
        let log = folder.appendingPathComponent("join.log")
        let output = open(log.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        let process: SpawnedProcess
        do {
            defer {
                close(pipe.read)
                if output >= 0 { close(output) }
            }
            process = try SpawnedProcess(
                arguments: [try CoopPaths.helperPath("coop-supervisor"), "--fleet-join", String(holder)] + command,
                environment: [:], idMap: nil, input: pipe.read, output: output, error: output)
        } catch {
            close(pipe.write)
            throw error
        }
        try? Data(input.utf8).withUnsafeBytes { try FileSystem.writeAll(pipe.write, $0, what: what) }
        close(pipe.write)
        let status = process.wait()
        guard status == 0 else {
            let said = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            throw CoopError(.hostSetup, what, cause: "\(command[0]) ended with status \(status): \(said.trimmed)")
        }
    }

    /// Opens the fleet's user namespace, for a node's supervisor to join; the holder is checked to be the
    /// one recorded after the namespace is held, so a recycled pid is never joined.
    public func openUserNamespace() throws -> Int32 {
        let fd = open("/proc/\(holder)/ns/user", O_RDONLY | O_CLOEXEC)
        guard fd >= 0, ProcessStart.ticks(of: holder) == holderTicks else {
            if fd >= 0 { close(fd) }
            throw CoopError(
                .conflict, "network of fleet \(name)", cause: "its holder (pid \(holder)) is gone",
                fix: "bring the fleet up again with 'coop fleet up FILE'")
        }
        return fd
    }

    /// The ids of the fleet's user namespace that `map` (a node's range on the host) is, read from the
    /// holder's maps: from 0 for a node on the user's own range, further up for an isolated node's.
    public func inside(_ map: IDMap, node: String) throws -> IDMap {
        // Each map's lines once: (inside, host, count).
        func lines(_ file: String) -> [[UInt64]] {
            let text = (try? String(contentsOfFile: "/proc/\(holder)/\(file)", encoding: .utf8)) ?? ""
            return text.split(separator: "\n").map { $0.split(separator: " ").compactMap { UInt64($0) } }.filter {
                $0.count == 3
            }
        }
        func start(_ lines: [[UInt64]], _ host: UInt32) -> UInt32? {
            lines.first { $0[1] <= UInt64(host) && UInt64(host) + UInt64(map.count) <= $0[1] + $0[2] }.map {
                UInt32($0[0] + UInt64(host) - $0[1])
            }
        }
        let uids = lines("uid_map")
        // A holder that maps more than one range is an isolated fleet's (however its ranges fall into
        // lines), whose root may reach every node's ids: a node never runs as that root.
        let isolated = uids.reduce(0) { $0 + $1[2] } > UInt64(map.count)
        guard let uid = start(uids, map.uidStart), let gid = start(lines("gid_map"), map.gidStart),
            ProcessStart.ticks(of: holder) == holderTicks, !isolated || uid != 0
        else {
            throw CoopError(
                .conflict, "node \(node) of fleet \(name)",
                cause: "its ids (\(map.uidStart)-\(UInt64(map.uidStart) + UInt64(map.count) - 1)) do not fit the "
                    + "fleet's user namespace, which was made for \(isolated ? "an isolated" : "a shared") range",
                fix: "take the fleet down and up again: 'coop fleet down FILE' then 'coop fleet up FILE'")
        }
        return IDMap(uidStart: uid, gidStart: gid, count: map.count)
    }

    /// Gives the node whose PID 1 is `pid` its veth on the bridge, `address` and the default route.
    public func plug(node: String, pid: Int32, address: String) throws {
        let link = "c" + String(Self.number(address) ?? 0, radix: 16)
        let log = folder.appendingPathComponent("plug-\(node).log")
        let output = open(log.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        defer {
            if output >= 0 { close(output) }
            unlink(log.path)
        }
        let process = try SpawnedProcess(
            arguments: [
                try CoopPaths.helperPath("coop-supervisor"), "--fleet-plug", String(holder), String(pid), link,
                Self.bridge, address, String(prefix), gateway,
            ], environment: [:], idMap: nil, input: -1, output: output, error: output)
        let status = process.wait()
        guard status == 0 else {
            let said = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            throw CoopError(
                .hostSetup, "network of node \(node) in fleet \(name)",
                cause: "its link to the fleet's bridge failed (status \(status)): \(said.trimmed)")
        }
    }

    static func number(_ address: String) -> UInt32? {
        var value = in_addr()
        guard inet_pton(AF_INET, address, &value) == 1 else { return nil }
        return UInt32(bigEndian: value.s_addr)
    }

    /// Removes what is left of a fleet whose network is down: its pasta, if one still runs, and its folder.
    public static func remove(fleet name: String, containers: URL) {
        let folder = folder(fleet: name, containers: containers)
        Pasta.end(folder: folder)
        try? FileManager.default.removeItem(at: folder)
    }

    /// Ends pasta and the holder (which takes the namespaces, the bridge and every node's link along) and
    /// removes the fleet's folder.
    public func stop() {
        if ProcessStart.ticks(of: holder) == holderTicks {
            kill(holder, SIGTERM)
            if coop_wait_for_exit(holder, 2000) == 0 { kill(holder, SIGKILL) }
        }
        // The holder is a child of this process only when it started it here.
        var status: Int32 = 0
        _ = waitpid(holder, &status, WNOHANG)
        Self.remove(fleet: name, containers: folder.deletingLastPathComponent().deletingLastPathComponent())
    }
}
