import Foundation
import Testing

/// A private folder for one unit test, removed with it.
final class Scratch: @unchecked Sendable {
    let root: URL

    init(_ name: String = #function) throws {
        let slug = name.filter { $0.isLetter || $0.isNumber }.prefix(40)
        root = FileManager.default.temporaryDirectory.appendingPathComponent(
            "coop-unit-\(slug)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    }

    deinit {
        try? FileManager.default.removeItem(at: root)
    }
}

/// Runs a tool and gives its exit status.
func tool(_ path: String, _ arguments: String...) throws -> Int32 {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    process.standardOutput = FileHandle.nullDevice
    try process.run()
    process.waitUntilExit()
    return process.terminationStatus
}
