import CoopFormats
import CoopRootfs
import CoopSupport
import CoopSystem
import Foundation

extension ContainerStore {
    /// `coop copy`: a new container `name` from the stopped container `source`. A copy-on-write source
    /// gives a container over the same base with a copy of its upper layer; any other a full copy of its
    /// rootfs, made as the container's root (`cp -a --reflink=auto`, as a warm create). The templates are
    /// filled in again for the new name (hostname and friends), and so is the config. All or nothing.
    public func copy(_ source: String, to name: String) throws -> URL {
        try Self.checkName(source)
        try Self.checkName(name)
        guard source != name else {
            throw CoopError(
                .usage, "copy of \(source)", cause: "the copy has the same name as the container",
                fix: "give the copy another name")
        }
        try makeRoot()
        // Both names locked, always in the same order: two copies the other way round cannot wait on each other.
        let locks = try [source, name].sorted().map { try lock($0) }
        defer { locks.forEach { $0.unlock() } }
        let sourceFolder = try existingFolder(source)
        guard !exists(name) else {
            throw CoopError(
                .conflict, "container \(name)", cause: "already exists",
                fix: "choose another name, or remove it first with 'coop destroy \(name)'")
        }
        if let pid = runningPID(source) {
            throw CoopError(
                .conflict, "container \(source)", cause: "is running (pid \(pid)): its files are changing",
                fix: "stop it first with 'coop stop \(source)', then copy it")
        }
        removeAbandonedStaging()
        let final = folder(name)
        let staging = FileSystem.stagingURL(for: final, tag: "creating")
        try FileSystem.createDirectory(staging)
        do {
            try ContainerFolder.makePrivate(staging, for: idMap)
            try copyFiles(of: source, in: sourceFolder, to: staging, as: name)
            try checkSystemCall(rename(staging.path, final.path), "create \(final.path)")
            FileSystem.syncDirectory(root)
            return final
        } catch {
            do { try TreeRemover.remove(staging, idMap: idMap, privileged: privileged) } catch let cleanup {
                Console.warning("could not remove \(staging.path): \(cleanup)")
            }
            throw error
        }
    }

    /// The rootfs (or upper layer), config and record of `source` into `staging`, for the container `name`.
    private func copyFiles(of source: String, in sourceFolder: URL, to staging: URL, as name: String) throws {
        var config = try LXCConfig.read(containerFolder: sourceFolder, name: source)
        var record = self.record(source)
        let final = folder(name)
        let values = [
            source: name, sourceFolder.path: final.path,
            sourceFolder.appendingPathComponent("rootfs").path: final.appendingPathComponent("rootfs").path,
        ]
        let templates = record?.templates ?? []
        if let overlay = config.overlayRootfs {
            try checkInside(overlay.upper, named: "delta0", of: sourceFolder, source: source)
            let request = ExtractionRequest(
                destination: staging.appendingPathComponent("delta0").path, shift: nil, idCount: idMap.count,
                templates: templates, templateValues: values, copyFrom: overlay.upper, overlayWork: true,
                wholeNames: true)
            try RootfsUnpacker.copy(request: request, idMap: idMap, privileged: privileged)
            try ContainerCreator.finishUpperLayer(in: staging, idMap: idMap, privileged: privileged)
            try config.setOverlayRootfs(lower: overlay.lower, upper: final.appendingPathComponent("delta0").path)
        } else {
            let rootfs = config.rootfsPath ?? sourceFolder.appendingPathComponent("rootfs").path
            try checkInside(rootfs, named: "rootfs", of: sourceFolder, source: source)
            let request = ExtractionRequest(
                destination: staging.appendingPathComponent("rootfs").path, shift: nil, idCount: idMap.count,
                templates: templates, templateValues: values, copyFrom: rootfs, wholeNames: true)
            try RootfsUnpacker.copy(request: request, idMap: idMap, privileged: privileged)
            try config.setRootfsPath(final.appendingPathComponent("rootfs").path)
        }
        if config.utsName == nil || config.utsName == source { try config.setUTSName(name) }
        try FileSystem.writeAtomically(try config.formatted(), to: staging.appendingPathComponent("config"))
        if record != nil {
            record?.name = name
            record?.createdAt = Int(Date().timeIntervalSince1970)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try FileSystem.writeAtomically(try encoder.encode(record), to: staging.appendingPathComponent("coop.json"))
        }
    }

    /// Copies read only the container's own folder: a config that points elsewhere is not followed.
    private func checkInside(_ path: String, named expected: String, of folder: URL, source: String) throws {
        let wanted = folder.appendingPathComponent(expected).standardizedFileURL.path
        guard URL(fileURLWithPath: path).standardizedFileURL.path == wanted else {
            throw CoopError(
                .usage, "copy of \(source)", cause: "its config keeps its files in \(path), outside its folder",
                fix: "copy it with LXC's lxc-copy, or point lxc.rootfs.path at \(wanted)")
        }
    }
}
