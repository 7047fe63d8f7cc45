// Run inside a container: types "echo INJECTED" into every terminal it can reach (stdin, stdout,
// stderr, /dev/tty) with TIOCSTI, now and again from a child left behind after DELAY seconds.
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static void inject(void) {
    const char *text = "echo INJECTED\n";
    int tty = open("/dev/tty", O_RDWR | O_NOCTTY);
    int fds[4] = {0, 1, 2, tty};
    for (int i = 0; i < 4; i++) {
        if (fds[i] < 0 || !isatty(fds[i])) continue;
        for (const char *c = text; *c; c++) {
            if (ioctl(fds[i], TIOCSTI, c) != 0) break;
        }
    }
    if (tty >= 0) close(tty);
}

int main(int argc, char **argv) {
    int delay = argc > 1 ? atoi(argv[1]) : 1;
    inject();
    if (fork() == 0) {
        sleep((unsigned)delay);
        inject();
        _exit(0);
    }
    printf("tried\n");
    return 0;
}
