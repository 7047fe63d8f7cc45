import CArchive
import Foundation

/// An entry's header as libarchive holds it. One that `ArchiveReader.next()` gives is valid until the next
/// call; changes (a re-rooted path, shifted owners) go into the header itself, so that
/// `ArchiveDiskWriter` writes them without a copy.
public struct ArchiveEntry {
    let pointer: OpaquePointer

    init(_ pointer: OpaquePointer) { self.pointer = pointer }

    /// The file types a tar holds. A hard link is a `.file` with `hardlink` set.
    public enum Kind: Sendable {
        case file, directory, symlink, characterDevice, blockDevice, fifo, socket, other
    }

    public var kind: Kind {
        get {
            switch coop_ae_get_kind(pointer) {
            case COOP_AE_REGULAR: .file
            case COOP_AE_DIRECTORY: .directory
            case COOP_AE_SYMLINK: .symlink
            case COOP_AE_CHARACTER: .characterDevice
            case COOP_AE_BLOCK: .blockDevice
            case COOP_AE_FIFO: .fifo
            case COOP_AE_SOCKET: .socket
            default: .other
            }
        }
        nonmutating set {
            let kind: coop_ae_kind =
                switch newValue {
                case .file: COOP_AE_REGULAR
                case .directory: COOP_AE_DIRECTORY
                case .symlink: COOP_AE_SYMLINK
                case .characterDevice: COOP_AE_CHARACTER
                case .blockDevice: COOP_AE_BLOCK
                case .fifo: COOP_AE_FIFO
                case .socket: COOP_AE_SOCKET
                case .other: COOP_AE_OTHER
                }
            coop_ae_set_kind(pointer, kind)
        }
    }

    /// A character or block device node.
    public var isDevice: Bool {
        let kind = coop_ae_get_kind(pointer)
        return kind == COOP_AE_CHARACTER || kind == COOP_AE_BLOCK
    }

    /// The path as the archive has it (`./etc/hostname`, `etc/`); nil when libarchive cannot convert it.
    public var path: String? {
        get { archive_entry_pathname(pointer).map { String(cString: $0) } }
        nonmutating set { archive_entry_set_pathname(pointer, newValue) }
    }

    /// The target of a hard link, a path in the same archive.
    public var hardlink: String? {
        get { archive_entry_hardlink(pointer).map { String(cString: $0) } }
        nonmutating set { archive_entry_set_hardlink(pointer, newValue) }
    }

    /// The target of a symbolic link, as written.
    public var symlink: String? {
        get { archive_entry_symlink(pointer).map { String(cString: $0) } }
        nonmutating set { archive_entry_set_symlink(pointer, newValue) }
    }

    /// The size of the data the header announces; nil when the format does not say.
    public var size: Int64? {
        archive_entry_size_is_set(pointer) != 0 ? archive_entry_size(pointer) : nil
    }

    /// Owners stay numeric, as the archive has them: no name is looked up.
    public var uid: Int64 {
        get { archive_entry_uid(pointer) }
        nonmutating set { archive_entry_set_uid(pointer, newValue) }
    }

    public var gid: Int64 {
        get { archive_entry_gid(pointer) }
        nonmutating set { archive_entry_set_gid(pointer, newValue) }
    }

    /// The permission bits (with setuid, setgid and sticky), without the file type.
    public var permissions: mode_t {
        get { archive_entry_perm(pointer) }
        nonmutating set { archive_entry_set_perm(pointer, newValue) }
    }
}
