import CArchive
import CoopFormats
import CoopSupport
import Foundation

/// Writes `meta.tar.xz` as LXC's download template reads it. Every entry gets the same owner and the
/// build's time, so the same inputs give the same bytes.
public struct ImageMetadata {
    public var distro: String
    public var release: String
    public var arch: String
    public var variant: String
    public var build: String
    public var buildTime: Int
    public var validity: Int = 30 * 86_400
    public var excludesUser: [String]

    public var files: [(String, String)] {
        let lxcArch = ImageReference.lxcArchitecture(arch)
        let config = "lxc.include = LXC_TEMPLATE_CONFIG/common.conf\nlxc.arch = \(lxcArch)\n"
        let configUser =
            "lxc.include = LXC_TEMPLATE_CONFIG/common.conf\nlxc.include = LXC_TEMPLATE_CONFIG/userns.conf\n"
            + "lxc.arch = \(lxcArch)\n"
        let title = distro.prefix(1).uppercased() + distro.dropFirst()
        return [
            ("config", config),
            ("config-user", configUser),
            ("create-message", "You just created a \(title) \(release) \(lxcArch) (\(build)) container.\n"),
            ("expiry", "\(buildTime + validity)\n"),
            ("excludes-user", excludesUser.map { $0 + "\n" }.joined()),
            ("templates", "/etc/hostname\n/etc/hosts\n"),
        ]
    }

    public func write(to url: URL) throws {
        guard let writer = archive_write_new() else { throw CoopError(.internal, "libarchive", cause: "out of memory") }
        defer { archive_write_free(writer) }
        archive_write_set_format_gnutar(writer)
        archive_write_add_filter_xz(writer)
        guard archive_write_open_filename(writer, url.path) == ARCHIVE_OK else {
            throw CoopError(.io, "write \(url.path)", cause: String(cString: archive_error_string(writer)))
        }
        for (name, text) in files {
            let bytes = Array(text.utf8)
            guard let entry = archive_entry_new() else {
                throw CoopError(.internal, "libarchive", cause: "out of memory")
            }
            defer { archive_entry_free(entry) }
            archive_entry_set_pathname(entry, "./" + name)
            coop_ae_set_regular(entry)
            archive_entry_set_perm(entry, 0o644)
            archive_entry_set_size(entry, la_int64_t(bytes.count))
            archive_entry_set_mtime(entry, time_t(buildTime), 0)
            archive_entry_set_uid(entry, 0)
            archive_entry_set_gid(entry, 0)
            guard archive_write_header(writer, entry) == ARCHIVE_OK,
                archive_write_data(writer, bytes, bytes.count) == bytes.count
            else {
                throw CoopError(.io, "write \(url.path)", cause: String(cString: archive_error_string(writer)))
            }
        }
        guard archive_write_close(writer) == ARCHIVE_OK else {
            throw CoopError(
                .io, "write \(url.path)", cause: String(cString: archive_error_string(writer)),
                fix: "free some disk space, or build elsewhere with --output")
        }
    }
}

/// What a rootfs tarball holds: its entry count and the device nodes an unprivileged unpack skips.
public struct TarSurvey {
    public var entries = 0
    public var devices: [String] = []

    public init(_ url: URL) throws {
        guard let reader = archive_read_new() else { throw CoopError(.internal, "libarchive", cause: "out of memory") }
        defer { archive_read_free(reader) }
        archive_read_support_format_all(reader)
        archive_read_support_filter_all(reader)
        guard archive_read_open_filename(reader, url.path, 1 << 20) == ARCHIVE_OK else {
            throw CoopError(.io, "read \(url.path)", cause: String(cString: archive_error_string(reader)))
        }
        var entry: OpaquePointer?
        while archive_read_next_header(reader, &entry) == ARCHIVE_OK, let entry {
            entries += 1
            if coop_ae_is_device(entry) != 0, let name = archive_entry_pathname(entry) {
                var path = String(cString: name)
                if !path.hasPrefix("./") { path = "./" + (path.hasPrefix("/") ? String(path.dropFirst()) : path) }
                devices.append(path)
            }
        }
    }
}
