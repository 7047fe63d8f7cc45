import ArgumentParser
import CoopBuild
import CoopRuntime
import CoopSupport
import CoopSystem
import Foundation

/// `coop check`: what this host and user can do, each gap with its fix (as `lxc-checkconfig` does).
struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Tell what this host and user can do, and how to fix gaps.")

    struct Item {
        var name: String
        var ok: Bool
        var detail: String
        var fix: String?
    }

    func run() throws {
        var items: [Item] = []
        let isRoot = getuid() == 0
        if isRoot {
            let own = SubordinateIDs.entries(in: "/etc/subuid").first { $0.owner == "root" || $0.owner == "0" }
            items.append(
                Item(
                    name: "subordinate ids", ok: true,
                    detail: own.map { "root's own range \($0.start)-\($0.end - 1)" }
                        ?? "root has no range yet: coop reserves one no user holds on first use"))
        } else {
            do {
                let map = try IDMap.forCurrentUser()
                items.append(
                    Item(
                        name: "subordinate ids", ok: true,
                        detail: "uids \(map.uidStart)+, gids \(map.gidStart)+, \(map.count)"))
            } catch let error as CoopError {
                items.append(Item(name: "subordinate ids", ok: false, detail: error.cause, fix: error.fix))
            }
        }
        for helper in ["/usr/bin/newuidmap", "/usr/bin/newgidmap"] {
            var info = stat()
            let present = stat(helper, &info) == 0
            let setuid = present && info.st_mode & S_ISUID != 0 && info.st_uid == 0
            items.append(
                Item(
                    name: (helper as NSString).lastPathComponent, ok: isRoot || setuid,
                    detail: present ? (setuid ? "setuid root" : "not setuid") : "missing",
                    fix: "apt-get install uidmap"))
        }
        let maxNamespaces =
            (try? String(contentsOfFile: "/proc/sys/user/max_user_namespaces", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
        items.append(
            Item(
                name: "user namespaces", ok: maxNamespaces != "0", detail: "max_user_namespaces = \(maxNamespaces)",
                fix: "sysctl user.max_user_namespaces=15000"))
        if let clone = try? String(contentsOfFile: "/proc/sys/kernel/unprivileged_userns_clone", encoding: .utf8) {
            let on = clone.trimmingCharacters(in: .whitespacesAndNewlines) == "1"
            items.append(
                Item(
                    name: "unprivileged user namespaces", ok: on, detail: on ? "allowed" : "disabled",
                    fix: "sysctl kernel.unprivileged_userns_clone=1"))
        }
        let unified = FileManager.default.fileExists(atPath: "/sys/fs/cgroup/cgroup.controllers")
        let hybrid = FileManager.default.fileExists(atPath: "/sys/fs/cgroup/unified/cgroup.procs")
        items.append(
            Item(
                name: "cgroups", ok: true,
                detail: unified ? "cgroup v2" : hybrid ? "cgroup v1 with a cgroup2 mount (hybrid)" : "cgroup v1"))
        let user = CoopPaths.userName
        let delegateFix =
            isRoot
            ? "mount the missing cgroup controllers under /sys/fs/cgroup"
            : "as root, run 'coop setup-host --user \(user)'"
        let hierarchies = CgroupHierarchy.onHost()
        let delegated = hierarchies.filter { ContainerCgroups.usable($0, user: user, uid: getuid()) }
        let controllers = Set(delegated.flatMap(\.controllers))
        let missing = ["memory", "pids", "cpu"].filter { !controllers.contains($0) }
        items.append(
            Item(
                name: "cgroup limits", ok: missing.isEmpty,
                detail: missing.isEmpty
                    ? "memory, pids and cpu limits hold (coop/\(user) delegated)"
                    : "no delegated cgroup for \(missing.joined(separator: ", ")): such limits are not applied",
                fix: delegateFix))
        let systemdCgroup = delegated.contains { $0.options.contains("name=systemd") || $0.folder == "." }
        items.append(
            Item(
                name: "systemd guests", ok: systemdCgroup,
                detail: systemdCgroup
                    ? "a container's init gets a cgroup of its own"
                    : "init gets no writable cgroup: systemd cannot boot",
                fix: delegateFix))
        let maps = FileSystem.kernelText("/proc/self/maps") ?? ""
        let cmdline = (try? String(contentsOfFile: "/proc/cmdline", encoding: .utf8)) ?? ""
        let vsyscall = DebianRelease.vsyscall(
            maps: maps, cmdline: cmdline.trimmingCharacters(in: .whitespacesAndNewlines))
        items.append(
            Item(
                name: "vsyscall (old userlands)", ok: vsyscall.present, detail: vsyscall.detail,
                fix: "boot the kernel with vsyscall=emulate (or xonly) to run wheezy and older"))
        let pasta = FileManager.default.isExecutableFile(atPath: "/usr/bin/pasta")
        items.append(
            Item(
                name: "pasta", ok: pasta,
                detail: pasta
                    ? "present: containers get a network of their own" : "missing: containers get loopback only",
                fix: "apt-get install passt"))
        var tun = stat()
        let tunPresent = stat("/dev/net/tun", &tun) == 0
        let tunOpen = access("/dev/net/tun", R_OK | W_OK) == 0
        items.append(
            Item(
                name: "/dev/net/tun", ok: tunOpen,
                detail: !tunPresent
                    ? "missing: pasta cannot make a container's network"
                    : "mode 0\(String(tun.st_mode & 0o777, radix: 8))"
                        + (tunOpen
                            ? ", open to \(user)" : ": pasta, run by \(user), cannot make a container's network"),
                fix: tunPresent
                    ? "as root, run 'coop setup-host --user \(user)' (mode 0666, as udev gives it)" : "modprobe tun"))
        let instances = InotifyBudget.maxInstances ?? 0
        let fleetNodes = instances / InotifyBudget.instancesPerNode
        items.append(
            Item(
                name: "inotify", ok: instances >= InotifyBudget.instances,
                detail:
                    "fs.inotify.max_user_instances = \(instances), max_user_watches = \(InotifyBudget.maxWatches ?? 0): "
                    + "room for about \(fleetNodes) booted systemd containers of \(user)",
                fix: "as root, run 'coop setup-host --user \(user)' (it raises them to \(InotifyBudget.instances) and "
                    + "\(InotifyBudget.watches))"))
        let nft = FileManager.default.isExecutableFile(atPath: "/usr/sbin/nft")
        items.append(
            Item(
                name: "nft", ok: nft,
                detail: nft ? "present: fleets get outbound access (NAT)" : "missing: fleets need 'outbound: false'",
                fix: "apt-get install nftables"))
        for tool in ["/usr/bin/mmdebstrap", "/usr/bin/gpgconf"] {
            let present = FileManager.default.isExecutableFile(atPath: tool)
            items.append(
                Item(
                    name: (tool as NSString).lastPathComponent, ok: present, detail: present ? "present" : "missing",
                    fix:
                        "apt-get install \((tool as NSString).lastPathComponent == "gpgconf" ? "gpgconf" : "mmdebstrap")"
                ))
        }
        for item in items {
            print("\(item.ok ? "ok  " : "gap ") \(item.name): \(item.detail)")
            if !item.ok, let fix = item.fix { print("      fix: \(fix)") }
        }
    }
}
