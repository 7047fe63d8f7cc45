import Foundation

/// An error a user can act on: what failed, why, and what to do about it.
///
/// Every module throws this one type, so the CLI prints them all the same way and maps each `Code` to a
/// stable exit status (documented in docs/errors.md).
public struct CoopError: Error, CustomStringConvertible, Sendable, Codable {
    /// Stable kinds of failure. Their raw values are the exit statuses of `coop`.
    public enum Code: Int32, Sendable, Codable {
        case usage = 2
        case notFound = 3
        case network = 4
        case verification = 5
        case unsafeArchive = 6
        case conflict = 7
        case hostSetup = 8
        case io = 9
        case `internal` = 10
    }

    public var code: Code
    /// What failed, naming the thing: "signature of rootfs.tar.xz".
    public var what: String
    /// Why it failed, including the C library's own message where there is one.
    public var cause: String
    /// What the user can do.
    public var fix: String?
    /// What failed underneath, captured at the failing call: errno, or another library's error.
    public var underlying: Underlying?

    /// The error below a `CoopError`, kept for callers and tests that act on it (the message has its text).
    public enum Underlying: Sendable, Codable, Equatable {
        /// errno as the failing system call left it.
        case errno(Int32)
        /// An error of Foundation or of another library: its type and how it described itself.
        case error(type: String, description: String)
    }

    /// errno as the failing call left it, when a system call failed.
    public var errnoValue: Int32? {
        if case .errno(let value) = underlying { return value }
        return nil
    }

    public init(_ code: Code, _ what: String, cause: String, fix: String? = nil, underlying: Underlying? = nil) {
        self.code = code
        self.what = what
        self.cause = cause
        self.fix = fix
        self.underlying = underlying
    }

    /// An error that wraps `error`, caught at the failing call: a POSIX error keeps its errno.
    public init(_ code: Code, _ what: String, cause: String, fix: String? = nil, wrapping error: any Error) {
        let bridged = error as NSError
        let underlying: Underlying =
            bridged.domain == NSPOSIXErrorDomain
            ? .errno(Int32(bridged.code))
            : .error(type: String(reflecting: Swift.type(of: error)), description: String(describing: error))
        self.init(code, what, cause: cause, fix: fix, underlying: underlying)
    }

    public var description: String {
        var text = "\(what): \(cause)"
        if let fix { text += "\n  fix: \(fix)" }
        return text
    }

    /// An error from a failed system call, with errno's text.
    public static func system(
        _ what: String, errno code: Int32 = errno, fix: String? = nil, kind: Code = .io
    ) -> CoopError {
        CoopError(
            kind, what, cause: String(cString: strerror(code)) + " (errno \(code))", fix: fix, underlying: .errno(code))
    }
}

/// Checks a C return code: below zero is a failure described by errno.
@discardableResult
public func checkSystemCall(_ result: Int32, _ what: @autoclosure () -> String) throws -> Int32 {
    if result < 0 { throw CoopError.system(what()) }
    return result
}
