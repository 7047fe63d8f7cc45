import Foundation

/// Where coop keeps its data, decided once from the environment, the user and the checkout.
public struct CoopPaths: Sendable {
    /// Folder with `images.index` and `keys/`: the checkout, or the installed data folder.
    public var dataDirectory: URL
    public var cacheDirectory: URL
    public var containersDirectory: URL
    /// The user's own config folder (`~/.config/coop`), for a personal `images.index`.
    public var configDirectory: URL

    /// Where `coop build` puts images: beside the containers folder.
    public var buildsDirectory: URL {
        if let explicit = ProcessInfo.processInfo.environment["COOP_BUILDS"] { return URL(fileURLWithPath: explicit) }
        return containersDirectory.deletingLastPathComponent().appendingPathComponent("builds")
    }

    /// The GnuPG home of the user's own signing key.
    public var signingHome: URL { configDirectory.appendingPathComponent("signing") }

    public init(dataDirectory: URL, cacheDirectory: URL, containersDirectory: URL, configDirectory: URL) {
        self.dataDirectory = dataDirectory
        self.cacheDirectory = cacheDirectory
        self.containersDirectory = containersDirectory
        self.configDirectory = configDirectory
    }

    /// The paths for this process, following the rules in docs/cache.md.
    public static func current(environment: [String: String] = ProcessInfo.processInfo.environment) -> CoopPaths {
        let isRoot = getuid() == 0
        let home = URL(fileURLWithPath: environment["HOME"] ?? NSHomeDirectory())
        let checkout = findCheckout()
        // Installed layout: PREFIX/bin/coop beside PREFIX/share/coop.
        let installed = URL(fileURLWithPath: executablePath()).deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("share/coop")
        let data =
            environment["COOP_DATA"].map { URL(fileURLWithPath: $0) } ?? checkout
            ?? (FileManager.default.fileExists(atPath: installed.appendingPathComponent("images.index").path)
                ? installed : URL(fileURLWithPath: "/usr/share/coop"))

        let cache: URL
        if let explicit = environment["COOP_CACHE"] {
            cache = URL(fileURLWithPath: explicit)
        } else if let checkout, FileManager.default.isWritableFile(atPath: checkout.path) {
            cache = checkout.appendingPathComponent("cache")
        } else if isRoot {
            cache = URL(fileURLWithPath: "/var/cache/coop")
        } else {
            let base =
                environment["XDG_CACHE_HOME"].map { URL(fileURLWithPath: $0) } ?? home.appendingPathComponent(".cache")
            cache = base.appendingPathComponent("coop")
        }

        let containers = containersDirectory(environment: environment)
        let config =
            (environment["XDG_CONFIG_HOME"].map { URL(fileURLWithPath: $0) } ?? home.appendingPathComponent(".config"))
            .appendingPathComponent("coop")
        return CoopPaths(
            dataDirectory: data, cacheDirectory: cache, containersDirectory: containers, configDirectory: config)
    }

    /// The containers folder alone: all that start, stop, exec and attach need, without looking for the
    /// checkout and the data folder.
    /// Without `environment`, the variables are read one by one rather than as a whole dictionary.
    public static func containersDirectory(environment: [String: String]? = nil) -> URL {
        let variable = { (name: String) in environment.map { $0[name] } ?? getenv(name).map { String(cString: $0) } }
        if let explicit = variable("COOP_CONTAINERS") { return URL(fileURLWithPath: explicit) }
        if getuid() == 0 { return URL(fileURLWithPath: "/var/lib/coop/containers") }
        let home = URL(fileURLWithPath: variable("HOME") ?? NSHomeDirectory())
        let base =
            variable("XDG_DATA_HOME").map { URL(fileURLWithPath: $0) } ?? home.appendingPathComponent(".local/share")
        return base.appendingPathComponent("coop/containers")
    }

    /// The checkout this binary was built in: the nearest folder above the executable that holds both
    /// `Package.swift` and `images.index`.
    static func findCheckout() -> URL? {
        var folder = URL(fileURLWithPath: executablePath()).deletingLastPathComponent()
        while folder.path != "/" {
            let manifest = folder.appendingPathComponent("Package.swift").path
            let index = folder.appendingPathComponent("images.index").path
            if FileManager.default.fileExists(atPath: manifest), FileManager.default.fileExists(atPath: index) {
                return folder
            }
            folder.deleteLastPathComponent()
        }
        return nil
    }

    /// A helper program installed with coop: beside the binary (a build folder, or PREFIX/bin), or in
    /// PREFIX/libexec/coop.
    public static func helperPath(_ name: String) throws -> String {
        let folder = URL(fileURLWithPath: executablePath()).deletingLastPathComponent()
        let candidates = [
            folder.appendingPathComponent(name).path,
            folder.deletingLastPathComponent().appendingPathComponent("libexec/coop/\(name)").path,
        ]
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw CoopError(
                .hostSetup, name, cause: "is not installed (looked in \(candidates.joined(separator: " and ")))",
                fix: "install coop with 'make install', which puts \(name) beside it")
        }
        return found
    }

    /// The name of the user running coop (its uid when it has no name).
    public static var userName: String {
        getpwuid(getuid()).map { String(cString: $0.pointee.pw_name) } ?? String(getuid())
    }

    /// The running binary, resolved through /proc so that a symlink or PATH lookup does not matter.
    public static func executablePath() -> String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }
}
