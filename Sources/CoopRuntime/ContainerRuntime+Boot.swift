import CoopSupport
import CoopSystem
import Foundation

extension ContainerRuntime {
    /// A command started in a running container with descriptors of the caller's as its stdio.
    public struct StartedExec: @unchecked Sendable {
        public var process: SpawnedProcess
        var report: Int32
        var command: [String]

        /// Waits for the command; its exit status. A command that cannot run is said on stderr and answers
        /// as a shell does (127: not found, 126: not runnable).
        public func finish() throws -> Int32 {
            let status = process.wait()
            defer { close(report) }
            if let failure = RuntimeFailure.read(from: report) {
                let error = failure.error(what: "exec of \(command[0])")
                guard failure.isExec else { throw error }
                Console.error(error)
                return failure.exitStatus
            }
            return status
        }
    }

    /// Starts `command` as root in the running container on `input`, `output` and `error`, which must be no
    /// terminal of the user's (pipes or files): for callers that collect the output of many containers.
    public static func startExec(
        _ container: ContainerDefinition, command: [String], input: Int32, output: Int32, error: Int32
    ) throws -> StartedExec {
        let state = try running(container)
        let report = try Pipe.make()
        do {
            defer { close(report.write) }
            try checkSystemCall(fcntl(report.write, F_SETFD, 0), "report pipe of exec")
            let process = try SpawnedProcess(
                arguments: [
                    CoopPaths.executablePath(), "__exec", String(state.pid), procsArgument(state), String(report.write),
                ] + command, idMap: nil, input: input, output: output, error: error)
            return StartedExec(process: process, report: report.read, command: command)
        } catch {
            close(report.read)
            throw error
        }
    }

    /// Runs `command` in the running container; its exit status and what it wrote to stdout.
    public static func capture(_ container: ContainerDefinition, command: [String]) throws -> (
        status: Int32, output: String
    ) {
        let pipe = try Pipe.make()
        let nothing = open("/dev/null", O_RDWR | O_CLOEXEC)
        defer { if nothing >= 0 { close(nothing) } }
        let started: StartedExec
        do {
            defer { close(pipe.write) }
            started = try startExec(container, command: command, input: nothing, output: pipe.write, error: nothing)
        } catch {
            close(pipe.read)
            throw error
        }
        let reader = PipeReader(fd: pipe.read)
        let status = try started.finish()
        return (status, reader.text())
    }

    /// Waits until the container has booted: systemd says `running` or `degraded`
    /// (`systemctl is-system-running --wait`, asked again while systemd cannot answer yet); any other init,
    /// or a command as PID 1, counts as booted once it runs. Returns the state systemd gave.
    public static func waitUntilBooted(_ container: ContainerDefinition, timeout: Double) throws -> String {
        let state = try running(container)
        guard state.stopSignal == ContainerDefinition.powerOffSignal(systemd: true) else { return "running" }
        let deadline = Date().addingTimeInterval(timeout)
        var last = "starting"
        while Date() < deadline {
            let answer = try capture(container, command: ["systemctl", "is-system-running", "--wait"])
            last = answer.output.trimmed
            switch last {
            case "running", "degraded": return last
            case "maintenance", "stopping":
                throw CoopError(
                    .conflict, "boot of \(container.name)", cause: "systemd is \(last)",
                    fix: "look at 'coop exec \(container.name) -- systemctl --failed' and its console.log")
            default:
                // systemd is not listening yet (offline, or no answer at all): ask again shortly, while it runs.
                _ = try running(container)
                usleep(100_000)
            }
        }
        throw CoopError(
            .conflict, "boot of \(container.name)",
            cause: "systemd did not finish booting within \(Int(timeout)) s (it says '\(Console.escaped(last))')",
            fix: "look at 'coop exec \(container.name) -- systemctl list-jobs' and its console.log")
    }
}
