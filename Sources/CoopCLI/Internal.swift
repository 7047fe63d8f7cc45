import ArgumentParser
import CoopRootfs
import CoopSupport
import CoopSystem
import Foundation

/// `coop __extract REQUEST`: the unpacking child. Runs single-threaded, inside the container's user
/// namespace when unprivileged; reads a tar stream on stdin, prints skipped entries on stdout and,
/// on failure, the error as JSON on stderr.
struct Extract: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "__extract", shouldDisplay: false)

    @Argument var request: String

    func run() throws {
        do {
            let decoded = try JSONDecoder().decode(ExtractionRequest.self, from: Data(request.utf8))
            var extractor = RootfsExtractor(request: decoded)
            if decoded.copyFrom != nil {
                try extractor.copy()
            } else {
                try extractor.extract(from: STDIN_FILENO)
            }
            print(extractor.skipped.joined(separator: "\n"))
        } catch let error as CoopError {
            FileHandle.standardError.write(try JSONEncoder().encode(error) + Data("\n".utf8))
            throw ExitCode(error.code.rawValue)
        }
    }
}

/// `coop __remove PATH`: removes a tree from inside the container's user namespace.
struct Remove: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "__remove", shouldDisplay: false)

    @Argument var path: String

    func run() throws {
        do {
            try TreeRemover.removeHere(URL(fileURLWithPath: path))
        } catch let error as CoopError {
            FileHandle.standardError.write(Data("\(error)\n".utf8))
            throw ExitCode(error.code.rawValue)
        }
    }
}
