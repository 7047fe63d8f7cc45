import CCoopNamespace
import CoopSystem
import Foundation

/// The inside halves of `coop exec` and `coop attach` (`coop __exec`, `coop __attach`): a fresh
/// single-threaded process that enters a running container and starts the command there. A failure goes
/// to the coop that started it as a report (coop_failure) on `reportFD`, and is its exit status.
public enum ContainerEntry {
    /// Joins the container of `initPID` and runs `command` there; returns its exit status.
    public static func exec(initPID: Int32, cgroupProcs: String, reportFD: Int32, command: [String]) -> Int32 {
        let argv = CStringArray(command)
        let envp = CStringArray(ContainerRuntime.environment.map { "\($0.key)=\($0.value)" }.sorted())
        let procs = procsFiles(cgroupProcs)
        var failure = coop_failure()
        let pid = coop_container_exec(initPID, procs.pointer, argv.pointer, envp.pointer, &failure)
        if pid < 0 { return RuntimeFailure.send(failure, to: reportFD) }
        close(reportFD)
        return SpawnedProcess.wait(for: pid)
    }

    /// Starts root's login shell on a pty inside the container of `initPID`, sends the pty to the caller
    /// over `socketFD`, and returns the shell's exit status.
    public static func attach(
        initPID: Int32, cgroupProcs: String, socketFD: Int32, reportFD: Int32, rows: UInt16, columns: UInt16,
        term: String, command: [String]
    ) -> Int32 {
        var environment = ContainerRuntime.environment
        environment["TERM"] = term
        environment["USER"] = "root"
        environment["LOGNAME"] = "root"
        let envp = CStringArray(environment.map { "\($0.key)=\($0.value)" }.sorted())
        var failure = coop_failure()
        let argv = command.isEmpty ? nil : CStringArray(command)
        let procs = procsFiles(cgroupProcs)
        let pid = coop_container_attach(
            initPID, procs.pointer, socketFD, rows, columns, argv?.pointer, envp.pointer, &failure)
        close(socketFD)
        if pid < 0 { return RuntimeFailure.send(failure, to: reportFD) }
        close(reportFD)
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
}
