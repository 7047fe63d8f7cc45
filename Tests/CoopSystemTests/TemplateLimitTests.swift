import CoopArchive
import CoopContainer
import CoopFormats
import CoopRootfs
import CoopSupport
import CoopSystem
import Foundation
import Testing

/// The image's templates are filled in by the unpacker, which reads each at most up to a limit.
@Suite("Template limits")
struct TemplateLimitTests {
    @Test(
        "A template file larger than the limit fails the unpack; one within it is filled in",
        .enabled(if: TestHost.ready(.root)))
    func templateBound() throws {
        let sandbox = try Sandbox(asUser: false)
        for (size, status) in [(16, Int32(0)), ((1 << 20) + 1, Int32(6))] {
            let content = sandbox.root.appendingPathComponent("content-\(size)")
            try FileManager.default.createDirectory(
                at: content.appendingPathComponent("etc"), withIntermediateDirectories: true)
            try (Data(repeating: 0x61, count: size - 9) + Data("LXC_NAME\n".utf8)).write(
                to: content.appendingPathComponent("etc/hostname"))
            let tar = sandbox.root.appendingPathComponent("rootfs-\(size).tar")
            try #require(try shell("/usr/bin/tar", "-C", content.path, "-cf", tar.path, ".").status == 0)
            let rootfs = sandbox.root.appendingPathComponent("rootfs-\(size)")
            let request = ExtractionRequest(
                destination: rootfs.path, shift: IDMap.rootDefault, idCount: 65_536, templates: ["etc/hostname"],
                templateValues: ["LXC_NAME": "c1"])
            let json = String(decoding: try JSONEncoder().encode(request), as: UTF8.self)
            let result = try shell(
                "/bin/sh", "-c", "exec \"$0\" __extract \"$1\" < \"$2\"", TestHost.binary.path, json, tar.path)
            #expect(result.status == status, "\(size) bytes: \(result)")
            if status == 0 {
                let text = try String(contentsOf: rootfs.appendingPathComponent("etc/hostname"), encoding: .utf8)
                #expect(text.hasSuffix("c1\n"), "\(text)")
            } else {
                #expect(result.stderr.contains("limit"), "\(result)")
            }
        }
    }
}
