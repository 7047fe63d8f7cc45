import ArgumentParser
import CoopRuntime
import Foundation

/// `coop setup-host --user NAME`: the one step that needs root, done once per user.
struct SetupHost: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "setup-host",
        abstract: "Prepare this host for a user's containers (as root, once; safe to repeat).",
        discussion: """
            Gives the user 65536 subordinate uids and gids if it has none (--ranges N: N times that), and a cgroup subtree of its own \
            (coop/USER in every hierarchy) so that containers get limits and systemd can boot, and makes \
            /dev/net/tun mode 0666 (kept by /etc/tmpfiles.d/coop-tun.conf) so that pasta can give containers \
            a network.
            """)

    @Option(name: .long, help: "The ordinary user who will run containers.")
    var user: String

    @Option(
        name: .long,
        help: ArgumentHelp(
            "How many ranges of 65536 ids the user is to hold: one for its containers, plus one per node of its "
                + "isolated fleets.", valueName: "N"))
    var ranges: Int = 1

    func validate() throws {
        guard (1...4096).contains(ranges) else {
            throw ValidationError("--ranges must be 1 to 4096 (each is 65536 subordinate ids)")
        }
    }

    func run() throws {
        for line in try HostSetup.run(user: user, ranges: ranges) { print(line) }
    }
}
