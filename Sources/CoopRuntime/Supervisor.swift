import CCoopNamespace
import CoopRootfs
import CoopSupport
import Foundation

/// `coop __exec`: a fresh single-threaded process that joins a running container's namespaces.
public enum Supervisor {
    /// Joins the container of `initPID` and runs `command` there; returns its exit status.
    public static func exec(initPID: Int32, command: [String]) -> Int32 {
        let argv = CStringArray(command)
        let envp = CStringArray(ContainerRuntime.environment.map { "\($0.key)=\($0.value)" }.sorted())
        var failure = coop_spawn_failure()
        let pid = coop_container_exec(initPID, argv.pointer, envp.pointer, &failure)
        if pid < 0 { return report(failure, what: "exec of \(command[0])") }
        return SpawnedProcess.wait(for: pid)
    }

    /// Starts root's login shell on a pty inside the container of `initPID`, sends the pty to the caller
    /// over `socketFD`, and returns the shell's exit status.
    public static func attach(
        initPID: Int32, socketFD: Int32, rows: UInt16, columns: UInt16, term: String, command: [String]
    ) -> Int32 {
        var environment = ContainerRuntime.environment
        environment["TERM"] = term
        environment["USER"] = "root"
        environment["LOGNAME"] = "root"
        let envp = CStringArray(environment.map { "\($0.key)=\($0.value)" }.sorted())
        var failure = coop_spawn_failure()
        let argv = command.isEmpty ? nil : CStringArray(command)
        let pid = coop_container_attach(initPID, socketFD, rows, columns, argv?.pointer, envp.pointer, &failure)
        close(socketFD)
        if pid < 0 { return report(failure, what: command.first.map { "exec of \($0)" } ?? "attach to the container") }
        return SpawnedProcess.wait(for: pid)
    }

    /// Says what failed on stderr; the status a shell gives: 127 when the command was not found, else 126.
    static func report(_ failure: coop_spawn_failure, what: String) -> Int32 {
        FileHandle.standardError.write(Data("error: \(ContainerRuntime.describe(failure, what: what))\n".utf8))
        return failure.stage.rawValue == 36 ? 127 : 126
    }
}
