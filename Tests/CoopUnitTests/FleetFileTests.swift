import CoopFleet
import CoopSupport
import Foundation
import Testing

@Suite("Fleet files")
struct FleetFileTests {
    let folder = URL(fileURLWithPath: "/srv/fleets")

    func parse(_ text: String) throws -> FleetFile {
        try FleetFile.parse(text, path: "fleet.yaml", folder: folder)
    }

    /// The error `text` is refused with.
    func refusal(_ text: String) throws -> CoopError {
        try #require(throws: CoopError.self) { try parse(text) }
    }

    @Test("The example of the issue: a count of nodes named after the fleet, on the default network")
    func example() throws {
        let fleet = try parse(
            """
            name: web
            image: debian/bookworm        # any image reference coop takes, with a remote prefix too
            nodes: 5                      # or a list of names
            network:
              subnet: 10.123.0.0/24
              outbound: true
            """)
        #expect(fleet.name == "web")
        #expect(fleet.image == "debian/bookworm")
        #expect(fleet.nodes.map(\.name) == ["web-1", "web-2", "web-3", "web-4", "web-5"])
        #expect(fleet.network.subnet.description == "10.123.0.0/24")
        #expect(fleet.network.outbound)
        #expect(fleet.network.ports.isEmpty && fleet.run.isEmpty && fleet.files.isEmpty && !fleet.isolated)
        #expect(fleet.limits == FleetFile.Limits())
    }

    @Test("Without a network mapping the fleet gets 10.123.0.0/24 with outbound traffic")
    func defaults() throws {
        let fleet = try parse("name: db\nimage: local:debian/bookworm/amd64\nnodes: 1\n")
        #expect(fleet.network == FleetFile.Network())
        #expect(fleet.network.subnet == IPv4Subnet("10.123.0.0/24"))
        #expect(fleet.network.outbound)
        #expect(fleet.nodes == [FleetFile.Node(name: "db-1")])
    }

    @Test("A list of names keeps their order")
    func names() throws {
        let fleet = try parse("name: lab\nimage: alpine/3.20\nnodes: [db, web-a, 9cache]\n")
        #expect(fleet.nodes.map(\.name) == ["db", "web-a", "9cache"])
    }

    @Test("A node's own limits are laid over the shared ones key by key, and give cgroup v2 lines")
    func limits() throws {
        let fleet = try parse(
            """
            name: lab
            image: debian/bookworm
            limits:
              memory: 512M
              cpus: 1.5
              pids: 200
            nodes:
              - plain
              - name: big
                limits:
                  memory: 1.5G
                  pids: 1000
            """)
        let shared = FleetFile.Limits(memory: 512 << 20, cpus: 1.5, pids: 200)
        #expect(fleet.limits == shared)
        #expect(fleet.nodes[0] == FleetFile.Node(name: "plain", limits: shared))
        let big = FleetFile.Limits(memory: 3 << 29, cpus: 1.5, pids: 1000)
        #expect(fleet.nodes[1] == FleetFile.Node(name: "big", limits: big))
        let lines = big.cgroupLines.map { "\($0.key)=\($0.value)" }
        #expect(lines == ["memory.max=1610612736", "cpu.max=150000 100000", "pids.max=1000"])
        #expect(FleetFile.Limits().cgroupLines.isEmpty)
    }

    @Test(
        "Memory sizes: plain bytes, or K, M, G, T as powers of 1024",
        arguments: [
            ("1048576", UInt64(1_048_576)), ("100K", 102_400), ("512M", 536_870_912), ("1G", 1 << 30),
            ("1.5G", 3 << 29), ("2T", 2 << 40),
        ])
    func memory(text: String, bytes: UInt64) throws {
        let fleet = try parse("name: a\nimage: x\nnodes: 1\nlimits:\n  memory: \(text)\n")
        #expect(fleet.nodes[0].limits.memory == bytes)
    }

    @Test("Ports, files and commands: relative sources are taken from the fleet file's folder")
    func everything() throws {
        let fleet = try parse(
            """
            name: web
            image: images:debian/bookworm
            nodes: 2
            isolated: true
            network:
              subnet: 192.168.40.0/29
              outbound: false
              ports: ["8080:web-1:80", "8443:web-2:443"]
            run:
              - apt-get install -y nginx
              - systemctl enable --now nginx
            files:
              - from: site/index.html
                to: /var/www/html/index.html
                mode: 0644
              - from: /etc/hosts
                to: /etc/hosts.fleet
                mode: "0600"
              - from: ../shared/key
                to: /root/key
            """)
        #expect(fleet.isolated)
        #expect(fleet.network.subnet.description == "192.168.40.0/29")
        #expect(!fleet.network.outbound)
        #expect(
            fleet.network.ports == [
                FleetFile.Port(host: 8080, node: "web-1", port: 80),
                FleetFile.Port(host: 8443, node: "web-2", port: 443),
            ])
        #expect(fleet.run == ["apt-get install -y nginx", "systemctl enable --now nginx"])
        #expect(
            fleet.files == [
                FleetFile.FileCopy(
                    from: URL(fileURLWithPath: "/srv/fleets/site/index.html"), to: "/var/www/html/index.html",
                    mode: 0o644),
                FleetFile.FileCopy(from: URL(fileURLWithPath: "/etc/hosts"), to: "/etc/hosts.fleet", mode: 0o600),
                FleetFile.FileCopy(from: URL(fileURLWithPath: "/srv/shared/key"), to: "/root/key"),
            ])
    }

    @Test(
        "Each mistake names its line and the key or value at fault",
        arguments: [
            ("name: a\nimage: x\nnodes: 2\ncolour: red\n", 4, "unknown key 'colour'"),
            ("name: a\nimage: x\nnodes: 2\nnetwork:\n  subnet: 10.1.0.0/24\n  nat: true\n", 6, "unknown key 'nat'"),
            ("name: a\nimage: x\nnodes: 2\nnetwork:\n  subnet: 10.123.0.5/24\n", 5, "host bits"),
            ("name: a\nimage: x\nnodes: 2\nnetwork:\n  subnet: 8.8.8.0/24\n", 5, "not private"),
            ("name: a\nimage: x\nnodes: 2\nnetwork:\n  subnet: 10.0.0.0/8\n", 5, "/16 to /29, not /8"),
            ("name: a\nimage: x\nnodes:\n  - db\n  - web\n  - db\n", 6, "'db' appears twice (first on line 4)"),
            ("name: a\nimage: x\nnodes: 0\n", 3, "nodes: 0"),
            ("name: a\nimage: x\nnodes: 501\n", 3, "nodes: 501"),
            ("name: a\nimage: x\nnodes: 2\nnetwork:\n  ports:\n    - 8080:a-3:80\n", 6, "'a-3'"),
            ("name: a\nimage: x\nnodes: 2\nnetwork:\n  ports: [\"80:a-1:80\", \"80:a-2:80\"]\n", 5, "host port 80"),
            ("name: a\nimage: x\nnodes: [a, \"b\n", 4, "quoted scalar on line 3"),
            ("name: a\nimage: x\nnodes: 2\n  run: [x]\n", 4, "not valid YAML"),
            ("name: a\nimage: x\nnodes:\n  - a\n  b: c\n", 5, "not valid YAML"),
            ("name: a\nnodes: 2\n", 1, "no key 'image'"),
            ("name: a\nimage:\nnodes: 2\n", 2, "'image' in the top level has no value"),
            ("- a\n- b\n", 1, "must be a mapping"),
            ("name: A\nimage: x\nnodes: 2\n", 1, "fleet name 'A'"),
            ("name: a\nimage: debian bookworm\nnodes: 2\n", 2, "image 'debian bookworm'"),
            ("name: a\nimage: x\nnodes: three\n", 3, "'three'"),
            ("name: a\nimage: x\nnodes: [ok, Not_ok]\n", 3, "'Not_ok'"),
            ("name: a\nimage: x\nnodes: [{name: b, limit: {}}]\n", 3, "unknown key 'limit' in a node"),
            ("name: a\nimage: x\nnodes: 2\nlimits:\n  memory: lots\n", 5, "memory 'lots'"),
            ("name: a\nimage: x\nnodes: 2\nlimits:\n  cpus: 0\n", 5, "cpus '0'"),
            ("name: a\nimage: x\nnodes: 2\nlimits:\n  pids: -1\n", 5, "pids '-1'"),
            ("name: a\nimage: x\nnodes: 2\nnetwork:\n  ports: [\"8080:a-1\"]\n", 5, "port '8080:a-1'"),
            ("name: a\nimage: x\nnodes: 2\nnetwork:\n  ports: [\"0:a-1:80\"]\n", 5, "port '0:a-1:80'"),
            ("name: a\nimage: x\nnodes: 2\nnetwork:\n  outbound: maybe\n", 5, "outbound must be true or false"),
            ("name: a\nimage: x\nnodes: 2\nfiles:\n  - from: a\n    to: etc/a\n", 6, "to 'etc/a'"),
            ("name: a\nimage: x\nnodes: 2\nfiles:\n  - from: a\n    to: /etc/../a\n", 6, "to '/etc/../a'"),
            ("name: a\nimage: x\nnodes: 2\nfiles:\n  - from: a\n    to: /a\n    mode: 0899\n", 7, "mode '0899'"),
            ("name: a\nimage: x\nnodes: 2\nfiles:\n  - from: a\n    to: /a\n    mode: 17777\n", 7, "mode '17777'"),
            ("name: a\nimage: x\nnodes: 2\nfiles:\n  - to: /a\n", 5, "no key 'from'"),
            ("name: a\nimage: x\nnodes: 2\nrun:\n  - \"\"\n", 5, "command ''"),
            ("name: a\nimage: x\nnodes: 2\nrun: echo hi\n", 4, "run must be a list"),
            ("name: a\nimage: x\nname: b\nnodes: 2\n", 3, "'name' in the top level appears twice"),
        ])
    func mistakes(text: String, line: Int, cause: String) throws {
        let error = try refusal(text)
        #expect(error.code == .usage)
        #expect(error.what == "fleet file fleet.yaml line \(line)", "\(error)")
        #expect(error.cause.contains(cause), "\(error)")
        #expect(error.fix?.isEmpty == false)
    }

    @Test("An unknown key's fix lists the keys of its level")
    func knownKeys() throws {
        let error = try refusal("name: a\nimage: x\nnodes: 2\nnetwork:\n  nat: true\n")
        #expect(error.fix == "the keys here are subnet, outbound, ports")
        #expect(error.cause.contains("line 5"))
    }

    @Test("More nodes than the subnet holds: the error names the subnet and one large enough")
    func tooSmall() throws {
        let error = try refusal("name: a\nimage: x\nnodes: 6\nnetwork:\n  subnet: 10.9.0.0/29\n")
        #expect(error.what == "fleet file fleet.yaml line 5")
        #expect(error.cause.contains("10.9.0.0/29"), "\(error)")
        #expect(error.fix?.contains("10.9.0.0/28") == true, "\(error)")
        #expect(try parse("name: a\nimage: x\nnodes: 5\nnetwork:\n  subnet: 10.9.0.0/29\n").nodes.count == 5)
    }

    @Test("Text from the file is escaped before it reaches a message")
    func escaped() throws {
        let error = try refusal("name: a\nimage: x\nnodes: 2\n\"\\e]52;c;x\\a\": 1\n")
        #expect(!error.cause.contains("\u{1b}") && !error.cause.contains("\u{07}"))
        #expect(error.cause.contains("\\x1b]52;c;x\\x07"), "\(error)")
    }

    @Test("read: a missing file is not found; a file's relative paths start from its own folder")
    func read() throws {
        let scratch = try Scratch()
        let missing = scratch.root.appendingPathComponent("none.yaml")
        let error = try #require(throws: CoopError.self) { try FleetFile.read(missing) }
        #expect(error.code == .notFound)
        #expect(error.what == "fleet file \(missing.path)")

        let file = scratch.root.appendingPathComponent("fleet.yaml")
        try Data("name: a\nimage: x\nnodes: 1\nfiles:\n  - {from: conf, to: /etc/conf}\n".utf8).write(to: file)
        let fleet = try FleetFile.read(file)
        #expect(fleet.files[0].from.path == scratch.root.appendingPathComponent("conf").standardizedFileURL.path)
    }
}

@Suite("IPv4 subnets")
struct IPv4SubnetTests {
    @Test("The gateway takes the first host address and node addresses follow it")
    func addresses() throws {
        let subnet = try #require(IPv4Subnet("10.123.0.0/24"))
        #expect(subnet.description == "10.123.0.0/24")
        #expect(subnet.prefix == 24 && subnet.network == 0x0A7B_0000)
        #expect(subnet.gateway == "10.123.0.1")
        #expect(subnet.address(ofNode: 0) == "10.123.0.2")
        #expect(subnet.address(ofNode: 1) == "10.123.0.3")
        #expect(subnet.address(ofNode: 252) == "10.123.0.254")
        #expect(subnet.capacity == 253)
        let wide = try #require(IPv4Subnet("172.20.0.0/16"))
        #expect(wide.capacity == 65_533)
        #expect(wide.address(ofNode: 300) == "172.20.1.46")
        #expect(IPv4Subnet("192.168.1.8/29")?.capacity == 5)
    }

    @Test(
        "Refused subnets say why",
        arguments: [
            ("10.123.0.5/24", "host bits"), ("8.8.8.0/24", "not private"), ("10.0.0.0/8", "not /8"),
            ("10.0.0.0/30", "not /30"), ("172.32.0.0/16", "not private"), ("10.1.0.0", "A.B.C.D/P"),
            ("10.01.0.0/16", "A.B.C.D/P"), ("256.0.0.0/16", "A.B.C.D/P"), ("10.0.0/16", "A.B.C.D/P"),
            ("", "A.B.C.D/P"),
        ])
    func refused(text: String, reason: String) {
        #expect(IPv4Subnet(text) == nil)
        #expect(
            IPv4Subnet.problem(with: text)?.contains(reason) == true,
            "\(String(describing: IPv4Subnet.problem(with: text)))")
    }

    @Test("Every private range is accepted")
    func accepted() {
        for text in ["10.0.0.0/16", "172.31.255.0/24", "192.168.0.0/16"] {
            #expect(IPv4Subnet(text)?.description == text)
            #expect(IPv4Subnet.problem(with: text) == nil)
        }
    }
}
