import CoopFormats
import CoopSupport
import Foundation
import Testing

@testable import CoopPublish

/// The index formats have one model each, shared by the reader and by `coop publish`: what one writes,
/// the other reads, and neither takes a field outside the grammar.
@Suite("Index models")
struct IndexModelTests {
    static let line = LXCIndexLine(
        distro: "debian", release: "bookworm", arch: "amd64", variant: "default", build: "20251129_00:00",
        path: "/images/debian/bookworm/amd64/default/20251129_00:00/")

    static func published(_ distro: String, _ release: String, _ build: String, digit: Character) -> PublishedBuild {
        PublishedBuild(
            distro: distro, release: release, arch: "amd64", variant: "default", build: build,
            rootfsSHA256: String(repeating: digit, count: 64), rootfsSize: 1000,
            metaSHA256: String(repeating: "b", count: 64), metaSize: 10,
            combinedSHA256: String(repeating: "c", count: 64))
    }

    @Test("An LXC index line reads back as written, alone and in an index")
    func lxcLineRoundTrip() throws {
        let other = LXCIndexLine(
            distro: "busybox", release: "1.36", arch: "arm64", variant: "default", build: "20240101_05:24",
            path: "images/busybox")
        #expect(try LXCIndexLine(parsing: try Self.line.formatted()) == Self.line)
        let text = try LXCIndex.text(of: [Self.line, other])
        #expect(text == (try Self.line.formatted()) + "\n" + (try other.formatted()) + "\n")
        #expect(try LXCIndex.lines(of: text, source: "t") == [Self.line, other])
        let build = try #require(try LXCIndex.parse(text, source: "t").last)
        #expect(build.folder == "images/busybox/")
        #expect(build.files.map(\.path) == ["images/busybox/meta.tar.xz", "images/busybox/rootfs.tar.xz"])
    }

    @Test(
        "The LXC index writer refuses a field the reader would refuse",
        arguments: [
            (1, "bookworm;x", "release"), (3, "default\nx;y", "variant"), (4, "latest", "build"),
            (5, "/images/../../etc/", "path"),
        ])
    func lxcWriterRefuses(position: Int, value: String, name: String) {
        var fields = [Self.line.distro, Self.line.release, Self.line.arch, Self.line.variant, Self.line.build]
        fields.append(Self.line.path)
        fields[position] = value
        let line = LXCIndexLine(
            distro: fields[0], release: fields[1], arch: fields[2], variant: fields[3], build: fields[4],
            path: fields[5])
        let issue = #expect(throws: IndexField.Issue.self) { try line.formatted() }
        #expect(issue?.field == name)
    }

    @Test("Simplestreams products and index read back as written")
    func simplestreamsRoundTrip() throws {
        let item = Simplestreams.Products.Item(
            ftype: "lxd.tar.xz", path: "images/x/meta.tar.xz", sha256: String(repeating: "b", count: 64), size: 10,
            combinedSHA256: String(repeating: "c", count: 64), combinedRootxzSHA256: String(repeating: "c", count: 64))
        let products = Simplestreams.Products(products: [
            "debian:bookworm:amd64:default": .init(
                aliases: "debian/bookworm/default", arch: "amd64", os: "Debian", release: "bookworm",
                releaseTitle: "bookworm", variant: "default",
                versions: [
                    "20251129_00:00": .init(items: [
                        "lxd.tar.xz": item,
                        "root.tar.xz": .init(ftype: "root.tar.xz", path: "images/x/rootfs.tar.xz", size: 1000),
                    ])
                ]),
            "busybox:1.36:amd64:default": .init(versions: nil),
        ])
        let data = try Simplestreams.encoded(products)
        #expect(try JSONDecoder().decode(Simplestreams.Products.self, from: data) == products)
        #expect(String(decoding: data, as: UTF8.self).contains(#""combined_rootxz_sha256" : "ccc"#))
        let index = Simplestreams.Index(index: [
            "images": .init(
                datatype: "image-downloads", path: "streams/v1/images.json", format: "products:1.0",
                products: ["debian:bookworm:amd64:default"])
        ])
        #expect(try JSONDecoder().decode(Simplestreams.Index.self, from: try Simplestreams.encoded(index)) == index)
    }

    @Test("What coop publish writes, both readers read: the same builds, sha256s, sizes and fingerprints")
    func publishedIndexesReadBack() throws {
        let builds = [
            Self.published("debian", "bookworm", "20251129_00:00", digit: "a"),
            Self.published("debian", "bookworm", "20251230_00:00", digit: "d"),
            Self.published("debian", "trixie", "20251129_00:00", digit: "e"),
        ]
        let indexes = try Publisher.indexes(of: builds)
        let productsPath = try Simplestreams.productsPath(
            fromIndex: try Simplestreams.encoded(indexes.index), source: "index.json")
        #expect(productsPath == Simplestreams.productsPath)
        let streams = try Simplestreams.parseProducts(
            try Simplestreams.encoded(indexes.products), source: "images.json")
        let lxc = try LXCIndex.parse(indexes.lxc, source: "index-system")
        #expect(streams.count == 3 && lxc.count == 3)
        for published in builds {
            let reference = ImageReference(
                distro: published.distro, release: published.release, arch: published.arch,
                variant: published.variant)
            let fromStreams = try #require(streams.first { $0.matches(reference) && $0.build == published.build })
            let rootfs = try #require(fromStreams.files.first { $0.name == "rootfs.tar.xz" })
            #expect(rootfs.path == published.path + "/rootfs.tar.xz")
            #expect(rootfs.sha256 == published.rootfsSHA256 && rootfs.size == published.rootfsSize)
            #expect(fromStreams.files.first { $0.name == "meta.tar.xz" }?.sha256 == published.metaSHA256)
            #expect(fromStreams.combinedSHA256 == published.combinedSHA256)
            let fromLXC = try #require(lxc.first { $0.matches(reference) && $0.build == published.build })
            #expect(fromLXC.folder == "/" + published.path + "/")
        }
        // The default variant is also known without it, as LXD's clients ask for it.
        let aliases = indexes.products.products.mapValues { $0.aliases ?? "" }
        #expect(aliases["debian:bookworm:amd64:default"] == "debian/bookworm/default,debian/bookworm", "\(aliases)")
        var slim = Self.published("debian", "bookworm", "20251129_00:00", digit: "a")
        slim.variant = "slim"
        #expect(slim.aliases == "debian/bookworm/slim")
    }

    @Test("A published build whose names the grammar refuses is refused before any index is written")
    func publishRefusesBadNames() {
        let bad = Self.published("Debian", "bookworm", "20251129_00:00", digit: "a")
        let issue = #expect(throws: IndexField.Issue.self) { try Publisher.indexes(of: [bad]) }
        #expect(issue?.field == "distro")
    }
}
