import CoopSupport
import Foundation
import Yams

/// Walks the YAML tree of a fleet file by hand rather than decoding it, so that every error can name its line,
/// the key at fault and the keys allowed in its place.
struct FleetFileParser {
    /// Names the file in errors.
    let path: String
    /// Where relative paths in `files` start.
    let folder: URL

    static let counts = 1...500
    static let topKeys = ["name", "image", "nodes", "limits", "network", "run", "files", "isolated"]
    static let nodeKeys = ["name", "limits"]
    static let limitKeys = ["memory", "cpus", "pids"]
    static let networkKeys = ["subnet", "outbound", "ports"]
    static let fileKeys = ["from", "to", "mode"]
    /// The kernel refuses a `cpu.max` quota below 1000 microseconds: 0.01 of the 100 ms period.
    static let cpuRange = 0.01...1024.0

    func parse(_ text: String) throws -> FleetFile {
        let top = try fields(of: try root(of: text), in: "the top level", known: Self.topKeys)
        let name = try fleetName(try top.required("name", self))
        let image = try image(try top.required("image", self))
        let shared = try top.value("limits").map(limits) ?? FleetFile.Limits()
        let nodesNode = try top.required("nodes", self)
        let nodes = try nodes(nodesNode, fleet: name, shared: shared)
        var network = FleetFile.Network()
        var subnetNode: Yams.Node?
        if let value = top.value("network") { (network, subnetNode) = try self.network(value, nodes: nodes) }
        try checkFit(nodes.count, in: network.subnet, at: subnetNode ?? nodesNode)
        return FleetFile(
            name: name, image: image, nodes: nodes, limits: shared, network: network,
            run: try top.value("run").map(commands) ?? [],
            files: try top.value("files").map(files) ?? [],
            isolated: try top.value("isolated").map { try boolean($0, "isolated") } ?? false)
    }

    // MARK: The tree

    /// The document's top node; YAML's own errors keep the line libyaml found them on.
    private func root(of text: String) throws -> Yams.Node {
        let root: Yams.Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw syntaxFailure(error)
        }
        guard let root, !isNull(root) else {
            throw failure(line: 1, "the file is empty", fix: "write at least name, image and nodes")
        }
        return root
    }

    private func syntaxFailure(_ error: YamlError) -> CoopError {
        let fix = "check the indentation and the quoting near that line"
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            let during = context.map { " (\(Console.escaped($0.text)) on line \($0.mark.line))" } ?? ""
            return failure(line: mark.line, "not valid YAML: \(Console.escaped(problem))\(during)", fix: fix)
        default:
            return failure(line: nil, "not valid YAML: \(Console.escaped(String(describing: error)))", fix: fix)
        }
    }

    /// The keys of one mapping, each checked against those allowed at its level.
    struct Fields {
        let mapping: Yams.Node
        let level: String
        let values: [String: Yams.Node]

        /// The value of `key`; nil when the key is absent or has no value (`key:` or `key: null`).
        func value(_ key: String) -> Yams.Node? {
            guard let value = values[key], !FleetFileParser.isNullNode(value) else { return nil }
            return value
        }

        func required(_ key: String, _ parser: FleetFileParser) throws -> Yams.Node {
            if let value = value(key) { return value }
            let cause =
                values[key] == nil ? "\(level) has no key '\(key)'" : "'\(key)' in \(level) has no value"
            throw parser.failure(
                values[key] ?? mapping, cause, fix: "add `\(key):` with a value; it is required")
        }
    }

    func fields(of node: Yams.Node, in level: String, known: [String]) throws -> Fields {
        guard case .mapping(let mapping) = node else {
            throw failure(
                node, "\(level) must be a mapping of keys, not \(describe(node))",
                fix: "write it as `key: value` lines; the keys here are \(known.joined(separator: ", "))")
        }
        var values: [String: Yams.Node] = [:]
        var lines: [String: Int] = [:]
        for (keyNode, value) in mapping {
            guard case .scalar(let scalar) = keyNode else {
                throw failure(keyNode, "a key in \(level) is \(describe(keyNode)), not a name", fix: "use plain keys")
            }
            let key = scalar.string
            guard known.contains(key) else {
                throw failure(
                    keyNode, "unknown key \(quoted(key)) in \(level), on line \(line(keyNode))",
                    fix: "the keys here are \(known.joined(separator: ", "))")
            }
            if let first = lines[key] {
                throw failure(
                    keyNode, "key '\(key)' in \(level) appears twice (first on line \(first))", fix: "keep one")
            }
            values[key] = value
            lines[key] = line(keyNode)
        }
        return Fields(mapping: node, level: level, values: values)
    }

    // MARK: Scalars

    static func isNullNode(_ node: Yams.Node) -> Bool {
        guard case .scalar(let scalar) = node, scalar.style == .plain else { return false }
        return ["", "~", "null", "Null", "NULL"].contains(scalar.string)
    }

    private func isNull(_ node: Yams.Node) -> Bool { Self.isNullNode(node) }

    func text(_ node: Yams.Node, _ what: String) throws -> String {
        guard case .scalar(let scalar) = node else {
            throw failure(node, "\(what) must be text, not \(describe(node))", fix: "write it on the key's line")
        }
        return scalar.string
    }

    /// A whole number written plainly: `5`, not `"5"` or `5.0`.
    private func plainInteger(_ node: Yams.Node) -> Int? {
        guard case .scalar(let scalar) = node, scalar.style == .plain,
            scalar.string.allSatisfy({ $0.isASCII && $0.isNumber })
        else { return nil }
        return Int(scalar.string)
    }

    private func boolean(_ node: Yams.Node, _ key: String) throws -> Bool {
        if case .scalar(let scalar) = node, scalar.style == .plain {
            switch scalar.string.lowercased() {
            case "true", "yes", "on": return true
            case "false", "no", "off": return false
            default: break
            }
        }
        throw failure(node, "\(key) must be true or false, not \(describe(node))", fix: "write `\(key): true` or false")
    }

    private func list(_ node: Yams.Node, _ key: String) throws -> [Yams.Node] {
        guard case .sequence(let sequence) = node else {
            throw failure(node, "\(key) must be a list, not \(describe(node))", fix: "write one `- item` per line")
        }
        return Array(sequence)
    }

    // MARK: Values

    /// Node names are host names, so a fleet's name leaves room for a count after it.
    private func fleetName(_ node: Yams.Node) throws -> String {
        let name = try text(node, "name")
        guard Self.isName(name, maxLength: 40) else {
            throw failure(
                node, "fleet name \(quoted(name)) is not a name",
                fix: "use 1 to 40 lowercase letters, digits and '-', starting with a letter or digit")
        }
        return name
    }

    /// Left to the image stores to resolve; checked only for what could never be a reference.
    private func image(_ node: Yams.Node) throws -> String {
        let image = try text(node, "image")
        let bad = image.unicodeScalars.contains {
            $0.properties.isWhitespace || $0.value < 0x20 || (0x7F...0x9F).contains($0.value)
        }
        guard !image.isEmpty, !bad else {
            throw failure(
                node, "image \(quoted(image)) is not an image reference",
                fix: "name an image as coop takes it, such as debian/bookworm")
        }
        return image
    }

    static func isName(_ text: String, maxLength: Int) -> Bool {
        let allowed = { (c: Character) in c.isASCII && (c.isLowercase || c.isNumber) }
        guard let first = text.first, allowed(first), text.count <= maxLength else { return false }
        return text.allSatisfy { allowed($0) || $0 == "-" }
    }

    private func nodes(_ node: Yams.Node, fleet: String, shared: FleetFile.Limits) throws -> [FleetFile.Node] {
        let fix = "write a count from 1 to 500 (`nodes: 3`) or a list of names (`nodes: [web, db]`)"
        if case .sequence = node { return try namedNodes(node, shared: shared) }
        guard let count = plainInteger(node) else {
            throw failure(node, "nodes must be a count or a list of names, not \(describe(node))", fix: fix)
        }
        guard Self.counts.contains(count) else {
            throw failure(node, "nodes: \(count) is not a count from 1 to 500", fix: fix)
        }
        return (1...count).map { FleetFile.Node(name: "\(fleet)-\($0)", limits: shared) }
    }

    private func namedNodes(_ node: Yams.Node, shared: FleetFile.Limits) throws -> [FleetFile.Node] {
        let items = try list(node, "nodes")
        guard Self.counts.contains(items.count) else {
            throw failure(node, "nodes lists \(items.count) nodes; a fleet has 1 to 500", fix: "list fewer nodes")
        }
        var result: [FleetFile.Node] = []
        var lines: [String: Int] = [:]
        for item in items {
            var nameNode = item
            var own = FleetFile.Limits()
            if case .mapping = item {
                let fields = try fields(of: item, in: "a node", known: Self.nodeKeys)
                nameNode = try fields.required("name", self)
                own = try fields.value("limits").map(limits) ?? own
            }
            let name = try text(nameNode, "a node's name")
            guard Self.isName(name, maxLength: 63) else {
                throw failure(
                    nameNode, "node name \(quoted(name)) is not a name",
                    fix: "use 1 to 63 lowercase letters, digits and '-', starting with a letter or digit")
            }
            if let first = lines[name] {
                throw failure(
                    nameNode, "node name \(quoted(name)) appears twice (first on line \(first))",
                    fix: "give each node its own name")
            }
            lines[name] = line(nameNode)
            result.append(FleetFile.Node(name: name, limits: own.overriding(shared)))
        }
        return result
    }

    private func limits(_ node: Yams.Node) throws -> FleetFile.Limits {
        let fields = try fields(of: node, in: "limits", known: Self.limitKeys)
        var limits = FleetFile.Limits()
        if let value = fields.value("memory") {
            guard let bytes = Self.bytes(try text(value, "memory")) else {
                throw failure(
                    value, "memory \(describe(value)) is not a size",
                    fix: "write bytes, or a number with K, M, G or T (powers of 1024), such as 512M or 1.5G")
            }
            limits.memory = bytes
        }
        if let value = fields.value("cpus") {
            let text = try text(value, "cpus")
            guard text.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }), let cpus = Double(text),
                Self.cpuRange.contains(cpus)
            else {
                throw failure(
                    value, "cpus \(describe(value)) is not a number from 0.01 to 1024", fix: "such as 0.5 or 2")
            }
            limits.cpus = cpus
        }
        if let value = fields.value("pids") {
            guard let pids = plainInteger(value), pids >= 1 else {
                throw failure(value, "pids \(describe(value)) is not a count of at least 1", fix: "such as 256")
            }
            limits.pids = pids
        }
        return limits
    }

    /// Bytes from "1073741824", "512M", "1.5G": K, M, G and T are powers of 1024, as cgroups and `free` count.
    static func bytes(_ text: String) -> UInt64? {
        let units: [Character: UInt64] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40]
        var number = Substring(text)
        var unit: UInt64 = 1
        if let last = number.last, let found = units[Character(last.uppercased())] {
            unit = found
            number = number.dropLast()
        }
        guard let first = number.first, first.isNumber, number.last?.isNumber == true,
            number.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }), number.filter({ $0 == "." }).count <= 1
        else { return nil }
        if unit == 1 {
            guard let bytes = UInt64(number), bytes >= 1 else { return nil }
            return bytes
        }
        guard let value = Double(number) else { return nil }
        let bytes = value * Double(unit)
        guard bytes >= 1, bytes < Double(UInt64(1) << 62) else { return nil }
        return UInt64(bytes)
    }

    /// The network, and the node of its subnet for an error that the nodes do not fit.
    private func network(_ node: Yams.Node, nodes: [FleetFile.Node]) throws -> (FleetFile.Network, Yams.Node?) {
        let fields = try fields(of: node, in: "network", known: Self.networkKeys)
        var network = FleetFile.Network()
        if let value = fields.value("subnet") {
            let text = try text(value, "subnet")
            guard let subnet = IPv4Subnet(text) else {
                throw failure(
                    value, "subnet \(quoted(text)): \(IPv4Subnet.problem(with: text) ?? "not usable")",
                    fix: "use a private network address with a prefix from /16 to /29, such as 10.123.0.0/24")
            }
            network.subnet = subnet
        }
        network.outbound = try fields.value("outbound").map { try boolean($0, "outbound") } ?? true
        network.ports = try fields.value("ports").map { try ports($0, nodes: nodes) } ?? []
        return (network, fields.value("subnet"))
    }

    private func ports(_ node: Yams.Node, nodes: [FleetFile.Node]) throws -> [FleetFile.Port] {
        var result: [FleetFile.Port] = []
        var lines: [UInt16: Int] = [:]
        for item in try list(node, "ports") {
            let spec = try text(item, "a port")
            let parts = spec.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 3, let host = Self.portNumber(parts[0]), let port = Self.portNumber(parts[2]) else {
                throw failure(
                    item, "port \(quoted(spec)) is not HOSTPORT:NODE:PORT with ports from 1 to 65535",
                    fix: "write it as \"8080:web-1:80\"")
            }
            let name = String(parts[1])
            guard nodes.contains(where: { $0.name == name }) else {
                let names = nodes.prefix(5).map(\.name).joined(separator: ", ") + (nodes.count > 5 ? ", …" : "")
                throw failure(
                    item, "port \(quoted(spec)) names node \(quoted(name)), which the fleet does not have",
                    fix: "forward to one of the nodes: \(names)")
            }
            if let first = lines[host] {
                throw failure(
                    item, "host port \(host) is forwarded twice (first on line \(first))",
                    fix: "forward each host port to one node")
            }
            lines[host] = line(item)
            result.append(FleetFile.Port(host: host, node: name, port: port))
        }
        return result
    }

    private static func portNumber(_ text: Substring) -> UInt16? {
        guard (1...5).contains(text.count), text.allSatisfy({ $0.isASCII && $0.isNumber }),
            let value = UInt16(text), value >= 1
        else { return nil }
        return value
    }

    private func checkFit(_ count: Int, in subnet: IPv4Subnet, at node: Yams.Node) throws {
        guard count > subnet.capacity else { return }
        let larger = subnet.widened(toHold: count).map { ", such as \($0)" } ?? ""
        throw failure(
            node, "\(count) nodes do not fit in \(subnet), which has room for \(subnet.capacity)",
            fix: "use a subnet with a smaller prefix\(larger)")
    }

    private func commands(_ node: Yams.Node) throws -> [String] {
        try list(node, "run").map { item in
            let command = try text(item, "a command in run")
            guard !command.allSatisfy(\.isWhitespace), !command.unicodeScalars.contains("\0") else {
                throw failure(item, "command \(quoted(command)) in run is empty or holds NUL", fix: "remove it")
            }
            return command
        }
    }

    private func files(_ node: Yams.Node) throws -> [FleetFile.FileCopy] {
        try list(node, "files").map { item in
            let fields = try fields(of: item, in: "a file", known: Self.fileKeys)
            let fromNode = try fields.required("from", self)
            let from = try text(fromNode, "from")
            guard !from.unicodeScalars.contains("\0") else {
                throw failure(fromNode, "from \(quoted(from)) holds NUL", fix: "name a file of the host")
            }
            let toNode = try fields.required("to", self)
            let to = try text(toNode, "to")
            guard to.hasPrefix("/"), !to.unicodeScalars.contains(where: { [0, 0x0A, 0x0D].contains($0.value) }),
                !to.split(separator: "/").contains("..")
            else {
                throw failure(
                    toNode, "to \(quoted(to)) is not an absolute path inside the node",
                    fix: "write a path from / without '..', such as /etc/app.conf")
            }
            let url =
                from.hasPrefix("/") ? URL(fileURLWithPath: from) : folder.appendingPathComponent(from)
            return FleetFile.FileCopy(
                from: url.standardizedFileURL, to: to, mode: try fields.value("mode").map(mode))
        }
    }

    /// Always octal, as chmod takes it: `0644`, `"0644"`, `644` and `0o644` are all rw-r--r--.
    private func mode(_ node: Yams.Node) throws -> UInt16 {
        var digits = Substring(try text(node, "mode"))
        if digits.hasPrefix("0o") || digits.hasPrefix("0O") { digits = digits.dropFirst(2) }
        guard (1...5).contains(digits.count), digits.allSatisfy({ ("0"..."7").contains($0) }),
            let mode = UInt16(digits, radix: 8), mode <= 0o7777
        else {
            throw failure(node, "mode \(describe(node)) is not an octal mode up to 7777", fix: "such as 0644 or 0755")
        }
        return mode
    }

    // MARK: Messages

    func failure(_ node: Yams.Node, _ cause: String, fix: String) -> CoopError {
        failure(line: node.mark?.line, cause, fix: fix)
    }

    private func failure(line: Int?, _ cause: String, fix: String) -> CoopError {
        var what = "fleet file \(Console.escaped(path))"
        if let line { what += " line \(line)" }
        return CoopError(.usage, what, cause: cause, fix: fix)
    }

    private func line(_ node: Yams.Node) -> Int { node.mark?.line ?? 0 }

    /// Text from the file, made safe to print and cut short.
    private func quoted(_ text: String) -> String {
        let short = text.count > 60 ? text.prefix(60) + "…" : text
        return "'\(Console.escaped(String(short)))'"
    }

    private func describe(_ node: Yams.Node) -> String {
        switch node {
        case .scalar(let scalar): return quoted(scalar.string)
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        }
    }
}
