import Foundation
import Testing

@testable import CoopRuntime

/// A user's containers on the network: pasta by default (the host's loopback as host.coop.internal, DNS,
/// the Debian mirror, published ports), loopback only, or the host's.
@Suite("Network", .serialized)
struct NetworkTests {
    func userSandbox(_ name: String = #function) throws -> Sandbox {
        let sandbox = try Sandbox(asUser: true, name)
        try sandbox.remote()
        return sandbox
    }

    /// The pasta processes that serve containers of `sandbox` (their pid file is in its containers folder).
    func pastas(of sandbox: Sandbox) -> [String] {
        let folder = sandbox.containers.path + "/"
        return ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).filter { pid in
            guard Int(pid) != nil else { return false }
            let line = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))) ?? Data()
            let arguments = line.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            return arguments.contains { $0.hasPrefix(folder) && $0.hasSuffix("/pasta.pid") }
        }
    }

    @Test(
        "By default a container reaches a loopback server of the host as host.coop.internal; stop leaves no pasta",
        .enabled(if: TestHost.ready(.root, .ordinaryUser, .server, .fixtures)))
    func hostLoopback() throws {
        let sandbox = try userSandbox()
        let server = try TestHost.server()
        try sandbox.expect(0, "create", "n1", "t:busybox/1.36")
        try sandbox.expect(0, "start", "n1")
        #expect(pastas(of: sandbox).count == 1, "one pasta serves the container")
        let url = "http://host.coop.internal:\(server.http)/good/meta/1.0/index-user"
        let fetched = try sandbox.run("exec", "n1", "--", "/bin/busybox", "wget", "-q", "-O", "-", url)
        #expect(fetched.status == 0, "\(fetched)")
        #expect(fetched.stdout.contains("busybox"), "\(fetched)")
        let interfaces = try sandbox.expect(0, "exec", "n1", "--", "ls", "/sys/class/net")
        #expect(interfaces.stdout.split(separator: "\n").count == 2, "loopback and pasta's tap: \(interfaces)")
        try sandbox.expect(0, "stop", "n1", "--timeout", "3")
        #expect(pastas(of: sandbox).isEmpty, "pasta ends with the container")
        // A start after one that ended by itself finds no pasta of the last run either.
        try sandbox.expect(0, "start", "n1", "--foreground", "--", "true")
        #expect(pastas(of: sandbox).isEmpty, "pasta ends with a foreground start")
        // A container in the background whose command ends by itself takes its pasta along.
        try sandbox.expect(0, "start", "n1", "--", "sleep", "1")
        #expect(pastas(of: sandbox).count == 1, "pasta serves the running command")
        var left = pastas(of: sandbox)
        for _ in 0..<100 where !left.isEmpty {
            usleep(50_000)
            left = pastas(of: sandbox)
        }
        #expect(left.isEmpty, "pasta ends with a container that ended by itself")
        try sandbox.expect(0, "destroy", "n1")
    }

    @Test(
        "DNS resolves through pasta, and apt-get update and install reach the Debian mirror from a bookworm container",
        .enabled(if: TestHost.ready(.root, .ordinaryUser, .server, .fixtures)))
    func dnsAndMirror() throws {
        let sandbox = try userSandbox()
        sandbox.extraEnvironment["COOP_STALL_TIMEOUT"] = "30"
        let resolved = try sandbox.run("run", "t:debian/bookworm", "--", "getent", "hosts", "deb.debian.org")
        #expect(resolved.status == 0, "\(resolved)")
        #expect(!resolved.stdout.isEmpty, "\(resolved)")
        let names = try sandbox.run("run", "t:debian/bookworm", "--", "getent", "hosts", "host.coop.internal")
        #expect(names.status == 0 && !names.stdout.isEmpty, "\(names)")
        let update = try sandbox.run(
            "run", "t:debian/bookworm", "--", "sh", "-c",
            "apt-get update && apt-get install -y --no-install-recommends hello && hello")
        #expect(update.status == 0, "\(update)")
        #expect(update.stdout.contains("bookworm"), "\(update)")
        #expect(update.stdout.contains("Hello, world!"), "a package installed from the mirror runs: \(update)")
        #expect(pastas(of: sandbox).isEmpty, "no pasta stays after a run")
    }

    @Test(
        "--network none keeps loopback only; --network host shares the host's; exec works in both",
        .enabled(if: TestHost.ready(.root, .ordinaryUser, .server, .fixtures)))
    func noneAndHost() throws {
        let sandbox = try userSandbox()
        let hostNet = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/net")
        try sandbox.expect(0, "create", "lo", "t:busybox/1.36", "--network", "none")
        try sandbox.expect(0, "start", "lo")
        let own = try sandbox.expect(
            0, "exec", "lo", "--", "sh", "-c", "ls /sys/class/net; ip route; ls -l /proc/1/ns/net")
        #expect(own.stdout.hasPrefix("lo\n"), "only loopback: \(own)")
        #expect(!own.stdout.contains("default"), "no route out: \(own)")
        #expect(!own.stdout.contains(hostNet), "\(own)")
        #expect(pastas(of: sandbox).isEmpty, "no pasta for loopback only")
        try sandbox.expect(0, "stop", "lo", "--timeout", "3")

        try sandbox.expect(0, "create", "hn", "t:busybox/1.36", "--network", "host")
        try sandbox.expect(0, "start", "hn")
        let shared = try sandbox.expect(0, "exec", "hn", "--", "ls", "-l", "/proc/1/ns/net")
        #expect(shared.stdout.contains(hostNet), "the host's network namespace: \(shared)")
        try sandbox.expect(0, "stop", "hn", "--timeout", "3")
        let run = try sandbox.expect(0, "run", "--network", "none", "t:busybox/1.36", "--", "ls", "/sys/class/net")
        #expect(run.stdout == "lo\n", "\(run)")
    }

    @Test(
        "-p publishes a server of the container on the host's 127.0.0.1",
        .enabled(if: TestHost.ready(.root, .ordinaryUser, .server, .fixtures)))
    func publishedPort() throws {
        let sandbox = try userSandbox()
        let port = Int.random(in: 20_000..<40_000)
        try sandbox.expect(0, "create", "web", "t:busybox/1.36", "-p", "\(port):8000")
        try sandbox.expect(0, "start", "web", "--", "/bin/busybox", "httpd", "-f", "-p", "8000", "-h", "/etc")
        var body = ""
        for _ in 0..<50 where !body.contains("web") {
            body = Self.fetch(port: port, path: "/hostname")
            if !body.contains("web") { usleep(100_000) }
        }
        #expect(body.contains("web"), "the container's /etc/hostname through 127.0.0.1:\(port): \(body)")
        try sandbox.expect(0, "stop", "web", "--timeout", "3")
        #expect(pastas(of: sandbox).isEmpty)
    }

    @Test(
        "PID 1's command starts with the network configured: its first instruction sees the default route",
        .enabled(if: TestHost.ready(.root, .ordinaryUser, .server, .fixtures)))
    func networkBeforeExec() throws {
        let sandbox = try userSandbox()
        for _ in 0..<3 {
            let route = try sandbox.expect(0, "run", "t:busybox/1.36", "--", "cat", "/proc/net/route")
            #expect(route.stdout.contains("\t00000000\t"), "a default route at once: \(route)")
        }
        let config = try sandbox.expect(0, "run", "t:busybox/1.36", "--", "cat", "/etc/resolv.conf", "/etc/hosts")
        #expect(config.stdout.contains("nameserver "), "\(config)")
        #expect(config.stdout.contains("host.coop.internal"), "\(config)")
    }

    @Test(
        "create keeps the network in coop-network.conf; the LXC config keeps lxc.net.0.type = empty",
        .enabled(if: TestHost.ready(.root, .ordinaryUser, .server, .fixtures)))
    func storedSettings() throws {
        let sandbox = try userSandbox()
        try sandbox.expect(0, "create", "s1", "t:busybox/1.36", "-p", "8080:80", "-p", "9090")
        let folder = sandbox.containers.appendingPathComponent("s1")
        let settings = try String(contentsOf: folder.appendingPathComponent("coop-network.conf"), encoding: .utf8)
        #expect(settings.contains("mode = pasta\npublish = 8080:80\npublish = 9090:9090\n"), "\(settings)")
        let config = try String(contentsOf: folder.appendingPathComponent("config"), encoding: .utf8)
        #expect(config.contains("lxc.net.0.type = empty"), "\(config)")
        #expect(!config.contains("pasta"), "\(config)")
        let refused = try sandbox.run("create", "s2", "t:busybox/1.36", "--network", "host", "-p", "80")
        #expect(refused.status == 2, "\(refused)")
        let unknown = try sandbox.run("create", "s3", "t:busybox/1.36", "--network", "bridge")
        #expect(unknown.status == 2 && unknown.stderr.contains("pasta, none or host"), "\(unknown)")
    }

    @Test(
        "A link planted at /etc/hosts is followed inside the rootfs: coop's file is bound there, nothing outside",
        .enabled(if: TestHost.ready(.root, .ordinaryUser, .server, .fixtures)))
    func plantedLink() throws {
        let sandbox = try userSandbox()
        try sandbox.expect(0, "create", "pl", "t:busybox/1.36")
        let outside = "/tmp/coop-planted-\(UUID().uuidString.prefix(8))"
        defer { unlink(outside) }
        let hosts = sandbox.containers.appendingPathComponent("pl/rootfs/etc/hosts").path
        unlink(hosts)
        #expect(symlink("/../../../../../../..\(outside)", hosts) == 0)
        let result = try sandbox.expect(0, "start", "pl", "--foreground", "--", "cat", "/etc/hosts")
        #expect(result.stdout.contains("host.coop.internal"), "\(result)")
        #expect(!FileManager.default.fileExists(atPath: outside), "nothing made outside the rootfs")
    }

    @Test(
        "setup-host left /dev/net/tun open with a tmpfiles.d entry for reboots; check reports it and pasta",
        .enabled(if: TestHost.ready(.root, .ordinaryUser, .server, .fixtures)))
    func hostReady() throws {
        let sandbox = try userSandbox()
        var info = stat()
        #expect(stat("/dev/net/tun", &info) == 0 && info.st_mode & 0o777 == 0o666)
        let rule = try String(contentsOfFile: "/etc/tmpfiles.d/coop-tun.conf", encoding: .utf8)
        #expect(rule.contains("z /dev/net/tun 0666 - - -"), "\(rule)")
        let check = try sandbox.expect(0, "check")
        #expect(check.stdout.contains("ok   pasta: present"), "\(check)")
        #expect(check.stdout.contains("ok   /dev/net/tun: mode 0666, open to"), "\(check)")
    }

    @Test(
        "Published ports are read as HOSTPORT:CONTAINERPORT or one port for both",
        arguments: [
            ("8080:80", "8080:80"), ("22", "22:22"), ("0:80", nil), ("80:", nil), ("a:b", nil), ("1:2:3", nil),
            ("70000:80", nil),
        ] as [(String, String?)])
    func ports(text: String, read: String?) {
        #expect(ContainerNetwork.Port(text)?.description == read)
    }

    /// A plain HTTP GET of 127.0.0.1:`port`; what came back, or "" when nothing did.
    static func fetch(port: Int, path: String) -> String {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return "" }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { return "" }
        let request = Array("GET \(path) HTTP/1.0\r\nHost: localhost\r\n\r\n".utf8)
        guard write(fd, request, request.count) == request.count else { return "" }
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let got = read(fd, &buffer, buffer.count)
            if got <= 0 { break }
            answer += buffer[0..<got]
        }
        return String(decoding: answer, as: UTF8.self)
    }
}
