import CArchive
import CoopSupport
import Foundation

/// What libarchive was doing when it failed.
enum ArchiveStage {
    case read
    case write
    /// Making an entry on disk, where libarchive's own checks of its path apply.
    case create
}

extension CoopError {
    /// libarchive's last failure on `archive` as an error the user can act on: the one mapping for every
    /// archive coop reads or writes. A full disk is said so, a refused path on disk is an unsafe archive,
    /// unreadable content gets the code and fix of the archive's role.
    static func archive(
        _ archive: OpaquePointer, _ what: String, _ stage: ArchiveStage, role: ArchiveRole, folder: String? = nil
    ) -> CoopError {
        let code = archive_errno(archive)
        let message = archive_error_string(archive).map { String(cString: $0) } ?? "unknown error"
        if code == ENOSPC || code == EDQUOT {
            let cause = code == ENOSPC ? "no space left on device" : "disk quota exceeded"
            return CoopError(
                .io, what, cause: folder.map { "\(cause) (\($0))" } ?? cause,
                fix: role.spaceFix ?? "free some disk space")
        }
        // libarchive's SECURE_* checks (ArchiveDiskWriter) say which rule the path broke only in words.
        if stage == .create, message.contains("symlink") || message.contains("..") || message.contains("bsolute") {
            return CoopError(
                .unsafeArchive, what, cause: message,
                fix: "the image tries to write outside its rootfs: nothing was kept; do not use this image")
        }
        // A system errno says more than libarchive's words; its own code for bad content does not.
        let detail = code > 0 && code != EILSEQ ? " (\(String(cString: strerror(code))), errno \(code))" : ""
        guard stage == .read else { return CoopError(.io, what, cause: "cannot be written: \(message)\(detail)") }
        // "No progress is possible": libarchive's words for an xz stream that ends early.
        let truncated = message.lowercased().contains("truncated") || message.contains("No progress is possible")
        return CoopError(
            role.damaged, what, cause: "cannot be read: \(message)\(detail)",
            fix: truncated ? role.fix.map { "the archive is truncated: \($0)" } : role.fix)
    }
}
