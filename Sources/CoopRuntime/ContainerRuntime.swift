import CCoopNamespace
import CoopSupport
import CoopSystem
import Foundation

/// Starts, enters and stops containers. Each container runs under its own supervisor process, a fresh
/// single-threaded `coop __supervise` inside a user namespace that maps the container's range only
/// (not the user's own id), which makes the other namespaces and forks the container's PID 1.
public enum ContainerRuntime {
    /// Starts the container. In the foreground it returns PID 1's exit status (or 128 + signal); in the
    /// background it returns nil once PID 1 runs, leaving its console output in `console.log`.
    /// With `overlayLower` the container is a throwaway: its rootfs folder (empty) gets a tmpfs holding
    /// its changes over that image tree, which stays as it is.
    /// In the foreground PID 1 never gets a terminal of the user's: at a terminal it gets the container's
    /// console, relayed by the supervisor; otherwise pipes and files pass through, and a terminal among
    /// them is replaced by a pipe relayed here.
    public static func start(
        _ container: ContainerDefinition, command: [String]?, foreground: Bool, overlayLower: URL? = nil,
        boot: BootWatch? = nil
    ) throws -> Int32? {
        // Two starts of one container must not both find it stopped: the lock of create and destroy
        // (beside the container, in the containers folder) is held until the state is written.
        let lock = try FileLock(
            path: container.folder.deletingLastPathComponent().appendingPathComponent(".locks/\(container.name).lock"))
        defer { lock.unlock() }
        if let state = ContainerState.read(container.folder), state.isRunning {
            throw CoopError(
                .conflict, "container \(container.name)", cause: "is already running (pid \(state.pid))",
                fix: "stop it first with 'coop stop \(container.name)'")
        }
        try SubordinateIDs.checkOwnRange(container.idMap, container: container.name)
        // Containers made before their folders were private become private at their next start.
        for folder in [container.folder, container.folder.deletingLastPathComponent()] {
            try ContainerFolder.makePrivate(folder, for: container.idMap)
        }
        try checkTraversable(container.rootfs, idMap: container.idMap)
        // A copy-on-write container lays its overlay on its base as a throwaway does, its changes on disk.
        let overlayLower = overlayLower ?? container.cowBase
        try container.checkCowBase()
        if let overlayLower { try checkTraversable(overlayLower, idMap: container.idMap) }
        let supervisorPath = try CoopPaths.helperPath("coop-supervisor")
        let tree = overlayLower ?? container.rootfs
        let bootsInit = ContainerDefinition.bootsInit(command, in: tree)
        let systemd = bootsInit && ContainerDefinition.isSystemd(command?.first ?? "/sbin/init", in: tree)
        // A pasta left by an earlier run that ended by itself goes before the new one comes.
        Pasta.end(folder: container.folder)
        let gateway = try pastaGateway(container)
        let fleet = try fleetNetwork(container)
        let nameFiles =
            try fleet.map { (resolv: FleetNetwork.resolvFile($0.folder), hosts: FleetNetwork.hostsFile($0.folder)) }
            ?? gateway.map { try Pasta.nameFiles(folder: container.folder, hostname: container.hostname, gateway: $0) }
        let cgroups = try ContainerCgroups.prepare(container, placed: bootsInit || !container.limits.isEmpty)
        warnAboutCgroups(cgroups, container: container, bootsSystemd: systemd)
        var initCommand = command ?? ["/sbin/init"]
        // systemd 256 and later boot on v1 cgroups only when told so; older ones ignore the setting.
        if systemd, cgroups.initSeesLegacyCgroups {
            initCommand.append("SYSTEMD_CGROUP_ENABLE_LEGACY_FORCE=1")
        }
        let interactive = foreground && RawTerminal.isInteractive
        var request = SupervisorRequest(
            rootfs: container.rootfs.path, hostname: container.hostname, overlayLower: overlayLower?.path,
            overlayOnDisk: container.cowBase != nil, sharesHostNetwork: container.sharesHostNetwork,
            console: foreground ? (interactive ? .typed : .none) : .stdio,
            cgroupMounts: cgroups.mounts, command: initCommand,
            environment: environment.map { "\($0.key)=\($0.value)" }.sorted())
        // systemd tells its boot to the socket NOTIFY_SOCKET names, which the supervisor binds in the
        // container's own network namespace; elsewhere a boot is PID 1 running.
        let notifiesBoot = boot != nil && !foreground && systemd && !container.sharesHostNetwork
        if notifiesBoot {
            request.notifiesBoot = true
            request.environment.append("NOTIFY_SOCKET=\(COOP_NOTIFY_SOCKET)")
        }
        if let files = nameFiles {
            request.waitsForNetwork = true
            request.resolvConf = files.resolv.path
            request.hosts = files.hosts.path
        }
        let relayed = foreground && !interactive ? try RelayedStdio.forTerminals() : RelayedStdio.none
        // The supervisor's stdio (the relayed terminals; in the background no input and the console log)
        // and its two pipes, which it inherits on top (not as stdio, which is the container's console).
        // Each is closed here once the supervisor has it, or when a step on the way fails.
        var inherited: [Int32] = []
        var stdio = relayed.inner
        // A node of a fleet joins the fleet's user namespace, whose root gives it its link on the bridge; a
        // node on a range of its own (an isolated fleet's) then enters one of its own below it.
        var userNamespace: Int32 = -1
        var nestedMap: IDMap?
        var requestPipe: (read: Int32, write: Int32) = (-1, -1)
        var replyPipe: (read: Int32, write: Int32) = (-1, -1)
        do {
            if !foreground {
                let log = open(
                    container.folder.appendingPathComponent("console.log").path,
                    O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o600)
                guard log >= 0 else { throw CoopError.system("console log of \(container.name)") }
                inherited.append(log)
                let nothing = open("/dev/null", O_RDONLY | O_CLOEXEC)
                guard nothing >= 0 else { throw CoopError.system("/dev/null for \(container.name)") }
                inherited.append(nothing)
                stdio = [nothing, log, log]
            }
            if let fleet {
                userNamespace = try fleet.openUserNamespace()
                inherited.append(userNamespace)
                let inside = try fleet.inside(container.idMap, node: container.name)
                nestedMap = inside.uidStart == 0 && inside.gidStart == 0 ? nil : inside
            }
            requestPipe = try Pipe.make()
            inherited.append(requestPipe.read)
            replyPipe = try Pipe.make()
            inherited.append(replyPipe.write)
        } catch {
            inherited.forEach { close($0) }
            if requestPipe.write >= 0 { close(requestPipe.write) }
            relayed.closeInner()
            cgroups.remove(idMap: container.idMap)
            throw error
        }
        let supervisor: SpawnedProcess
        var terminal: RawTerminal?
        do {
            defer {
                inherited.forEach { close($0) }
                relayed.closeInner()
            }
            try checkSystemCall(fcntl(requestPipe.read, F_SETFD, 0), "request pipe of the supervisor")
            try checkSystemCall(fcntl(replyPipe.write, F_SETFD, 0), "reply pipe of the supervisor")
            supervisor = try SpawnedProcess(
                arguments: [supervisorPath, String(requestPipe.read), String(replyPipe.write), container.rootfs.path],
                environment: [:], idMap: fleet == nil ? container.idMap : nil, mapOwner: false,
                joining: userNamespace, nestedMap: nestedMap, input: stdio[0], output: stdio[1],
                error: stdio[2], cgroupProcs: cgroups.procsFiles, newSession: !foreground)
            // An init manages cgroups below its own (systemd does): they go to the container's root, only
            // now, as until the supervisor was in them the files that take processes had to be the user's.
            // A command as PID 1 gets the limits without that (and starts a few milliseconds sooner).
            if bootsInit { try cgroups.handOver(to: container.idMap) }
            if interactive { terminal = RawTerminal() }
            // The request is also the signal to go on: the supervisor waits for it.
            try request.encoded().withUnsafeBytes {
                try FileSystem.writeAll(requestPipe.write, $0, what: "request to the supervisor")
            }
        } catch {
            close(requestPipe.write)
            close(replyPipe.read)
            cgroups.remove(idMap: container.idMap)
            throw error
        }
        var (got, reply) = readReply(replyPipe.read)
        var networkError: (any Error)?
        if gateway != nil || fleet != nil, got == MemoryLayout<coop_start_reply>.size, reply.pid > 0 {
            // PID 1 is forked and waits: its namespaces get their network before its command starts.
            if let gateway { configureNetwork(container, pid: reply.pid, gateway: gateway) }
            if let fleet, let address = container.network.address {
                do {
                    try fleet.plug(node: container.name, pid: reply.pid, address: address)
                } catch {
                    networkError = error
                }
            }
            var ready: UInt8 = 1
            // A supervisor that is gone already has its reply waiting all the same. Without the byte PID 1
            // gives up, and the supervisor answers with that failure.
            if networkError == nil { _ = write(requestPipe.write, &ready, 1) }
            close(requestPipe.write)
            (got, reply) = readReply(replyPipe.read)
        } else {
            close(requestPipe.write)
        }
        let succeeded = got == MemoryLayout<coop_start_reply>.size && reply.pid > 0
        if notifiesBoot, succeeded, let boot {
            boot.watch(replyPipe.read)
        } else {
            close(replyPipe.read)
        }
        guard succeeded else {
            terminal?.restore()
            relayed.relay(until: supervisor.pid)
            let status = supervisor.wait()
            cgroups.remove(idMap: container.idMap)
            Pasta.end(folder: container.folder)
            // PID 1 that failed on its own way (its stage is not the network's) tells the first cause.
            if let networkError,
                !(got == MemoryLayout<coop_start_reply>.size && reply.failure.stage != 0
                    && reply.failure.stage != COOP_RUN_NETWORK.rawValue)
            {
                throw networkError
            }
            guard got == MemoryLayout<coop_start_reply>.size, reply.failure.stage != 0 else {
                throw CoopError(
                    .internal, "start of \(container.name)",
                    cause: "the supervisor ended with status \(status) without a reply")
            }
            let failure = RuntimeFailure(reply.failure)
            // A command that cannot run answers as a shell does (127: not found, 126: not runnable).
            if foreground, command != nil, failure.isExec {
                Console.error(failure.error(what: "exec of \(initCommand[0])"))
                return failure.exitStatus
            }
            throw failure.error(what: "start of \(container.name)")
        }
        let pid = reply.pid
        // A short command may be gone already; then there is nothing running to record.
        if let ticks = ContainerState.startTicks(of: pid) {
            try ContainerState(
                pid: pid, startTicks: ticks, startedAt: Int(Date().timeIntervalSince1970),
                cgroups: cgroups.folders.map(\.path), supervisor: supervisor.pid,
                supervisorTicks: ContainerState.startTicks(of: supervisor.pid),
                stopSignal: bootsInit ? ContainerDefinition.powerOffSignal(systemd: systemd) : SIGTERM
            ).write(container.folder)
        }
        lock.unlock()
        guard foreground else {
            if gateway != nil { Pasta.endWithContainer(supervisor: supervisor.pid, folder: container.folder) }
            return nil
        }
        // Keys typed at the terminal are for the container; coop waits for it to end.
        signal(SIGINT, SIG_IGN)
        signal(SIGQUIT, SIG_IGN)
        relayed.relay(until: supervisor.pid)
        let status = supervisor.wait()
        terminal?.restore()
        cgroups.remove(idMap: container.idMap)
        Pasta.end(folder: container.folder)
        unlink(ContainerState.file(container.folder).path)
        return status
    }

    static func readReply(_ fd: Int32) -> (Int, coop_start_reply) {
        var reply = coop_start_reply()
        let got = withUnsafeMutableBytes(of: &reply) { coop_read_full(fd, $0.baseAddress, $0.count) }
        return (got, reply)
    }

    /// The gateway pasta will give the container, or nil when it gets no pasta: its settings say so, or
    /// pasta cannot work here, which leaves it loopback only with a warning that names the fix.
    static func pastaGateway(_ container: ContainerDefinition) throws -> String? {
        guard container.network.mode == .pasta else { return nil }
        if let problem = Pasta.unusable() {
            Console.warning(
                "\(container.name) gets loopback only: pasta cannot give it a network here: \(problem.cause). "
                    + "Fix: \(problem.fix)")
            return nil
        }
        return Pasta.gateway()
    }

    /// The network of the fleet a node belongs to, which must be up; nil for any other container.
    static func fleetNetwork(_ container: ContainerDefinition) throws -> FleetNetwork? {
        guard container.network.mode == .fleet, let name = container.network.fleet else { return nil }
        let containers = container.folder.deletingLastPathComponent()
        guard let fleet = FleetNetwork.running(fleet: name, containers: containers) else {
            throw CoopError(
                .conflict, "container \(container.name)", cause: "is a node of fleet \(name), whose network is down",
                fix: "bring the fleet up with 'coop fleet up FILE' (it starts its nodes)")
        }
        return fleet
    }

    /// Runs pasta against PID 1 `pid`. A pasta that fails leaves the container loopback only, with a
    /// warning: the container still starts, as it would without a network.
    static func configureNetwork(_ container: ContainerDefinition, pid: Int32, gateway: String) {
        do {
            try Pasta.configure(pid: pid, network: container.network, gateway: gateway, folder: container.folder)
        } catch let error as CoopError {
            Console.warning(
                "\(container.name) gets loopback only: \(error.what) \(error.cause). Fix: \(error.fix ?? "")")
        } catch {
            Console.warning("\(container.name) gets loopback only: pasta: \(error)")
        }
    }

    /// Ends what serves a container's network from outside (its pasta), once the container is gone.
    public static func endNetwork(folder: URL) {
        Pasta.end(folder: folder)
    }

    /// PID 1's environment, as LXC gives it.
    static let environment = [
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "container": "lxc", "TERM": "xterm",
        "HOME": "/root",
    ]

    /// Says which limits of the config did not hold, and what systemd will miss, with the fix.
    static func warnAboutCgroups(_ cgroups: ContainerCgroups, container: ContainerDefinition, bootsSystemd: Bool) {
        let user = CoopPaths.userName
        // Root uses every hierarchy: what is missing there is a controller the host does not mount.
        let fix =
            getuid() == 0
            ? "mount the missing cgroup controllers under /sys/fs/cgroup"
            : "as root, run 'coop setup-host --user \(user)' once"
        if !cgroups.unapplied.isEmpty {
            let lines = cgroups.unapplied.map(\.configLine).joined(separator: ", ")
            Console.warning(
                "could not apply the limits of \(container.name): \(lines): no cgroup of theirs is delegated to "
                    + "\(user); the container runs without them. Fix: \(fix)")
        }
        if bootsSystemd, !cgroups.initHasCgroup {
            Console.warning(
                "systemd in \(container.name) gets no cgroup of its own to manage and will likely fail to boot. "
                    + "Fix: \(fix)")
        }
    }

    /// The container's root (the range's first id) must be able to reach its rootfs.
    static func checkTraversable(_ rootfs: URL, idMap: IDMap) throws {
        var folder = rootfs.deletingLastPathComponent()
        while folder.path != "/" {
            var info = stat()
            if stat(folder.path, &info) == 0, info.st_mode & 0o001 == 0, info.st_uid != idMap.uidStart,
                !ContainerFolder.lets(idMap.uidStart, through: folder)
            {
                throw CoopError(
                    .hostSetup, "folder \(folder.path)", cause: "cannot be entered by the container's root",
                    fix: "chmod o+x \(folder.path)")
            }
            folder.deleteLastPathComponent()
        }
    }

    /// Whether `exec` runs its command on a pty: by default when stdin and stdout both are terminals
    /// (as `lxc-attach` does); `-t` and `-T` force either way.
    public enum PtyChoice: Sendable {
        case automatic, always, never
    }

    /// Runs `command` inside the running container as its root; returns its exit status. On a pty of the
    /// container's (relayed from outside, as attach), or with the caller's stdio, where a terminal among
    /// them is replaced by a pipe relayed here: no terminal of the user's ever reaches the container.
    public static func exec(_ container: ContainerDefinition, command: [String], pty: PtyChoice = .automatic) throws
        -> Int32
    {
        let usePty = pty == .always || (pty == .automatic && RawTerminal.isInteractive)
        if usePty { return try attach(container, command: command) }
        let relayed = try RelayedStdio.forTerminals()
        let started: StartedExec
        do {
            defer { relayed.closeInner() }
            started = try startExec(
                container, command: command, input: relayed.inner[0], output: relayed.inner[1],
                error: relayed.inner[2])
        }
        // Ctrl-C at the terminal reaches the helper too, which passes it on to the command.
        signal(SIGINT, SIG_IGN)
        signal(SIGQUIT, SIG_IGN)
        relayed.relay(until: started.process.pid)
        return try started.finish()
    }

    /// The container's cgroups as its start recorded them, for exec and attach to join by their host paths
    /// (not by what root inside lets them see): one argument, the `cgroup.procs` files by lines, or "-".
    static func procsArgument(_ state: ContainerState) -> String {
        let files = (state.cgroups ?? []).map { $0 + "/cgroup.procs" }
        return files.isEmpty ? "-" : files.joined(separator: "\n")
    }

    /// An interactive login shell in the running container, on a pty of its own: the caller's terminal is
    /// relayed from outside (nothing inside gets hold of it). Returns the shell's exit status.
    public static func attach(_ container: ContainerDefinition, command: [String] = []) throws -> Int32 {
        let state = try running(container)
        var size = winsize()
        // Not at a terminal: no size, and the pty keeps its own.
        _ = ioctl(STDIN_FILENO, UInt(TIOCGWINSZ), &size)
        let term = ProcessInfo.processInfo.environment["TERM"] ?? "xterm"
        let report = try Pipe.make()
        var pair: [Int32] = [-1, -1]
        defer { if pair[0] >= 0 { close(pair[0]) } }
        let nothing = open("/dev/null", O_RDWR | O_CLOEXEC)
        let helper: SpawnedProcess
        do {
            // The helper's ends: closed here once it has them, or when a step fails.
            defer {
                close(report.write)
                if pair[1] >= 0 { close(pair[1]) }
                if nothing >= 0 { close(nothing) }
            }
            guard nothing >= 0 else { throw CoopError.system("/dev/null for attach") }
            let stream = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
            try checkSystemCall(socketpair(AF_UNIX, stream, 0, &pair), "socket for attach")
            try checkSystemCall(fcntl(pair[1], F_SETFD, 0), "socket for attach")
            try checkSystemCall(fcntl(report.write, F_SETFD, 0), "report pipe of attach")
            helper = try SpawnedProcess(
                arguments: [
                    CoopPaths.executablePath(), "__attach", String(state.pid), procsArgument(state), String(pair[1]),
                    String(report.write), String(size.ws_row), String(size.ws_col), term, "--",
                ] + command, idMap: nil, input: nothing, output: nothing, error: nothing)
        } catch {
            close(report.read)
            throw error
        }
        let master = coop_receive_fd(pair[0])
        if master >= 0 {
            coop_relay_terminal(master, STDIN_FILENO, STDOUT_FILENO)
            close(master)
        }
        let status = helper.wait()
        if let failure = RuntimeFailure.read(from: report.read) {
            let error = failure.error(what: command.first.map { "exec of \($0)" } ?? "attach to \(container.name)")
            // A command that cannot run answers as a shell does (127: not found, 126: not runnable).
            guard failure.isExec, !command.isEmpty else { throw error }
            Console.error(error)
            return failure.exitStatus
        }
        if master < 0 {
            throw CoopError(
                .internal, "attach to \(container.name)", cause: "the helper ended with status \(status) without a pty",
                fix: "check that the container runs ('coop list')")
        }
        return status
    }

    /// Asks init to power off, and kills it after `timeout` seconds.
    public static func stop(_ container: ContainerDefinition, timeout: Double) throws {
        // pasta outlives the namespaces it serves: it goes once the container is down (or already was).
        defer { Pasta.end(folder: container.folder) }
        let state = try running(container)
        try sendSignal(state.pid, state.stopSignal ?? container.stopSignal, container: container)
        if !waitUntil(timeout, { !state.isRunning }, pid: state.pid) {
            try sendSignal(state.pid, SIGKILL, container: container)
            _ = waitUntil(.infinity, { !state.isRunning }, pid: state.pid)
        }
        clear(state, of: container)
    }

    /// Kills the container at once (PID 1 and with it every process inside), waits until it is gone and
    /// clears its cgroups and state; a container that is not running only has what it left cleared.
    public static func forceStop(_ container: ContainerDefinition) throws {
        defer { Pasta.end(folder: container.folder) }
        guard let state = ContainerState.read(container.folder) else { return }
        if state.isRunning {
            try sendSignal(state.pid, SIGKILL, container: container)
            _ = waitUntil(.infinity, { !state.isRunning }, pid: state.pid)
        }
        clear(state, of: container)
    }

    /// What a container whose PID 1 has ended leaves: its state, its supervisor (which leaves the cgroups
    /// last, after removing those made inside), its cgroups.
    static func clear(_ state: ContainerState, of container: ContainerDefinition) {
        unlink(ContainerState.file(container.folder).path)
        if let supervisor = state.supervisor, !waitUntil(10, { !state.supervisorIsRunning }, pid: supervisor) {
            kill(supervisor, SIGKILL)
        }
        ContainerCgroups.remove(state.cgroups ?? [], idMap: container.idMap)
    }

    /// Sends `signal` to PID 1; a pid this user may not signal is not the container's (its state is stale
    /// or was not written by coop), and waiting for it would never end.
    static func sendSignal(_ pid: Int32, _ signal: Int32, container: ContainerDefinition) throws {
        guard kill(pid, signal) < 0, errno != ESRCH else { return }
        let reason = errno
        throw CoopError(
            .conflict, "container \(container.name)",
            cause: "its recorded PID 1 (pid \(pid)) cannot be signalled: \(String(cString: strerror(reason)))",
            fix: "the record is stale: remove \(ContainerState.file(container.folder).path) once nothing of the "
                + "container runs")
    }

    /// Waits up to `seconds` for `done`, woken by the end of process `pid`; whether `done` came true.
    static func waitUntil(_ seconds: Double, _ done: () -> Bool, pid: Int32) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while !done() {
            let left = deadline.timeIntervalSinceNow
            if left <= 0 { return false }
            // A pidfd wakes us the moment the process ends; without one, look again every 10 ms.
            if coop_wait_for_exit(pid, Int32(min(left, 1) * 1000)) < 0 { usleep(10_000) }
        }
        return true
    }

    static func running(_ container: ContainerDefinition) throws -> ContainerState {
        guard let state = ContainerState.read(container.folder), state.isRunning else {
            throw CoopError(
                .conflict, "container \(container.name)", cause: "is not running",
                fix: "start it with 'coop start \(container.name)'")
        }
        return state
    }
}

/// The boot of a container started in the background: the supervisor writes one byte on the pipe it keeps
/// once systemd says READY=1; a container whose init is not systemd counts as booted once PID 1 runs.
public final class BootWatch: @unchecked Sendable {
    private var fd: Int32 = -1

    public init() {}

    deinit { if fd >= 0 { close(fd) } }

    func watch(_ fd: Int32) { self.fd = fd }

    /// Waits until the container has booted, at most `timeout` seconds.
    public func wait(timeout: Double, container name: String) throws {
        guard fd >= 0 else { return }
        defer {
            close(fd)
            fd = -1
        }
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let left = Int32(max(0, deadline.timeIntervalSinceNow) * 1000)
            let ready = poll(&entry, 1, left)
            if ready < 0 && errno == EINTR { continue }
            if ready <= 0 {
                throw CoopError(
                    .conflict, "boot of \(name)", cause: "systemd did not say it had booted within \(Int(timeout)) s",
                    fix: "look at its console.log, and at 'coop exec \(name) -- systemctl list-jobs'")
            }
            var byte: UInt8 = 0
            let got = read(fd, &byte, 1)
            if got < 0 && errno == EINTR { continue }
            guard got == 1, byte == UInt8(ascii: "B") else {
                throw CoopError(
                    .conflict, "boot of \(name)", cause: "the container ended before it had booted",
                    fix: "look at its console.log")
            }
            return
        }
    }
}
