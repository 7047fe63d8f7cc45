import CoopRootfs
import CoopSystem
import Foundation
import Testing

/// The unpacking child, run on hostile archives. As root it shifts ownership by the range; as an
/// ordinary user the same code runs inside the user namespace (see the create tests).
@Suite("Safe extraction")
struct ExtractionTests {
    static let malicious = TestHost.fixtures.appendingPathComponent("malicious")

    /// Runs `coop __extract` on an archive into a fresh folder; returns the result and the folder.
    func extract(_ archive: String, in sandbox: Sandbox, shift: IDMap? = IDMap.rootDefault) throws -> (CoopResult, URL)
    {
        let rootfs = sandbox.root.appendingPathComponent("rootfs")
        let request = ExtractionRequest(destination: rootfs.path, shift: shift, idCount: 65_536)
        let json = String(decoding: try JSONEncoder().encode(request), as: UTF8.self)
        let process = Process()
        process.executableURL = TestHost.binary
        process.arguments = ["__extract", json]
        process.standardInput = try FileHandle(forReadingFrom: Self.malicious.appendingPathComponent(archive))
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (
            CoopResult(
                status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                stderr: String(decoding: stderr, as: UTF8.self)), rootfs
        )
    }

    @Test(
        "Entries that climb out of the rootfs are refused, and nothing lands outside it",
        .enabled(if: TestHost.ready(.root, .fixtures)),
        arguments: [
            ("dotdot.tar", "../escape-dotdot"),
            ("absolute.tar", "/tmp/coop-escape-absolute"),
            ("symlink-escape.tar", "/tmp/coop-escape-symlink"),
            ("symlink-escape-rel.tar", "/tmp/coop-escape-symlink-rel"),
            ("hardlink-escape.tar", "stolen"),
            ("hardlink-dotdot.tar", "stolen"),
            ("dotdot.tar.xz", "../escape-dotdot"),
        ])
    func refusesEscapes(archive: String, escape: String) throws {
        for leftover in ["/tmp/coop-escape-absolute", "/tmp/coop-escape-symlink", "/tmp/coop-escape-symlink-rel"] {
            unlink(leftover)
        }
        let sandbox = try Sandbox(asUser: false)
        let (result, rootfs) = try extract(archive, in: sandbox)
        #expect(result.status == 6, "\(result)")
        #expect(result.stderr.contains("unsafeArchive") || result.stderr.contains("\"code\":6"), "\(result)")
        let target = escape.hasPrefix("/") ? escape : rootfs.appendingPathComponent(escape).standardized.path
        if escape == "stolen" {
            // A hard link to the host's /etc/shadow must not exist inside the rootfs.
            #expect(!FileManager.default.fileExists(atPath: rootfs.appendingPathComponent("stolen").path))
        } else {
            #expect(!FileManager.default.fileExists(atPath: target), "\(target) was written")
        }
    }

    @Test("Device nodes are skipped and reported, never created", .enabled(if: TestHost.ready(.root, .fixtures)))
    func skipsDevices() throws {
        let sandbox = try Sandbox(asUser: false)
        let (result, rootfs) = try extract("device.tar", in: sandbox)
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout.contains("./dev/evil"), "\(result)")
        #expect(!FileSystemProbe.exists(rootfs.appendingPathComponent("dev/evil")))
        #expect(FileManager.default.fileExists(atPath: rootfs.appendingPathComponent("etc/ok").path))
    }

    @Test(
        "As root, ownership is shifted into the range: 0 becomes its first id",
        .enabled(if: TestHost.ready(.root, .fixtures))
    )
    func shiftsOwnership() throws {
        let sandbox = try Sandbox(asUser: false)
        let (result, rootfs) = try extract("device.tar", in: sandbox)
        #expect(result.status == 0, "\(result)")
        var info = stat()
        #expect(stat(rootfs.appendingPathComponent("etc/ok").path, &info) == 0)
        #expect(info.st_uid == IDMap.rootDefault.uidStart)
        #expect(info.st_gid == IDMap.rootDefault.gidStart)
        #expect(stat(rootfs.path, &info) == 0)
        #expect(info.st_uid == IDMap.rootDefault.uidStart)
    }
}

enum FileSystemProbe {
    static func exists(_ url: URL) -> Bool {
        var info = stat()
        return lstat(url.path, &info) == 0
    }
}
