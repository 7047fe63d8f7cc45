// coop-supervisor: the process that stays beside a running container. `coop start` spawns it inside
// the container's user namespace (root over the container's id range only); it makes the other
// namespaces, forks PID 1, keeps the console pty, copies console output to its stdout and waits.
// It is plain C on purpose: one per running container, it must cost almost no memory.
//
// Usage: coop-supervisor PID_FD ERROR_FD GO_FD ROOTFS HOSTNAME FLAGS LOWER [CGROUP_MOUNT...] -- COMMAND...
//   PID_FD    receives PID 1's pid as text, then is closed
//   ERROR_FD  receives a failure as "stage errno\n", or nothing when PID 1 runs
//   GO_FD     gives one byte once coop has placed this process in its cgroups (end of file: give up)
//   FLAGS     letters: n = share the host's network, c = PID 1's stdio is the console, t = as c, and the
//             supervisor's stdin (the user's terminal, in raw mode) is typed into the console
//   LOWER     "-", or the image tree of a throwaway container (ROOTFS is then an empty folder)
//   CGROUP_MOUNT  "DIR TYPE OPTIONS" lines for /sys/fs/cgroup inside (see coop_runtime.h)
// The environment is PID 1's. The exit status is PID 1's, or 128 + the signal that ended it.
#define _GNU_SOURCE
#include "CCoopNamespace.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

// The supervisor is linked statically, and the toolchain links the Swift runtime into every product; the
// runtime would pull in glibc's dlopen, which a static program cannot use. Nothing here loads a library.
void *dlopen(const char *file, int mode) {
    (void)file;
    (void)mode;
    return NULL;
}

static pid_t init_pid = -1;

// SIGTERM and SIGHUP for the supervisor are meant for the container: pass them on to PID 1.
static void forward(int sig) {
    if (init_pid > 0) kill(init_pid, sig);
}

static void write_all(int fd, const char *data, size_t length) {
    while (length > 0) {
        ssize_t n = write(fd, data, length);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        data += n;
        length -= (size_t)n;
    }
}

// Copies what the container wrote to its console; returns 0 once the pty has nothing more to give now.
static int drain(int console) {
    char buffer[4096];
    ssize_t n;
    while ((n = read(console, buffer, sizeof buffer)) < 0 && errno == EINTR) {
    }
    if (n <= 0) return 0;
    write_all(STDOUT_FILENO, buffer, (size_t)n);
    return 1;
}

// Closes every descriptor from 3 up except the three given, with one close_range per gap.
static void close_all_but(int a, int b, int c) {
    int keep[3] = {a, b, c};
    for (int i = 0; i < 3; i++) {
        for (int j = i + 1; j < 3; j++) {
            if (keep[j] < keep[i]) {
                int t = keep[i];
                keep[i] = keep[j];
                keep[j] = t;
            }
        }
    }
    unsigned int from = 3;
    for (int i = 0; i < 3; i++) {
        if (keep[i] < (int)from) continue;
        if ((unsigned int)keep[i] > from) syscall(SYS_close_range, from, (unsigned int)keep[i] - 1, 0);
        from = (unsigned int)keep[i] + 1;
    }
    syscall(SYS_close_range, from, ~0U, 0);
}

static volatile sig_atomic_t window_changed = 1;

static void note_window_change(int sig) {
    (void)sig;
    window_changed = 1;
}

static int status_of(int raw) { return WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw); }

int main(int argc, char **argv) {
    int separator = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            separator = i;
            break;
        }
    }
    if (separator < 8 || separator + 1 >= argc) {
        fprintf(stderr, "coop-supervisor: started by coop only (see coop start)\n");
        return 2;
    }
    int pid_fd = atoi(argv[1]);
    int error_fd = atoi(argv[2]);
    int go_fd = atoi(argv[3]);
    const char *flags = argv[6];
    // Nothing the caller left open may reach the container: only stdio and the three pipes stay.
    close_all_but(pid_fd, error_fd, go_fd);
    char go;
    ssize_t got;
    while ((got = read(go_fd, &go, 1)) < 0 && errno == EINTR) {
    }
    if (got != 1) return 1;
    close(go_fd);
    fcntl(pid_fd, F_SETFD, FD_CLOEXEC);
    fcntl(error_fd, F_SETFD, FD_CLOEXEC);
    argv[separator] = NULL;

    // The console: a pty of the host's devpts whose other end becomes /dev/console inside.
    int console = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    char console_path[64] = "";
    int console_peer = -1;
    if (console >= 0 && unlockpt(console) == 0 && ptsname_r(console, console_path, sizeof console_path) == 0) {
        fcntl(console, F_SETFL, O_NONBLOCK);
        // Holding the other end too keeps the pty from hanging up while no process inside has it open.
        console_peer = open(console_path, O_RDWR | O_NOCTTY | O_CLOEXEC);
    } else {
        if (console >= 0) close(console);
        console = -1;
        console_path[0] = '\0';
    }

    coop_container_spec spec = {
        .rootfs = argv[4],
        .hostname = argv[5],
        .argv = argv + separator + 1,
        .envp = environ,
        .share_network = strchr(flags, 'n') != NULL,
        .console_path = console_path[0] ? console_path : NULL,
        .console_stdio = (strchr(flags, 'c') != NULL || strchr(flags, 't') != NULL) && console_path[0],
        .cgroup_mounts = (const char *const *)(argv + 8),
        .overlay_lower = strcmp(argv[7], "-") == 0 ? NULL : argv[7],
    };
    coop_spawn_failure failure;
    init_pid = coop_container_start(&spec, &failure);
    if (init_pid < 0) {
        char text[64];
        int n = snprintf(text, sizeof text, "%d %d\n", (int)failure.stage, failure.error_number);
        write_all(error_fd, text, (size_t)n);
        return 1;
    }
    char text[32];
    int n = snprintf(text, sizeof text, "%d\n", (int)init_pid);
    write_all(pid_fd, text, (size_t)n);
    close(pid_fd);
    close(error_fd);

    struct sigaction action = {0};
    action.sa_handler = forward;
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGHUP, &action, NULL);
    // Keys typed at a foreground container's terminal are for the container, not for its supervisor.
    signal(SIGINT, SIG_IGN);
    signal(SIGQUIT, SIG_IGN);
    int typing = strchr(flags, 't') != NULL && console >= 0;
    if (typing) {
        struct sigaction resize = {0};
        resize.sa_handler = note_window_change;
        sigaction(SIGWINCH, &resize, NULL);
    }

    int exited = (int)syscall(SYS_pidfd_open, init_pid, 0);
    int raw = 0;
    if (console < 0 || exited < 0) {
        while (waitpid(init_pid, &raw, 0) < 0 && errno == EINTR) {
        }
    } else {
        struct pollfd fds[3] = {{.fd = console, .events = POLLIN},
                                {.fd = exited, .events = POLLIN},
                                {.fd = typing ? STDIN_FILENO : -1, .events = POLLIN}};
        for (;;) {
            if (typing && window_changed) {
                window_changed = 0;
                struct winsize size;
                if (ioctl(STDIN_FILENO, TIOCGWINSZ, &size) == 0) ioctl(console, TIOCSWINSZ, &size);
            }
            if (poll(fds, 3, -1) < 0) {
                if (errno == EINTR) continue;
                break;
            }
            if (fds[0].revents & POLLIN) drain(console);
            if (fds[0].revents & (POLLHUP | POLLERR) && !(fds[0].revents & POLLIN)) fds[0].fd = -1;
            // Keys typed at the user's terminal go to the console, until the end of input.
            if (fds[2].revents & (POLLIN | POLLHUP | POLLERR) && coop_copy_once(STDIN_FILENO, console) < 0)
                fds[2].fd = -1;
            if (fds[1].revents & POLLIN) break;
        }
        while (waitpid(init_pid, &raw, 0) < 0 && errno == EINTR) {
        }
        while (drain(console)) {
        }
    }
    if (console_peer >= 0) close(console_peer);
    // Cgroups made inside (systemd makes many) belong to the container's root: only we can remove them.
    coop_cgroup_prune(spec.cgroup_mounts);
    return status_of(raw);
}
