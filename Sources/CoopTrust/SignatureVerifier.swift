import CGPGME
import CoopSupport
import CoopSystem
import Foundation

/// Checks detached OpenPGP signatures against one remote's pinned key, and nothing else.
///
/// The key is imported into a private, throw-away GnuPG home, so the user's own keyring never decides
/// what coop trusts; that home's `gpg.conf` says `no-autostart`, so no gpg-agent outlives coop.
public final class SignatureVerifier {
    private let context: OpaquePointer
    /// The private GnuPG home, removed when the verifier goes away.
    public let home: URL
    /// How the key is named in errors: `keys/linuxcontainers.asc (fingerprint E7FB…E216)`.
    public let keyDescription: String
    private let pinned: String?

    public init(keyring: URL, fingerprint: String?) throws {
        try GPGMELibrary.load()
        pinned = fingerprint?.uppercased()
        let shortFingerprint = fingerprint.map { " (fingerprint \($0.prefix(4))…\($0.suffix(4)))" } ?? ""
        keyDescription = Self.displayPath(keyring) + shortFingerprint

        Self.removeAbandonedHomes()
        // The pid in the name tells a live verifier's home from one a killed coop left behind.
        var template = Array(
            (FileManager.default.temporaryDirectory.path + "/coop-gnupg-\(getpid())-XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else { throw CoopError.system("private GnuPG home") }
        home = URL(fileURLWithPath: String(cString: made))
        try FileSystem.writeAtomically("no-autostart\n", to: home.appendingPathComponent("gpg.conf"), mode: 0o600)

        var made_context: OpaquePointer?
        guard gpgme_new(&made_context) == 0, let made_context else {
            try? FileManager.default.removeItem(at: home)
            throw CoopError(.internal, "gpgme", cause: "cannot create a context")
        }
        context = made_context
        gpgme_set_protocol(context, GPGME_PROTOCOL_OpenPGP)
        try check(gpgme_ctx_set_engine_info(context, GPGME_PROTOCOL_OpenPGP, nil, home.path), "GnuPG home")
        try importKey(keyring)
    }

    deinit {
        gpgme_release(context)
        try? FileManager.default.removeItem(at: home)
    }

    /// Private homes of this user's coop processes that were killed before they could remove them.
    static func removeAbandonedHomes() {
        let temporary = FileManager.default.temporaryDirectory
        for name in (try? FileManager.default.contentsOfDirectory(atPath: temporary.path)) ?? [] {
            let parts = name.split(separator: "-")
            guard name.hasPrefix("coop-gnupg-"), parts.count == 4, let pid = Int32(parts[2]) else { continue }
            let path = temporary.appendingPathComponent(name).path
            var info = stat()
            guard lstat(path, &info) == 0, info.st_uid == getuid(), kill(pid, 0) != 0, errno == ESRCH else { continue }
            try? FileManager.default.removeItem(atPath: path)
        }
    }

    private func importKey(_ keyring: URL) throws {
        guard FileManager.default.fileExists(atPath: keyring.path) else {
            throw CoopError(
                .notFound, "key file \(keyring.path)", cause: "does not exist",
                fix: "put the remote's public key there, or fix the keyring field in images.index")
        }
        let data = try Data(contentsOf: keyring)
        var keyData: gpgme_data_t?
        try data.withUnsafeBytes { bytes in
            try check(gpgme_data_new_from_mem(&keyData, bytes.baseAddress, bytes.count, 1), "key file \(keyring.path)")
        }
        defer { gpgme_data_release(keyData) }
        try check(gpgme_op_import(context, keyData), "import of key file \(keyring.path)")
        guard let result = gpgme_op_import_result(context), result.pointee.considered > 0,
            result.pointee.imported + result.pointee.unchanged > 0
        else {
            throw CoopError(
                .verification, "key file \(keyring.path)", cause: "holds no OpenPGP public key",
                fix: "replace it with the remote's armored public key")
        }
        if let pinned {
            var key: gpgme_key_t?
            let found = gpgme_get_key(context, pinned, &key, 0)
            defer { if let key { gpgme_key_unref(key) } }
            guard found == 0, let key, primaryFingerprint(key) == pinned else {
                throw CoopError(
                    .verification, "key file \(keyring.path)",
                    cause: "does not hold the key pinned in images.index (\(pinned))",
                    fix: "restore the remote's real key file, or update the fingerprint if the remote changed keys")
            }
        }
    }

    /// The primary fingerprints of the keys the key file holds: what a user compares before trusting it.
    public func keyFingerprints() -> [String] {
        guard gpgme_op_keylist_start(context, nil, 0) == 0 else { return [] }
        defer { gpgme_op_keylist_end(context) }
        var result: [String] = []
        var key: gpgme_key_t?
        while gpgme_op_keylist_next(context, &key) == 0, let found = key {
            if let fingerprint = primaryFingerprint(found) { result.append(fingerprint) }
            gpgme_key_unref(found)
            key = nil
        }
        return result
    }

    private func primaryFingerprint(_ key: gpgme_key_t) -> String? {
        key.pointee.subkeys?.pointee.fpr.map { String(cString: $0).uppercased() }
    }

    /// Verifies `signature` (armored, detached) over the whole of `file`, read in streaming fashion.
    /// `name` is the file's name in errors, e.g. `rootfs.tar.xz`.
    public func verify(file: URL, signature: URL, name: String) throws {
        let dataFD = open(file.path, O_RDONLY | O_CLOEXEC)
        if dataFD < 0 { throw CoopError.system("read \(file.path)") }
        defer { close(dataFD) }
        let signatureFD = open(signature.path, O_RDONLY | O_CLOEXEC)
        if signatureFD < 0 {
            throw CoopError(
                .verification, "signature of \(name)", cause: "is missing",
                fix: "the remote must publish \(name).asc; use --no-verify only if you trust the source otherwise")
        }
        defer { close(signatureFD) }
        var signedData: gpgme_data_t?
        var signatureData: gpgme_data_t?
        try check(gpgme_data_new_from_fd(&signedData, dataFD), "read \(file.path)")
        defer { gpgme_data_release(signedData) }
        try check(gpgme_data_new_from_fd(&signatureData, signatureFD), "read \(signature.path)")
        defer { gpgme_data_release(signatureData) }
        try verify(signature: signatureData, signed: signedData, name: name)
    }

    public func verify(data: Data, signature: Data, name: String) throws {
        try data.withUnsafeBytes { dataBytes in
            try signature.withUnsafeBytes { signatureBytes in
                var signedData: gpgme_data_t?
                var signatureData: gpgme_data_t?
                try check(gpgme_data_new_from_mem(&signedData, dataBytes.baseAddress, dataBytes.count, 0), name)
                defer { gpgme_data_release(signedData) }
                try check(
                    gpgme_data_new_from_mem(&signatureData, signatureBytes.baseAddress, signatureBytes.count, 0), name)
                defer { gpgme_data_release(signatureData) }
                try verify(signature: signatureData, signed: signedData, name: name)
            }
        }
    }

    /// Verifies a clearsigned document (simplestreams' `.sjson`) and returns the text the signature covers.
    public func verifyClearsigned(_ document: Data, name: String) throws -> Data {
        try document.withUnsafeBytes { bytes in
            var signedData: gpgme_data_t?
            var plain: gpgme_data_t?
            try check(gpgme_data_new_from_mem(&signedData, bytes.baseAddress, bytes.count, 0), name)
            defer { gpgme_data_release(signedData) }
            try check(gpgme_data_new(&plain), name)
            defer { gpgme_data_release(plain) }
            try verify(signature: signedData, signed: nil, plain: plain, name: name)
            gpgme_data_seek(plain, 0, SEEK_SET)
            var result = Data()
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let count = buffer.withUnsafeMutableBytes { gpgme_data_read(plain, $0.baseAddress, $0.count) }
                if count <= 0 { break }
                result.append(contentsOf: buffer[0..<count])
            }
            return result
        }
    }

    private func verify(
        signature: gpgme_data_t?, signed: gpgme_data_t?, plain: gpgme_data_t? = nil, name: String
    ) throws {
        let failure = CoopError(
            .verification, "signature of \(name)", cause: "does not verify against \(keyDescription)",
            fix: "the download was truncated or tampered with, or signed by another key: nothing was kept; "
                + "try again, and report it to the remote's operator if it persists")
        guard gpgme_op_verify(context, signature, signed, plain) == 0, let result = gpgme_op_verify_result(context)
        else { throw failure }
        var signatureEntry = result.pointee.signatures
        var accepted = false
        while let entry = signatureEntry {
            signatureEntry = entry.pointee.next
            // A fresh key's validity is "unknown": what counts is a good status from the pinned key.
            guard coop_gpgme_err_code(entry.pointee.status) == 0, let fpr = entry.pointee.fpr else { continue }
            var key: gpgme_key_t?
            guard gpgme_get_key(context, fpr, &key, 0) == 0, let key else { continue }
            defer { gpgme_key_unref(key) }
            if pinned == nil || primaryFingerprint(key) == pinned { accepted = true }
        }
        if !accepted { throw failure }
    }

    private func check(_ code: gpgme_error_t, _ what: String) throws {
        if code != 0 {
            throw CoopError(.verification, what, cause: String(cString: gpgme_strerror(code)))
        }
    }

    /// A key path as users see it: relative to the current folder where it is inside it.
    static func displayPath(_ url: URL) -> String {
        let parts = url.standardizedFileURL.pathComponents
        if let keys = parts.lastIndex(of: "keys") { return parts[keys...].joined(separator: "/") }
        return url.path
    }
}
