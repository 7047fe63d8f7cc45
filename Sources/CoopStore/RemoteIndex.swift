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
        guard let build = builds.newest(matching: reference) else {
            let near = builds.filter { $0.distro == reference.distro && $0.release == reference.release }
                .map { "\($0.arch)/\($0.variant)" }
            throw CoopError(
                .notFound, "image \(reference.distro)/\(reference.release)/\(reference.arch)/\(reference.variant)",
                cause: "remote '\(remote.name)' does not offer it"
                    + (near.isEmpty ? "" : " (it has \(Set(near).sorted().joined(separator: ", ")))"),
                fix: "run 'coop images \(remote.name):' to see what it offers")
        }
        return build
    }
}
