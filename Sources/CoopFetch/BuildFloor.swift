import CoopFormats
import CoopSupport
import CoopSystem
import Foundation

/// Rollback protection: per remote, the newest build coop has verified of each image. An index that
/// offers an older build than that is refused, so a network or mirror that serves an old (even genuinely
/// signed) index cannot roll an image back.
///
/// Kept in `.verified/REMOTE.json` in the cache, written atomically under a lock. A lost file starts the
/// record over (the next verified fetch begins it again); a file that cannot be read as a record is an
/// error, never silently reset: removing it is the user's decision.
public struct BuildFloor: Sendable {
    public let file: URL
    let lockFile: URL
    let remote: String

    struct Record: Codable {
        var format = 1
        var remote: String
        /// `distro/release/arch/variant` → the newest verified build id.
        var builds: [String: String]
    }

    public init(cache: URL, remote: String) {
        self.remote = remote
        file = cache.appendingPathComponent(".verified").appendingPathComponent("\(remote).json")
        lockFile = cache.appendingPathComponent(".locks").appendingPathComponent("verified-\(remote).lock")
    }

    static func key(_ build: ImageBuild) -> String {
        "\(build.distro)/\(build.release)/\(build.arch)/\(build.variant)"
    }

    static func key(_ reference: ImageReference) -> String {
        "\(reference.distro)/\(reference.release)/\(reference.arch)/\(reference.variant)"
    }

    func read() throws -> Record {
        let data: Data
        do { data = try Data(contentsOf: file) } catch {
            if !FileSystem.exists(file) { return Record(remote: remote, builds: [:]) }
            throw CoopError(
                .io, "record of verified builds \(file.path)", cause: "cannot be read: \(error)",
                wrapping: error)
        }
        guard let record = try? JSONDecoder().decode(Record.self, from: data), record.format == 1,
            record.builds.values.allSatisfy(IndexField.isBuild)
        else {
            throw CoopError(
                .io, "record of verified builds \(file.path)", cause: "is damaged (not a record coop wrote)",
                fix: "remove the file: coop then starts the record over, accepting the next signed build of "
                    + "each image of remote '\(remote)' as the newest it has seen")
        }
        return record
    }

    /// The newest build coop verified of this image, if any.
    public func newest(_ reference: ImageReference) throws -> String? {
        try read().builds[Self.key(reference)]
    }

    /// Refuses `build` if coop has verified a newer build of the same image on this remote.
    public func check(_ build: ImageBuild) throws {
        guard let newest = try read().builds[Self.key(build)], build.build < newest else { return }
        throw CoopError(
            .verification, "image \(Self.key(build)) on remote '\(remote)'",
            cause: "the index offers build \(build.build), older than build \(newest) that coop verified before "
                + "(a rollback to an old index)",
            fix: "try again later, or check the remote or the network between; if the remote really withdrew "
                + "build \(newest), remove its line from \(file.path)")
    }

    /// Records `build` as verified, unless a newer one already is.
    public func record(_ build: ImageBuild) throws {
        let lock = try FileLock(path: lockFile)
        defer { lock.unlock() }
        var record = try read()
        if let newest = record.builds[Self.key(build)], newest >= build.build { return }
        record.builds[Self.key(build)] = build.build
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try FileSystem.createDirectory(file.deletingLastPathComponent())
        try FileSystem.writeAtomically(try encoder.encode(record), to: file)
    }
}
