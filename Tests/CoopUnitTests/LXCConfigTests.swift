import CoopFormats
import CoopSupport
import CoopSystem
import Foundation
import Testing

@testable import CoopContainer

/// The container's LXC config: one model read by the runtime and written by `create` and `run`.
@Suite("LXC config")
struct LXCConfigTests {
    /// A config with every kind of line.
    static func sample() throws -> LXCConfig {
        var config = LXCConfig()
        try config.appendComment("Created by coop")
        try config.appendComment("")
        try config.appendComment("  indented")
        config.appendBlank()
        try config.append("lxc.include", "/usr/share/lxc/config/common.conf")
        try config.append("lxc.environment", "PATH=/bin:/usr/bin")
        try config.append("lxc.cgroup2.cpu.max", "50000 100000")
        try config.append("lxc.cap.drop", "")
        try config.append(.init(kind: .user, containerID: 0, hostID: 100_000, count: 65_536))
        try config.setRootfsPath("/home/u/.local/share/coop/containers/c1/rootfs")
        try config.setUTSName("c1")
        config.appendBlank()
        config.appendBlank()
        try config.setNetworkType("empty")
        config.appendBlank()
        return config
    }

    @Test("A config reads back as it was written: entries, comments and blank lines, in order")
    func roundTrip() throws {
        let config = try Self.sample()
        let text = try config.formatted()
        #expect(LXCConfig(parsing: text) == config)
        #expect(try LXCConfig(parsing: text).formatted() == text)
    }

    @Test("The config coop writes for a container is LXC's, line for line")
    func containerConfigText() throws {
        let config = ContainerConfig(
            name: "c1", rootfs: URL(fileURLWithPath: "/c/c1/rootfs"),
            idMap: IDMap(uidStart: 200_000, gidStart: 300_000, count: 65_536), privileged: false,
            distroLines: "lxc.include = LXC_TEMPLATE_CONFIG/common.conf\nlxc.arch = x86_64\n",
            image: "images:debian/bookworm/amd64/default build 20251129_00:00")
        let expected = """
            # Created by coop from images:debian/bookworm/amd64/default build 20251129_00:00
            # For the options, see lxc.container.conf(5)

            # Distribution configuration
            lxc.include = /usr/share/lxc/config/common.conf
            lxc.arch = x86_64

            # Container specific configuration
            lxc.idmap = u 0 200000 65536
            lxc.idmap = g 0 300000 65536
            lxc.rootfs.path = dir:/c/c1/rootfs
            lxc.uts.name = c1

            # Network: a private network namespace with loopback only
            lxc.net.0.type = empty

            """
        #expect(try config.text == expected)
        #expect(try LXCConfig(parsing: expected).formatted() == expected)
    }

    @Test(
        "The writer refuses a value its line cannot hold: a newline, another control character, a space at an end",
        arguments: [
            "c1\nlxc.hook.pre-start = /bin/sh", "c1\r", "a\u{1b}]52;c;eA==\u{07}", "a\u{85}b", " c1", "c1 ", "c1\t",
        ])
    func refusesValue(value: String) throws {
        var config = try Self.sample()
        let before = config
        let error = try #require(throws: CoopError.self) { try config.setUTSName(value) }
        #expect(error.what.contains("lxc.uts.name"))
        #expect(!"\(error.what) \(error.cause)".unicodeScalars.contains { $0.value < 0x20 })
        #expect(config == before)
        #expect(throws: CoopError.self) { try config.append("lxc.environment", value) }
        #expect(throws: CoopError.self) { try config.appendComment(value + "x\n") }
    }

    @Test(
        "The writer refuses a key outside LXC's grammar",
        arguments: ["", "lxc", "lxc.", "lxc..x", "uts.name", "lxc.uts name", "lxc.a=b", "lxc.a\nlxc.b", "LXC.x"])
    func refusesKey(key: String) {
        var config = LXCConfig()
        #expect(throws: CoopError.self) { try config.append(key, "1") }
        #expect(config.lines.isEmpty)
    }

    @Test("A parsed line no writer would write is refused when the config is written again")
    func refusesParsedJunk() throws {
        #expect(throws: CoopError.self) { try LXCConfig(parsing: "lxc.arch = x86_64\nno equals sign\n").formatted() }
        #expect(throws: CoopError.self) { try LXCConfig(parsing: "lxc.arch = x86\u{1b}_64\n").formatted() }
        #expect(throws: CoopError.self) { try LXCConfig(parsing: "arch = x86_64\n").formatted() }
    }

    @Test("The keys the runtime reads: rootfs, name, id maps, network, cgroups, init, environment, arch, includes")
    func typedAccessors() throws {
        let config = LXCConfig(
            parsing: """
                # lxc.uts.name = commented
                lxc.include = /usr/share/lxc/config/common.conf
                lxc.include=/usr/share/lxc/config/userns.conf
                lxc.arch = aarch64
                lxc.rootfs.path = dir:/old
                  lxc.rootfs.path   =   dir:/c/x/rootfs
                lxc.uts.name = x
                lxc.idmap = u 0 100000 65536
                lxc.idmap = u 0 200000 65536
                lxc.idmap = g 0 300000 1000
                lxc.idmap = g 1 x 1
                lxc.idmap = u 1000 1000 1
                lxc.net.0.type = none
                lxc.cgroup2.memory.max = 64M
                lxc.cgroup.pids.max = 10
                lxc.cgroup2.pids.max = 32
                lxc.cgroup2.memory.max =
                lxc.cgroup2.cpu.max = 50000 100000
                lxc.init.cmd = /sbin/init --log-level=debug
                lxc.environment = A=1
                lxc.environment = B=2 3
                """)
        #expect(config.includes == ["/usr/share/lxc/config/common.conf", "/usr/share/lxc/config/userns.conf"])
        #expect(config.arch == "aarch64")
        #expect(config.rootfsPath == "/c/x/rootfs")
        #expect(config.utsName == "x")
        #expect(config.rootMapping(.user) == .init(kind: .user, containerID: 0, hostID: 200_000, count: 65_536))
        #expect(config.rootMapping(.group) == .init(kind: .group, containerID: 0, hostID: 300_000, count: 1000))
        #expect(config.idMappings.count == 4)
        #expect(config.networkType == "none")
        #expect(
            config.cgroupSettings == [
                .init(key: "pids.max", value: "10", isVersion2: false),
                .init(key: "pids.max", value: "32", isVersion2: true),
                .init(key: "cpu.max", value: "50000 100000", isVersion2: true),
            ])
        #expect(config.initCommand == "/sbin/init --log-level=debug")
        #expect(config.environment == ["A=1", "B=2 3"])
        let cleared = LXCConfig(parsing: "lxc.cgroup2.pids.max = 1\nlxc.cgroup.pids.max = 2\nlxc.cgroup2 =\n")
        #expect(cleared.cgroupSettings == [.init(key: "pids.max", value: "2", isVersion2: false)])
        #expect(LXCConfig(parsing: "lxc.rootfs.path = /plain\nlxc.uts.name =\n").rootfsPath == "/plain")
        #expect(LXCConfig(parsing: "lxc.uts.name =\n").utsName == nil)
    }

    @Test("Setting a key rewrites its first line in place and removes later ones; a missing key is appended")
    func setRewritesInPlace() throws {
        var config = LXCConfig(
            parsing: "# base\nlxc.rootfs.path = dir:/b/base/rootfs\nlxc.uts.name = base\nlxc.uts.name = again\n"
                + "lxc.net.0.type = empty\n")
        try config.setRootfsPath("/c/run-1/rootfs")
        try config.setUTSName("run-1")
        try config.set("lxc.tty.max", "4")
        #expect(
            try config.formatted()
                == "# base\nlxc.rootfs.path = dir:/c/run-1/rootfs\nlxc.uts.name = run-1\nlxc.net.0.type = empty\n"
                + "lxc.tty.max = 4\n")
    }

    @Test("Id mappings read back as written, and other forms are not mappings")
    func idMappingRoundTrip() {
        let mapping = LXCConfig.IDMapping(kind: .group, containerID: 0, hostID: 1_000_000, count: 65_536)
        #expect(LXCConfig.IDMapping(value: mapping.value) == mapping)
        for bad in ["x 0 1 2", "u 0 1", "u 0 -1 2", "u 0 1 2 3", "u 0 4294967296 1"] {
            #expect(LXCConfig.IDMapping(value: bad) == nil, "\(bad)")
        }
    }

    @Test("An overlay rootfs reads as its two folders, and is no folder rootfs; a malformed one is neither")
    func overlayRootfs() throws {
        var config = LXCConfig()
        try config.setOverlayRootfs(lower: "/c/.bases/b/rootfs", upper: "/c/c1/delta0")
        #expect(try config.formatted() == "lxc.rootfs.path = overlay:/c/.bases/b/rootfs:/c/c1/delta0\n")
        #expect(config.overlayRootfs?.lower == "/c/.bases/b/rootfs")
        #expect(config.overlayRootfs?.upper == "/c/c1/delta0")
        #expect(config.rootfsPath == nil)
        for bad in ["overlay:/a", "overlay:a:/b", "overlay:/a:/b:/c", "dir:/a", "/a"] {
            #expect(LXCConfig(parsing: "lxc.rootfs.path = \(bad)").overlayRootfs == nil, "\(bad)")
        }
        #expect(LXCConfig(parsing: "lxc.rootfs.path = overlayfs:/a:/b").overlayRootfs?.upper == "/b")
        #expect(throws: CoopError.self) { try config.setOverlayRootfs(lower: "/a:b", upper: "/c") }
    }
}
