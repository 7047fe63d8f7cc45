import ArgumentParser
import CoopFetch
import CoopFormats
import CoopStore
import CoopSupport
import Foundation

/// `coop image import`: images made elsewhere, as cache entries of the remote `local`.
struct ImageCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "image", abstract: "Images made elsewhere (LXD, Incus).", subcommands: [ImageImportCommand.self])
}

struct ImageImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Add an image that LXD or Incus exported to the cache, as local:DISTRO/RELEASE/ARCH/VARIANT.",
        discussion: """
            FILE is what 'lxc image export' wrote: a unified image (metadata.yaml, templates/ and rootfs/ in one \
            tarball), or the metadata tarball of a split image, with its rootfs (a tarball or squashfs) as ROOTFS. \
            The image is named by its own properties (os, release, architecture, variant); then \
            'coop create NAME local:DISTRO/RELEASE' makes containers of it, with its templates applied.
            """)

    @Argument(help: "The unified image, or the metadata tarball of a split image.")
    var file: String
    @Argument(help: "The rootfs of a split image (tarball or squashfs).")
    var rootfs: String?

    func run() throws {
        let entry = try Self.importImage(file, rootfs: rootfs, environment: try Environment())
        print(entry.reference.description)
    }

    /// Imports and says what came in (on stderr): for `image import` and `create NAME FILE`.
    static func importImage(_ file: String, rootfs: String?, environment: Environment) throws -> CacheEntry {
        let entry = try ImageImport(store: environment.store).run(
            URL(fileURLWithPath: file), rootfs: rootfs.map { URL(fileURLWithPath: $0) })
        Console.status(
            "imported \(Console.escaped(file)) as \(entry.reference) build \(entry.build) (not signed: your own file)")
        return entry
    }
}
