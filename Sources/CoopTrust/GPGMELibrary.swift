import CGPGME
import CoopSupport

/// gpgme, opened by the first verifier or keyring rather than at every start of coop.
enum GPGMELibrary {
    /// gpgme's version check must run once before any other call.
    private static let version: String? = coop_gpgme_init().map { String(cString: $0) }

    static func load() throws {
        try SharedLibrary.load("libgpgme", package: "libgpgme11", coop_gpgme_load)
        guard version != nil else {
            throw CoopError(
                .hostSetup, "gpgme", cause: "the library failed its version check", fix: "reinstall libgpgme11")
        }
    }
}
