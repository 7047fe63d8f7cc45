import CoopSystem
import Foundation

/// A running container's PID 1, as `coop start` recorded it (`state.json` in the container folder).
/// The start time from /proc tells a live init from a recycled pid.
public struct ContainerState: Codable, Sendable {
    public var pid: Int32
    public var startTicks: UInt64
    public var startedAt: Int
    /// The container's cgroup folders on the host, removed when it stops.
    public var cgroups: [String]?
    /// The supervisor's pid and start time: it leaves the cgroups last, once it removed those made inside.
    public var supervisor: Int32?
    public var supervisorTicks: UInt64?
    /// The signal that asks this container's PID 1 to power off (it depends on what was started).
    public var stopSignal: Int32?

    static func file(_ folder: URL) -> URL { folder.appendingPathComponent("state.json") }

    public static func read(_ folder: URL) -> ContainerState? {
        guard let data = try? Data(contentsOf: file(folder)) else { return nil }
        return try? JSONDecoder().decode(ContainerState.self, from: data)
    }

    func write(_ folder: URL) throws {
        // A running container's state means nothing after a crash of the host: no flush to disk.
        try FileSystem.writeAtomically(try JSONEncoder().encode(self), to: Self.file(folder), durable: false)
    }

    static func startTicks(of pid: Int32) -> UInt64? { ProcessStart.ticks(of: pid) }

    public var isRunning: Bool { Self.startTicks(of: pid) == startTicks }

    /// Whether the supervisor is still there (false when none was recorded).
    public var supervisorIsRunning: Bool {
        guard let supervisor, let supervisorTicks else { return false }
        return Self.startTicks(of: supervisor) == supervisorTicks
    }
}
