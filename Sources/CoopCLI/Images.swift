import ArgumentParser
import CoopFetch
import CoopSupport
import Foundation

struct Images: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "images", abstract: "List the images a remote offers.")

    @Argument(help: "[REMOTE:] [DISTRO] [RELEASE] [ARCH] to narrow the list.")
    var filters: [String] = []

    @Option(name: .long, help: "The remote to ask (default: images).")
    var remote: String?

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    @Flag(name: .customLong("no-verify"), help: "Read the remote's index without checking its signature (warns).")
    var noVerify = false

    func run() throws {
        var filters = filters
        var remoteName = remote
        if let first = filters.first, first.hasSuffix(":") {
            remoteName = String(first.dropLast())
            filters.removeFirst()
        } else if let first = filters.first, let colon = first.firstIndex(of: ":") {
            remoteName = String(first[..<colon])
            filters[0] = String(first[first.index(after: colon)...])
        }
        let environment = try Environment()
        let remote = try environment.catalog.remote(named: remoteName)
        let index: RemoteIndex
        do {
            index = try environment.fetcher.index(of: remote, verify: !noVerify)
        } catch let error as CoopError {
            throw environment.explainingUnreachable(error, remote: remote.name)
        }
        let builds = index.builds.filter { build in
            let fields = [build.distro, build.release, build.arch]
            return zip(filters, fields).allSatisfy { $0 == $1 }
        }.sorted {
            ($0.distro, $0.release, $0.arch, $0.variant, $0.build) < (
                $1.distro, $1.release, $1.arch, $1.variant, $1.build
            )
        }
        if json {
            try printJSON(builds)
        } else {
            printTable(
                ["DISTRO", "RELEASE", "ARCH", "VARIANT", "BUILD"],
                builds.map { [$0.distro, $0.release, $0.arch, $0.variant, $0.build] })
        }
    }
}
