import CoopSupport
import Foundation

/// Removes folders whose files belong to a container's ids. An ordinary user cannot delete those on
/// the host, so the removal runs as root of a user namespace mapped onto the same range.
public enum TreeRemover {
    public static func remove(_ url: URL, idMap: IDMap, privileged: Bool) throws {
        guard FileSystem.exists(url) else { return }
        if privileged {
            try removeHere(url)
            return
        }
        let stderr = try Pipe.make()
        let process: SpawnedProcess
        do {
            defer { close(stderr.write) }
            process = try SpawnedProcess(
                arguments: [CoopPaths.executablePath(), "__remove", url.path], idMap: idMap, error: stderr.write)
        }
        let errors = PipeReader(fd: stderr.read)
        if process.wait() != 0 {
            throw CoopError(
                .io, "removal of \(url.path)", cause: errors.text().trimmingCharacters(in: .whitespacesAndNewlines),
                fix: "remove it as root")
        }
    }

    /// Removes a tree in this process (root, or already inside the user namespace).
    public static func removeHere(_ url: URL) throws {
        do {
            try FileManager.default.removeItem(at: url)
        } catch {
            // Read-only folders in an image (e.g. 0555) block removal of their entries: open them up first.
            _ = chmodTree(url)
            do { try FileManager.default.removeItem(at: url) } catch {
                throw CoopError(.io, "removal of \(url.path)", cause: error.localizedDescription)
            }
        }
    }

    private static func chmodTree(_ url: URL) -> Bool {
        guard let walker = FileManager.default.enumerator(atPath: url.path) else { return false }
        chmod(url.path, 0o700)
        while let relative = walker.nextObject() as? String {
            let path = url.path + "/" + relative
            var info = stat()
            if lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR { chmod(path, 0o700) }
        }
        return true
    }
}
