import ArgumentParser
import CoopRuntime

/// The network of a container, as `coop create` stores it and `coop run` uses it.
struct NetworkOptions: ParsableArguments {
    @Option(
        name: .long,
        help:
            "pasta: own network with outbound access (a user's default); none: loopback only (root's); host: the host's."
    )
    var network: String?

    @Option(
        name: .customShort("p"), parsing: .singleValue,
        help: "Publish a TCP port: HOSTPORT:CONTAINERPORT (on the host's 127.0.0.1 and addresses), with pasta.")
    var publish: [String] = []

    func validate() throws {
        _ = try settings()
    }

    /// The settings these options ask for (the default for the caller when none).
    func settings() throws -> ContainerNetwork {
        var network = ContainerNetwork.standard
        if let name = self.network {
            guard let mode = ContainerNetwork.Mode(rawValue: name), mode != .fleet else {
                throw ValidationError("--network \(name): give pasta, none or host")
            }
            network.mode = mode
        }
        for text in publish {
            guard let port = ContainerNetwork.Port(text) else {
                throw ValidationError("-p \(text): give HOSTPORT:CONTAINERPORT, e.g. -p 8080:80")
            }
            network.ports.append(port)
        }
        if !network.ports.isEmpty, network.mode != .pasta {
            throw ValidationError("-p publishes ports through pasta: use it with --network pasta")
        }
        return network
    }
}
