import ArgumentParser
import CoopContainer
import CoopFormats
import CoopRuntime
import CoopSupport
import CoopSystem
import Foundation

struct Create: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Create a container from an image: fetch if needed, unpack with shifted ownership.")

    @Argument(help: "The container's name.")
    var name: String
    @Argument(
        help: ArgumentHelp(
            "The image: [REMOTE:]DISTRO/RELEASE[/ARCH][/VARIANT], e.g. debian/bookworm; or a file LXD or Incus "
                + "exported (imported first, as 'coop image import' does)."))
    var image: String
    @Argument(help: "With an exported split image as IMAGE: its rootfs.")
    var rootfs: String?
    @Flag(
        name: .long,
        help: "Copy-on-write: an overlay of the image's shared base with the container's own changes on top.")
    var cow = false
    @OptionGroup var options: ImageOptions
    @OptionGroup var networkOptions: NetworkOptions

    func run() throws {
        let network = try networkOptions.settings()
        let environment = try Environment(timeout: options.timeout)
        // A file that exists is an exported image; anything else names an image of a remote.
        var isFile: ObjCBool = false
        let reference: ImageReference
        if FileManager.default.fileExists(atPath: image, isDirectory: &isFile), !isFile.boolValue {
            reference = try ImageImportCommand.importImage(image, rootfs: rootfs, environment: environment).reference
        } else if let rootfs {
            throw ValidationError("a rootfs (\(rootfs)) goes with an exported image file only, and \(image) is none")
        } else {
            reference = try ImageReference(parsing: image, remote: options.remote)
        }
        let creator = ContainerCreator(fetcher: environment.fetcher, containers: try environment.containers())
        let started = Date()
        let created: ContainerCreator.Created
        do {
            created = try creator.create(name: name, image: reference, options: options.fetchOptions, cow: cow)
        } catch let error as CoopError {
            throw environment.explainingUnreachable(error, remote: reference.remote)
        }
        do {
            try network.write(to: created.folder)
        } catch {
            try? creator.containers.destroy(name)
            throw error
        }
        let seconds = String(format: "%.2f", Date().timeIntervalSince(started))
        Console.status(
            "created \(name) from \(Console.escaped("\(created.record.image)")) build \(Console.escaped(created.record.build))"
                + " (\(created.fromCache ? "cached image" : "downloaded"), \(seconds) s)")
        if !created.record.skipped.isEmpty {
            Console.status("skipped \(created.record.skipped.count) device nodes; the runtime provides /dev")
        }
        if let message = created.createMessage, !message.isEmpty {
            Console.status(Console.escaped(message.trimmingCharacters(in: .whitespacesAndNewlines), keepNewlines: true))
        }
        print(created.folder.path)
    }
}

struct List: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List containers: name, state, pid, image.")

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    struct Row: Encodable {
        var name: String
        var state: String
        var pid: Int32?
        var image: String
        var build: String
    }

    func run() throws {
        // Listing reads folders only: it needs neither the remotes nor a subordinate id range (the store's
        // id map is used only to remove, which list never does).
        let store = ContainerStore(
            root: CoopPaths.current().containersDirectory, idMap: (try? IDMap.forCurrentUser()) ?? .rootDefault)
        // Containers that LXC made (a config, but no coop.json) are listed too, without an image.
        let rows = store.names().map { name -> Row in
            let record = store.record(name)
            let state = ContainerState.read(store.folder(name)).flatMap { $0.isRunning ? $0 : nil }
            return Row(
                name: name, state: state == nil ? "stopped" : "running", pid: state?.pid,
                image: record.map { "\($0.image)" } ?? "-", build: record?.build ?? "-")
        }
        if json {
            try printJSON(rows)
        } else {
            printTable(
                ["NAME", "STATE", "PID", "IMAGE", "BUILD"],
                rows.map { [$0.name, $0.state, $0.pid.map(String.init) ?? "-", $0.image, $0.build] })
        }
    }
}

struct Copy: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "copy",
        abstract: "Copy a stopped container: a copy-on-write one over the same base, any other in full.")

    @Argument(help: "The container to copy.")
    var source: String
    @Argument(help: "The new container's name.")
    var name: String

    func run() throws {
        let started = Date()
        let folder = try LocalContainers().store().copy(source, to: name)
        let seconds = String(format: "%.2f", Date().timeIntervalSince(started))
        Console.status("copied \(source) to \(name) (\(seconds) s)")
        print(folder.path)
    }
}

struct Destroy: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "destroy", abstract: "Remove a container and its files.")

    @Argument(help: "The container's name.")
    var name: String

    func run() throws {
        let store = try LocalContainers().store()
        let folder = try store.existingFolder(name)
        if let state = ContainerState.read(folder) {
            if state.isRunning {
                throw CoopError(
                    .conflict, "container \(name)", cause: "is running (pid \(state.pid))",
                    fix: "stop it first with 'coop stop \(name)'")
            }
            // A container whose init was killed leaves its (empty) cgroup folders and its pasta; they go with it.
            ContainerRuntime.endNetwork(folder: folder)
            if let definition = try? ContainerDefinition(folder: folder) {
                ContainerCgroups.remove(state.cgroups ?? [], idMap: definition.idMap)
            }
        }
        try store.destroy(name)
        Console.status("destroyed \(name)")
    }
}
