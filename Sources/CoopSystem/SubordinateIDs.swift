import CCoopNamespace
import CoopSupport
import Foundation

/// The ranges of /etc/subuid and /etc/subgid: who holds which ids, which range is free, and root's own.
///
/// Root's containers must run on ids no user holds: a user holding them could become the container's root
/// through newuidmap, write into root's containers and kill their processes. So root gets a range reserved
/// for it in both files (as LXD's package reserves one), and nothing of root's starts on a range that any
/// other entry overlaps.
public enum SubordinateIDs {
    public struct Entry: Sendable, Equatable {
        public init(owner: String, start: UInt32, count: UInt32) {
            self.owner = owner
            self.start = start
            self.count = count
        }

        public var owner: String
        public var start: UInt32
        public var count: UInt32
        public var end: UInt64 { UInt64(start) + UInt64(count) }

        func overlaps(_ start: UInt32, _ count: UInt32) -> Bool {
            UInt64(start) < end && UInt64(self.start) < UInt64(start) + UInt64(count)
        }
    }

    /// Where ranges start (as useradd's SUB_UID_MIN), and root's reservation when it is free (LXD's).
    public static let firstID: UInt32 = 100_000
    static let rootStart: UInt32 = 1_000_000
    static let rootCount: UInt32 = 1_000_000_000

    public static func entries(in file: String) -> [Entry] {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: ":", omittingEmptySubsequences: false)
            guard fields.count == 3, let start = UInt32(fields[1]), let count = UInt32(fields[2]), count > 0 else {
                return nil
            }
            return Entry(owner: String(fields[0]), start: start, count: count)
        }
    }

    /// The first `count` ids from 100000 up that no entry of either file holds.
    public static func freeRange(
        count: UInt32 = 65_536, from: UInt32 = firstID, subuid: String = "/etc/subuid", subgid: String = "/etc/subgid"
    ) -> UInt32 {
        let taken = (entries(in: subuid) + entries(in: subgid)).sorted { $0.start < $1.start }
        var start = UInt64(from)
        // In order of their starts: each range in the way moves the candidate past its end.
        for entry in taken where entry.overlaps(UInt32(clamping: start), count) { start = entry.end }
        return UInt32(clamping: start)
    }

    /// What to tell a user without a range: a free one, or setup-host.
    public static func suggestion(for user: String, subuid: String = "/etc/subuid", subgid: String = "/etc/subgid")
        -> String
    {
        let start = freeRange(subuid: subuid, subgid: subgid)
        return "as root, run 'coop setup-host --user \(user)' (or: usermod --add-subuids \(start)-\(start + 65_535) "
            + "--add-subgids \(start)-\(start + 65_535) \(user))"
    }

    static func isRoot(_ owner: String) -> Bool { owner == "root" || owner == "0" }

    /// Root's range: its entries in both files, reserved on first use when it has none. Refused when
    /// another entry overlaps it.
    public static func rootRange(subuid: String, subgid: String) throws -> IDMap {
        var uidEntry = entries(in: subuid).first { isRoot($0.owner) }
        var gidEntry = entries(in: subgid).first { isRoot($0.owner) }
        if uidEntry == nil || gidEntry == nil {
            let reserved = try reserveForRoot(subuid: subuid, subgid: subgid)
            uidEntry = uidEntry ?? reserved
            gidEntry = gidEntry ?? reserved
        }
        guard let uidEntry, let gidEntry else {
            throw CoopError(.internal, "root's subordinate ids", cause: "could not be reserved")
        }
        let map = IDMap(
            uidStart: uidEntry.start, gidStart: gidEntry.start, count: min(uidEntry.count, gidEntry.count, 65_536))
        try checkNoOneElseHolds(map, what: "root's subordinate ids", subuid: subuid, subgid: subgid)
        return map
    }

    /// Runs `body` holding the lock that useradd and usermod take on these files, so that a line another
    /// program adds meanwhile is not lost to our rewrite.
    public static func withFilesLocked<T>(_ body: () throws -> T) throws -> T {
        guard coop_lock_id_files() == 0 else {
            throw CoopError(
                .hostSetup, "/etc/subuid and /etc/subgid", cause: "are locked by another program (lckpwdf)",
                fix: "wait for useradd, usermod or vipw to finish, then try again")
        }
        defer { coop_unlock_id_files() }
        return try body()
    }

    /// Adds `root:START:COUNT` to both files, at LXD's range when it is free, else after every range.
    static func reserveForRoot(subuid: String, subgid: String) throws -> Entry {
        try withFilesLocked { try reserveForRootLocked(subuid: subuid, subgid: subgid) }
    }

    private static func reserveForRootLocked(subuid: String, subgid: String) throws -> Entry {
        let all = entries(in: subuid) + entries(in: subgid)
        var start = rootStart
        if all.contains(where: { $0.overlaps(rootStart, rootCount) }) {
            start = UInt32(clamping: all.map(\.end).max() ?? UInt64(rootStart))
        }
        let count = UInt64(start) + UInt64(rootCount) <= UInt64(UInt32.max) ? rootCount : 65_536
        let entry = Entry(owner: "root", start: start, count: count)
        for file in [subuid, subgid] where !entries(in: file).contains(where: { isRoot($0.owner) }) {
            try append(entry, to: file)
        }
        Console.status(
            "reserved subordinate ids \(start)-\(UInt64(start) + UInt64(count) - 1) for root's containers in "
                + "\(subuid) and \(subgid): no user may be given them")
        return entry
    }

    /// Adds `OWNER:START:COUNT` as the last line of `file` (a whole new file, renamed into place). Call it
    /// inside `withFilesLocked`.
    public static func append(_ entry: Entry, to file: String) throws {
        let text = (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""
        let line = "\(entry.owner):\(entry.start):\(entry.count)\n"
        try FileSystem.writeAtomically(
            (text.isEmpty || text.hasSuffix("\n") ? text : text + "\n") + line, to: URL(fileURLWithPath: file),
            mode: 0o644)
    }

    /// Refuses `map` when an entry of someone other than root holds any of its ids: that user could
    /// become the container's root. Only root's containers need the check: newuidmap holds users to
    /// their own ranges.
    public static func checkNoOneElseHolds(
        _ map: IDMap, what: String, subuid: String = "/etc/subuid", subgid: String = "/etc/subgid"
    ) throws {
        for (file, start) in [(subuid, map.uidStart), (subgid, map.gidStart)] {
            guard let holder = entries(in: file).first(where: { !isRoot($0.owner) && $0.overlaps(start, map.count) })
            else { continue }
            throw CoopError(
                .hostSetup, what,
                cause: "ids \(start)-\(UInt64(start) + UInt64(map.count) - 1) overlap the range of user "
                    + "'\(holder.owner)' in \(file): that user could become this container's root",
                fix: "give root a range of its own in \(subuid) and \(subgid) that no user holds (or remove root's "
                    + "entries and coop reserves one), then recreate root's containers")
        }
    }

    /// Refuses to start a container of root's whose ids another user holds (see `checkNoOneElseHolds`).
    public static func checkOwnRange(_ map: IDMap, container: String) throws {
        guard getuid() == 0 else { return }
        do {
            try checkNoOneElseHolds(map, what: "container \(container)")
        } catch let error as CoopError {
            throw CoopError(
                error.code, error.what, cause: error.cause,
                fix: "recreate it with 'coop destroy \(container)' and 'coop create', which use root's own range")
        }
    }
}
