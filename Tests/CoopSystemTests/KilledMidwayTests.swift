import Foundation
import Testing

/// What the documents promise when coop is killed halfway: nothing half-written stays where a later
/// command would take it for whole, and the next command clears what the killed one left.
@Suite("Killed midway", .serialized)
struct KilledMidwayTests {
    @Test(
        "A create killed during the unpack leaves no container; the next create of the name clears its staging",
        .enabled(if: TestHost.ready(.root, .ordinaryUser, .server, .fixtures)))
    func killedCreate() throws {
        let sandbox = try Sandbox(asUser: true)
        try sandbox.remote(site: "slow")
        let running = try sandbox.start(["create", "k1", "t:debian/bookworm"])
        var staging: String?
        for _ in 0..<600 where staging == nil {
            usleep(20_000)
            let entries = (try? FileManager.default.contentsOfDirectory(atPath: sandbox.containers.path)) ?? []
            staging = entries.first { $0.hasPrefix(".k1.creating-") }
        }
        let folder = try #require(staging, "the create never began its unpack")
        // Let the unpack write some of the tree before the kill.
        let etc = sandbox.containers.appendingPathComponent("\(folder)/rootfs/etc")
        for _ in 0..<300 where !FileManager.default.fileExists(atPath: etc.path) { usleep(20_000) }
        kill(running.pid, SIGKILL)
        _ = running.wait()

        #expect(!FileManager.default.fileExists(atPath: sandbox.containers.appendingPathComponent("k1").path))
        let listed = try sandbox.expect(0, "list")
        #expect(!listed.stdout.contains("k1"), "\(listed)")
        try sandbox.expect(3, "start", "k1")

        try sandbox.remote(site: "good")
        try sandbox.expect(0, "create", "k1", "t:debian/bookworm")
        let left = try FileManager.default.contentsOfDirectory(atPath: sandbox.containers.path)
        #expect(!left.contains(folder), "the killed create's staging stays: \(left)")
        try sandbox.expect(0, "start", "k1", "--foreground", "--", "/bin/true")
    }

    @Test(
        "A container killed with its supervisor leaves its cgroups; the next start clears them, and stop leaves none",
        .enabled(if: TestHost.ready(.root, .ordinaryUser, .server, .fixtures)))
    func killedContainerCgroups() throws {
        let sandbox = try Sandbox(asUser: true)
        try sandbox.remote()
        try sandbox.expect(0, "create", "k2", "t:busybox/1.36")
        // A limit puts even a command as PID 1 into cgroups of its own.
        let config = sandbox.containers.appendingPathComponent("k2/config")
        let text = try String(contentsOf: config, encoding: .utf8)
        try (text + "lxc.cgroup2.pids.max = 40\n").write(to: config, atomically: true, encoding: .utf8)
        try sandbox.expect(0, "start", "k2", "--", "/bin/sh", "-c", "sleep 300")
        let state = sandbox.containers.appendingPathComponent("k2/state.json")
        let record = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: state)) as? [String: Any])
        let cgroups = try #require(record["cgroups"] as? [String])
        try #require(!cgroups.isEmpty, "\(record)")
        let supervisor = Int32(try #require(record["supervisor"] as? Int))
        let pid = try sandbox.initPID("k2")
        kill(supervisor, SIGKILL)
        kill(pid, SIGKILL)
        for _ in 0..<100 where kill(pid, 0) == 0 { usleep(20_000) }
        #expect(cgroups.contains { FileManager.default.fileExists(atPath: $0) }, "nothing left to clear: \(cgroups)")

        try sandbox.expect(0, "start", "k2", "--", "/bin/sh", "-c", "sleep 300")
        let again = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: state)) as? [String: Any])
        #expect(again["cgroups"] as? [String] == cgroups, "the same cgroups, made afresh: \(again)")
        try sandbox.expect(0, "stop", "k2", "--timeout", "3")
        for path in cgroups {
            #expect(!FileManager.default.fileExists(atPath: path), "\(path) stays after stop")
        }
    }
}
