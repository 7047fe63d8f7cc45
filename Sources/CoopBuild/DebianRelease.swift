import CoopSupport
import Foundation

/// The Debian releases a build can target, and what each needs from apt.
public enum DebianRelease {
    public static let known = ["bullseye", "bookworm", "trixie", "sid"]

    public static func check(_ release: String) throws {
        guard known.contains(release) else {
            throw CoopError(
                .usage, "release '\(release)'", cause: "is not a Debian release coop builds",
                fix: "use one of: \(known.joined(separator: ", "))")
        }
    }

    /// apt options a release needs: sid's Release file carries a Valid-Until that mirrors let lapse.
    /// Every release: apt retries a failed download a few times, as mirrors do hiccup.
    public static func aptOptions(_ release: String) -> [String] {
        [#"Acquire::Retries "3""#] + (release == "sid" ? [#"Acquire::Check-Valid-Until "false""#] : [])
    }
}
