import CoopFormats
import CoopRuntime
import CoopSupport
import CoopSystem
import CoopTrust
import Foundation
import Testing

@Suite("Signatures, checksums and id ranges")
struct TrustTests {
    static let build = TestHost.fixtures.appendingPathComponent(
        "www/good/images/busybox/1.36/amd64/default/20251129_00:00")

    @Test("A good detached signature from the pinned key verifies", .enabled(if: TestHost.ready(.fixtures)))
    func goodSignature() throws {
        let verifier = try SignatureVerifier(keyring: TestHost.signerKey, fingerprint: TestHost.signerFingerprint)
        try verifier.verify(
            file: Self.build.appendingPathComponent("rootfs.tar.xz"),
            signature: Self.build.appendingPathComponent("rootfs.tar.xz.asc"), name: "rootfs.tar.xz")
    }

    @Test(
        "Changed data does not verify, and the error names file, key and fix", .enabled(if: TestHost.ready(.fixtures)))
    func tamperedData() throws {
        let verifier = try SignatureVerifier(keyring: TestHost.signerKey, fingerprint: TestHost.signerFingerprint)
        let signature = try Data(contentsOf: Self.build.appendingPathComponent("meta.tar.xz.asc"))
        var data = try Data(contentsOf: Self.build.appendingPathComponent("meta.tar.xz"))
        data[data.count / 2] ^= 0xff
        let error = #expect(throws: CoopError.self) {
            try verifier.verify(data: data, signature: signature, name: "meta.tar.xz")
        }
        #expect(error?.code == .verification)
        #expect(error?.what == "signature of meta.tar.xz")
        #expect(error?.cause.contains("signer.asc") == true)
        #expect(error?.fix != nil)
    }

    @Test("A signature by another key does not verify", .enabled(if: TestHost.ready(.fixtures)))
    func wrongKey() throws {
        let verifier = try SignatureVerifier(keyring: TestHost.signerKey, fingerprint: TestHost.signerFingerprint)
        let wrong = TestHost.fixtures.appendingPathComponent(
            "www/wrongkey/images/busybox/1.36/amd64/default/20251129_00:00")
        #expect(throws: CoopError.self) {
            try verifier.verify(
                file: wrong.appendingPathComponent("rootfs.tar.xz"),
                signature: wrong.appendingPathComponent("rootfs.tar.xz.asc"), name: "rootfs.tar.xz")
        }
    }

    @Test("A key file that does not hold the pinned fingerprint is refused", .enabled(if: TestHost.ready(.fixtures)))
    func keyNotPinned() throws {
        let error = #expect(throws: CoopError.self) {
            _ = try SignatureVerifier(keyring: TestHost.wrongKey, fingerprint: TestHost.signerFingerprint)
        }
        #expect(error?.cause.contains("pinned") == true)
    }

    @Test("Verifying leaves no gpg-agent and no private GnuPG home behind", .enabled(if: TestHost.ready(.fixtures)))
    func noAgentLeft() throws {
        var home = URL(fileURLWithPath: "/")
        do {
            let verifier = try SignatureVerifier(keyring: TestHost.signerKey, fingerprint: TestHost.signerFingerprint)
            try verifier.verify(
                file: Self.build.appendingPathComponent("meta.tar.xz"),
                signature: Self.build.appendingPathComponent("meta.tar.xz.asc"), name: "meta.tar.xz")
            home = verifier.home
            #expect(FileManager.default.fileExists(atPath: home.appendingPathComponent("gpg.conf").path))
        }
        #expect(!FileManager.default.fileExists(atPath: home.path))
        for process in try FileManager.default.contentsOfDirectory(atPath: "/proc") where Int(process) != nil {
            let command = (try? String(contentsOfFile: "/proc/\(process)/cmdline", encoding: .utf8)) ?? ""
            #expect(!command.contains(home.path))
        }
    }

    @Test(
        "A private GnuPG home left by a killed coop is removed by the next one", .enabled(if: TestHost.ready(.fixtures))
    )
    func abandonedHomeRemoved() throws {
        // A pid above the kernel's pid_max (4194304) can never be alive.
        let stale = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("coop-gnupg-9999999-abcdef")
        try FileManager.default.createDirectory(at: stale, withIntermediateDirectories: true)
        let verifier = try SignatureVerifier(keyring: TestHost.signerKey, fingerprint: TestHost.signerFingerprint)
        #expect(!FileManager.default.fileExists(atPath: stale.path))
        #expect(FileManager.default.fileExists(atPath: verifier.home.path), "the live home stays")
    }

    @Test("SHA256SUMS is checked for the files it names")
    func checksumList() throws {
        let list = ChecksumList(text: "abc  rootfs.tar.xz\ndef *meta.tar.xz\n")
        try list.check(name: "rootfs.tar.xz", sha256: "abc")
        try list.check(name: "other", sha256: "zzz")
        #expect(throws: CoopError.self) { try list.check(name: "meta.tar.xz", sha256: "abc") }
    }

    @Test("sha256 of a known text")
    func sha256() throws {
        let file = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("coop-sha-\(UUID())")
        try Data("abc".utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        #expect(
            try SHA256Hasher.hash(files: [file]) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test("Subordinate id ranges are read by user name, and lxc.idmap lines round-trip")
    func idRanges() throws {
        let folder = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("coop-ids-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let name = String(cString: getpwuid(getuid())!.pointee.pw_name)
        try "other:1:2\n\(name):200000:65536\n".write(
            to: folder.appendingPathComponent("subuid"), atomically: true, encoding: .utf8)
        try "\(name):300000:65536\n".write(
            to: folder.appendingPathComponent("subgid"), atomically: true, encoding: .utf8)
        let map = try IDMap.forCurrentUser(
            subuid: folder.appendingPathComponent("subuid").path, subgid: folder.appendingPathComponent("subgid").path)
        #expect(map == IDMap(uidStart: 200_000, gidStart: 300_000, count: 65_536))
        var config = LXCConfig()
        try config.append(.init(kind: .user, containerID: 0, hostID: map.uidStart, count: map.count))
        try config.append(.init(kind: .group, containerID: 0, hostID: map.gidStart, count: map.count))
        let text = try config.formatted()
        #expect(text == "lxc.idmap = u 0 200000 65536\nlxc.idmap = g 0 300000 65536\n")
        let read = LXCConfig(parsing: text)
        #expect(read.rootMapping(.user)?.hostID == 200_000 && read.rootMapping(.group)?.hostID == 300_000)
    }

    @Test("More ranges for a user: one new entry at the same start in both files, then each range of 65536 in order")
    func moreRanges() throws {
        let folder = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("coop-ranges-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let name = String(cString: getpwuid(getuid())!.pointee.pw_name)
        let subuid = folder.appendingPathComponent("subuid").path
        let subgid = folder.appendingPathComponent("subgid").path
        try "\(name):100000:65536\nother:165536:65536\n".write(toFile: subuid, atomically: true, encoding: .utf8)
        try "other:100000:65536\n\(name):165536:65536\n".write(toFile: subgid, atomically: true, encoding: .utf8)
        let said = try HostSetup.giveRanges(user: name, id: getuid(), ranges: 3, subuid: subuid, subgid: subgid)
        #expect(said.allSatisfy { $0.contains("gave \(name) 231072-362143") }, "\(said)")
        let maps = IDMap.ranges(of: name, id: getuid(), subuid: subuid, subgid: subgid)
        #expect(
            maps == [
                IDMap(uidStart: 100_000, gidStart: 165_536, count: 65_536),
                IDMap(uidStart: 231_072, gidStart: 231_072, count: 65_536),
                IDMap(uidStart: 296_608, gidStart: 296_608, count: 65_536),
            ], "\(maps)")
        // Asked again: it has them, and nothing is added.
        let again = try HostSetup.giveRanges(user: name, id: getuid(), ranges: 3, subuid: subuid, subgid: subgid)
        #expect(again.allSatisfy { $0.contains("has") && $0.contains("2 more ranges") }, "\(again)")
        #expect(try String(contentsOfFile: subuid, encoding: .utf8).split(separator: "\n").count == 3)
        // An isolated fleet's holder maps them all: ranges that follow each other on the host are one line.
        let helpers = maps[0].helperArguments(hostUser: 1000, hostGroup: 1000, mapOwner: false, more: Array(maps[1...]))
        #expect(helpers.uid == ["newuidmap", "0", "100000", "65536", "65536", "231072", "131072"], "\(helpers.uid)")
        #expect(helpers.gid == ["newgidmap", "0", "165536", "65536", "65536", "231072", "131072"], "\(helpers.gid)")
    }
}
