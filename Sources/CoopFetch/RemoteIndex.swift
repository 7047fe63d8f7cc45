import CoopFormats
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
    ///
    /// With a verifier (the default), the index must carry a good signature from the remote's key: LXC
    /// `index-*.asc`; simplestreams `images.json.asc`, `images.json.gpg` or a clearsigned `images.sjson`.
    /// Without one (`--no-verify`), a warning says so. Every field then passes `IndexField`'s grammar.
    public static func load(
        remote: Remote, downloader: Downloader, privileged: Bool, verifier: () throws -> SignatureVerifier?
    ) throws -> RemoteIndex {
        let path: String
        let verifier = try verifier()
        switch remote.imageProtocol {
        case .lxc:
            path = LXCIndex.indexPath(privileged: privileged)
        case .simplestreams:
            let indexAddress = try remote.address(of: Simplestreams.indexPath)
            // A mirror made by sstream-mirror keeps the clearsigned index (and products) only.
            let data: Data
            if let plain = try downloader.data(from: indexAddress, optional: true) {
                data = plain
            } else {
                let signedPath = String(Simplestreams.indexPath.dropLast(".json".count)) + ".sjson"
                guard let document = try downloader.data(from: try remote.address(of: signedPath), optional: true)
                else {
                    throw CoopError(
                        .notFound, "simplestreams index of \(remote.name)",
                        cause: "neither \(Simplestreams.indexPath) nor \(signedPath) is there",
                        fix: "check the remote's URL in images.index: it names the folder that holds streams/")
                }
                data = try clearsignedBody(document, name: "index \(signedPath) of remote '\(remote.name)'", verifier)
            }
            path = try Simplestreams.productsPath(fromIndex: data, source: indexAddress, remote: remote.name)
        }
        let address = try remote.address(of: path)
        let data: Data
        if path.hasSuffix(".sjson") {
            guard let document = try downloader.data(from: address) else {
                throw CoopError(.notFound, "image index \(address)", cause: "missing")
            }
            data = try clearsignedBody(document, name: "image index \(path) of remote '\(remote.name)'", verifier)
        } else if let verifier {
            data = try signedData(at: path, of: remote, downloader: downloader, verifier: verifier)
        } else {
            Console.warning("not verifying the index \(path) of remote '\(remote.name)': --no-verify was given")
            guard let plain = try downloader.data(from: address) else {
                throw CoopError(.notFound, "image index \(address)", cause: "missing")
            }
            data = plain
        }
        let builds: [ImageBuild]
        switch remote.imageProtocol {
        case .lxc:
            builds = try LXCIndex.parse(String(decoding: data, as: UTF8.self), source: address, remote: remote.name)
        case .simplestreams: builds = try Simplestreams.parseProducts(data, source: address, remote: remote.name)
        }
        return RemoteIndex(remote: remote, builds: builds, signed: verifier != nil)
    }

    /// The text of a clearsigned document: verified against the remote's key, or (with --no-verify) taken
    /// from between its armor lines, with a warning said before.
    static func clearsignedBody(_ document: Data, name: String, _ verifier: SignatureVerifier?) throws -> Data {
        if let verifier { return try verifier.verifyClearsigned(document, name: name) }
        Console.warning("not verifying the \(name): --no-verify was given")
        let lines = String(decoding: document, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        guard let start = lines.firstIndex(where: { $0.hasPrefix("-----BEGIN PGP SIGNED MESSAGE-----") }),
            let blank = lines[start...].firstIndex(where: { $0.trimmingCharacters(in: .whitespaces).isEmpty }),
            let end = lines[blank...].firstIndex(where: { $0.hasPrefix("-----BEGIN PGP SIGNATURE-----") })
        else {
            throw CoopError(
                .verification, name, cause: "is not a clearsigned document",
                fix: "check the remote's URL and protocol in images.index")
        }
        // Dash-escaped lines (RFC 4880, 7.1) lose their "- ".
        let body = lines[(blank + 1)..<end].map { $0.hasPrefix("- ") ? $0.dropFirst(2) : $0 }
        return Data(body.joined(separator: "\n").utf8)
    }

    /// The index file at `path`, with a good signature from the remote's key, or an error naming the file.
    static func signedData(at path: String, of remote: Remote, downloader: Downloader, verifier: SignatureVerifier)
        throws -> Data
    {
        let address = try remote.address(of: path)
        let name = "image index \(path) of remote '\(remote.name)'"
        var detached = [path + ".asc"]
        var clearsigned: String?
        if remote.imageProtocol == .simplestreams {
            detached.append(path + ".gpg")
            clearsigned = String(path.dropLast(".json".count)) + ".sjson"
        }
        for signaturePath in detached {
            guard
                let signature = try downloader.data(
                    from: try remote.address(of: signaturePath), optional: true, limit: .smallFile)
            else { continue }
            guard let data = try downloader.data(from: address) else {
                throw CoopError(.notFound, "image index \(address)", cause: "missing")
            }
            try verifier.verify(data: data, signature: signature, name: name)
            return data
        }
        if let clearsigned,
            let document = try downloader.data(from: try remote.address(of: clearsigned), optional: true)
        {
            return try verifier.verifyClearsigned(
                document, name: "image index \(clearsigned) of remote '\(remote.name)'")
        }
        let tried = (detached + (clearsigned.map { [$0] } ?? [])).joined(separator: ", ")
        throw CoopError(
            .verification, "signature of \(name)",
            cause: "is missing (looked for \(tried)): an unsigned index could roll images back or swap them",
            fix: "the remote must sign its index; --no-verify skips every signature check (with a warning), "
                + "only for a remote you trust otherwise")
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
