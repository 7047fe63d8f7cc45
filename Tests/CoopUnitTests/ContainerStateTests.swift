import Foundation
import Testing

@testable import CoopRuntime

@Suite("Container state")
struct ContainerStateTests {
    @Test("state.json as written reads back whole, with quotes, backslashes, control characters and UTF-8")
    func roundTrip() throws {
        let full = ContainerState(
            pid: 4242, startTicks: 123_456_789_012, startedAt: 1_795_000_000,
            cgroups: ["/sys/fs/cgroup/pids/coop/u/c1-0123abcd", "/x/\"q\"\\b\n\u{1}é✓"], supervisor: 4241,
            supervisorTicks: 123_456_789_000, stopSignal: 37)
        let bare = ContainerState(pid: 1, startTicks: 2, startedAt: 3)
        for state in [full, bare] {
            let data = state.encoded()
            let read = try JSONDecoder().decode(ContainerState.self, from: data)
            #expect(read.pid == state.pid && read.startTicks == state.startTicks && read.startedAt == state.startedAt)
            #expect(read.cgroups == state.cgroups && read.supervisor == state.supervisor)
            #expect(read.supervisorTicks == state.supervisorTicks && read.stopSignal == state.stopSignal)
            // Also what jq and JSONSerialization read: one JSON object.
            #expect(try JSONSerialization.jsonObject(with: data) is [String: Any])
        }
    }
}
