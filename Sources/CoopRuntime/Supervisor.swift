import CCoopNamespace
import CoopSystem
import Foundation

/// `coop __exec` and `coop __attach`: a fresh single-threaded process that enters a running container.
public enum Supervisor {
    /// Joins the container of `initPID` and runs `command` there; returns its exit status.
    public static func exec(initPID: Int32, cgroupProcs: String, command: [String]) -> Int32 {
        let argv = CStringArray(command)
        let envp = CStringArray(ContainerRuntime.environment.map { "\($0.key)=\($0.value)" }.sorted())
        let procs = procsFiles(cgroupProcs)
        var failure = coop_spawn_failure()
        let pid = coop_container_exec(initPID, procs.pointer, argv.pointer, envp.pointer, &failure)
        if pid < 0 { return report(failure, what: "exec of \(command[0])") }
        return SpawnedProcess.wait(for: pid)
    }

    /// Starts root's login shell on a pty inside the container of `initPID`, sends the pty to the caller
    /// over `socketFD`, and returns the shell's exit status.
    public static func attach(
        initPID: Int32, cgroupProcs: String, socketFD: Int32, rows: UInt16, columns: UInt16, term: String,
        command: [String]
    ) -> Int32 {
        var environment = ContainerRuntime.environment
        environment["TERM"] = term
        environment["USER"] = "root"
        environment["LOGNAME"] = "root"
        let envp = CStringArray(environment.map { "\($0.key)=\($0.value)" }.sorted())
        var failure = coop_spawn_failure()
        let argv = command.isEmpty ? nil : CStringArray(command)
        let procs = procsFiles(cgroupProcs)
        let pid = coop_container_attach(
            initPID, procs.pointer, socketFD, rows, columns, argv?.pointer, envp.pointer, &failure)
        close(socketFD)
        if pid < 0 { return report(failure, what: command.first.map { "exec of \($0)" } ?? "attach to the container") }
        return SpawnedProcess.wait(for: pid)
    }

    /// The `cgroup.procs` files of `ContainerRuntime.procsArgument`; only those of cgroup folders.
    static func procsFiles(_ argument: String) -> CStringArray {
        CStringArray(
            argument == "-"
                ? []
                : argument.split(separator: "\n").map(String.init).filter {
                    $0.hasPrefix("/sys/fs/cgroup/") && $0.hasSuffix("/cgroup.procs") && !$0.contains("/../")
                })
    }

    /// Says what failed on stderr; the status a shell gives: 127 when the command was not found, else 126.
    static func report(_ failure: coop_spawn_failure, what: String) -> Int32 {
        FileHandle.standardError.write(Data("error: \(ContainerRuntime.describe(failure, what: what))\n".utf8))
        return failure.stage.rawValue == 36 ? 127 : 126
    }
}
