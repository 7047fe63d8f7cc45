import Foundation

/// What the supervisor (`coop __supervise`) starts: passed to it as JSON.
public struct RuntimeSpec: Codable, Sendable {
    public var rootfs: String
    public var hostname: String
    public var command: [String]
    public var environment: [String]
    public var shareNetwork: Bool

    public static let defaultEnvironment = [
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "container=lxc", "TERM=xterm",
        "HOME=/root",
    ]
}
