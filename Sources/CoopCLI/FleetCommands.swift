import ArgumentParser
import CoopContainer
import CoopFleet
import CoopFormats
import CoopRuntime
import CoopSupport
import Foundation

struct FleetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fleet",
        abstract: "Many networked copy-on-write containers from one fleet file (docs/fleets.md).",
        subcommands: [FleetUp.self, FleetStatus.self, FleetExecCommand.self, FleetDown.self])
}

/// The fleet file argument every fleet command takes, and where the fleet runs.
struct FleetFileArgument: ParsableArguments {
    @Argument(help: "The fleet file (YAML).")
    var file: String
    @Option(
        name: .long,
        help: ArgumentHelp(
            "Run the fleet on this LXD or Incus server or cluster, named in ~/.config/coop/remotes.",
            valueName: "REMOTE"))
    var on: String?

    func fleet() throws -> Fleet {
        let parsed = try FleetFile.read(URL(fileURLWithPath: file))
        return Fleet(file: parsed, containers: try LocalContainers().store(), progress: { Console.status($0) })
    }

    /// The fleet on the cluster named `remote`.
    func clusterFleet(_ remote: String) throws -> ClusterFleet {
        let parsed = try FleetFile.read(URL(fileURLWithPath: file))
        let remotes = CoopPaths.current().configDirectory.appendingPathComponent("remotes")
        return ClusterFleet(
            file: parsed, client: LXDClient(remote: try ClusterRemote.named(remote, in: remotes)),
            progress: { Console.status($0) })
    }
}

struct FleetUp: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "up",
        abstract: "Create the missing nodes, start them all and wait until every one is booted.")

    @OptionGroup var fleetFile: FleetFileArgument
    @Option(name: .long, help: "Seconds to wait for the nodes to boot.")
    var bootTimeout: Double = 300
    @OptionGroup var options: ImageOptions

    func run() throws {
        let started = Date()
        if let remote = fleetFile.on {
            let fleet = try fleetFile.clusterFleet(remote)
            let reference = try ImageReference(parsing: fleet.file.image, remote: options.remote)
            // The cluster fetches the image itself, from the tree the image's remote publishes.
            let server = try Environment(timeout: options.timeout).catalog.remote(named: reference.remote).url
            let lines = try fleet.up(image: reference, server: server, timeout: bootTimeout)
            let seconds = String(format: "%.2f", Date().timeIntervalSince(started))
            Console.status("fleet \(fleet.file.name) up on \(remote): \(lines.count) nodes booted (\(seconds) s)")
            return
        }
        let fleet = try fleetFile.fleet()
        let reference = try ImageReference(parsing: fleet.file.image, remote: options.remote)
        let environment = try Environment(timeout: options.timeout)
        let creator = ContainerCreator(fetcher: environment.fetcher, containers: fleet.containers)
        let lines: [String]
        do {
            lines = try fleet.up(
                creator: creator, image: reference, options: options.fetchOptions, timeout: bootTimeout)
        } catch let error as CoopError {
            throw environment.explainingUnreachable(error, remote: reference.remote)
        }
        let seconds = String(format: "%.2f", Date().timeIntervalSince(started))
        Console.status("fleet \(fleet.file.name) up: \(lines.count) nodes booted (\(seconds) s)")
    }
}

struct FleetStatus: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "The nodes of the fleet: state, address, pid.")

    @OptionGroup var fleetFile: FleetFileArgument
    @Flag(name: .long, help: "Print JSON.")
    var json = false

    func run() throws {
        let rows = try fleetFile.on.map { try fleetFile.clusterFleet($0).status() } ?? fleetFile.fleet().status()
        if json { return try printJSON(rows) }
        printTable(
            ["NODE", "STATE", "ADDRESS", "PID"],
            rows.map { [$0.name, $0.state, $0.address, $0.pid.map(String.init) ?? "-"] })
    }
}

struct FleetExecCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exec",
        abstract: "Run a command on every node (or the nodes named) at once; non-zero if any failed.",
        discussion: "Each line of output comes with its node's name in front; a summary of exit statuses follows.")

    @OptionGroup var fleetFile: FleetFileArgument
    @Argument(
        parsing: .captureForPassthrough,
        help: ArgumentHelp("Nodes to run on (default: all), then -- and the command.", valueName: "NODE… -- COMMAND"))
    var rest: [String] = []

    /// The nodes before `--` and the command after it; `--on REMOTE` may stand among the nodes too.
    var split: (nodes: [String], command: [String], on: String?) {
        let marker = rest.firstIndex(of: "--") ?? rest.endIndex
        var nodes = Array(rest[..<marker])
        var on = fleetFile.on
        if let flag = nodes.firstIndex(of: "--on"), flag + 1 < nodes.count {
            on = nodes[flag + 1]
            nodes.removeSubrange(flag...(flag + 1))
        }
        return (nodes, marker < rest.endIndex ? Array(rest[(marker + 1)...]) : [], on)
    }

    func validate() throws {
        if split.command.isEmpty {
            throw ValidationError("give the command after --, e.g. coop fleet exec web.yaml -- hostname")
        }
        if let flag = split.nodes.first(where: { $0.hasPrefix("-") }) {
            throw ValidationError("\(flag): give node names before --, and the command after it")
        }
    }

    func run() throws {
        let (nodes, command, on) = split
        let statuses =
            try on.map { try fleetFile.clusterFleet($0).exec(nodes: nodes, command: command) }
            ?? fleetFile.fleet().exec(nodes: nodes, command: command)
        let failed = statuses.filter { $0.status != 0 }
        Console.status(
            "\(statuses.count - failed.count) of \(statuses.count) nodes succeeded"
                + (failed.isEmpty
                    ? "" : "; failed: " + failed.map { "\($0.node) (\($0.status))" }.joined(separator: ", ")))
        if !failed.isEmpty { throw ExitCode(1) }
    }
}

struct FleetDown: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "down", abstract: "Kill and remove every node of the fleet, and its network.")

    @OptionGroup var fleetFile: FleetFileArgument

    func run() throws {
        let started = Date()
        let name: String
        let removed: [String]
        if let remote = fleetFile.on {
            let fleet = try fleetFile.clusterFleet(remote)
            (name, removed) = ("\(fleet.file.name) on \(remote)", try fleet.down())
        } else {
            let fleet = try fleetFile.fleet()
            (name, removed) = (fleet.file.name, try fleet.down())
        }
        let seconds = String(format: "%.2f", Date().timeIntervalSince(started))
        Console.status("fleet \(name) down: \(removed.count) nodes removed (\(seconds) s)")
    }
}
