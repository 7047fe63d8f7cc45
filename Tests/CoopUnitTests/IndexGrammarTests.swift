import CoopFormats
import CoopSupport
import Foundation
import Testing

/// Index data from a hostile network or mirror: the grammar of every field, checked before the value
/// reaches a path, a config line or a terminal.
@Suite("Index field grammar")
struct IndexGrammarTests {
    @Test(
        "LXC index lines with a newline, ';', '..', '%'-escape, escape character or loose build id are refused",
        arguments: [
            "busybox;1.36;amd64;default;20251129_00:00;/images/../../etc/",
            "busybox;1.36;amd64;default;20251129_00:00;/images/%2e%2e/%2E%2E/etc/",
            "busybox;1.36;amd64;default;20251129_00:00;/images/a\u{1b}]52;c;aGk=\u{7}/",
            "busybox;1.36;amd64;default;20251129_00:00\r;/images/x/",
            "busybox;1.36;amd64;default;1;/images/x/",
            "busybox;1.36;amd64;default;latest;/images/x/",
            "busybox;1.36;amd64;default;20251399_00:00;/images/x/",
            "busybox;1.36;amd64;de fault;20251129_00:00;/images/x/",
            "Busybox;1.36;amd64;default;20251129_00:00;/images/x/",
            "busybox;1.36;amd64;default;20251129_00:00;/images/x/;lxc.hook.pre-start=/bin/sh",
            "busybox;1.36\u{1b}[2J;amd64;default;20251129_00:00;/images/x/",
        ])
    func badLXCFields(line: String) throws {
        let error = try #require(throws: CoopError.self) {
            try LXCIndex.parse(line, source: "index-user", remote: "evil")
        }
        #expect(error.code == .verification)
        let text = "\(error.what) \(error.cause) \(error.fix ?? "")"
        #expect(text.contains("remote 'evil'"))
        #expect(text.contains("field "))
        // The value is shown escaped: no control character reaches the terminal.
        #expect(!text.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7f })
    }

    @Test(
        "Simplestreams version keys, product keys, paths and hashes outside the grammar are refused",
        arguments: [
            ("busybox:1.36:amd64:default", "20251129_00:00\nlxc.hook.pre-start = /tmp/x", "a/rootfs.tar.xz", "version"),
            ("busybox:1.36:amd64:default", "20251129_00:00;x", "a/rootfs.tar.xz", "version"),
            ("busybox:1.36:amd64:default", "..", "a/rootfs.tar.xz", "version"),
            ("busybox:1.36:amd64:default\nlxc.x=1", "20251129_00:00", "a/rootfs.tar.xz", "variant"),
            ("busybox:../..:amd64:default", "20251129_00:00", "a/rootfs.tar.xz", "release"),
            ("busybox:1.36:amd64:default", "20251129_00:00", "a/%2e%2e/rootfs.tar.xz", "path"),
            ("busybox:1.36:amd64:default", "20251129_00:00", "../rootfs.tar.xz", "path"),
        ])
    func badSimplestreamsFields(product: String, version: String, path: String, field: String) throws {
        let item: [String: Any] = ["ftype": "root.tar.xz", "path": path, "sha256": String(repeating: "a", count: 64)]
        let meta: [String: Any] = [
            "ftype": "lxd.tar.xz", "path": "a/meta.tar.xz", "sha256": String(repeating: "b", count: 64),
        ]
        let document: [String: Any] = [
            "products": [product: ["versions": [version: ["items": ["root.tar.xz": item, "lxd.tar.xz": meta]]]]]
        ]
        let data = try JSONSerialization.data(withJSONObject: document)
        let error = try #require(throws: CoopError.self) {
            try Simplestreams.parseProducts(data, source: "images.json", remote: "evil")
        }
        #expect(error.code == .verification)
        #expect(error.cause.contains(field), "\(error)")
        #expect(!"\(error.what) \(error.cause)".unicodeScalars.contains { $0.value < 0x20 })
    }

    @Test("Build ids must be exactly YYYYMMDD_HH:MM of a real time")
    func buildGrammar() {
        #expect(IndexField.isBuild("20240101_05:24"))
        #expect(IndexField.isBuild("99991231_23:59"))
        for bad in ["2024010_05:24", "20240101_5:24", "20240101-05:24", "20241301_05:24", "20240101_25:00", "x"] {
            #expect(!IndexField.isBuild(bad), "\(bad)")
        }
    }

    @Test("A file:// remote never gives an address outside its folder, escaped or not")
    func fileRemoteContainment() throws {
        let remote = Remote(
            name: "f", imageProtocol: .lxc, url: "file:///srv/images", keyring: URL(fileURLWithPath: "/k"),
            fingerprint: nil)
        #expect(try remote.address(of: "/meta/1.0/index-user") == "file:///srv/images/meta/1.0/index-user")
        for path in ["/images/%2e%2e/%2e%2e/etc/passwd", "../etc/passwd", "/images/%2E%2E/x", "a/%2f/b"] {
            #expect(throws: CoopError.self, "\(path)") { try remote.address(of: path) }
        }
    }
}
