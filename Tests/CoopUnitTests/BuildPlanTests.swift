import CoopBuild
import CoopSupport
import Foundation
import Testing

/// What `coop build` hands to mmdebstrap for each release, checked without a network: archived releases from
/// the Debian archive with the retired keys, an expired Release accepted, and a security suite beside the mirror.
@Suite("Build plans")
struct BuildPlanTests {
    @Test(
        "Archived releases: the archive mirror, the retired keys, Check-Valid-Until off, RELEASE/updates",
        arguments: [
            "wheezy", "jessie", "stretch", "buster",
        ])
    func archived(_ release: String) throws {
        let plan = try BuildPlan(release: release, mirror: nil)
        #expect(plan.mirror == DebianRelease.archiveMirror)
        #expect(plan.keyrings.first == "/usr/share/keyrings/debian-archive-removed-keys.gpg")
        #expect(plan.options.contains("--keyring=/usr/share/keyrings/debian-archive-removed-keys.gpg"))
        #expect(plan.options.contains(#"--aptopt=Acquire::Check-Valid-Until "false""#), "\(plan.options)")
        #expect(
            plan.sources == [
                DebianRelease.archiveMirror, "deb \(DebianRelease.archiveMirror)-security \(release)/updates main",
            ])
        let withoutSecurity = try BuildPlan(release: release, mirror: nil, withSecurity: false)
        #expect(withoutSecurity.sources == [DebianRelease.archiveMirror])
    }

    @Test("Current releases: the normal mirror, the active keys, no extra sources; sid accepts an expired Release")
    func current() throws {
        for release in ["bullseye", "bookworm", "trixie"] {
            let plan = try BuildPlan(release: release, mirror: nil)
            #expect(plan.sources == ["http://deb.debian.org/debian"])
            #expect(plan.keyrings.isEmpty && !plan.options.contains { $0.contains("Check-Valid-Until") })
        }
        #expect(try BuildPlan(release: "sid", mirror: nil).options.contains { $0.contains("Check-Valid-Until") })
    }

    @Test("A mirror of one's own: the security suite comes from beside it, never from another host")
    func ownMirror() throws {
        let plan = try BuildPlan(release: "wheezy", mirror: "http://127.0.0.1:1/debian")
        #expect(
            plan.sources == ["http://127.0.0.1:1/debian", "deb http://127.0.0.1:1/debian-security wheezy/updates main"])
        let other = try BuildPlan(release: "jessie", mirror: "http://127.0.0.1:1/mirror")
        #expect(other.sources == ["http://127.0.0.1:1/mirror"])
        #expect(other.notes.contains { $0.contains("no security suite") }, "\(other.notes)")
    }

    @Test("An unknown release is refused with the list of known ones")
    func unknown() throws {
        let error = #expect(throws: CoopError.self) { try BuildPlan(release: "hamm", mirror: nil) }
        #expect(
            error?.fix?.contains("wheezy, jessie, stretch, buster, bullseye") == true, "\(String(describing: error))")
    }

    @Test("vsyscall: present when /proc/self/maps maps it, absent with vsyscall=none")
    func vsyscall() {
        let mapped =
            "7ffd0000-7ffd1000 r-xp 00000000 00:00 0  [vdso]\nffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0  [vsyscall]\n"
        #expect(DebianRelease.vsyscall(maps: mapped, cmdline: "quiet").present)
        let none = DebianRelease.vsyscall(
            maps: "7ffd0000-7ffd1000 r-xp 00000000 00:00 0  [vdso]\n", cmdline: "quiet vsyscall=none")
        #expect(!none.present && none.detail.contains("vsyscall=none") && none.detail.contains("wheezy"), "\(none)")
    }
}
