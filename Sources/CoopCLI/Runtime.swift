import ArgumentParser
import CoopContainer
import CoopFormats
import CoopRuntime
import CoopSupport
import Foundation

struct Start: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "start",
        abstract: "Start a container: its init, or the command given after --.",
        discussion: "Returns once PID 1 runs; with --foreground it stays attached and passes on the exit status.")

    @Argument(help: "The container's name.")
    var name: String
    @Flag(name: .long, help: "Stay attached to the container's console.")
    var foreground = false
    @Flag(name: .long, help: "Return once booted: systemd running or degraded (any other init: once it runs).")
    var wait = false
    @Option(name: .long, help: "Seconds --wait waits for the boot.")
    var timeout: Double = 120
    @Argument(parsing: .postTerminator, help: "A command to run as PID 1 instead of /sbin/init.")
    var command: [String] = []

    func validate() throws {
        if wait && foreground {
            throw ValidationError("--wait is for a container in the background: drop --foreground")
        }
    }

    func run() throws {
        let boot = wait ? BootWatch() : nil
        try Self.start(name: name, foreground: foreground, command: command, boot: boot)
        guard let boot else { return }
        let started = Date()
        try boot.wait(timeout: timeout, container: name)
        Console.status("\(name) booted (\(String(format: "%.2f", Date().timeIntervalSince(started))) s)")
    }

    static func start(name: String, foreground: Bool, command: [String], boot: BootWatch? = nil) throws {
        let container = try LocalContainers().container(named: name)
        let status = try ContainerRuntime.start(
            container, command: command.isEmpty ? nil : command, foreground: foreground, boot: boot)
        if let status { throw ExitCode(status) }
        if let state = ContainerState.read(container.folder) { Console.status("started \(name) (pid \(state.pid))") }
    }

    /// The arguments of the plainest start, `NAME [--foreground] [-- COMMAND…]`, read without the argument
    /// parser: its reflection costs a few milliseconds, as much as the rest of such a start. Anything else
    /// (help, a misspelt flag, a second name) gives nil and goes to the parser, which explains it.
    static func plainArguments(_ arguments: [String]) -> (name: String, foreground: Bool, command: [String])? {
        var name: String?
        var foreground = false
        for (index, argument) in arguments.enumerated() {
            if argument == "--" { return name.map { ($0, foreground, Array(arguments[(index + 1)...])) } }
            if argument == "--foreground" && !foreground {
                foreground = true
            } else if name == nil && !argument.isEmpty && !argument.hasPrefix("-") {
                name = argument
            } else {
                return nil
            }
        }
        return name.map { ($0, foreground, []) }
    }
}

struct Stop: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stop",
        abstract: "Stop a container: init is asked to power off, and killed after the timeout.")

    @Argument(help: "The container's name.")
    var name: String
    @Option(name: .long, help: "Seconds to wait for init before killing it.")
    var timeout: Double = 10

    func run() throws {
        let container = try LocalContainers().container(named: name)
        try ContainerRuntime.stop(container, timeout: timeout)
        Console.status("stopped \(name)")
    }
}

struct Exec: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exec",
        abstract: "Run a command in a running container; its exit status is coop's.")

    @Argument(help: "The container's name.")
    var name: String
    @Flag(name: .customShort("t"), help: "Run the command on a pty even when stdin or stdout is no terminal.")
    var forcePty = false
    @Flag(name: .customShort("T"), help: "Never use a pty, even at a terminal.")
    var noPty = false
    @Argument(parsing: .postTerminator, help: "The command, after --.")
    var command: [String] = []

    func validate() throws {
        if command.isEmpty { throw ValidationError("give the command after --, e.g. coop exec c1 -- ps") }
        if forcePty && noPty { throw ValidationError("-t and -T exclude each other") }
    }

    func run() throws {
        let container = try LocalContainers().container(named: name)
        let pty: ContainerRuntime.PtyChoice = forcePty ? .always : noPty ? .never : .automatic
        throw ExitCode(try ContainerRuntime.exec(container, command: command, pty: pty))
    }
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a command in a throwaway container: created, run, removed.")

    @Argument(help: "The image: [REMOTE:]DISTRO/RELEASE[/ARCH][/VARIANT].")
    var image: String
    @Argument(parsing: .postTerminator, help: "The command, after --.")
    var command: [String] = []
    @OptionGroup var options: ImageOptions
    @OptionGroup var networkOptions: NetworkOptions

    func validate() throws {
        if command.isEmpty { throw ValidationError("give the command after --, e.g. coop run debian/bookworm -- ls") }
    }

    func run() throws {
        let environment = try Environment(timeout: options.timeout)
        let creator = ContainerCreator(fetcher: environment.fetcher, containers: try environment.containers())
        let reference = try ImageReference(parsing: image, remote: options.remote)
        let throwaway: ThrowawayContainer
        do {
            throwaway = try ThrowawayContainer.make(image: reference, creator: creator, options: options.fetchOptions)
        } catch let error as CoopError {
            throw environment.explainingUnreachable(error, remote: reference.remote)
        }
        defer { throwaway.remove() }
        var container = try ContainerDefinition(folder: throwaway.folder)
        container.network = try networkOptions.settings()
        let status = try ContainerRuntime.start(
            container, command: command, foreground: true, overlayLower: throwaway.base)
        throwaway.remove()
        throw ExitCode(status ?? 0)
    }
}

struct Attach: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attach",
        abstract: "An interactive login shell in a running container.",
        discussion: "The shell runs on a pty of its own: job control, window size and Ctrl-C work as at a console.")

    @Argument(help: "The container's name.")
    var name: String

    func run() throws {
        let container = try LocalContainers().container(named: name)
        throw ExitCode(try ContainerRuntime.attach(container))
    }
}

/// `coop __attach PID CGROUP_PROCS SOCKET REPORT ROWS COLUMNS TERM -- [COMMAND…]`: the inside half of attach.
struct AttachInside: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "__attach", shouldDisplay: false)

    @Argument var pid: Int32
    @Argument var cgroupProcs: String
    @Argument var socket: Int32
    @Argument var report: Int32
    @Argument var rows: UInt16
    @Argument var columns: UInt16
    @Argument var term: String
    @Argument(parsing: .postTerminator) var command: [String] = []

    func run() throws {
        throw ExitCode(
            ContainerEntry.attach(
                initPID: pid, cgroupProcs: cgroupProcs, socketFD: socket, reportFD: report, rows: rows,
                columns: columns, term: term, command: command))
    }
}

/// `coop __exec PID CGROUP_PROCS REPORT COMMAND…`: joins the container of PID 1 `PID` and runs the command;
/// a failure to get there goes to the descriptor REPORT.
struct ExecInside: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "__exec", shouldDisplay: false)

    @Argument var pid: Int32
    @Argument var cgroupProcs: String
    @Argument var report: Int32
    @Argument(parsing: .captureForPassthrough) var command: [String] = []

    func run() throws {
        throw ExitCode(ContainerEntry.exec(initPID: pid, cgroupProcs: cgroupProcs, reportFD: report, command: command))
    }
}
