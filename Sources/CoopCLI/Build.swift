import ArgumentParser
import CoopBuild
import CoopFormats
import CoopPublish
import CoopSupport
import CoopSystem
import CoopTrust
import Foundation

struct Build: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build",
        abstract: "Build an image from the Debian mirror with mmdebstrap.",
        discussion: """
            As root mmdebstrap runs in root mode, as an ordinary user with --mode=unshare. With the same mirror
            state and SOURCE_DATE_EPOCH, two builds give byte-identical rootfs.tar.xz files. Archived releases
            (wheezy, jessie, stretch, buster) come from the Debian archive, signed by retired keys.
            """)

    @Argument(help: "The distribution: debian.")
    var distro: String
    @Argument(help: "The release: bullseye, bookworm, trixie, sid, or archived: wheezy, jessie, stretch, buster.")
    var release: String
    @Argument(help: "The architecture (this machine's).")
    var arch: String?
    @Option(name: .long, help: "default (minbase with an init) or slim (without docs, man pages, locales).")
    var variant: String = "default"
    @Option(name: .long, help: "The Debian mirror (default: deb.debian.org, archive.debian.org for archived releases).")
    var mirror: String?
    @Flag(name: .long, help: "Archived releases: leave out the security suite (RELEASE/updates).")
    var noSecurity = false
    @Flag(name: .long, help: "Print the plan and the mmdebstrap command, and build nothing.")
    var dryRun = false
    @Option(name: .long, help: "More packages, comma-separated.")
    var include: String?
    @Option(name: .long, help: "Where builds go (default: ~/.local/share/coop/builds).")
    var output: String?
    @Option(name: .long, help: "xz (always), or zstd to add rootfs.tar.zst beside rootfs.tar.xz.")
    var compression = "xz"

    func validate() throws {
        guard distro == "debian" else { throw ValidationError("only debian images can be built") }
        guard BuildVariant(rawValue: variant) != nil else { throw ValidationError("--variant is default or slim") }
        guard ["xz", "zstd"].contains(compression) else { throw ValidationError("--compression is xz or zstd") }
    }

    func run() throws {
        let paths = CoopPaths.current()
        let epoch = ProcessInfo.processInfo.environment["SOURCE_DATE_EPOCH"].flatMap(Int.init)
        var request = ImageBuilder.Request(
            release: release, arch: arch ?? ImageReference.hostArchitecture, variant: BuildVariant(rawValue: variant)!,
            mirror: mirror, include: include.map { $0.split(separator: ",").map(String.init) } ?? [],
            output: output.map { URL(fileURLWithPath: $0) } ?? paths.buildsDirectory, sourceDateEpoch: epoch)
        request.zstd = compression == "zstd"
        request.withSecurity = !noSecurity
        let builder = ImageBuilder(request: request)
        if dryRun {
            let plan = try builder.plan()
            for note in plan.notes { print("# " + note) }
            print(builder.command(plan, tar: "ROOTFS.tar").map(Self.quoted).joined(separator: " "))
            return
        }
        let result = try builder.run()
        Console.status("built debian/\(release)/\(request.arch)/\(variant) \(result.build)")
        Console.status(
            String(format: "  rootfs.tar.xz: %.1f MB, %d entries", Double(result.rootfsSize) / 1e6, result.entries))
        for (name, seconds) in result.steps { Console.status(String(format: "  %6.1f s  %@", seconds, name)) }
        print(result.folder.path)
    }
}

extension Build {
    /// A word as a shell reads it back.
    static func quoted(_ word: String) -> String {
        let plain = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%")
        return word.allSatisfy(plain.contains) ? word : "'" + word.replacingOccurrences(of: "'", with: #"'\''"#) + "'"
    }
}

struct Key: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "key",
        abstract: "Your own key for signing the images you publish.", subcommands: [KeyCreate.self, KeyExport.self])
}

struct KeyCreate: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create", abstract: "Make the signing key.")

    @Argument(help: "A name for the key (default: the user's).")
    var name: String?

    func run() throws {
        let keyring = try SigningKeyring(home: CoopPaths.current().signingHome)
        let user = getpwuid(getuid()).map { String(cString: $0.pointee.pw_name) } ?? "coop"
        let fingerprint = try keyring.create(name: name ?? user)
        Console.status("created signing key \(fingerprint) in \(keyring.home.path)")
        print(fingerprint)
    }
}

struct KeyExport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export", abstract: "Write the public key, and print a line for images.index.")

    @Option(name: .long, help: "The file to write (default: stdout).")
    var output: String?
    @Option(name: .long, help: "The remote's name in the images.index line.")
    var remote = "mine"
    @Option(name: .long, help: "The server's URL in the images.index line.")
    var url = "https://images.example.org"

    func run() throws {
        let keyring = try SigningKeyring(home: CoopPaths.current().signingHome)
        let key = try keyring.exportPublic()
        let fingerprint = try keyring.requireKeyFingerprint()
        if let output {
            try FileSystem.writeAtomically(key, to: URL(fileURLWithPath: output))
            Console.status("wrote the public key to \(output); add this line to images.index:")
            print("\(remote);lxc;\(url);\(output);\(fingerprint)")
        } else {
            FileHandle.standardOutput.write(key)
            Console.status("images.index line: \(remote);lxc;\(url);keys/\(remote).asc;\(fingerprint)")
        }
    }
}

struct Publish: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "publish",
        abstract: "Add builds to an image server tree that any web server can serve.")

    @Argument(help: "The tree's folder (the web server's root).")
    var directory: String
    @Argument(help: "Build folders made by 'coop build' (default: the newest build of each image).")
    var builds: [String] = []
    @Option(name: .long, help: "Builds to keep per image.")
    var keep = 3
    @Flag(
        name: .long,
        help: "Also publish each new build's rootfs as squashfs (rootfs.squashfs), which LXD and Incus unpack faster.")
    var squashfs = false

    func validate() throws {
        if keep < 1 { throw ValidationError("--keep must be at least 1") }
    }

    func run() throws {
        let paths = CoopPaths.current()
        var sources = builds.map { URL(fileURLWithPath: $0) }
        if sources.isEmpty { sources = Self.newestBuilds(in: paths.buildsDirectory) }
        guard !sources.isEmpty else {
            throw CoopError(
                .notFound, "builds", cause: "none in \(paths.buildsDirectory.path)",
                fix: "make one with 'coop build debian bookworm'")
        }
        let keyring = try SigningKeyring(home: paths.signingHome)
        let outcome = try Publisher(
            tree: URL(fileURLWithPath: directory), keyring: keyring, keep: keep, squashfs: squashfs
        ).publish(sources)
        for added in outcome.added { Console.status("published \(added)") }
        for pruned in outcome.pruned { Console.status("pruned \(pruned)") }
        Console.status("\(directory): \(outcome.total) builds, signed by \(try keyring.requireKeyFingerprint())")
    }

    static func newestBuilds(in root: URL) -> [URL] {
        FileSystem.folders(below: root, depth: 4).compactMap { FileSystem.subfolders($0).last }
    }
}
