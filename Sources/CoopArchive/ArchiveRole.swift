import CoopSupport

/// What an archive is to coop, as its errors tell it: the same libarchive failure is a damaged download
/// in one place, a user's broken file in another and a full disk in a third.
public struct ArchiveRole: Sendable {
    /// Names the archive in errors: "rootfs archive", "metadata meta.tar.xz", "export file /tmp/x.tar".
    public var name: String
    /// The code of an archive that cannot be read: `.verification` for an image coop fetched, `.io` for
    /// a file of the user's or of coop's own.
    public var damaged: CoopError.Code
    /// What to do when the archive cannot be read.
    public var fix: String?
    /// What to do when the disk fills up while it is written.
    public var spaceFix: String?

    public init(_ name: String, damaged: CoopError.Code = .io, fix: String? = nil, spaceFix: String? = nil) {
        self.name = name
        self.damaged = damaged
        self.fix = fix
        self.spaceFix = spaceFix
    }
}
