import CCoopNamespace
import CoopSupport
import Foundation

/// A failure of the runtime as its C side reports it (coop_failure): the stage, errno at the failing call,
/// and the call with the path or device it acted on. The supervisor, `coop __exec` and `coop __attach`
/// send one to coop when they fail; the stage's name comes from the C side too (coop_stage_name).
struct RuntimeFailure {
    let report: coop_failure

    init(_ report: coop_failure) { self.report = report }

    var stage: Int32 { report.stage }
    var errnoValue: Int32 { report.error_number }
    /// "mount devpts on /…/rootfs/dev/pts".
    var detail: String {
        withUnsafeBytes(of: report.detail) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }

    /// The status the process that failed exits with: the stage's own, or 127 or 126 for exec.
    var exitStatus: Int32 { withUnsafePointer(to: report) { coop_failure_status($0) } }

    /// Reads one report from `fd` to its end and closes it; nil when none came (nothing failed), or when
    /// what came is cut short.
    static func read(from fd: Int32) -> RuntimeFailure? {
        var report = coop_failure()
        let got = withUnsafeMutableBytes(of: &report) { coop_read_full(fd, $0.baseAddress, $0.count) }
        close(fd)
        guard got == MemoryLayout<coop_failure>.size, report.stage != 0 else { return nil }
        return RuntimeFailure(report)
    }

    /// Sends `report` to `fd` and closes it; returns the status for the process that failed to exit with.
    static func send(_ report: coop_failure, to fd: Int32) -> Int32 {
        var report = report
        // When the report cannot go, coop has only the exit status, which names the stage all the same.
        _ = withUnsafeBytes(of: &report) { coop_write_full(fd, $0.baseAddress, $0.count) }
        close(fd)
        return withUnsafePointer(to: &report) { coop_failure_status($0) }
    }

    /// Whether the command itself could not be run: not found, or not executable.
    var isExec: Bool { stage == Int32(COOP_RUN_EXEC.rawValue) }

    /// What the user reads: the stage with the call and its path, errno's text, and what to do.
    func error(what: String) -> CoopError {
        let name = String(cString: coop_stage_name(stage))
        var cause = "\(name) failed: \(detail)"
        if errnoValue != 0 { cause += ": \(String(cString: strerror(errnoValue))) (errno \(errnoValue))" }
        return CoopError(
            .hostSetup, what, cause: cause, fix: fix, underlying: errnoValue != 0 ? .errno(errnoValue) : nil)
    }

    var fix: String {
        switch UInt32(bitPattern: stage) {
        case COOP_RUN_EXEC.rawValue: return "check that the command exists in the container and is executable"
        case COOP_RUN_SETNS.rawValue, COOP_RUN_SETID.rawValue:
            return "check that the container still runs ('coop list') and that it is yours"
        case COOP_RUN_REQUEST.rawValue:
            return "install coop and its coop-supervisor together: they come from different builds"
        default: return "run 'coop check' to see what this host allows"
        }
    }
}
