import CCoopNamespace
import CoopRootfs
import CoopSupport
import Foundation

/// Starts, enters and stops containers. Each container runs under its own supervisor process, a fresh
/// single-threaded `coop __supervise` inside a user namespace that maps the container's range only
/// (not the user's own id), which makes the other namespaces and forks the container's PID 1.
public enum ContainerRuntime {
    /// Starts the container. In the foreground it returns PID 1's exit status (or 128 + signal); in the
    /// background it returns nil once PID 1 runs, leaving its output in `console.log`.
    public static func start(_ container: ContainerDefinition, command: [String]?, foreground: Bool) throws -> Int32? {
        if let state = ContainerState.read(container.folder), state.isRunning {
            throw CoopError(
                .conflict, "container \(container.name)", cause: "is already running (pid \(state.pid))",
                fix: "stop it first with 'coop stop \(container.name)'")
        }
        try checkTraversable(container.rootfs, idMap: container.idMap)
        let spec = RuntimeSpec(
            rootfs: container.rootfs.path, hostname: container.hostname, command: command ?? ["/sbin/init"],
            environment: RuntimeSpec.defaultEnvironment, shareNetwork: container.sharesHostNetwork)
        let json = String(decoding: try JSONEncoder().encode(spec), as: UTF8.self)
        let pidPipe = try Pipe.make()
        let errors = try Pipe.make()
        var logFD: Int32 = -1
        if !foreground {
            logFD = open(
                container.folder.appendingPathComponent("console.log").path,
                O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            if logFD < 0 { throw CoopError.system("console log of \(container.name)") }
        }
        let input = foreground ? -1 : open("/dev/null", O_RDONLY | O_CLOEXEC)
        // The supervisor inherits these two pipe ends (not its stdio, which is the container's console).
        _ = fcntl(pidPipe.write, F_SETFD, 0)
        _ = fcntl(errors.write, F_SETFD, 0)
        let supervisor: SpawnedProcess
        do {
            defer {
                close(pidPipe.write)
                close(errors.write)
                if logFD >= 0 { close(logFD) }
                if input >= 0 { close(input) }
            }
            // The supervisor writes PID 1's pid and its errors on the two pipes it is given.
            supervisor = try SpawnedProcess(
                arguments: [
                    CoopPaths.executablePath(), "__supervise", json, String(pidPipe.write), String(errors.write),
                ],
                idMap: container.idMap, mapOwner: false, input: input, output: logFD, error: logFD,
                newSession: !foreground)
        }
        let pidText = PipeReader(fd: pidPipe.read).text().trimmingCharacters(in: .whitespacesAndNewlines)
        guard let pid = Int32(pidText) else {
            let status = supervisor.wait()
            let text = PipeReader(fd: errors.read).text()
            if let error = try? JSONDecoder().decode(CoopError.self, from: Data(text.utf8)) { throw error }
            throw CoopError(
                .internal, "start of \(container.name)", cause: "the supervisor ended with status \(status): \(text)")
        }
        close(errors.read)
        // A short command may be gone already; then there is nothing running to record.
        if let ticks = ContainerState.startTicks(of: pid) {
            try ContainerState(pid: pid, startTicks: ticks, startedAt: Int(Date().timeIntervalSince1970)).write(
                container.folder)
        }
        return foreground ? supervisor.wait() : nil
    }

    /// The container's root (the range's first id) must be able to reach its rootfs.
    static func checkTraversable(_ rootfs: URL, idMap: IDMap) throws {
        var folder = rootfs.deletingLastPathComponent()
        while folder.path != "/" {
            var info = stat()
            if stat(folder.path, &info) == 0, info.st_mode & 0o001 == 0, info.st_uid != idMap.uidStart {
                throw CoopError(
                    .hostSetup, "folder \(folder.path)", cause: "cannot be entered by the container's root",
                    fix: "chmod o+x \(folder.path)")
            }
            folder.deleteLastPathComponent()
        }
    }

    /// Runs `command` inside the running container, with stdin, stdout and stderr passed through;
    /// returns its exit status.
    public static func exec(_ container: ContainerDefinition, command: [String]) throws -> Int32 {
        let state = try running(container)
        let process = try SpawnedProcess(
            arguments: [CoopPaths.executablePath(), "__exec", String(state.pid)] + command, idMap: nil)
        return process.wait()
    }

    /// Asks init to power off, and kills it after `timeout` seconds.
    public static func stop(_ container: ContainerDefinition, timeout: Double) throws {
        let state = try running(container)
        kill(state.pid, container.stopSignal)
        let deadline = Date().addingTimeInterval(timeout)
        while state.isRunning && Date() < deadline { usleep(10_000) }
        if state.isRunning {
            kill(state.pid, SIGKILL)
            while state.isRunning { usleep(10_000) }
        }
        unlink(ContainerState.file(container.folder).path)
    }

    static func running(_ container: ContainerDefinition) throws -> ContainerState {
        guard let state = ContainerState.read(container.folder), state.isRunning else {
            throw CoopError(
                .conflict, "container \(container.name)", cause: "is not running",
                fix: "start it with 'coop start \(container.name)'")
        }
        return state
    }

    /// Describes a failure of the C runtime by its stage.
    public static func describe(_ failure: coop_spawn_failure, what: String) -> CoopError {
        let stages: [UInt32: String] = [
            20: "unshare of the namespaces", 21: "fork of PID 1", 22: "making / private", 23: "bind of the rootfs",
            24: "mount of /proc", 25: "mount of /sys", 26: "mount of /dev", 27: "a device in /dev",
            28: "mount of /dev/pts", 29: "masking /proc", 30: "pivot_root", 31: "hostname", 32: "loopback",
            33: "capabilities", 34: "seccomp", 35: "switch to root", 36: "exec", 37: "joining the namespaces",
        ]
        let stage = stages[failure.stage.rawValue] ?? "stage \(failure.stage.rawValue)"
        let reason = String(cString: strerror(failure.error_number))
        let fix: String? =
            failure.stage.rawValue == 36
            ? "check that the command exists in the container" : "run 'coop check' to see what this host allows"
        return CoopError(
            .hostSetup, what, cause: "\(stage) failed: \(reason) (errno \(failure.error_number))", fix: fix)
    }
}
