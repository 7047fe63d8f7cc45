import CoopIndex
import CoopSupport
import CoopTransfer
import CoopTrust
import Foundation

/// A remote's list of builds, fetched and, where the remote signs it, verified.
public struct RemoteIndex: Sendable {
    public var remote: Remote
    public var builds: [ImageBuild]
    /// The list itself carried a good signature (simplestreams: then its sha256s are trusted).
    public var signed: Bool

    /// Reads the index the way this process's client kind would: `index-system` as root, else `index-user`.
    public static func load(
        remote: Remote, downloader: Downloader, privileged: Bool, verifier: () throws -> SignatureVerifier?
    ) throws -> RemoteIndex {
        let path: String
        switch remote.imageProtocol {
        case .lxc:
            path = LXCIndex.indexPath(privileged: privileged)
        case .simplestreams:
            guard let data = try downloader.data(from: remote.address(of: Simplestreams.indexPath)) else {
                throw CoopError(.notFound, "simplestreams index of \(remote.name)", cause: "missing")
            }
            path = try Simplestreams.productsPath(fromIndex: data, source: remote.address(of: Simplestreams.indexPath))
        }
        let address = remote.address(of: path)
        guard let data = try downloader.data(from: address) else {
            throw CoopError(.notFound, "image index \(address)", cause: "missing")
        }
        var signed = false
        if let signature = try downloader.data(from: address + ".asc", optional: true), let verifier = try verifier() {
            try verifier.verify(data: data, signature: signature, name: "image index \(path)")
            signed = true
        }
        let builds: [ImageBuild]
        switch remote.imageProtocol {
        case .lxc: builds = try LXCIndex.parse(String(decoding: data, as: UTF8.self), source: address)
        case .simplestreams: builds = try Simplestreams.parseProducts(data, source: address)
        }
        return RemoteIndex(remote: remote, builds: builds, signed: signed)
    }

    public func build(for reference: ImageReference) throws -> ImageBuild {
        guard let build = builds.newest(matching: reference) else { throw missing(reference) }
        return build
    }

    /// What the remote offers instead of `reference`: the arches and variants of that release, else the
    /// releases of that distro (and how to build a Debian one), else its distros.
    func missing(_ reference: ImageReference) -> CoopError {
        let what = "image \(reference.distro)/\(reference.release)/\(reference.arch)/\(reference.variant)"
        let sameDistro = builds.filter { $0.distro == reference.distro }
        let sameRelease = sameDistro.filter { $0.release == reference.release }
        let list = { (names: [String]) in Set(names).sorted().joined(separator: ", ") }
        if !sameRelease.isEmpty {
            return CoopError(
                .notFound, what,
                cause: "remote '\(remote.name)' does not offer it; it has \(reference.distro) \(reference.release) "
                    + "as \(list(sameRelease.map { "\($0.arch)/\($0.variant)" })) (arch/variant)",
                fix: "pick one of those, e.g. coop fetch \(remote.name):\(reference.distro) \(reference.release) "
                    + "\(sameRelease[0].arch) --variant \(sameRelease[0].variant)")
        }
        let build =
            reference.distro == "debian"
            ? "; or build it yourself: coop build debian \(reference.release) (see docs/images.md)" : ""
        if !sameDistro.isEmpty {
            return CoopError(
                .notFound, what,
                cause: "remote '\(remote.name)' has no \(reference.distro) \(reference.release); its "
                    + "\(reference.distro) releases are: \(list(sameDistro.map(\.release)))",
                fix: "pick one of those (coop images \(remote.name): \(reference.distro))\(build)")
        }
        return CoopError(
            .notFound, what,
            cause: "remote '\(remote.name)' has no \(reference.distro) images"
                + (builds.isEmpty ? "" : "; it offers: \(list(builds.map(\.distro)))"),
            fix: "run 'coop images \(remote.name):' to see what it offers\(build)")
    }
}
