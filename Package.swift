// swift-tools-version: 6.0
import PackageDescription

let strict: [SwiftSetting] = [.unsafeFlags(["-warnings-as-errors"])]

let package = Package(
    name: "coop",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "coop", targets: ["CoopCLI"]),
        .executable(name: "coop-supervisor", targets: ["CoopSupervisor"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
    ],
    targets: [
        // C libraries, each wrapped in its own module with typed shims for variadic calls and macros.
        // libcurl is loaded when a download starts (dlopen), not at every start of coop.
        .target(name: "CCurl", dependencies: ["CLibraryLoader"]),
        // libarchive too is loaded on first use.
        .target(name: "CArchive"),
        // So are gpgme, liblzma and libcrypto: `coop start` never needs them. Their -dev packages give the headers.
        .target(name: "CLibraryLoader"),
        .target(name: "CGPGME", dependencies: ["CLibraryLoader"]),
        .target(name: "CLZMA", dependencies: ["CLibraryLoader"]),
        .target(name: "CLibcrypto", dependencies: ["CLibraryLoader"]),
        // Our own C: namespace entry, which must not run Swift between fork and exec.
        .target(name: "CCoopNamespace"),
        // The process beside each running container, in C so that it costs almost no memory.
        .executableTarget(
            name: "CoopSupervisor", dependencies: ["CCoopNamespace"],
            linkerSettings: [.unsafeFlags(["-static-executable", "-Xlinker", "--gc-sections"])]),

        // The bottom layer: what every stage stands on.
        // Errors a user can act on, paths, terminal text, hashing.
        .target(name: "CoopSupport", dependencies: ["CLibcrypto"], swiftSettings: strict),
        // The operating system: processes, pipes, files, id maps and ranges, tree removal, container folders.
        .target(name: "CoopSystem", dependencies: ["CoopSupport", "CCoopNamespace"], swiftSettings: strict),
        // Archives and codecs: libarchive behind one reader and writer, image metadata, xz and zstd.
        .target(name: "CoopArchive", dependencies: ["CoopSupport", "CArchive", "CLZMA"], swiftSettings: strict),
        // The wire formats, one typed model each, shared by readers and writers.
        .target(
            name: "CoopFormats", dependencies: ["CoopSupport", .product(name: "Yams", package: "Yams")],
            swiftSettings: strict),

        // The pipeline, one library per stage, each depending only on stages before it.
        .target(name: "CoopTransfer", dependencies: ["CoopSupport", "CoopSystem", "CCurl"], swiftSettings: strict),
        .target(name: "CoopTrust", dependencies: ["CoopSupport", "CoopSystem", "CGPGME"], swiftSettings: strict),
        .target(
            name: "CoopStore",
            dependencies: ["CoopSupport", "CoopSystem", "CoopArchive", "CoopFormats", "CoopTrust"],
            swiftSettings: strict
        ),
        .target(
            name: "CoopFetch",
            dependencies: [
                "CoopSupport", "CoopSystem", "CoopArchive", "CoopFormats", "CoopTransfer", "CoopTrust", "CoopStore",
            ],
            swiftSettings: strict
        ),
        .target(
            name: "CoopRootfs", dependencies: ["CoopSupport", "CoopSystem", "CoopArchive"], swiftSettings: strict),
        .target(
            name: "CoopContainer",
            dependencies: [
                "CoopSupport", "CoopSystem", "CoopArchive", "CoopFormats", "CoopTransfer", "CoopStore", "CoopFetch",
                "CoopRootfs",
            ],
            swiftSettings: strict
        ),
        .target(
            name: "CoopRuntime", dependencies: ["CoopSupport", "CoopSystem", "CoopFormats", "CCoopNamespace"],
            swiftSettings: strict
        ),
        .target(
            name: "CoopBuild",
            dependencies: ["CoopSupport", "CoopSystem", "CoopArchive", "CoopFormats"],
            swiftSettings: strict
        ),
        .target(
            name: "CoopPublish",
            dependencies: ["CoopSupport", "CoopSystem", "CoopArchive", "CoopFormats", "CoopTrust"],
            swiftSettings: strict
        ),
        // Fleets: many copy-on-write containers on one private network, from one file.
        .target(
            name: "CoopFleet",
            dependencies: [
                "CoopSupport", "CoopSystem", "CoopFormats", "CoopTransfer", "CoopFetch", "CoopContainer", "CoopRuntime",
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "CoopCLI",
            dependencies: [
                "CoopSupport", "CoopSystem", "CoopFormats", "CoopTransfer", "CoopTrust", "CoopStore", "CoopFetch",
                "CoopRootfs", "CoopContainer", "CoopRuntime", "CoopBuild", "CoopPublish", "CoopFleet",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),
        // Fast tests of single modules: no root, no fixtures, no server; seconds.
        .testTarget(
            name: "CoopUnitTests",
            dependencies: [
                "CoopSupport", "CoopSystem", "CoopArchive", "CoopFormats", "CoopStore", "CoopContainer", "CoopRuntime",
                "CoopBuild", "CoopPublish", "CoopFleet", "CoopTransfer",
            ],
            swiftSettings: strict
        ),
        // End to end on the real host: root, an ordinary user, the image fixtures and a loopback nginx.
        .testTarget(
            name: "CoopSystemTests",
            dependencies: [
                "CoopSupport", "CoopSystem", "CoopArchive", "CoopFormats", "CoopTrust", "CoopRootfs", "CoopContainer",
                "CoopBuild", "CoopRuntime", "CCoopNamespace",
            ],
            swiftSettings: strict
        ),
    ]
)
