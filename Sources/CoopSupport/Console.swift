import Foundation

/// Output for people: status lines on stderr, so that stdout stays clean for data and `--json`.
public enum Console {
    public static let isTerminal = isatty(STDERR_FILENO) == 1

    public static func status(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    /// A warning; it often quotes names from images and indexes, so it is printed escaped.
    public static func warning(_ line: String) {
        status("warning: " + escaped(line, keepNewlines: true))
    }

    /// An error shown where coop goes on (a command in a container that cannot run), as `coop` shows one
    /// it ends with.
    public static func error(_ error: CoopError) {
        status("error: " + escaped("\(error)", keepNewlines: true))
    }
}

/// A one-line progress bar on a terminal; nothing otherwise (the status lines tell the steps).
public final class ProgressBar: @unchecked Sendable {
    private let label: String
    private let lock = NSLock()
    private var totals: [Int: (done: Int64, total: Int64)] = [:]
    private var lastDraw = Date.distantPast
    private let start = Date()
    private let enabled: Bool

    public init(label: String, enabled: Bool = Console.isTerminal) {
        self.label = label
        self.enabled = enabled
    }

    /// Reports the state of one of several parallel transfers, identified by `slot`.
    public func update(slot: Int, done: Int64, total: Int64) {
        guard enabled else { return }
        lock.lock()
        defer { lock.unlock() }
        totals[slot] = (done, total)
        let now = Date()
        guard now.timeIntervalSince(lastDraw) > 0.1 else { return }
        lastDraw = now
        draw(now: now)
    }

    private func draw(now: Date) {
        let done = totals.values.reduce(Int64(0)) { $0 + $1.done }
        let total = totals.values.reduce(Int64(0)) { $0 + $1.total }
        let seconds = max(now.timeIntervalSince(start), 0.001)
        let rate = Double(done) / seconds / 1_000_000
        let width = 30
        let fraction = total > 0 ? min(Double(done) / Double(total), 1) : 0
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        let line = String(
            format: "\r%@ [%@] %5.1f/%5.1f MB %5.1f MB/s", label, bar, Double(done) / 1e6, Double(total) / 1e6, rate)
        FileHandle.standardError.write(Data(line.utf8))
    }

    public func finish() {
        guard enabled else { return }
        lock.lock()
        defer { lock.unlock() }
        draw(now: Date())
        FileHandle.standardError.write(Data("\n".utf8))
    }
}
