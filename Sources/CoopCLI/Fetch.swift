import ArgumentParser
import CoopFetch
import CoopFormats
import CoopSupport
import Foundation

struct Fetch: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fetch",
        abstract: "Download, verify and cache an image.",
        discussion: "Nothing happens when the cache already holds a current build.")

    @Argument(help: "Distribution, e.g. debian (may carry a REMOTE: prefix).")
    var distro: String
    @Argument(help: "Release, e.g. bookworm.")
    var release: String
    @Argument(help: "Architecture (default: this machine's).")
    var arch: String?
    @Option(name: .long, help: "Variant (default: default).")
    var variant: String?
    @OptionGroup var options: ImageOptions

    func run() throws {
        var remote = options.remote
        var distro = distro
        if let colon = distro.firstIndex(of: ":") {
            remote = String(distro[..<colon])
            distro = String(distro[distro.index(after: colon)...])
        }
        let reference = ImageReference(remote: remote, distro: distro, release: release, arch: arch, variant: variant)
        for part in [reference.distro, reference.release, reference.arch, reference.variant]
        where !ImageReference.isSafeComponent(part) {
            throw CoopError(.usage, "image name part '\(part)'", cause: "is empty or contains '/'")
        }
        let environment = try Environment(timeout: options.timeout)
        let outcome: FetchOutcome
        do {
            outcome = try environment.fetcher.fetch(reference, options: options.fetchOptions)
        } catch let error as CoopError {
            throw environment.explainingUnreachable(error, remote: remote)
        }
        let entry = outcome.entry
        let verified = entry.verifiedBy.map { "verified against \($0)" } ?? "NOT verified"
        Console.status(
            "\(outcome.downloaded ? "fetched" : "cached") \(Console.escaped("\(entry.reference)")) build \(Console.escaped(entry.build)), \(verified)"
        )
        print(entry.folder.path)
    }
}
