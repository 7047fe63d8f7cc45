import CCoopNamespace
import Foundation

/// What `coop start` asks of the supervisor, written once over a pipe in the layout of coop_protocol.h;
/// the supervisor checks it whole before it does anything.
struct SupervisorRequest: Sendable {
    /// How PID 1 uses the console the supervisor makes.
    enum Console: Sendable {
        /// PID 1 keeps the supervisor's stdio.
        case none
        /// PID 1's stdio is the console.
        case stdio
        /// As `stdio`, and the supervisor's stdin (the user's terminal) is typed into the console.
        case typed
    }

    var rootfs: String
    var hostname: String
    /// The image tree of a throwaway container, whose rootfs is then an empty folder.
    var overlayLower: String?
    /// A copy-on-write container: the overlay's changes stay in its folder (`delta0`), not in a tmpfs.
    var overlayOnDisk = false
    var sharesHostNetwork: Bool
    /// PID 1 waits before its exec until coop has configured the network (and says so on the request pipe).
    var waitsForNetwork = false
    /// The supervisor tells the boot on its reply pipe once PID 1 says READY=1 (`BootWatch`).
    var notifiesBoot = false
    /// Files bound onto /etc/resolv.conf and /etc/hosts inside.
    var resolvConf: String?
    var hosts: String?
    var console: Console
    var cgroupMounts: [CgroupMount]
    /// PID 1's command line and environment ("NAME=VALUE").
    var command: [String]
    var environment: [String]

    var flags: UInt32 {
        var flags: UInt32 = sharesHostNetwork ? COOP_REQUEST_SHARE_NETWORK : 0
        if overlayOnDisk { flags |= COOP_REQUEST_OVERLAY_ON_DISK }
        switch console {
        case .none: break
        case .stdio: flags |= COOP_REQUEST_CONSOLE_STDIO
        case .typed: flags |= COOP_REQUEST_CONSOLE_INPUT
        }
        if waitsForNetwork { flags |= COOP_REQUEST_WAIT_NETWORK }
        if notifiesBoot { flags |= COOP_REQUEST_NOTIFY_BOOT }
        return flags
    }

    /// The request's bytes: the header, then its fields.
    func encoded() -> [UInt8] {
        var fields: [UInt8] = []
        func append(_ number: UInt32) { withUnsafeBytes(of: number) { fields.append(contentsOf: $0) } }
        func append(_ text: String) {
            let bytes = Array(text.utf8)
            append(UInt32(bytes.count))
            fields += bytes
            fields.append(0)
        }
        append(rootfs)
        append(hostname)
        append(overlayLower ?? "")
        append(resolvConf ?? "")
        append(hosts ?? "")
        for mount in cgroupMounts {
            switch mount.kind {
            case .version1: append(COOP_CGROUP_V1.rawValue)
            case .version2: append(COOP_CGROUP_V2.rawValue)
            case .link: append(COOP_CGROUP_LINK.rawValue)
            }
            append(mount.folder)
            append(mount.options ?? "")
            append(mount.hostFolder ?? "")
        }
        command.forEach(append)
        environment.forEach(append)
        let header = coop_request_header(
            magic: COOP_REQUEST_MAGIC, version: COOP_REQUEST_VERSION, flags: flags,
            cgroup_count: UInt32(cgroupMounts.count), argc: UInt32(command.count), envc: UInt32(environment.count),
            size: UInt32(clamping: fields.count))
        return withUnsafeBytes(of: header) { Array($0) } + fields
    }
}
