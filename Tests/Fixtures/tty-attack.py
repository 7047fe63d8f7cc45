#!/usr/bin/env python3
"""Runs a command whose controlling terminal is a fresh pty, as from a user's shell, then tells whether
anything was typed into that terminal behind the user's back (TIOCSTI from inside a container).

Usage: tty-attack.py MODES WAIT -- COMMAND [ARG...]
MODES: three letters for stdin, stdout, stderr: t = the terminal, n = /dev/null, p = a pipe (its output
is printed). WAIT: seconds to keep watching the terminal after the command ended.
Prints the command's output, then "typed: " and what arrived as input on the terminal; exits with the
command's status.
"""
import os
import select
import subprocess
import sys
import time


def main():
    modes, wait = sys.argv[1], float(sys.argv[2])
    command = sys.argv[sys.argv.index("--") + 1:]
    master, slave = os.openpty()

    def controlling_terminal():
        os.setsid()
        import fcntl
        import termios
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)

    def stream(mode, is_input):
        if mode == "t":
            return slave
        if mode == "n":
            return subprocess.DEVNULL
        return None if is_input else subprocess.PIPE

    process = subprocess.Popen(
        command, stdin=stream(modes[0], True) if modes[0] != "p" else subprocess.PIPE,
        stdout=stream(modes[1], False), stderr=stream(modes[2], False),
        preexec_fn=controlling_terminal, pass_fds=(slave,))
    out, err = process.communicate(b"" if modes[0] == "p" else None)
    sys.stdout.write((out or b"").decode(errors="replace"))
    sys.stdout.write((err or b"").decode(errors="replace"))
    # Whatever the terminal showed (its output side) is drained; then its input side is read.
    typed = b""
    deadline = time.time() + wait
    os.set_blocking(slave, False)
    os.set_blocking(master, False)
    while time.time() < deadline:
        select.select([slave, master], [], [], 0.1)
        for fd in (master,):
            try:
                sys.stdout.write(os.read(fd, 65536).decode(errors="replace"))
            except (BlockingIOError, OSError):
                pass
        try:
            typed += os.read(slave, 65536)
        except (BlockingIOError, OSError):
            pass
    print("\ntyped: " + repr(typed.decode(errors="replace")))
    sys.exit(process.returncode)


main()
