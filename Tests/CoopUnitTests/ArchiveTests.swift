import CoopArchive
import CoopSupport
import Foundation
import Testing

/// libarchive behind `ArchiveReader` and `ArchiveWriter`, and the errors its failures become.
@Suite("Archives")
struct ArchiveTests {
    /// A tar with a folder, two files and a symbolic link, as `ArchiveWriter` writes it.
    static func writeSample(to url: URL, filter: ArchiveWriter.Filter = .none) throws {
        let writer = try ArchiveWriter(file: url, format: .gnuTar, filter: filter)
        try writer.addDirectory("./etc", .init(mode: 0o755, modified: 1_700_000_000))
        try writer.addFile(
            "./etc/hostname", data: Data("box\n".utf8), .init(mode: 0o600, modified: 1_700_000_000, uid: 7, gid: 8))
        try writer.addSymlink("./etc/name", target: "hostname")
        try writer.addFile("./big", data: Data(repeating: 0x61, count: 300_000))
        try writer.close()
    }

    @Test(
        "An archive written by ArchiveWriter reads back with its entries, data and symbolic link",
        arguments: [ArchiveWriter.Filter.none, .xz, .zstd(level: 3, threads: 2)])
    func roundTrip(filter: ArchiveWriter.Filter) throws {
        let scratch = try Scratch()
        let url = scratch.root.appendingPathComponent("sample.tar")
        try Self.writeSample(to: url, filter: filter)

        let reader = try ArchiveReader(file: url)
        let folder = try #require(try reader.next())
        #expect(folder.path == "./etc/" || folder.path == "./etc")
        #expect(folder.kind == .directory && folder.permissions == 0o755)

        let file = try #require(try reader.next())
        #expect(file.path == "./etc/hostname" && file.kind == .file && file.size == 4)
        #expect(file.permissions == 0o600 && file.uid == 7 && file.gid == 8)
        #expect(try reader.data(limit: 1024) == Data("box\n".utf8))

        let link = try #require(try reader.next())
        #expect(link.path == "./etc/name" && link.kind == .symlink && link.symlink == "hostname")

        let big = try #require(try reader.next())
        #expect(big.size == 300_000 && !big.isDevice)
        var total = 0
        var buffer = [UInt8](repeating: 0, count: 65536)
        while case let count = try buffer.withUnsafeMutableBytes({ try reader.read(into: $0) }), count > 0 {
            #expect(buffer[..<count].allSatisfy { $0 == 0x61 })
            total += count
        }
        #expect(total == 300_000)
        #expect(try reader.next() == nil)
    }

    @Test("An archive written to a descriptor reads back from a descriptor, block by block or skipped")
    func descriptors() throws {
        let scratch = try Scratch()
        let url = scratch.root.appendingPathComponent("sample.tar")
        let output = open(url.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        try #require(output >= 0)
        let writer = try ArchiveWriter(fd: output, format: .paxTar, role: ArchiveRole("sample"))
        try writer.addFile("a", data: Data(repeating: 1, count: 100_000))
        try writer.addFile("b", data: Data("second".utf8))
        try writer.close()
        close(output)

        let input = open(url.path, O_RDONLY | O_CLOEXEC)
        try #require(input >= 0)
        defer { close(input) }
        let reader = try ArchiveReader(fd: input, role: ArchiveRole("sample"))
        #expect(try reader.next()?.path == "a")
        var total = 0
        while let block = try reader.nextBlock() {
            #expect(block.offset == Int64(total))
            total += block.bytes.count
        }
        #expect(total == 100_000)
        #expect(try reader.next()?.path == "b")
        try reader.skipData()
        #expect(try reader.next() == nil)
    }

    @Test("An entry larger than the reader's limit is refused before it is read; one at the limit is read")
    func entryLimit() throws {
        let scratch = try Scratch()
        let url = scratch.root.appendingPathComponent("sample.tar")
        try Self.writeSample(to: url)
        let reader = try ArchiveReader(file: url)
        while let entry = try reader.next(), entry.path != "./big" {}
        #expect(try reader.data(limit: 299_999) == nil)

        let again = try ArchiveReader(file: url)
        while let entry = try again.next(), entry.path != "./big" {}
        #expect(try again.data(limit: 300_000)?.count == 300_000)
    }

    @Test(
        "A truncated archive fails with an error of the archive's role that names it and says it is truncated",
        arguments: [ArchiveWriter.Filter.none, .xz])
    func truncated(filter: ArchiveWriter.Filter) throws {
        let scratch = try Scratch()
        let url = scratch.root.appendingPathComponent("sample.tar")
        try Self.writeSample(to: url, filter: filter)
        let bytes = try Data(contentsOf: url)
        try bytes.prefix(bytes.count / 2).write(to: url)

        let role = ArchiveRole("download \(url.path)", damaged: .verification, fix: "fetch it again")
        let error = try #require(throws: CoopError.self) {
            let reader = try ArchiveReader(file: url, role: role)
            while try reader.next() != nil { _ = try reader.data(limit: 1 << 20) }
        }
        #expect(error.code == .verification, "\(error)")
        #expect(error.what.hasPrefix("download \(url.path)"), "\(error)")
        #expect(error.cause.hasPrefix("cannot be read: "), "\(error)")
        #expect(error.fix == "the archive is truncated: fetch it again", "\(error)")
    }

    @Test("An archive that cannot be created is an I/O error naming the file and the system's reason")
    func unwritable() throws {
        let scratch = try Scratch()
        let url = scratch.root.appendingPathComponent("missing/sample.tar")
        let error = try #require(throws: CoopError.self) {
            try ArchiveWriter(file: url, format: .gnuTar, filter: .xz)
        }
        #expect(error.code == .io && error.what == url.path, "\(error)")
        #expect(error.cause.contains("errno \(ENOENT)"), "\(error)")
    }

    @Test("ZstdCompressor writes the file's bytes as one zstd frame")
    func zstd() throws {
        let scratch = try Scratch()
        let source = scratch.root.appendingPathComponent("rootfs.tar")
        try Self.writeSample(to: source)
        let target = scratch.root.appendingPathComponent("rootfs.tar.zst")
        try ZstdCompressor.compress(source, to: target)
        let compressed = try Data(contentsOf: target)
        #expect(compressed.prefix(4) == Data([0x28, 0xB5, 0x2F, 0xFD]))
        #expect(compressed.count < (try Data(contentsOf: source)).count / 10)
    }
}
