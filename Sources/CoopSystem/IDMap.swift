import CoopSupport
import Foundation

/// The ids a container's root and users have on the host: a range from /etc/subuid and /etc/subgid.
public struct IDMap: Sendable, Equatable, Codable {
    /// First host uid and gid (container id 0 maps to it) and how many ids follow.
    public var uidStart: UInt32
    public var gidStart: UInt32
    public var count: UInt32

    public init(uidStart: UInt32, gidStart: UInt32, count: UInt32) {
        self.uidStart = uidStart
        self.gidStart = gidStart
        self.count = count
    }

    /// Root's range where no subordinate id file is at hand (the unpack tests): LXD's reservation for root,
    /// which no user's range from useradd reaches.
    public static let rootDefault = IDMap(uidStart: 1_000_000, gidStart: 1_000_000, count: 65_536)

    /// The range of the user running coop: its /etc/subuid and /etc/subgid entries (by name or uid).
    public static func forCurrentUser(subuid: String = "/etc/subuid", subgid: String = "/etc/subgid") throws -> IDMap {
        let uid = getuid()
        let name = CoopPaths.userName
        // Root's containers run on a range of root's own that no user holds (reserved on first use).
        if uid == 0 { return try SubordinateIDs.rootRange(subuid: subuid, subgid: subgid) }
        let uidRange = range(in: subuid, user: name, id: uid)
        let gidRange = range(in: subgid, user: name, id: uid)
        guard let uidRange, let gidRange else {
            throw CoopError(
                .hostSetup, "user \(name)", cause: "has no subordinate id range in \(subuid) and \(subgid)",
                fix: SubordinateIDs.suggestion(for: name, subuid: subuid, subgid: subgid))
        }
        guard uidRange.count >= 65_536, gidRange.count >= 65_536 else {
            throw CoopError(
                .hostSetup, "user \(name)", cause: "has fewer than 65536 subordinate ids",
                fix: "give it a range of 65536 in \(subuid) and \(subgid): "
                    + SubordinateIDs.suggestion(for: name, subuid: subuid, subgid: subgid))
        }
        return IDMap(uidStart: uidRange.start, gidStart: gidRange.start, count: 65_536)
    }

    /// Every range of 65536 ids the user holds, in the order of the files' lines (uids and gids paired):
    /// the first is `forCurrentUser`'s, on which the user's containers run; the others are for containers
    /// that must share no id with those (an isolated fleet's nodes).
    public static func allForCurrentUser(subuid: String = "/etc/subuid", subgid: String = "/etc/subgid") throws
        -> [IDMap]
    {
        let first = try forCurrentUser(subuid: subuid, subgid: subgid)
        let user = getuid() == 0 ? "root" : CoopPaths.userName
        return [first] + ranges(of: user, id: getuid(), subuid: subuid, subgid: subgid).filter { $0 != first }
    }

    /// Each range of 65536 ids in `user`'s entries (by name or uid), in the order of the files' lines.
    public static func ranges(of user: String, id: uid_t, subuid: String, subgid: String) -> [IDMap] {
        func blocks(_ file: String) -> [UInt32] {
            SubordinateIDs.entries(in: file).filter { $0.owner == user || $0.owner == String(id) }.flatMap { entry in
                (0..<entry.count / 65_536).map { entry.start + $0 * 65_536 }
            }
        }
        return zip(blocks(subuid), blocks(subgid)).map { IDMap(uidStart: $0, gidStart: $1, count: 65_536) }
    }

    static func range(in file: String, user: String, id: uid_t) -> (start: UInt32, count: UInt32)? {
        SubordinateIDs.entries(in: file).first { $0.owner == user || $0.owner == String(id) }.map {
            ($0.start, $0.count)
        }
    }

    /// Arguments for newuidmap/newgidmap (without the pid): the range as ids 0…count-1, and with
    /// `mapOwner` the user's own id as id `count`, so that coop's own helpers may work in the user's
    /// folders. Never for a running container: its root could become the user.
    /// `more` ranges follow as ids count, 2 × count, ….
    public func helperArguments(hostUser: uid_t, hostGroup: gid_t, mapOwner: Bool = true, more: [IDMap] = []) -> (
        uid: [String], gid: [String]
    ) {
        // Ranges that follow each other on the host become one line: the kernel takes at most 340 lines.
        var lines = [(inside: UInt64(0), uid: UInt64(uidStart), gid: UInt64(gidStart), count: UInt64(count))]
        for map in more {
            let last = lines[lines.count - 1]
            if last.uid + last.count == UInt64(map.uidStart), last.gid + last.count == UInt64(map.gidStart) {
                lines[lines.count - 1].count += UInt64(map.count)
            } else {
                lines.append((last.inside + last.count, UInt64(map.uidStart), UInt64(map.gidStart), UInt64(map.count)))
            }
        }
        var uid = ["newuidmap"]
        var gid = ["newgidmap"]
        for line in lines {
            uid += [String(line.inside), String(line.uid), String(line.count)]
            gid += [String(line.inside), String(line.gid), String(line.count)]
        }
        let next = lines[lines.count - 1].inside + lines[lines.count - 1].count
        if mapOwner {
            uid += [String(next), String(hostUser), "1"]
            gid += [String(next), String(hostGroup), "1"]
        }
        return (uid, gid)
    }
}
