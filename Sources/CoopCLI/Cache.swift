import ArgumentParser
import CoopContainer
import CoopFormats
import CoopStore
import CoopSupport
import CoopSystem
import Foundation

struct Cache: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cache",
        abstract: "See, bound and carry the offline image cache.",
        subcommands: [CacheList.self, CachePrune.self, CacheExport.self, CacheImport.self])
}

struct CacheList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List cached builds.")

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    func run() throws {
        let environment = try Environment()
        let entries = environment.store.entries()
        if json {
            try printJSON(entries)
            return
        }
        let now = Int(Date().timeIntervalSince1970)
        printTable(
            ["REMOTE", "DISTRO", "RELEASE", "ARCH", "VARIANT", "BUILD", "SIZE", "STATE", "VERIFIED"],
            entries.map { entry in
                let size = environment.store.diskUsage(entry)
                return [
                    entry.remote, entry.distro, entry.release, entry.arch, entry.variant, entry.build,
                    String(format: "%.1f MB", Double(size) / 1e6), entry.isFresh(now: now) ? "current" : "expired",
                    entry.verifiedBy == nil ? "no" : "yes",
                ]
            })
        print("cache: \(environment.store.root.path)")
    }
}

struct CachePrune: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune",
        abstract: "Remove older builds, expired builds, unfinished downloads, and the bases no container uses.")

    @Option(name: .long, help: "Builds to keep per image (default 1).")
    var keep = 1
    @Flag(name: .long, help: "Remove every cached build.")
    var all = false

    func validate() throws {
        if keep < 1 && !all { throw ValidationError("--keep must be at least 1 (use --all to empty the cache)") }
    }

    func run() throws {
        let environment = try Environment()
        let store = environment.store
        var seen: [String: Int] = [:]
        var removed = 0
        for entry in store.entries() {
            let key = "\(entry.remote):\(entry.reference)"
            seen[key, default: 0] += 1
            let isNewest = seen[key]! <= keep
            if all || !isNewest || (!entry.isFresh() && seen[key]! > 1) {
                try store.remove(entry)
                removed += 1
            }
        }
        let partial = store.root.appendingPathComponent(".partial")
        if FileSystem.exists(partial) { try FileManager.default.removeItem(at: partial) }
        Console.status("removed \(removed) cached builds")
        let bases = try ThrowawayContainer.removeBases(of: try environment.containers())
        if bases.removed > 0 {
            Console.status("removed \(bases.removed) unpacked bases of 'coop run' (made again when needed)")
        }
        if bases.kept > 0 {
            Console.status(
                "kept \(bases.kept) unpacked bases that copy-on-write containers use (they go with the last of them)")
        }
    }
}

struct CacheExport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export", abstract: "Write cached builds to one file, to import on another machine.")

    @Argument(help: "The file to write (a tar).")
    var file: String
    @Argument(help: "Images to export, as DISTRO/RELEASE[/ARCH][/VARIANT] (default: all, newest build each).")
    var images: [String] = []

    func run() throws {
        let environment = try Environment()
        var entries: [CacheEntry] = []
        var seen = Set<String>()
        let references = try images.map { try ImageReference(parsing: $0) }
        for entry in environment.store.entries() where seen.insert("\(entry.remote):\(entry.reference)").inserted {
            if references.isEmpty
                || references.contains(where: {
                    $0.distro == entry.distro && $0.release == entry.release && $0.arch == entry.arch
                        && $0.variant == entry.variant && ($0.remote == nil || $0.remote == entry.remote)
                })
            {
                entries.append(entry)
            }
        }
        guard !entries.isEmpty else {
            throw CoopError(.notFound, "export", cause: "no cached build matches", fix: "run 'coop cache list'")
        }
        try CacheArchive(store: environment.store, catalog: environment.catalog).export(
            entries, to: URL(fileURLWithPath: file))
        Console.status("exported \(entries.count) builds to \(file)")
    }
}

struct CacheImport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import", abstract: "Add builds from an exported file, verifying them again.")

    @Argument(help: "A file written by 'coop cache export'.")
    var file: String
    @Flag(name: .long, help: "Accept builds without verifying their signatures (prints a warning).")
    var noVerify = false
    @Option(
        name: .long,
        help: ArgumentHelp(
            "Trust the remote the export carries, if its key has this fingerprint, and add it to images.index.",
            valueName: "FINGERPRINT"))
    var trustRemote: String?

    func run() throws {
        let environment = try Environment()
        if noVerify { Console.warning("importing without verifying signatures: --no-verify was given") }
        let imported = try CacheArchive(
            store: environment.store, catalog: environment.catalog,
            configDirectory: environment.paths.configDirectory
        ).importArchive(URL(fileURLWithPath: file), verify: !noVerify, trust: trustRemote)
        for name in imported.dropped {
            Console.warning("left out \(name): no signature covers it")
        }
        for remote in imported.addedRemotes {
            Console.status(
                "added remote \(remote.name) (\(Console.escaped(remote.url))), key \(remote.fingerprint ?? "-"), to images.index"
            )
        }
        for entry in imported.entries {
            let verified = entry.verifiedBy.map { "verified against \($0)" } ?? "NOT verified"
            Console.status("imported \(entry.reference) build \(entry.build), \(verified)")
        }
    }
}
