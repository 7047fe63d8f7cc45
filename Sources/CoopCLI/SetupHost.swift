import ArgumentParser
import CoopRuntime
import Foundation

/// `coop setup-host --user NAME`: the one step that needs root, done once per user.
struct SetupHost: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "setup-host",
        abstract: "Prepare this host for a user's containers (as root, once; safe to repeat).",
        discussion: """
            Gives the user 65536 subordinate uids and gids if it has none, and a cgroup subtree of its own \
            (coop/USER in every hierarchy) so that containers get limits and systemd can boot, and makes \
            /dev/net/tun mode 0666 (kept by /etc/tmpfiles.d/coop-tun.conf) so that pasta can give containers \
            a network.
            """)

    @Option(name: .long, help: "The ordinary user who will run containers.")
    var user: String

    func run() throws {
        for line in try HostSetup.run(user: user) { print(line) }
    }
}
