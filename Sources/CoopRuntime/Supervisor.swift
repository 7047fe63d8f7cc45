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
        if pid < 0 {
            FileHandle.standardError.write(
                Data("error: \(ContainerRuntime.describe(failure, what: "exec of \(command[0])"))\n".utf8))
            return failure.stage.rawValue == 36 ? 127 : 126
        }
        return wait(pid)
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
        if pid < 0 {
            let what = command.first.map { "exec of \($0)" } ?? "attach to the container"
            FileHandle.standardError.write(Data("error: \(ContainerRuntime.describe(failure, what: what))\n".utf8))
            return failure.stage.rawValue == 36 ? 127 : 126
        }
        return wait(pid)
    }

    /// Waits for a child; its exit status, or 128 + the signal that ended it.
    static func wait(_ pid: pid_t) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }
}
