import CoopFormats
import CoopSupport
import Foundation
import Testing

@Suite("Remotes and image indexes")
struct IndexTests {
    @Test("images.index lines give remotes; a relative keyring is relative to the file")
    func parsesRemoteLines() throws {
        let text = """
            # comment
            images;lxc;https://images.linuxcontainers.org/;keys/linuxcontainers.asc;E7FB0CAEC8173D669066514CBAEFF88C22F6E216
            local;simplestreams;file:///srv/images;/etc/coop/local.asc
            """
        let remotes = try RemoteCatalog.parse(text: text, source: "t", relativeTo: URL(fileURLWithPath: "/opt/coop"))
        #expect(remotes.count == 2)
        #expect(remotes[0].url == "https://images.linuxcontainers.org")
        #expect(remotes[0].keyring.path == "/opt/coop/keys/linuxcontainers.asc")
        #expect(remotes[0].fingerprint == "E7FB0CAEC8173D669066514CBAEFF88C22F6E216")
        #expect(remotes[1].imageProtocol == .simplestreams)
        #expect(remotes[1].fingerprint == nil)
        #expect(
            try remotes[0].address(of: "/meta/1.0/index-system")
                == "https://images.linuxcontainers.org/meta/1.0/index-system")
    }

    @Test("A remote written as an images.index line reads back as itself; a ';' or newline in it is refused")
    func remoteLineRoundTrip() throws {
        let text = "images;lxc;https://images.example.org;keys/images.asc;E7FB0CAEC8173D669066514CBAEFF88C22F6E216\n"
        let folder = URL(fileURLWithPath: "/opt/coop")
        let remote = try #require(try RemoteCatalog.parse(text: text, source: "t", relativeTo: folder).first)
        let line = try RemoteCatalog.line(of: remote, keyring: "keys/images.asc")
        #expect(line == text)
        let again = try #require(try RemoteCatalog.parse(text: line, source: "t", relativeTo: folder).first)
        #expect(again.url == remote.url && again.fingerprint == remote.fingerprint && again.keyring == remote.keyring)
        for bad in ["a;b", "a\nlxc.hook = x"] {
            var evil = remote
            evil.url = "https://x.example/" + bad
            #expect(throws: CoopError.self) { try RemoteCatalog.line(of: evil, keyring: "k.asc") }
        }
    }

    @Test(
        "A malformed images.index line is refused with its line number",
        arguments: [
            "x;lxc;https://a",
            "x;ftp;https://a;k.asc",
            "x;lxc;gopher://a;k.asc",
            "x;lxc;https://a;k.asc;ABCD",
        ])
    func refusesBadRemoteLine(line: String) {
        let error = #expect(throws: CoopError.self) {
            try RemoteCatalog.parse(text: "\n" + line, source: "images.index", relativeTo: URL(fileURLWithPath: "/"))
        }
        #expect(error?.what == "images.index line 2")
    }

    @Test("The shipped images.index pins the linuxcontainers.org key, which is in keys/")
    func shippedCatalog() throws {
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let remotes = try RemoteCatalog.parse(file: repository.appendingPathComponent("images.index"))
        let images = try RemoteCatalog(remotes: remotes).remote(named: nil)
        #expect(images.name == "images")
        #expect(images.imageProtocol == .lxc)
        #expect(images.url == "https://images.linuxcontainers.org")
        #expect(images.fingerprint == "E7FB0CAEC8173D669066514CBAEFF88C22F6E216")
        #expect(FileManager.default.fileExists(atPath: images.keyring.path))
    }

    @Test("An unknown remote names the known ones and the fix")
    func unknownRemote() {
        let error = #expect(throws: CoopError.self) { try RemoteCatalog(remotes: []).remote(named: "nope") }
        #expect(error?.code == .notFound)
        #expect(error?.fix?.contains("images.index") == true)
    }

    @Test("LXC index lines resolve to the newest build of the asked image")
    func lxcIndex() throws {
        let text = """
            debian;bookworm;amd64;default;20240101_05:24;/images/debian/bookworm/amd64/default/20240101_05:24/
            debian;bookworm;amd64;default;20240102_05:24;/images/debian/bookworm/amd64/default/20240102_05:24/
            debian;bookworm;arm64;default;20240103_05:24;/images/debian/bookworm/arm64/default/20240103_05:24/
            """
        let builds = try LXCIndex.parse(text, source: "index")
        let newest = try #require(
            builds.newest(matching: ImageReference(distro: "debian", release: "bookworm", arch: "amd64")))
        #expect(newest.build == "20240102_05:24")
        #expect(newest.files.map(\.path).contains("/images/debian/bookworm/amd64/default/20240102_05:24/rootfs.tar.xz"))
        #expect(LXCIndex.indexPath(privileged: true) == "meta/1.0/index-system")
        #expect(LXCIndex.indexPath(privileged: false) == "meta/1.0/index-user")
    }

    @Test(
        "An LXC index that climbs out of the tree or has the wrong shape is refused",
        arguments: [
            "debian;bookworm;amd64;default;1;/images/../../etc/",
            "debian;bookworm;amd64;default;/images/x/",
            "debian;..;amd64;default;1;/images/x/",
        ])
    func badLXCIndex(line: String) {
        #expect(throws: CoopError.self) { try LXCIndex.parse(line, source: "index") }
    }

    @Test("Simplestreams products give builds with sha256, size and the combined fingerprint")
    func simplestreams() throws {
        let index =
            #"{"format":"index:1.0","index":{"images":{"datatype":"image-downloads","path":"streams/v1/images.json"}}}"#
        #expect(try Simplestreams.productsPath(fromIndex: Data(index.utf8), source: "i") == "streams/v1/images.json")
        let products = #"""
            {"format":"products:1.0","products":{"debian:bookworm:amd64:default":{"arch":"amd64","versions":{
              "20240101_05:24":{"items":{
                "root.tar.xz":{"ftype":"root.tar.xz","path":"images/d/b/root.tar.xz","sha256":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","size":10},
                "lxd.tar.xz":{"ftype":"lxd.tar.xz","path":"images/d/b/lxd.tar.xz","sha256":"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb","size":2,
                              "combined_rootxz_sha256":"cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"}}}}}}}
            """#
        let builds = try Simplestreams.parseProducts(Data(products.utf8), source: "p")
        let build = try #require(builds.first)
        #expect(build.build == "20240101_05:24")
        #expect(build.combinedSHA256 == String(repeating: "c", count: 64))
        #expect(build.files.first { $0.name == "rootfs.tar.xz" }?.sha256 == String(repeating: "a", count: 64))
        #expect(build.files.first { $0.name == "meta.tar.xz" }?.size == 2)
    }

    @Test(
        "Image references parse remote, distro, release, arch and variant",
        arguments: [
            ("debian/bookworm", nil, "debian", "bookworm", ImageReference.hostArchitecture, "default"),
            ("local:debian/trixie/arm64", "local", "debian", "trixie", "arm64", "default"),
            ("debian/bookworm/amd64/cloud", nil, "debian", "bookworm", "amd64", "cloud"),
        ] as [(String, String?, String, String, String, String)])
    func parsesReferences(
        text: String, remote: String?, distro: String, release: String, arch: String, variant: String
    ) throws {
        let reference = try ImageReference(parsing: text)
        #expect(reference.remote == remote)
        #expect(reference.distro == distro)
        #expect(reference.release == release)
        #expect(reference.arch == arch)
        #expect(reference.variant == variant)
    }

    @Test(
        "A reference that could climb out of the cache folder is refused",
        arguments: ["debian", "debian/..", "a/b/c/d/e", "../x"])
    func refusesReference(text: String) {
        #expect(throws: CoopError.self) { try ImageReference(parsing: text) }
    }
}
