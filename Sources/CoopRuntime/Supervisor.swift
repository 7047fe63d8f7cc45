import CCoopNamespace
import CoopRootfs
import CoopSupport
import Foundation

/// The two single-threaded entry points that run inside namespaces: `coop __supervise` and `coop __exec`.
public enum Supervisor {
    /// Starts PID 1 from `spec`, reports its pid on `pidFD` (or an error as JSON on `errorFD`), then waits
    /// for it and returns its exit status.
    public static func supervise(spec: RuntimeSpec, pidFD: Int32, errorFD: Int32) -> Int32 {
        // PID 1 must not inherit the report pipes: `coop start` waits for their end.
        _ = fcntl(pidFD, F_SETFD, FD_CLOEXEC)
        _ = fcntl(errorFD, F_SETFD, FD_CLOEXEC)
        let argv = CStringArray(spec.command)
        let envp = CStringArray(spec.environment)
        var failure = coop_spawn_failure()
        let pid = spec.rootfs.withCString { rootfs in
            spec.hostname.withCString { hostname in
                var cSpec = coop_container_spec(
                    rootfs: rootfs, hostname: hostname, argv: argv.pointer, envp: envp.pointer,
                    share_network: spec.shareNetwork ? 1 : 0)
                return coop_container_start(&cSpec, &failure)
            }
        }
        if pid < 0 {
            let error = ContainerRuntime.describe(failure, what: "start of the container")
            if let data = try? JSONEncoder().encode(error) {
                data.withUnsafeBytes { _ = try? FileSystem.writeAll(errorFD, $0, what: "report") }
            }
            return 1
        }
        let text = Array("\(pid)\n".utf8)
        text.withUnsafeBytes { _ = try? FileSystem.writeAll(pidFD, $0, what: "report") }
        close(pidFD)
        close(errorFD)
        return wait(pid)
    }

    /// Joins the container of `initPID` and runs `command` there; returns its exit status.
    public static func exec(initPID: Int32, command: [String]) -> Int32 {
        let argv = CStringArray(command)
        let envp = CStringArray(RuntimeSpec.defaultEnvironment)
        var failure = coop_spawn_failure()
        let pid = coop_container_exec(initPID, argv.pointer, envp.pointer, &failure)
        if pid < 0 {
            FileHandle.standardError.write(
                Data("error: \(ContainerRuntime.describe(failure, what: "exec of \(command[0])"))\n".utf8))
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
