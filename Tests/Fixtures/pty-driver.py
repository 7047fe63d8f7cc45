#!/usr/bin/env python3
"""Runs a command on a pseudo-terminal, as a person at a terminal would, and prints what it showed.

Usage: pty-driver.py ROWS COLUMNS STEPS -- COMMAND [ARG...]

STEPS is a JSON list; each step is one of
  {"send": TEXT}             type TEXT (may hold control characters such as "\\u0003" for Ctrl-C)
  {"expect": TEXT}           wait until TEXT has appeared since the last expect (10 s at most)
  {"resize": [ROWS, COLS]}   change the terminal's size, as a window manager would (SIGWINCH)
  {"pause": SECONDS}         wait, reading what comes meanwhile
The transcript goes to stdout; the exit status is the command's (124 when an expect timed out,
after killing the command).
"""
import json
import os
import pty
import select
import signal
import struct
import sys
import termios
import fcntl
import time


def main():
    rows, cols, steps = int(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3])
    command = sys.argv[sys.argv.index("--") + 1:]
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(command[0], command)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    seen = b""
    mark = 0

    def read_some(timeout):
        nonlocal seen
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            return True
        try:
            data = os.read(fd, 4096)
        except OSError:
            return False
        if not data:
            return False
        seen += data
        return True

    for step in steps:
        if "send" in step:
            os.write(fd, step["send"].encode())
        elif "resize" in step:
            fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", step["resize"][0], step["resize"][1], 0, 0))
            os.kill(pid, signal.SIGWINCH)
        elif "pause" in step:
            end = time.time() + step["pause"]
            while time.time() < end and read_some(0.05):
                pass
        elif "expect" in step:
            want = step["expect"].encode()
            deadline = time.time() + 10
            while want not in seen[mark:]:
                if time.time() > deadline or not read_some(0.1):
                    sys.stdout.write(seen.decode(errors="replace"))
                    sys.stdout.write("\n[pty-driver: gave up waiting for %r]\n" % step["expect"])
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                    return 124
            mark = seen.index(want, mark) + len(want)
    deadline = time.time() + 10
    while time.time() < deadline and read_some(0.2):
        pass
    _, status = os.waitpid(pid, 0)
    sys.stdout.write(seen.decode(errors="replace"))
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main())
