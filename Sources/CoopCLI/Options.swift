import ArgumentParser
import CoopContainer
import CoopFetch
import CoopFormats
import CoopRuntime
import CoopStore
import CoopSupport
import CoopSystem
import CoopTransfer
import Foundation

/// Options every command that reaches images shares.
struct ImageOptions: ParsableArguments {
    @Option(name: .long, help: "The remote to use (default: images), also given as a REMOTE: prefix.")
    var remote: String?

    @Flag(name: .long, help: "Use the cache only; never touch the network.")
    var forceCache = false

    @Flag(name: .long, help: "Download the image again and replace the cached build.")
    var flushCache = false

    @Flag(name: .long, help: "Skip signature verification (prints a warning). Only for sources you trust otherwise.")
    var noVerify = false

    @Option(name: .long, help: "Seconds a stalled transfer may go without data before it fails (default 30).")
    var timeout: Int?

    func validate() throws {
        if forceCache && flushCache {
            throw ValidationError("--force-cache and --flush-cache exclude each other")
        }
    }

    var fetchOptions: FetchOptions {
        FetchOptions(forceCache: forceCache, flushCache: flushCache, verify: !noVerify)
    }
}

/// The pieces of the pipeline, set up once per command.
struct Environment {
    let paths = CoopPaths.current()
    let catalog: RemoteCatalog
    let store: ImageStore
    let fetcher: ImageFetcher

    init(timeout: Int? = nil) throws {
        catalog = try RemoteCatalog(paths: paths)
        store = ImageStore(root: paths.cacheDirectory)
        var transfer = TransferOptions()
        if let timeout { transfer.stallTimeout = timeout }
        fetcher = ImageFetcher(catalog: catalog, store: store, downloader: Downloader(options: transfer))
    }

    /// A network failure on the way to a remote, with what works without it: the cache (`--force-cache`
    /// and what it holds of that remote) and the other remotes.
    func explainingUnreachable(_ error: CoopError, remote name: String?) -> CoopError {
        guard error.code == .network, let remote = try? catalog.remote(named: name) else { return error }
        let cached = Set(
            store.entries().filter { $0.remote == remote.name }.map {
                "\($0.distro)/\($0.release)/\($0.arch)/\($0.variant)"
            }
        ).sorted()
        let others = catalog.remotes.map(\.name).filter { $0 != remote.name }
        // The download's own fix (e.g. the setting of a timeout) first, then what works without the remote.
        var fix =
            (error.fix ?? "check the network and proxy variables, and try again")
            + "; --force-cache uses the cache only, "
        fix +=
            cached.isEmpty
            ? "which holds nothing of '\(remote.name)'" : "which holds \(cached.joined(separator: ", "))"
        if !others.isEmpty {
            fix += "; other remotes: \(others.joined(separator: ", ")) (as NAME: before the image, or --remote NAME)"
        }
        return CoopError(
            .network, "remote '\(remote.name)' (\(remote.url))",
            cause: "cannot be reached: \(error.what): \(error.cause)",
            fix: fix)
    }

    func containers() throws -> ContainerStore {
        try LocalContainers(folder: paths.containersDirectory).store()
    }
}

/// The user's containers, without the remotes and the cache: what start, stop, exec and attach need, and
/// all they pay for at start.
struct LocalContainers {
    var folder = CoopPaths.containersDirectory()

    func store() throws -> ContainerStore {
        ContainerStore(root: folder, idMap: try IDMap.forCurrentUser())
    }

    /// An existing container, as the runtime reads its config.
    func container(named name: String) throws -> ContainerDefinition {
        try ContainerDefinition(folder: try store().existingFolder(name))
    }
}

func printJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

/// Columns padded to their widest cell. Cells come from images and indexes: printed escaped.
func printTable(_ header: [String], _ rows: [[String]]) {
    let all = [header] + rows.map { $0.map { Console.escaped($0) } }
    let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
    for row in all {
        print(
            row.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }
                .joined(separator: "  ").trimmingCharacters(in: .whitespaces))
    }
}
