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
        try FileSystem.writeAtomically(encoded(), to: Self.file(folder), durable: false)
    }

    /// The record as JSON, formatted here: JSONEncoder's first use costs more than the rest of writing the
    /// state, at every start. `read` decodes it with JSONDecoder; a unit test holds the two to one format.
    func encoded() -> Data {
        var fields = ["\"pid\":\(pid)", "\"startTicks\":\(startTicks)", "\"startedAt\":\(startedAt)"]
        if let cgroups { fields.append("\"cgroups\":[" + cgroups.map(Self.quoted).joined(separator: ",") + "]") }
        if let supervisor { fields.append("\"supervisor\":\(supervisor)") }
        if let supervisorTicks { fields.append("\"supervisorTicks\":\(supervisorTicks)") }
        if let stopSignal { fields.append("\"stopSignal\":\(stopSignal)") }
        return Data(("{" + fields.joined(separator: ",") + "}\n").utf8)
    }

    /// A JSON string: quote, backslash and control characters escaped, the rest as UTF-8.
    static func quoted(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }

    static func startTicks(of pid: Int32) -> UInt64? { ProcessStart.ticks(of: pid) }

    public var isRunning: Bool { Self.startTicks(of: pid) == startTicks }

    /// Whether the supervisor is still there (false when none was recorded).
    public var supervisorIsRunning: Bool {
        guard let supervisor, let supervisorTicks else { return false }
        return Self.startTicks(of: supervisor) == supervisorTicks
    }
}
