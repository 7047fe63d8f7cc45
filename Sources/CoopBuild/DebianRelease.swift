import CoopSupport
import Foundation

/// The Debian releases a build can target, and what each needs from apt.
public enum DebianRelease {
    /// Releases on the normal mirrors (deb.debian.org).
    public static let current = ["bullseye", "bookworm", "trixie", "sid"]
    /// Releases that left the mirrors for the Debian archive (archive.debian.org), oldest first.
    public static let archived = ["wheezy", "jessie", "stretch", "buster"]
    public static let known = archived + current

    public static let defaultMirror = "http://deb.debian.org/debian"
    /// Where archived releases live; their security updates are in `debian-security` beside it.
    public static let archiveMirror = "http://archive.debian.org/debian"
    /// The keys that signed archived releases, retired from the active keyring (`debian-archive-keyring`).
    public static let removedKeys = "/usr/share/keyrings/debian-archive-removed-keys.gpg"
    /// Releases whose glibc calls the kernel's vsyscall page: they crash where the kernel has none.
    public static let needsVsyscall = ["wheezy"]

    /// Whether the kernel gives processes the vsyscall page that the glibc of wheezy and older calls
    /// (`[vsyscall]` in /proc/self/maps; `vsyscall=none` on the kernel command line removes it), and what
    /// was seen.
    public static func vsyscall(maps: String, cmdline: String) -> (present: Bool, detail: String) {
        let mode = cmdline.split(separator: " ").first { $0.hasPrefix("vsyscall=") }.map(String.init)
        if let line = maps.split(separator: "\n").first(where: { $0.hasSuffix("[vsyscall]") }) {
            let permissions = line.split(separator: " ").dropFirst().first.map(String.init) ?? "?"
            return (true, "present (\(permissions)\(mode.map { ", " + $0 } ?? ""))")
        }
        return (
            false,
            "absent (\(mode ?? "the kernel's default")): the glibc of \(needsVsyscall.joined(separator: ", ")) "
                + "and older crashes in a container"
        )
    }

    public static func check(_ release: String) throws {
        guard known.contains(release) else {
            throw CoopError(
                .usage, "release '\(release)'", cause: "is not a Debian release coop builds",
                fix: "use one of: \(known.joined(separator: ", "))")
        }
    }

    public static func isArchived(_ release: String) -> Bool { archived.contains(release) }

    /// The mirror a build uses when none is given.
    public static func mirror(for release: String) -> String {
        isArchived(release) ? archiveMirror : defaultMirror
    }

    /// The security suite of an archived release (they were all named RELEASE/updates).
    public static func securitySuite(_ release: String) -> String? {
        isArchived(release) ? release + "/updates" : nil
    }

    /// apt options a release needs. The Release files of sid (on mirrors that let it lapse) and of every
    /// archived release carry a Valid-Until in the past. Every release: apt retries a failed download a few
    /// times, as mirrors do hiccup.
    public static func aptOptions(_ release: String) -> [String] {
        let expired = release == "sid" || isArchived(release)
        return [#"Acquire::Retries "3""#] + (expired ? [#"Acquire::Check-Valid-Until "false""#] : [])
    }
}

/// What `coop build` hands to mmdebstrap: the sources, keyring and apt options for a release. A value, so
/// that it can be printed (`coop build --dry-run`) and checked without a network.
public struct BuildPlan: Sendable, Equatable {
    public var release: String
    public var mirror: String
    /// The security suite's source line (`deb URL SUITE main`), if the release gets one.
    public var security: String?
    /// Keyrings apt trusts for the sources, besides the active Debian keyring.
    public var keyrings: [String]
    public var aptOptions: [String]
    /// Lines for the user: where each choice came from.
    public var notes: [String]

    /// `mirror` nil: the normal mirror, or the archive for archived releases. A security suite is added for
    /// archived releases from `debian-security` beside the mirror (on the same host, so that a mirror of
    /// one's own, or a dead one, is all a build contacts); `withSecurity` false leaves it out.
    public init(release: String, mirror: String?, withSecurity: Bool = true) throws {
        try DebianRelease.check(release)
        self.release = release
        self.mirror = mirror ?? DebianRelease.mirror(for: release)
        aptOptions = DebianRelease.aptOptions(release)
        keyrings = []
        notes = []
        guard DebianRelease.isArchived(release) else { return }
        // With --keyring mmdebstrap trusts only what it names: the retired keys and the active ones.
        keyrings = [DebianRelease.removedKeys, "/usr/share/keyrings/debian-archive-keyring.gpg"]
        notes.append(
            "\(release) is archived: its Release file is signed by a retired key "
                + "(\(DebianRelease.removedKeys)) and expired (Acquire::Check-Valid-Until false)")
        if mirror == nil { notes.append("mirror: the Debian archive, \(DebianRelease.archiveMirror)") }
        let base = self.mirror.hasSuffix("/") ? String(self.mirror.dropLast()) : self.mirror
        if !withSecurity {
            notes.append("no security suite (--no-security)")
        } else if let suite = DebianRelease.securitySuite(release), base.hasSuffix("/debian") {
            security = "deb \(base)-security \(suite) main"
            notes.append("security: \(suite) from \(base)-security")
        } else {
            notes.append("no security suite: the mirror \(self.mirror) does not end in /debian, so none is known")
        }
    }

    /// The sources mmdebstrap gets after the release and the target: the mirror, then the security suite.
    public var sources: [String] { [mirror] + (security.map { [$0] } ?? []) }

    /// mmdebstrap's options for these sources.
    public var options: [String] {
        keyrings.map { "--keyring=" + $0 } + aptOptions.map { "--aptopt=" + $0 }
    }

    /// Whether what the plan needs is on this machine (the retired keys come with `debian-archive-keyring`).
    public func checkHost() throws {
        for keyring in keyrings where !FileManager.default.fileExists(atPath: keyring) {
            throw CoopError(
                .hostSetup, "keyring \(keyring)", cause: "is missing: \(release) is signed by a retired Debian key",
                fix: "apt-get install debian-archive-keyring")
        }
    }
}
