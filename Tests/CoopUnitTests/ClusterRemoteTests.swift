import CoopFleet
import CoopSupport
import CoopTransfer
import Foundation
import Testing

/// `~/.config/coop/remotes`: where fleets run beyond this host.
@Suite("Cluster remotes")
struct ClusterRemoteTests {
    func file(_ text: String) throws -> URL {
        let folder = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("coop-remotes-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let url = folder.appendingPathComponent("remotes")
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    @Test("A unix socket and an https server with a client certificate; relative files below the config folder")
    func reads() throws {
        let url = try file(
            "# clusters\nlab;lxd;unix:/var/lib/lxd/unix.socket\nprod;incus;https://10.0.0.1:8443;client.crt;client.key;ca.crt\n"
        )
        let folder = url.deletingLastPathComponent().path
        #expect(try ClusterRemote.named("lab", in: url).endpoint == .unixSocket("/var/lib/lxd/unix.socket"))
        #expect(
            try ClusterRemote.named("prod", in: url).endpoint
                == .https(
                    url: "https://10.0.0.1:8443", certificate: folder + "/client.crt", key: folder + "/client.key",
                    trust: folder + "/ca.crt"))
    }

    @Test(
        "An unknown name, a bad line and an https line without a certificate are refused with the fix",
        arguments: [
            ("lab;lxd;unix:/s\n", "other", "is not in"),
            ("lab;docker;unix:/s\n", "lab", "is not NAME;lxd;ADDRESS"),
            ("lab;lxd;https://h:8443\n", "lab", "needs the client's certificate"),
            ("lab;lxd;ftp://h\n", "lab", "needs the client's certificate"),
        ])
    func refuses(text: String, name: String, cause: String) throws {
        let url = try file(text)
        #expect {
            try ClusterRemote.named(name, in: url)
        } throws: { error in
            "\(error)".contains(cause) && (error as? CoopError)?.fix != nil
        }
    }
}
