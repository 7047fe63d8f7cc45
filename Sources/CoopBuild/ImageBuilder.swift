import CoopArchive
import CoopFormats
import CoopSupport
import CoopSystem
import Foundation

/// `coop build`: a Debian rootfs from a package mirror with mmdebstrap, packed as an LXC image
/// (`rootfs.tar.xz`, `meta.tar.xz`) in `OUTPUT/debian/RELEASE/ARCH/VARIANT/BUILD/`.
public struct ImageBuilder {
    public struct Request: Sendable {
        public var release: String
        public var arch: String
        public var variant: BuildVariant
        /// nil: the normal mirror, or the Debian archive for an archived release (`BuildPlan`).
        public var mirror: String?
        /// Archived releases: add the security suite beside the mirror.
        public var withSecurity = true
        public var include: [String]
        public var output: URL
        /// Fixes every timestamp and the build id, for reproducible images.
        public var sourceDateEpoch: Int?
        /// Also write `rootfs.tar.zst`.
        public var zstd = false

        public init(
            release: String, arch: String, variant: BuildVariant, mirror: String?, include: [String], output: URL,
            sourceDateEpoch: Int?
        ) {
            self.release = release
            self.arch = arch
            self.variant = variant
            self.mirror = mirror
            self.include = include
            self.output = output
            self.sourceDateEpoch = sourceDateEpoch
        }
    }

    public struct Result: Sendable {
        public var folder: URL
        public var build: String
        public var entries: Int
        public var rootfsSize: Int64
        public var steps: [(String, Double)]
    }

    public let request: Request

    public init(request: Request) { self.request = request }

    /// The sources, keyrings and apt options this build hands to mmdebstrap.
    public func plan() throws -> BuildPlan {
        try BuildPlan(release: request.release, mirror: request.mirror, withSecurity: request.withSecurity)
    }

    public func run() throws -> Result {
        let plan = try plan()
        try plan.checkHost()
        for note in plan.notes { Console.status(note) }
        guard ImageReference.isSafeComponent(request.arch) else {
            throw CoopError(.usage, "architecture '\(request.arch)'", cause: "is not a valid name")
        }
        guard request.arch == ImageReference.hostArchitecture else {
            throw CoopError(
                .usage, "architecture \(request.arch)",
                cause: "differs from this machine's (\(ImageReference.hostArchitecture))",
                fix: "build on a machine of that architecture")
        }
        let epoch = request.sourceDateEpoch ?? Int(Date().timeIntervalSince1970)
        let build = BuildID.string(epoch: epoch)
        let product = request.output.appendingPathComponent(
            "debian/\(request.release)/\(request.arch)/\(request.variant.rawValue)")
        let final = product.appendingPathComponent(build)
        if FileSystem.exists(final) {
            throw CoopError(
                .conflict, "build \(final.path)", cause: "already exists",
                fix: "remove it, or set another SOURCE_DATE_EPOCH")
        }
        try FileSystem.createDirectory(product)
        let staging = FileSystem.stagingURL(for: final, tag: "building")
        try FileSystem.createDirectory(staging)
        do {
            var steps: [(String, Double)] = []
            func step<T>(_ name: String, _ work: () throws -> T) rethrows -> T {
                let start = Date()
                Console.status("\(name)…")
                let value = try work()
                steps.append((name, Date().timeIntervalSince(start)))
                return value
            }
            let tar = staging.appendingPathComponent("rootfs.tar")
            try step("mmdebstrap \(request.release) (\(request.variant.rawValue)) from \(plan.mirror)") {
                try bootstrap(
                    plan, into: tar, epoch: epoch, log: staging.appendingPathComponent("mmdebstrap.log"))
            }
            let survey = try step("survey of the rootfs") { try TarSurvey(tar) }
            try step("xz, \(XZCompressor.blockSize >> 20) MiB blocks on every core") {
                try XZCompressor.compress(tar, to: staging.appendingPathComponent("rootfs.tar.xz"))
            }
            if request.zstd {
                try step("zstd, level 19 on every core") {
                    try ZstdCompressor.compress(tar, to: staging.appendingPathComponent("rootfs.tar.zst"))
                }
            }
            try step("meta.tar.xz") {
                let metadata = ImageMetadata(
                    distro: "debian", release: request.release, arch: request.arch, variant: request.variant.rawValue,
                    build: build, buildTime: epoch, excludesUser: survey.devices)
                try metadata.write(to: staging.appendingPathComponent("meta.tar.xz"))
            }
            unlink(tar.path)
            unlink(staging.appendingPathComponent("mmdebstrap.log").path)
            try checkSystemCall(rename(staging.path, final.path), "build \(final.path)")
            let size =
                (try? FileManager.default.attributesOfItem(atPath: final.appendingPathComponent("rootfs.tar.xz").path))?[
                    .size] as? Int64 ?? 0
            return Result(folder: final, build: build, entries: survey.entries, rootfsSize: size, steps: steps)
        } catch {
            try? FileManager.default.removeItem(at: staging)
            throw error
        }
    }

    /// The mmdebstrap command line that writes the rootfs as a tar to `tar`.
    public func command(_ plan: BuildPlan, tar: String) -> [String] {
        let mode = getuid() == 0 ? "root" : "unshare"
        var arguments = [
            "/usr/bin/mmdebstrap", "--mode=\(mode)", "--variant=minbase", "--format=tar",
            "--include=" + (request.variant.packages + request.include).joined(separator: ","),
        ]
        arguments += plan.options
        arguments += request.variant.dpkgOptions.map { "--dpkgopt=" + $0 }
        // Prepared as distrobuilder does: names templated, nothing of the build host left behind.
        arguments += [
            #"--customize-hook=echo LXC_NAME > "$1/etc/hostname""#,
            #"--customize-hook=printf '127.0.0.1\tlocalhost\n127.0.1.1\tLXC_NAME\n::1\tlocalhost ip6-localhost ip6-loopback\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n' > "$1/etc/hosts""#,
            #"--customize-hook=: > "$1/etc/machine-id"; rm -f "$1/var/lib/dbus/machine-id""#,
            #"--customize-hook=rm -f "$1/etc/resolv.conf"; : > "$1/etc/resolv.conf""#,
            #"--customize-hook=rm -f "$1/etc/apt/apt.conf.d/99mmdebstrap" "$1/var/cache/apt/"*.bin; rm -rf "$1/var/lib/apt/lists/"*"#,
            request.release, tar,
        ]
        return arguments + plan.sources
    }

    private func bootstrap(_ plan: BuildPlan, into tar: URL, epoch: Int, log: URL) throws {
        let arguments = command(plan, tar: tar.path)
        var environment = ProcessInfo.processInfo.environment
        environment["SOURCE_DATE_EPOCH"] = String(epoch)
        let logFD = open(log.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if logFD < 0 { throw CoopError.system("write \(log.path)") }
        let process: SpawnedProcess
        do {
            defer { close(logFD) }
            guard FileManager.default.isExecutableFile(atPath: arguments[0]) else {
                throw CoopError(.hostSetup, "mmdebstrap", cause: "is not installed", fix: "apt-get install mmdebstrap")
            }
            process = try SpawnedProcess(
                arguments: arguments, environment: environment, idMap: nil, output: logFD, error: logFD,
                newSession: true)
        }
        let status = process.wait()
        guard status == 0 else {
            let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            throw Self.classify(text, status: status, release: request.release, mirror: plan.mirror)
        }
    }

    /// Turns mmdebstrap's failure into an error that says what to do.
    static func classify(_ log: String, status: Int32, release: String, mirror: String) -> CoopError {
        let tail = log.split(separator: "\n").suffix(6).joined(separator: "\n    ")
        let lower = log.lowercased()
        if lower.contains("no space left") {
            return CoopError(
                .io, "build of \(release)", cause: "the disk is full:\n    \(tail)",
                fix: "free some disk space, or build elsewhere with --output (and TMPDIR)")
        }
        if let suite = DebianRelease.securitySuite(release), lower.contains(suite),
            lower.contains("release file") || lower.contains("404")
        {
            return CoopError(
                .notFound, "security suite \(suite)", cause: "is not on the mirror's debian-security:\n    \(tail)",
                fix: "build without it: coop build debian \(release) --no-security")
        }
        if lower.contains("could not connect") || lower.contains("connection refused")
            || lower.contains("failed to fetch")
            || lower.contains("could not resolve") || lower.contains("temporary failure")
        {
            return CoopError(
                .network, "mirror \(mirror)", cause: "cannot be reached:\n    \(tail)",
                fix: "check the mirror URL (--mirror) and the network or proxy")
        }
        if lower.contains("release") && (lower.contains("does not have") || lower.contains("no such")) {
            return CoopError(
                .notFound, "release \(release)", cause: "is not on the mirror \(mirror):\n    \(tail)",
                fix: "check the release name and the mirror")
        }
        return CoopError(.internal, "mmdebstrap", cause: "failed with status \(status):\n    \(tail)")
    }
}
