import CCoopNamespace
import CoopSupport
import CoopSystem
import Foundation

/// pasta (Debian's passt package) gives a container's network namespace outbound access without any
/// privilege: run as the user, it joins PID 1's user and network namespaces, makes a tap device there and
/// relays its traffic through ordinary sockets of the user's.
enum Pasta {
    static let path = "/usr/bin/pasta"
    static let tun = "/dev/net/tun"

    /// Why pasta cannot work for this user, with the fix; nil when it can.
    static func unusable() -> (cause: String, fix: String)? {
        // pasta started by root changes to nobody, which may not join the user namespace of root's container.
        guard getuid() != 0 else {
            return (
                "pasta run by root drops to user nobody, which cannot join a container of root's",
                "use --network none or --network host for root's containers, or run it as an ordinary user"
            )
        }
        guard FileManager.default.isExecutableFile(atPath: path) else {
            return ("\(path) is missing", "apt-get install passt")
        }
        guard access(tun, R_OK | W_OK) == 0 else {
            // pasta opens the tun device inside the container's namespaces, as a user with no access to
            // a device that is root's only (mode 0600, where no udev sets the usual 0666).
            return (
                "\(tun) is not open to \(CoopPaths.userName)",
                "as root, run 'coop setup-host --user \(CoopPaths.userName)' (it makes \(tun) mode 0666)"
            )
        }
        guard gateway() != nil else { return ("the host has no IPv4 default route", "add a default route") }
        return nil
    }

    /// The host's IPv4 default gateway: pasta gives it to the container, and maps it to the host's
    /// loopback (and, as coop asks, to the host's DNS resolver on port 53).
    static func gateway() -> String? {
        guard let table = FileSystem.kernelText("/proc/net/route") else { return nil }
        for line in table.split(separator: "\n").dropFirst() {
            let fields = line.split(whereSeparator: { $0 == "\t" || $0 == " " })
            guard fields.count > 2, fields[1] == "00000000", let raw = UInt32(fields[2], radix: 16) else { continue }
            // The kernel prints the address as a number in the host's byte order: its bytes in memory are
            // the address's.
            let bytes = withUnsafeBytes(of: raw) { Array($0) }
            return bytes.map(String.init).joined(separator: ".")
        }
        return nil
    }

    static func pidFile(_ folder: URL) -> URL { folder.appendingPathComponent("pasta.pid") }
    static func logFile(_ folder: URL) -> URL { folder.appendingPathComponent("pasta.log") }

    /// Configures the network of the namespaces of `pid` (PID 1, waiting before its exec); pasta stays in
    /// the background and writes its pid into the container's folder, for `end` to find.
    /// With `loopbackOnly` the ports are bound on the host's 127.0.0.1 alone.
    static func configure(
        pid: Int32, network: ContainerNetwork, gateway: String, folder: URL, loopbackOnly: Bool = false
    ) throws {
        let bound = network.ports.map { loopbackOnly ? "127.0.0.1/\($0)" : $0.description }
        let ports = bound.isEmpty ? "none" : bound.joined(separator: ",")
        // Only what is asked is forwarded: no port of the host's or of the container's is bound otherwise.
        let arguments = [
            path, "--config-net", "--quiet", "--tcp-ports", ports, "--udp-ports", "none", "--tcp-ns", "none",
            "--udp-ns", "none", "--dns-forward", gateway, "--pid", pidFile(folder).path, String(pid),
        ]
        let log = open(logFile(folder).path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard log >= 0 else { throw CoopError.system("pasta's log \(logFile(folder).path)") }
        let nothing = open("/dev/null", O_RDONLY | O_CLOEXEC)
        defer {
            close(log)
            if nothing >= 0 { close(nothing) }
        }
        let process = try SpawnedProcess(
            arguments: arguments, environment: [:], idMap: nil, input: nothing, output: log, error: log)
        // pasta returns once the namespace is configured, leaving its relay in the background.
        let status = process.wait()
        guard status == 0 else {
            let text = (try? String(contentsOf: logFile(folder), encoding: .utf8)) ?? ""
            let said = text.split(separator: "\n").filter { !$0.contains("syslog") }.joined(separator: "; ")
            throw CoopError(
                .hostSetup, "pasta for \(folder.lastPathComponent)",
                cause: "ended with status \(status)\(said.isEmpty ? "" : ": \(said)")",
                fix: "check '\(arguments.joined(separator: " "))' by hand; 'coop check' tells what is missing")
        }
    }

    /// Leaves a small process of the user's (the supervisor's binary in another mode) that ends the pasta
    /// of the container in `folder` once its supervisor has ended: a container in the background whose
    /// init ends by itself takes its pasta along, with no coop command to run. Best effort: without it,
    /// the next start, stop or destroy ends that pasta.
    static func endWithContainer(supervisor: Int32, folder: URL) {
        guard let text = try? String(contentsOf: pidFile(folder), encoding: .utf8),
            let pasta = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)),
            let path = try? CoopPaths.helperPath("coop-supervisor")
        else { return }
        let nothing = open("/dev/null", O_RDWR | O_CLOEXEC)
        defer { if nothing >= 0 { close(nothing) } }
        _ = try? SpawnedProcess(
            arguments: [path, "--end-network", String(supervisor), String(pasta)], environment: [:], idMap: nil,
            input: nothing, output: nothing, error: nothing, newSession: true)
    }

    /// Ends the pasta of the container in `folder`, if one runs: it does not end by itself when the
    /// container's namespaces go. Only a pasta of this user's, as its pid file names it, is signalled.
    static func end(folder: URL) {
        let file = pidFile(folder)
        defer { unlink(file.path) }
        guard let text = try? String(contentsOf: file, encoding: .utf8),
            let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 1
        else { return }
        let comm = (FileSystem.kernelText("/proc/\(pid)/comm") ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        var info = stat()
        guard comm.hasPrefix("pass") || comm.hasPrefix("pasta"), stat("/proc/\(pid)", &info) == 0,
            info.st_uid == getuid()
        else { return }
        kill(pid, SIGTERM)
        // A pidfd says when it has ended; kill(pid, 0) would keep seeing it until the host's init reaps it.
        if coop_wait_for_exit(pid, 1000) == 0 { kill(pid, SIGKILL) }
    }

    /// /etc/resolv.conf and /etc/hosts for a container on pasta, written into its folder and bound into it
    /// at start: the gateway answers DNS (forwarded to the host's resolver) and is the host's loopback,
    /// known inside as host.coop.internal.
    static func nameFiles(folder: URL, hostname: String, gateway: String) throws -> (resolv: URL, hosts: URL) {
        let resolv = folder.appendingPathComponent("coop-resolv.conf")
        let hosts = folder.appendingPathComponent("coop-hosts")
        try FileSystem.writeAtomically("nameserver \(gateway)\n", to: resolv, durable: false)
        try FileSystem.writeAtomically(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t\(hostname)\n"
                + "\(gateway)\thost.coop.internal\n", to: hosts, durable: false)
        return (resolv, hosts)
    }
}
