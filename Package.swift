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
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0")
    ],
    targets: [
        // C libraries, each wrapped in its own module with typed shims for variadic calls and macros.
        // libcurl is loaded when a download starts (dlopen), not at every start of coop.
        .target(name: "CCurl"),
        // libarchive too is loaded on first use.
        .target(name: "CArchive"),
        .systemLibrary(name: "CGPGME", pkgConfig: "gpgme", providers: [.apt(["libgpgme-dev"])]),
        .systemLibrary(name: "CLZMA", pkgConfig: "liblzma", providers: [.apt(["liblzma-dev"])]),
        .systemLibrary(name: "CLibcrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        // Our own C: namespace entry, which must not run Swift between fork and exec.
        .target(name: "CCoopNamespace"),
        // The process beside each running container, in C so that it costs almost no memory.
        .executableTarget(
            name: "CoopSupervisor", dependencies: ["CCoopNamespace"],
            linkerSettings: [.unsafeFlags(["-static-executable", "-Xlinker", "--gc-sections"])]),

        // The pipeline, one library per stage.
        .target(name: "CoopSupport", dependencies: ["CLibcrypto"], swiftSettings: strict),
        .target(name: "CoopIndex", dependencies: ["CoopSupport"], swiftSettings: strict),
        .target(name: "CoopTransfer", dependencies: ["CoopSupport", "CCurl"], swiftSettings: strict),
        .target(name: "CoopTrust", dependencies: ["CoopSupport", "CGPGME", "CoopRootfs"], swiftSettings: strict),
        .target(
            name: "CoopRootfs",
            dependencies: ["CoopSupport", "CArchive", "CLZMA", "CCoopNamespace"],
            swiftSettings: strict
        ),
        .target(
            name: "CoopStore",
            dependencies: ["CoopSupport", "CoopIndex", "CoopTransfer", "CoopTrust", "CoopRootfs", "CArchive"],
            swiftSettings: strict
        ),
        .target(
            name: "CoopContainer",
            dependencies: ["CoopSupport", "CoopIndex", "CoopStore", "CoopRootfs"],
            swiftSettings: strict
        ),
        .target(
            name: "CoopBuild",
            dependencies: ["CoopSupport", "CoopIndex", "CoopRootfs", "CArchive", "CLZMA"],
            swiftSettings: strict
        ),
        .target(
            name: "CoopPublish",
            dependencies: ["CoopSupport", "CoopIndex", "CoopTrust", "CoopBuild", "CoopRootfs"],
            swiftSettings: strict
        ),
        .target(
            name: "CoopRuntime",
            dependencies: ["CoopSupport", "CoopRootfs", "CCoopNamespace"],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "CoopCLI",
            dependencies: [
                "CoopSupport", "CoopIndex", "CoopStore", "CoopRootfs", "CoopContainer", "CoopTrust", "CoopBuild",
                "CoopPublish", "CoopRuntime",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "CoopTests",
            dependencies: [
                "CoopSupport", "CoopIndex", "CoopTransfer", "CoopTrust", "CoopStore", "CoopRootfs", "CoopContainer",
                "CoopBuild", "CoopRuntime",
            ],
            swiftSettings: strict
        ),
    ]
)
