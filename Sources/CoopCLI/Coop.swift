import ArgumentParser
import CoopSupport
import Foundation

@main
struct Coop: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coop",
        abstract: "Real distro containers for an ordinary user, without root.",
        discussion: "Exit statuses: 0 ok, 2 usage, 3 not found, 4 network, 5 verification, 6 unsafe archive, "
            + "7 conflict, 8 host setup, 9 i/o, 10 internal.",
        version: "0.1.0",
        subcommands: [
            Images.self, Fetch.self, ImageCommand.self, Create.self, Copy.self, List.self, Destroy.self, Cache.self,
            Build.self, Key.self,
            Publish.self, Start.self, Stop.self, Attach.self, Exec.self, Run.self, FleetCommand.self, Check.self,
            SetupHost.self,
            ExecInside.self, AttachInside.self,
            Extract.self, Remove.self,
        ]
    )

    static func main() {
        // A pipe to a child that died must give EPIPE, not kill coop before it can clean up.
        signal(SIGPIPE, SIG_IGN)
        do {
            let arguments = Array(CommandLine.arguments.dropFirst())
            if arguments.first == "start", let plain = Start.plainArguments(Array(arguments.dropFirst())) {
                try Start.start(name: plain.name, foreground: plain.foreground, command: plain.command)
                return
            }
            var command = try parseAsRoot()
            try command.run()
        } catch let status as ExitCode {
            // A container's or a command's own status, passed on as it is.
            Foundation.exit(status.rawValue)
        } catch let error as CoopError {
            // Errors quote names from images and indexes: shown escaped.
            FileHandle.standardError.write(Data("error: \(Console.escaped("\(error)", keepNewlines: true))\n".utf8))
            Foundation.exit(error.code.rawValue)
        } catch {
            // Argument errors exit with 2, like coop's own usage errors (not the parser's 64).
            let code = exitCode(for: error)
            if code == .validationFailure {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
                Foundation.exit(CoopError.Code.usage.rawValue)
            }
            exit(withError: error)
        }
    }
}
