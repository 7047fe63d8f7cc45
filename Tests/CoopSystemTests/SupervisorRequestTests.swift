import CCoopNamespace
import Foundation
import Testing

@testable import CoopRuntime

/// The supervisor checks the request of `coop start` whole before it does anything, and answers a bad one
/// with a report (stage, errno, what was wrong) and the request stage's exit status.
@Suite("The supervisor's request")
struct SupervisorRequestTests {
    static let valid = SupervisorRequest(
        rootfs: "/nonexistent/rootfs", hostname: "c1", overlayLower: nil, sharesHostNetwork: false, console: .stdio,
        cgroupMounts: [CgroupMount(kind: .version1, folder: "memory", options: "memory", hostFolder: nil)],
        command: ["/sbin/init"], environment: ["PATH=/usr/bin:/bin"])

    /// A request with its header's field at `offset` (4 bytes) set to `value`.
    static func setting(_ offset: Int, to value: UInt32, in bytes: [UInt8]) -> [UInt8] {
        var bytes = bytes
        withUnsafeBytes(of: value) { bytes.replaceSubrange(offset..<offset + 4, with: $0) }
        return bytes
    }

    static let bad: [(name: String, bytes: [UInt8], refusal: String)] = {
        let bytes = valid.encoded()
        let header = MemoryLayout<coop_request_header>.size
        let fields = bytes.count - header
        var relative = valid
        relative.rootfs = "rootfs"
        var escaping = valid
        escaping.cgroupMounts = [CgroupMount(kind: .version1, folder: "..", options: "memory", hostFolder: nil)]
        var unterminated = bytes
        // The NUL after the rootfs, the first field.
        unterminated[header + 4 + valid.rootfs.utf8.count] = UInt8(ascii: "x")
        return [
            ("nothing", [], "none came"),
            ("cut short in its header", Array(bytes.prefix(10)), "fewer than its header's"),
            ("cut short in its fields", Array(bytes.dropLast()), "\(fields - 1) of its \(fields) bytes"),
            ("not coop's", setting(0, to: 0x1234_5678, in: bytes), "not one of coop's"),
            ("of another version", setting(4, to: 99, in: bytes), "version 99"),
            ("with unknown flags", setting(8, to: 0x8000_0000, in: bytes), "unknown flags"),
            ("with too many arguments", setting(16, to: 5000, in: bytes), "5000 arguments"),
            ("larger than allowed", setting(24, to: 1 << 21, in: bytes), "at most \(COOP_REQUEST_MAX_SIZE)"),
            ("with bytes left over", setting(24, to: UInt32(fields + 4), in: bytes) + [0, 0, 0, 0], "left over"),
            ("with a string that does not end", unterminated, "is not a string"),
            ("with a relative rootfs", relative.encoded(), "rootfs rootfs is not absolute"),
            ("with a cgroup entry outside /sys/fs/cgroup", escaping.encoded(), "cgroup mount 0 is malformed"),
        ]
    }()

    @Test("A malformed request is refused with a report that says why", arguments: bad.map(\.name))
    func malformedRequestIsRefused(_ name: String) throws {
        let (_, bytes, refusal) = try #require(Self.bad.first { $0.name == name })
        let (status, reply) = try Self.supervise(bytes)
        let failure = RuntimeFailure(reply.failure)
        #expect(reply.pid == 0)
        #expect(failure.stage == Int32(COOP_RUN_REQUEST.rawValue), "\(failure.detail)")
        #expect(failure.detail.contains(refusal), "\(failure.detail)")
        #expect(failure.errnoValue == (bytes.isEmpty ? ENODATA : EBADMSG))
        #expect(status == Int32(COOP_RUN_REQUEST.rawValue) && status == failure.exitStatus)
        let error = failure.error(what: "start of c1")
        #expect("\(error)".contains("the supervisor's request failed: request: "), "\(error)")
        #expect(error.errnoValue == failure.errnoValue)
    }

    @Test("The supervisor started by hand says it is coop's, and does nothing")
    func startedByHand() throws {
        let result = try RunningCoop([Self.supervisor.path]).wait()
        #expect(result.status == 2, "\(result)")
        #expect(result.stderr.contains("started by coop only"), "\(result)")
    }

    static var supervisor: URL { TestHost.repository.appendingPathComponent(".build/debug/coop-supervisor") }

    /// Runs the supervisor with `bytes` on its request pipe (fd 3); its exit status and its reply (fd 4).
    static func supervise(_ bytes: [UInt8]) throws -> (status: Int32, reply: coop_start_reply) {
        var request: [Int32] = [-1, -1]
        var reply: [Int32] = [-1, -1]
        try #require(coop_pipe_cloexec(&request) == 0 && coop_pipe_cloexec(&reply) == 0)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, request[0], 3)
        posix_spawn_file_actions_adddup2(&actions, reply[1], 4)
        let arguments: [String] = [supervisor.path, "3", "4", "label"]
        let argv = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, supervisor.path, &actions, nil, argv, [nil])
        close(request[0])
        close(reply[1])
        try #require(spawned == 0, "spawn \(supervisor.path): \(spawned)")
        // The supervisor reads the request whole before it answers: the write does not wait on the reply.
        let written = bytes.withUnsafeBytes { coop_write_full(request[1], $0.baseAddress, $0.count) }
        close(request[1])
        var answer = coop_start_reply()
        let got = withUnsafeMutableBytes(of: &answer) { coop_read_full(reply[0], $0.baseAddress, $0.count) }
        close(reply[0])
        var raw: Int32 = 0
        while waitpid(pid, &raw, 0) < 0 && errno == EINTR {}
        try #require(written == 0, "the request was written")
        try #require(got == MemoryLayout<coop_start_reply>.size, "a whole reply came: \(got) bytes")
        return ((raw & 0x7f) == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f), answer)
    }
}
