import Foundation
import Testing

/// The embedded runtime as an ordinary user: namespaces, mounts, confinement, exec, stop, run.
@Suite("Runtime", .serialized)
struct RuntimeTests {
    func userSandbox(_ name: String = #function) throws -> Sandbox {
        let sandbox = try Sandbox(asUser: true, name)
        try sandbox.remote()
        return sandbox
    }

    @Test(
        "A command runs as PID 1 in its own namespaces, root inside being the user's first subuid",
        .enabled(if: TestHost.ready(.root, .ordinaryUser, .server, .fixtures)))
    func foregroundCommand() throws {
        let sandbox = try userSandbox()
        try sandbox.expect(0, "create", "b1", "t:busybox/1.36")
        let user = try TestHost.user()
        let script = "hostname; id -u; cat /proc/self/uid_map; echo ==; ps -o pid,comm; echo ==; ls /dev; exit 3"
        let result = try sandbox.run("start", "b1", "--foreground", "--", "/bin/sh", "-c", script)
        #expect(result.status == 3, "\(result)")
        let sections = result.stdout.components(separatedBy: "==\n").map {
            $0.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        }
        try #require(sections.count == 3, "\(result)")
        let lines = sections[2]
        #expect(sections[0].first == "b1")
        #expect(sections[0].dropFirst().first == "0")
        let map = sections[0][2].split(separator: " ").map(String.init)
        #expect(map == ["0", String(user.subuid), "65536"], "\(sections[0])")
        // ps sees PID 1 (the shell) and itself only: no host process.
        let processes = sections[1].dropFirst()
        #expect(processes.count == 2, "\(sections[1])")
        #expect(processes.first?.hasPrefix("1 ") == true, "\(sections[1])")
        for device in ["null", "zero", "full", "random", "urandom", "tty", "ptmx", "pts", "shm"] {
            #expect(lines.contains(device), "/dev/\(device)")
        }
    }

    @Test(
        "start runs init in the background; exec passes the exit status; stop powers it off and nothing stays",
        .enabled(if: TestHost.ready(.root, .ordinaryUser, .server, .fixtures)))
    func startExecStop() throws {
        let sandbox = try userSandbox()
        try sandbox.expect(0, "create", "b2", "t:busybox/1.36")
        let started = try sandbox.run("start", "b2")
        #expect(started.status == 0, "\(started)")
        let pid = try sandbox.initPID("b2")
        let ps = try sandbox.run("exec", "b2", "--", "ps")
        #expect(ps.status == 0, "\(ps)")
        #expect(ps.stdout.contains("    1 root     init"), "\(ps)")
        try sandbox.expect(7, "exec", "b2", "--", "sh", "-c", "exit 7")
        try sandbox.expect(127, "exec", "b2", "--", "no-such-command")
        let listed = try sandbox.run("list")
        #expect(listed.stdout.contains("b2    running  \(pid)"), "\(listed)")
        let destroyRunning = try sandbox.run("destroy", "b2")
        #expect(destroyRunning.status == 7, "\(destroyRunning)")
        let again = try sandbox.run("start", "b2")
        #expect(again.status == 7, "\(again)")
        #expect(again.stderr.contains("already running"), "\(again)")
        // Two starts racing for one stopped container: one wins, the other is told it runs.
        try sandbox.expect(0, "stop", "b2", "--timeout", "5")
        let racing = [try sandbox.start(["start", "b2"]), try sandbox.start(["start", "b2"])].map { $0.wait() }
        #expect(racing.map(\.status).sorted() == [0, 7], "\(racing)")
        let rootfs = sandbox.containers.appendingPathComponent("b2/rootfs").path
        let supervisors = try FileManager.default.contentsOfDirectory(atPath: "/proc").filter { pid in
            let line = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))) ?? Data()
            let arguments = line.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            return arguments.first?.hasSuffix("coop-supervisor") == true && arguments.contains(rootfs)
        }
        #expect(supervisors.count == 1, "one container runs: \(supervisors)")

        let stopped = try sandbox.run("stop", "b2", "--timeout", "5")
        #expect(stopped.status == 0, "\(stopped)")
        #expect(kill(pid, 0) != 0, "init is gone")
        let listedStopped = try sandbox.expect(0, "list")
        #expect(listedStopped.stdout.contains("b2    stopped"), "\(listedStopped)")
        let notRunning = try sandbox.run("exec", "b2", "--", "true")
        #expect(notRunning.status == 7, "\(notRunning)")
        #expect(notRunning.stderr.contains("is not running"), "\(notRunning)")
    }

    @Test(
        "Container root cannot reach the host: no devices, no host hostname, read-only /proc/sys, masked /proc",
        .enabled(if: TestHost.ready(.root, .ordinaryUser, .server, .fixtures)))
    func confinement() throws {
        let sandbox = try userSandbox()
        try sandbox.expect(0, "create", "b3", "t:busybox/1.36")
        func hostHostname() -> String {
            var name = [CChar](repeating: 0, count: 256)
            gethostname(&name, name.count)
            return String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        let before = hostHostname()
        func inside(_ script: String) throws -> CoopResult {
            try sandbox.run("start", "b3", "--foreground", "--", "/bin/sh", "-c", script)
        }
        // A host file of root's, 0600, put where the container can see it: root inside is not root outside.
        let secret = sandbox.containers.appendingPathComponent("b3/rootfs/root-secret").path
        try "host secret\n".write(toFile: secret, atomically: false, encoding: .utf8)
        chown(secret, 0, 0)
        chmod(secret, 0o600)
        let read = try inside("cat /root-secret")
        #expect(read.status != 0 && !read.stdout.contains("host secret"), "\(read)")
        #expect(try inside("mknod /tmp/mem c 1 1").status != 0, "mknod is refused")
        #expect(try inside("echo 1 > /proc/sys/kernel/sysrq").status != 0, "/proc/sys is read-only")
        #expect(try inside("echo b > /proc/sysrq-trigger").status != 0, "sysrq cannot be triggered")
        #expect(try inside("test -s /proc/kcore").status != 0, "/proc/kcore is masked")
        #expect(try inside("mount -t ext4 /dev/vda /mnt").status != 0, "no host block device can be mounted")
        #expect(try inside("hostname changed && hostname").stdout.contains("changed"))
        #expect(hostHostname() == before, "the host's hostname stays")
        #expect(try inside("touch /root/made-inside").status == 0)
        let user = try TestHost.user()
        var info = stat()
        #expect(stat(sandbox.containers.appendingPathComponent("b3/rootfs/root/made-inside").path, &info) == 0)
        #expect(info.st_uid == user.subuid, "a file made by root inside belongs to the subuid on the host")
    }

    @Test(
        "run makes a throwaway container over a shared base: status passed through, changes and folder gone",
        .enabled(if: TestHost.ready(.root, .ordinaryUser, .server, .fixtures)))
    func throwaway() throws {
        let sandbox = try userSandbox()
        let result = try sandbox.run(
            "run", "t:debian/bookworm", "--", "/bin/sh", "-c", "grep CODENAME /etc/os-release; exit 4")
        #expect(result.status == 4, "\(result)")
        #expect(result.stdout.contains("VERSION_CODENAME=bookworm"), "\(result)")
        let left = (try? FileManager.default.contentsOfDirectory(atPath: sandbox.containers.path)) ?? []
        #expect(left.filter { !$0.hasPrefix(".") }.isEmpty, "\(left)")
        // The image was unpacked once, as a base that later runs share; a run's changes die with it.
        let write = try sandbox.run("run", "t:debian/bookworm", "--", "/bin/sh", "-c", "echo mine > /etc/motd; id -u")
        #expect(write.status == 0 && write.stdout == "0\n", "\(write)")
        let read = try sandbox.run("run", "t:debian/bookworm", "--", "/bin/sh", "-c", "cat /etc/motd; echo; hostname")
        #expect(read.status == 0 && !read.stdout.contains("mine"), "\(read)")
        #expect(read.stdout.contains("run-"), "each run has its own hostname: \(read)")
        let bases = try FileManager.default.contentsOfDirectory(
            atPath: sandbox.containers.appendingPathComponent(".bases").path)
        #expect(bases.filter { !$0.hasPrefix(".") }.count == 1, "\(bases)")
        let pruned = try sandbox.run("cache", "prune")
        #expect(pruned.status == 0 && pruned.stderr.contains("removed 1 unpacked bases"), "\(pruned)")
        let after = try FileManager.default.contentsOfDirectory(
            atPath: sandbox.containers.appendingPathComponent(".bases").path)
        #expect(after.filter { !$0.hasPrefix(".") }.isEmpty, "\(after)")
    }

    @Test("check names what this user can do and each gap's fix", .enabled(if: TestHost.ready(.root, .ordinaryUser)))
    func check() throws {
        let sandbox = try Sandbox(asUser: true)
        let user = try TestHost.user()
        let result = try sandbox.run("check")
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout.contains("ok   subordinate ids: uids \(user.subuid)+"), "\(result)")
        #expect(result.stdout.contains("ok   newuidmap: setuid root"), "\(result)")
        for line in result.stdout.split(separator: "\n") where line.hasPrefix("gap") {
            let next = result.stdout.components(separatedBy: String(line) + "\n").last ?? ""
            #expect(next.hasPrefix("      fix: "), "a gap without a fix: \(line)")
        }
    }
    @Test(
        "As root on a fresh host: coop makes coop/root as setup-host would (cpus and mems in v1 cpuset), init starts",
        .enabled(if: TestHost.ready(.root, .server, .fixtures)))
    func rootInitOnFreshHost() throws {
        // What a fresh host has: no coop/root, and no coop before any setup-host. rmdir keeps folders in use.
        let cpuset = "/sys/fs/cgroup/cpuset"
        for folder in ["\(cpuset)/coop/root", "\(cpuset)/coop"] { rmdir(folder) }
        let sandbox = try Sandbox(asUser: false)
        try sandbox.remote()
        try sandbox.expect(0, "create", "rootinit", "t:busybox/1.36")
        let started = try sandbox.expect(0, "start", "rootinit")
        #expect(!started.stderr.contains("setup-host"), "root is not told to set itself up: \(started)")
        if FileManager.default.fileExists(atPath: cpuset + "/cpuset.cpus") {
            for file in ["cpuset.cpus", "cpuset.mems"] {
                for folder in ["\(cpuset)/coop", "\(cpuset)/coop/root"] {
                    let value = (try? String(contentsOfFile: folder + "/" + file, encoding: .utf8)) ?? ""
                    #expect(
                        !value.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "\(folder)/\(file) is empty")
                }
            }
        }
        try sandbox.expect(0, "exec", "rootinit", "--", "true")
        try sandbox.expect(0, "stop", "rootinit", "--timeout", "5")
    }
}
