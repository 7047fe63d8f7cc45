import CoopArchive
import CoopFormats
import CoopStore
import Foundation
import Testing

/// `image.json`, the record of a cached build: one Codable type, read by the store and by imports.
@Suite("Cache entry record")
struct CacheEntryTests {
    @Test("image.json reads back as written, under the names it has on disk")
    func roundTrip() throws {
        let entry = CacheEntry(
            remote: "images", imageProtocol: .simplestreams, distro: "debian", release: "bookworm", arch: "amd64",
            variant: "default", build: "20251129_00:00", fetchedAt: 1_764_374_400, expiry: 1_767_052_800,
            validity: 2_592_000,
            files: ["rootfs.tar.xz": .init(sha256: String(repeating: "a", count: 64), size: 1000)],
            meta: MetaArchive(files: ["config": "lxc.arch = x86_64\n"]), verifiedBy: nil)
        let data = try entry.encoded()
        let read = try CacheEntry.decoded(from: data)
        #expect(try read.encoded() == data)
        #expect(read.reference == entry.reference && read.meta == entry.meta && read.files == entry.files)
        let fields = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(fields["protocol"] as? String == "simplestreams")
        #expect(fields["folder"] == nil)
    }
}
