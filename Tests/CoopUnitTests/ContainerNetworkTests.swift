import CoopSupport
import Foundation
import Testing

@testable import CoopRuntime

@Suite("Network settings")
struct ContainerNetworkTests {
    func folder() throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("net-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder
    }

    @Test("A fleet node's settings read back as written; pasta's with ports too")
    func roundTrip() throws {
        let node = ContainerNetwork(mode: .fleet, fleet: "web", address: "10.123.0.7")
        let published = ContainerNetwork(
            mode: .pasta, ports: [try #require(.init("8080:80")), .init(host: 2222, container: 22)])
        for settings in [node, published, ContainerNetwork(mode: .none), ContainerNetwork(mode: .host)] {
            let folder = try folder()
            defer { try? FileManager.default.removeItem(at: folder) }
            try settings.write(to: folder)
            #expect(try ContainerNetwork.read(folder) == settings)
        }
    }

    @Test("A node without its fleet or address, a bad fleet name or address is refused with the line")
    func refused() throws {
        for text in [
            "mode = fleet\nfleet = web\n", "mode = fleet\naddress = 10.123.0.2\n",
            "mode = fleet\nfleet = ../web\naddress = 10.123.0.2\n", "mode = fleet\nfleet = web\naddress = 10.123.0\n",
        ] {
            let folder = try folder()
            defer { try? FileManager.default.removeItem(at: folder) }
            try text.write(to: folder.appendingPathComponent("coop-network.conf"), atomically: true, encoding: .utf8)
            #expect(throws: CoopError.self, "\(text)") { try ContainerNetwork.read(folder) }
        }
    }
}

@Suite("inotify budget")
struct InotifyBudgetTests {
    @Test("A fleet that would not fit the user's inotify instances fails early, naming the limit and the fix")
    func tooMany() throws {
        // Debian's default of 128, with 30 in use: 16 nodes (96 instances) fit, 17 do not.
        try InotifyBudget.check(nodes: 16, what: "fleet web", limit: 128, inUse: 30)
        let error = try #require(throws: CoopError.self) {
            try InotifyBudget.check(nodes: 17, what: "fleet web", limit: 128, inUse: 30)
        }
        #expect(error.code == .hostSetup && error.what == "fleet web")
        #expect(error.cause.contains("fs.inotify.max_user_instances") && error.cause.contains("128"))
        #expect(error.fix?.contains("coop setup-host") == true)
    }
}
