/// The C libraries coop opens on first use rather than at every start (libcurl, gpgme, liblzma, libcrypto):
/// a library that cannot be opened is a broken installation, said the way coop says every error.
public enum SharedLibrary {
    /// Runs a C module's `coop_…_load`, which opens its library once and answers 0, or -1 with dlerror's
    /// text; `package` is the Debian package that provides the library.
    public static func load(
        _ name: String, package: String, _ loader: (UnsafeMutablePointer<CChar>?, Int) -> Int32
    ) throws {
        var error = [CChar](repeating: 0, count: 512)
        guard loader(&error, error.count) != 0 else { return }
        let text = String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        throw CoopError(.hostSetup, name, cause: "cannot be loaded: \(text)", fix: "apt-get install \(package)")
    }
}
