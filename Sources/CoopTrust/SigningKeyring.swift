import CGPGME
import CoopSupport
import CoopSystem
import Foundation

/// The user's own signing key for images they publish, in a GnuPG home under coop's config folder
/// (`~/.config/coop/signing`, mode 0700). No passphrase: it signs in batch runs. The gpg-agent that
/// signing needs is stopped again when the keyring goes away.
public final class SigningKeyring {
    public let home: URL
    private let context: OpaquePointer

    public init(home: URL) throws {
        try GPGMELibrary.load()
        self.home = home
        try FileSystem.createDirectory(home, mode: 0o700)
        chmod(home.path, 0o700)
        var made: OpaquePointer?
        guard gpgme_new(&made) == 0, let made else {
            throw CoopError(.internal, "gpgme", cause: "cannot create a context")
        }
        context = made
        gpgme_set_protocol(context, GPGME_PROTOCOL_OpenPGP)
        gpgme_ctx_set_engine_info(context, GPGME_PROTOCOL_OpenPGP, nil, home.path)
        gpgme_set_armor(context, 1)
    }

    deinit {
        gpgme_release(context)
        // Signing started an agent for this home; it must not outlive coop.
        let gpgconf = "/usr/bin/gpgconf"
        if FileManager.default.isExecutableFile(atPath: gpgconf),
            let process = try? SpawnedProcess(
                arguments: [gpgconf, "--homedir", home.path, "--kill", "gpg-agent"], idMap: nil)
        {
            process.wait()
        }
    }

    /// The fingerprint of the first secret key, or nil when there is none yet.
    public func fingerprint() -> String? {
        guard gpgme_op_keylist_start(context, nil, 1) == 0 else { return nil }
        defer { gpgme_op_keylist_end(context) }
        var key: gpgme_key_t?
        guard gpgme_op_keylist_next(context, &key) == 0, let key else { return nil }
        defer { gpgme_key_unref(key) }
        return key.pointee.subkeys?.pointee.fpr.map { String(cString: $0) }
    }

    /// Makes the signing key; refuses to replace an existing one.
    public func create(name: String) throws -> String {
        if let existing = fingerprint() {
            throw CoopError(
                .conflict, "signing key in \(home.path)", cause: "already exists (\(existing))",
                fix: "use it ('coop key export'), or move the folder away to make a new one")
        }
        let userID = "\(name) <coop@localhost>"
        let result = gpgme_op_createkey(context, userID, "rsa3072", 0, 0, nil, coop_gpgme_create_flags())
        guard result == 0, let fingerprint = fingerprint() else {
            throw CoopError(.internal, "key creation", cause: String(cString: gpgme_strerror(result)))
        }
        return fingerprint
    }

    func requireKey() throws -> gpgme_key_t {
        let fingerprint = try requireKeyFingerprint()
        var key: gpgme_key_t?
        guard gpgme_get_key(context, fingerprint, &key, 1) == 0, let key else {
            throw CoopError(.internal, "signing key \(fingerprint)", cause: "cannot be loaded")
        }
        return key
    }

    /// The armored public key.
    public func exportPublic() throws -> Data {
        let fingerprint = try requireKeyFingerprint()
        var output: gpgme_data_t?
        gpgme_data_new(&output)
        defer { gpgme_data_release(output) }
        let result = gpgme_op_export(context, fingerprint, 0, output)
        guard result == 0 else {
            throw CoopError(.internal, "key export", cause: String(cString: gpgme_strerror(result)))
        }
        var length = 0
        guard let buffer = gpgme_data_release_and_get_mem(output, &length) else { return Data() }
        output = nil
        defer { gpgme_free(buffer) }
        return Data(bytes: buffer, count: length)
    }

    /// Writes an armored detached signature of `file` to `signature`; with `clear`, the file's text with its
    /// signature around it (a clearsigned message) instead.
    public func sign(_ file: URL, to signature: URL, clear: Bool = false) throws {
        let key = try requireKey()
        defer { gpgme_key_unref(key) }
        gpgme_signers_clear(context)
        gpgme_signers_add(context, key)
        let input = open(file.path, O_RDONLY | O_CLOEXEC)
        if input < 0 { throw CoopError.system("read \(file.path)") }
        defer { close(input) }
        let output = open(signature.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if output < 0 { throw CoopError.system("write \(signature.path)") }
        defer { close(output) }
        var plain: gpgme_data_t?
        var signed: gpgme_data_t?
        gpgme_data_new_from_fd(&plain, input)
        defer { gpgme_data_release(plain) }
        gpgme_data_new_from_fd(&signed, output)
        defer { gpgme_data_release(signed) }
        let result = gpgme_op_sign(context, plain, signed, clear ? GPGME_SIG_MODE_CLEAR : GPGME_SIG_MODE_DETACH)
        guard result == 0 else {
            throw CoopError(
                .io, "signature of \(file.lastPathComponent)", cause: String(cString: gpgme_strerror(result)))
        }
    }
}

extension SigningKeyring {
    /// The key's fingerprint, or an error that says how to make one.
    public func requireKeyFingerprint() throws -> String {
        guard let fingerprint = fingerprint() else {
            throw CoopError(
                .notFound, "signing key", cause: "there is none in \(home.path)", fix: "make one with 'coop key create'"
            )
        }
        return fingerprint
    }
}
