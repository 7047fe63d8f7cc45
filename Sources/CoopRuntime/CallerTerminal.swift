import CCoopNamespace
import CoopSystem
import Foundation

/// How a command in a container gets the caller's stdin, stdout and stderr without ever holding a terminal
/// of the user's (root inside could type into it with TIOCSTI, or read from it): pipes and files pass
/// through as they are; a terminal is replaced by a pipe that coop relays from outside.
struct RelayedStdio {
    /// The descriptors the command gets as 0, 1 and 2 (-1: the caller's own, which is no terminal).
    private(set) var inner: [Int32] = [-1, -1, -1]
    /// For each of 0, 1, 2: the relay's source and destination, -1 where nothing is relayed.
    private var from: [Int32] = [-1, -1, -1]
    private var to: [Int32] = [-1, -1, -1]

    /// Nothing relayed: the command gets the caller's descriptors (none of them a terminal).
    static let none = RelayedStdio()

    private init() {}

    /// Relays each of stdin, stdout and stderr that is a terminal.
    static func forTerminals() throws -> RelayedStdio {
        var stdio = RelayedStdio()
        try stdio.replaceTerminals()
        return stdio
    }

    private mutating func replaceTerminals() throws {
        for fd in Int32(0)...2 where isatty(fd) == 1 {
            let pipe = try Pipe.make()
            let index = Int(fd)
            if fd == STDIN_FILENO {
                (inner[index], from[index], to[index]) = (pipe.read, fd, pipe.write)
            } else {
                (inner[index], from[index], to[index]) = (pipe.write, pipe.read, fd)
            }
        }
    }

    /// Whether any terminal is relayed.
    var isRelaying: Bool { from.contains { $0 >= 0 } }

    /// Closes the command's ends in this process, once the command (or its starter) has them.
    func closeInner() {
        for fd in inner where fd >= 0 { close(fd) }
    }

    /// Relays until the outputs end or shortly after `child` has ended; closes the relay's own ends.
    func relay(until child: pid_t) {
        guard isRelaying else { return }
        // A command that stopped reading its input must not take coop down with SIGPIPE.
        let previous = signal(SIGPIPE, SIG_IGN)
        coop_relay_stdio(child, from, to)
        signal(SIGPIPE, previous)
        for index in 1...2 where from[index] >= 0 { close(from[index]) }
    }
}

/// The caller's terminal in raw mode while a container's console is relayed to it: keys, Ctrl-C and
/// Ctrl-Z included, go to the container as typed.
final class RawTerminal {
    private var saved = termios()
    private var isRaw = false

    init() {
        guard isatty(STDIN_FILENO) == 1, tcgetattr(STDIN_FILENO, &saved) == 0 else { return }
        var raw = saved
        cfmakeraw(&raw)
        isRaw = tcsetattr(STDIN_FILENO, TCSADRAIN, &raw) == 0
    }

    func restore() {
        if isRaw { tcsetattr(STDIN_FILENO, TCSADRAIN, &saved) }
        isRaw = false
    }

    deinit { restore() }

    /// Whether both stdin and stdout are terminals: an interactive session, which gets a pty.
    static var isInteractive: Bool { isatty(STDIN_FILENO) == 1 && isatty(STDOUT_FILENO) == 1 }
}
