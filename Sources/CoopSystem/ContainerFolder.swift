import CCoopNamespace
import CoopSupport
import Foundation

/// A container's folder (and the containers folder above it) is the owner's alone: mode 0700, with an
/// access ACL that lets the container's root id through (search only), since the runtime reaches the rootfs
/// as that id, and so does `lxc-start`. Other local users can then neither read the console log, config and
/// state, nor write into the rootfs's world-writable folders, nor run its setuid files, nor plant files
/// there that the owner cannot remove.
public enum ContainerFolder {
    // The kernel's POSIX ACL extended attribute: a version, then (tag, permissions, id) entries sorted by tag.
    private static let attribute = "system.posix_acl_access"
    private static let version: UInt32 = 2
    private enum Tag: UInt16 {
        case userObject = 0x01, user = 0x02, groupObject = 0x04, mask = 0x10, other = 0x20
    }
    private static let noID: UInt32 = 0xFFFF_FFFF

    /// Makes `folder` private to its owner but searchable by `idMap`'s root id (and by the root ids it let
    /// through already: an isolated fleet's nodes each have a range of their own); without ACL support in
    /// the filesystem it falls back to 0711 (searchable by all, listable by none) and says so.
    /// A folder of someone else's (LXC makes a container's folder its root's) keeps what its maker set.
    public static func makePrivate(_ folder: URL, for idMap: IDMap) throws {
        var info = stat()
        guard lstat(folder.path, &info) == 0, info.st_uid == geteuid() else { return }
        let allowed = searchers(of: folder)
        // Already so (the group bits show the ACL's mask): left alone, as a chmod would clear the mask for a
        // moment, in which a start of another container beside it finds the folder shut.
        if info.st_mode & 0o777 == 0o710, allowed.contains(idMap.uidStart) { return }
        guard chmod(folder.path, 0o700) == 0 else { throw CoopError.system("permissions of \(folder.path)") }
        var bytes: [UInt8] = []
        append(&bytes, version)
        // The kernel takes the named users in ascending order of id.
        let users = Set(allowed + [idMap.uidStart]).sorted().map { (Tag.user, UInt16(1), $0) }
        for (tag, permissions, id) in [(Tag.userObject, UInt16(7), noID)] + users + [
            (.groupObject, 0, noID), (.mask, 1, noID), (.other, 0, noID),
        ] {
            append(&bytes, tag.rawValue)
            append(&bytes, permissions)
            append(&bytes, id)
        }
        let result = bytes.withUnsafeBytes { coop_setxattr(folder.path, attribute, $0.baseAddress, $0.count) }
        if result == 0 { return }
        guard errno == EOPNOTSUPP else { throw CoopError.system("access list of \(folder.path)") }
        warnNoACL(folder)
        guard chmod(folder.path, 0o711) == 0 else { throw CoopError.system("permissions of \(folder.path)") }
    }

    /// Whether `folder`'s access ACL lets `uid` search it.
    public static func lets(_ uid: UInt32, through folder: URL) -> Bool {
        searchers(of: folder).contains(uid)
    }

    /// The named users that `folder`'s access ACL lets search it (none when its mask does not).
    static func searchers(of folder: URL) -> [UInt32] {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let size = buffer.withUnsafeMutableBytes {
            Int(coop_getxattr(folder.path, attribute, $0.baseAddress, $0.count))
        }
        guard size >= 4 else { return [] }
        var users: [UInt32] = []
        var maskAllows = true
        var offset = 4
        while offset + 8 <= size {
            let tag = UInt16(buffer[offset]) | UInt16(buffer[offset + 1]) << 8
            let permissions = UInt16(buffer[offset + 2]) | UInt16(buffer[offset + 3]) << 8
            let id = (0..<4).reduce(UInt32(0)) { $0 | UInt32(buffer[offset + 4 + $1]) << (8 * UInt32($1)) }
            if tag == Tag.user.rawValue, permissions & 1 != 0 { users.append(id) }
            if tag == Tag.mask.rawValue { maskAllows = permissions & 1 != 0 }
            offset += 8
        }
        return maskAllows ? users : []
    }

    private static func append<T: FixedWidthInteger>(_ bytes: inout [UInt8], _ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    private static func warnNoACL(_ folder: URL) {
        Console.warning(
            "the filesystem of \(folder.path) has no ACLs: its containers' folders are 0711, so other users "
                + "who guess a container's name can reach into it. Fix: keep containers on a filesystem "
                + "with ACLs (ext4, xfs, btrfs, tmpfs) by setting COOP_CONTAINERS")
    }
}
