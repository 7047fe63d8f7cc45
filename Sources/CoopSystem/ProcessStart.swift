import Foundation

/// When a process started, to tell a live process from a recycled pid.
public enum ProcessStart {
    /// Field 22 of /proc/PID/stat: when the process started, in clock ticks since boot; nil once it has
    /// ended (a zombie has ended too: it has left its cgroups and namespaces).
    public static func ticks(of pid: Int32) -> UInt64? {
        guard let text = FileSystem.kernelText("/proc/\(pid)/stat"), let end = text.lastIndex(of: ")") else {
            return nil
        }
        let fields = text[text.index(after: end)...].split(separator: " ")
        // After the command come state (field 3) … starttime (field 22).
        guard fields.count > 19, fields[0] != "Z", fields[0] != "X" else { return nil }
        return UInt64(fields[19])
    }
}
