import CCoopNamespace
import CoopSupport
import Foundation

/// A child process, started by the C spawner, optionally inside a user namespace mapped by newuidmap.
public final class SpawnedProcess: @unchecked Sendable {
    public let pid: pid_t
    private var status: Int32?

    /// Starts `arguments` (the first is an absolute path). `idMap` puts the child in a new user namespace
    /// where it is root over that range (and `moreMaps` after it); `joining` (a user namespace fd of the caller's) puts it in that one
    /// instead, and with `nestedMap` (ids of that namespace) then in a new one below it, mapped to those ids.
    /// `input`, `output`, `error` become its fds 0, 1, 2.
    public init(
        arguments: [String], environment: [String: String] = ProcessInfo.processInfo.environment,
        idMap: IDMap?, moreMaps: [IDMap] = [], mapOwner: Bool = true, joining userNamespace: Int32 = -1,
        nestedMap: IDMap? = nil,
        input: Int32 = -1,
        output: Int32 = -1, error: Int32 = -1, cgroupProcs: [String] = [], newSession: Bool = false
    ) throws {
        // All memory is prepared here, before the fork: the child may not allocate.
        let argv = CStringArray(arguments)
        let envp = CStringArray(environment.map { "\($0.key)=\($0.value)" })
        var maps: (uid: CStringArray, gid: CStringArray)?
        if let idMap {
            let helpers = idMap.helperArguments(
                hostUser: getuid(), hostGroup: getgid(), mapOwner: mapOwner, more: moreMaps)
            maps = (CStringArray(helpers.uid), CStringArray(helpers.gid))
        }
        let nested = nestedMap.map { ("0 \($0.uidStart) \($0.count)\n", "0 \($0.gidStart) \($0.count)\n") }
        var failure = coop_spawn_failure()
        let fds: [Int32] = [input, output, error]
        let procs = cgroupProcs.isEmpty ? nil : CStringArray(cgroupProcs)
        let pid = fds.withUnsafeBufferPointer { fdBuffer in
            coop_spawn(
                arguments[0], argv.pointer, envp.pointer, fdBuffer.baseAddress, maps?.uid.pointer, maps?.gid.pointer,
                userNamespace, nested?.0, nested?.1, procs?.pointer, newSession ? 1 : 0, &failure)
        }
        if pid < 0 { throw Self.describe(failure, command: arguments[0]) }
        self.pid = pid
    }

    static func describe(_ failure: coop_spawn_failure, command: String) -> CoopError {
        let reason = failure.error_number != 0 ? String(cString: strerror(failure.error_number)) : ""
        switch failure.stage {
        case COOP_STAGE_UNSHARE:
            return CoopError(
                .hostSetup, "user namespace", cause: "cannot be created: \(reason)",
                fix: "enable unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1, "
                    + "user.max_user_namespaces > 0)")
        case COOP_STAGE_UIDMAP, COOP_STAGE_GIDMAP:
            let helper = failure.stage == COOP_STAGE_UIDMAP ? "newuidmap" : "newgidmap"
            return CoopError(
                .hostSetup, helper,
                cause: failure.helper_status != 0
                    ? "refused the id map (exit status \(failure.helper_status >> 8))" : "cannot run: \(reason)",
                fix: "install the uidmap package and give this user a range in /etc/subuid and /etc/subgid; "
                    + "'coop check' tells what is missing")
        case COOP_STAGE_CGROUP:
            // ENOSPC: a v1 cpuset folder on the way has no cpus or mems. Root needs no setup-host.
            let fix =
                getuid() == 0
                ? "in every cpuset folder on the way (/sys/fs/cgroup/cpuset/coop, coop/root), copy cpuset.cpus and "
                    + "cpuset.mems from the parent folder, or remove those folders (rmdir) so coop makes them again"
                : "as root, run 'coop setup-host --user \(CoopPaths.userName)'"
            return CoopError(
                .hostSetup, "cgroup of \(command)", cause: "cannot take the process: \(reason)", fix: fix)
        case COOP_STAGE_EXEC:
            return CoopError(.internal, "start of \(command)", cause: "exec failed: \(reason)")
        default:
            return CoopError(
                .internal, "start of \(command)",
                cause: "\(String(cString: coop_stage_name(Int32(failure.stage.rawValue)))) failed: \(reason)")
        }
    }

    /// Waits for the child; returns its exit status, or 128 + the signal that ended it.
    @discardableResult
    public func wait() -> Int32 {
        if let status { return status }
        let result = Self.wait(for: pid)
        status = result
        return result
    }

    /// Waits for the child `pid`; its exit status, or 128 + the signal that ended it.
    public static func wait(for pid: pid_t) -> Int32 {
        var raw: Int32 = 0
        while waitpid(pid, &raw, 0) < 0 && errno == EINTR {}
        return (raw & 0x7f) == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
    }

    public func kill(_ signal: Int32 = SIGKILL) {
        if status == nil { Glibc.kill(pid, signal) }
    }
}

/// A NULL-terminated `char *[]` that lives as long as this object.
public final class CStringArray {
    public let pointer: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>
    private let count: Int

    public init(_ strings: [String]) {
        count = strings.count
        pointer = .allocate(capacity: strings.count + 1)
        for (index, string) in strings.enumerated() { pointer[index] = strdup(string) }
        pointer[strings.count] = nil
    }

    deinit {
        for index in 0..<count { free(pointer[index]) }
        pointer.deallocate()
    }
}
