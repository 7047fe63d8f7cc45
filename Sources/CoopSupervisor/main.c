// coop-supervisor: the process that stays beside a running container. `coop start` spawns it inside
// the container's user namespace (root over the container's id range only); it makes the other
// namespaces, forks PID 1, keeps the console pty, copies console output to its stdout and waits.
// It is plain C on purpose: one per running container, it must cost almost no memory.
//
// Usage: coop-supervisor REQUEST_FD REPLY_FD [LABEL]
//        coop-supervisor --end-network SUPERVISOR_PID PASTA_PID (see end_network_after)
//        coop-supervisor --fleet-network|--fleet-plug|--fleet-join … (a fleet's network: coop_fleet.h)
//   REQUEST_FD  gives one request (coop_protocol.h) once coop has placed this process in its cgroups;
//               end of file instead: coop gave up. With a network to wait for, then one byte once it
//               is configured, read by PID 1
//   REPLY_FD    receives one coop_start_reply: PID 1's pid, or the stage that failed, errno and the path
//   LABEL       the container's rootfs, for ps; not read
// Exit status: PID 1's, or 128 + the signal that ended it, once it ran; else the failed stage's
// (docs/errors.md); 2 when not started by coop.
#define _GNU_SOURCE
#include "CCoopNamespace.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

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

// Copies what the container wrote to its console; returns 0 once the pty has nothing more to give now.
static int drain(int console) {
    char buffer[4096];
    ssize_t n;
    while ((n = read(console, buffer, sizeof buffer)) < 0 && errno == EINTR) {
    }
    if (n <= 0) return 0;
    // Output nobody takes any more (the log's disk is full, the reader is gone) is dropped: the console
    // must keep draining, or PID 1 blocks on its next write.
    (void)coop_write_full(STDOUT_FILENO, buffer, (size_t)n);
    return 1;
}

static volatile sig_atomic_t window_changed = 1;

static void note_window_change(int sig) {
    (void)sig;
    window_changed = 1;
}

static int status_of(int raw) { return WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw); }

// A descriptor number given on the command line, above stdio; -1 when it is not one.
static int descriptor_argument(const char *text) {
    char *end = NULL;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value < 3 || value > INT_MAX) return -1;
    return (int)value;
}

static void note(coop_failure *failure, int stage, const char *detail) {
    coop_failure_note(failure, stage, errno, detail);
}

// Sends the reply (and closes the pipe unless `keep`); 0, or -1 when coop is not there to read it.
static int answer_keeping(int fd, const coop_start_reply *reply, int keep) {
    // A coop that is gone must give EPIPE, not end the supervisor before it has cleaned up. Only now,
    // and for this write: PID 1, forked already, keeps the default.
    struct sigaction ignore = {0}, previous;
    ignore.sa_handler = SIG_IGN;
    if (sigaction(SIGPIPE, &ignore, &previous) < 0) return -1;
    int written = coop_write_full(fd, reply, sizeof *reply);
    int closed = keep ? 0 : coop_close(fd);
    if (sigaction(SIGPIPE, &previous, NULL) < 0) return -1;
    return written == 0 && closed == 0 ? 0 : -1;
}

static int answer(int fd, const coop_start_reply *reply) { return answer_keeping(fd, reply, 0); }

// The socket PID 1 tells that it has booted (see COOP_REQUEST_NOTIFY_BOOT), bound in the container's
// network namespace, where this process is since the fork of PID 1; -1 when it cannot be had (coop then
// never hears of the boot and says so once its wait is over).
static int open_notify_socket(void) {
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return -1;
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    // Abstract: a name of the namespace, no file in the container's tree.
    const char *name = &COOP_NOTIFY_SOCKET[1];
    memcpy(address.sun_path + 1, name, strlen(name));
    socklen_t size = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name));
    if (bind(fd, (struct sockaddr *)&address, size) < 0) {
        (void)coop_close(fd);
        return -1;
    }
    return fd;
}

// Reads what came on the notify socket; 1 once a message says READY=1 (a line of its own).
static int ready_said(int fd) {
    char message[4096];
    ssize_t n;
    while ((n = recv(fd, message, sizeof message - 1, 0)) > 0) {
        message[n] = '\0';
        for (char *line = message; line != NULL; line = strchr(line, '\n')) {
            if (*line == '\n') line++;
            if (strncmp(line, "READY=1", 7) == 0 && (line[7] == '\0' || line[7] == '\n')) return 1;
        }
    }
    return 0;
}

// Tells coop that PID 1 has booted, and closes the pipe; what coop does not read any more is lost.
static void tell_booted(int fd) {
    struct sigaction ignore = {0}, previous;
    ignore.sa_handler = SIG_IGN;
    char byte = COOP_BOOTED;
    if (sigaction(SIGPIPE, &ignore, &previous) == 0) {
        (void)coop_write_full(fd, &byte, 1);
        (void)sigaction(SIGPIPE, &previous, NULL);
    }
    (void)coop_close(fd);
}

// The first answer when coop configures the network: PID 1's pid, so that coop can join its namespaces.
static int announce(int fd, pid_t pid) {
    coop_start_reply first;
    memset(&first, 0, sizeof first);
    first.pid = pid;
    struct sigaction ignore = {0}, previous;
    ignore.sa_handler = SIG_IGN;
    if (sigaction(SIGPIPE, &ignore, &previous) < 0) return -1;
    int written = coop_write_full(fd, &first, sizeof first);
    if (sigaction(SIGPIPE, &previous, NULL) < 0) return -1;
    return written;
}

// Answers with the failure in `reply` and returns the status to exit with.
static int give_up(int reply_fd, const coop_start_reply *reply) {
    // Nothing is left to tell when the answer cannot go: the status says the stage on its own.
    (void)answer(reply_fd, reply);
    return coop_failure_status(&reply->failure);
}

// The console: a pty of the host's devpts whose other end becomes /dev/console inside. `peer` holds that
// other end too, which keeps the pty from hanging up while no process inside has it open.
static int open_console(char path[64], int *peer, coop_failure *failure) {
    int console = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (console < 0) {
        note(failure, COOP_RUN_CONSOLE, "open /dev/ptmx");
        return -1;
    }
    int error_number;
    if (unlockpt(console) < 0) {
        note(failure, COOP_RUN_CONSOLE, "unlockpt");
    } else if ((error_number = ptsname_r(console, path, 64)) != 0) {
        errno = error_number;
        note(failure, COOP_RUN_CONSOLE, "ptsname_r");
    } else if (fcntl(console, F_SETFL, O_NONBLOCK) < 0) {
        note(failure, COOP_RUN_CONSOLE, "O_NONBLOCK on the console");
    } else if ((*peer = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0) {
        note(failure, COOP_RUN_CONSOLE, path);
    } else {
        return console;
    }
    (void)coop_close(console);
    return -1;
}

// How the supervisor treats signals once PID 1 runs.
static int take_signals(int typing, coop_failure *failure) {
    struct sigaction action = {0};
    action.sa_handler = forward;
    if (sigaction(SIGTERM, &action, NULL) < 0 || sigaction(SIGHUP, &action, NULL) < 0) {
        note(failure, COOP_RUN_SIGNALS, "sigaction SIGTERM, SIGHUP");
        return -1;
    }
    // Keys typed at a foreground container's terminal are for the container, not for its supervisor.
    if (signal(SIGINT, SIG_IGN) == SIG_ERR || signal(SIGQUIT, SIG_IGN) == SIG_ERR) {
        note(failure, COOP_RUN_SIGNALS, "ignore SIGINT, SIGQUIT");
        return -1;
    }
    if (typing) {
        struct sigaction resize = {0};
        resize.sa_handler = note_window_change;
        if (sigaction(SIGWINCH, &resize, NULL) < 0) {
            note(failure, COOP_RUN_SIGNALS, "sigaction SIGWINCH");
            return -1;
        }
    }
    return 0;
}

// Copies the console to stdout (and the user's keys into it when `typing`) until PID 1 ends; returns
// its wait status. With a notify socket, the boot is told on `booted_fd` when PID 1 says READY=1.
static int supervise(int console, int typing, int notify, int booted_fd) {
    int exited = (int)syscall(SYS_pidfd_open, init_pid, 0);
    int raw = 0;
    if (exited < 0) {
        // Without a pidfd (Linux before 5.3) there is nothing to wake the copy when PID 1 ends.
        while (waitpid(init_pid, &raw, 0) < 0 && errno == EINTR) {
        }
        return raw;
    }
    struct pollfd fds[4] = {{.fd = console, .events = POLLIN},
                            {.fd = exited, .events = POLLIN},
                            {.fd = typing ? STDIN_FILENO : -1, .events = POLLIN},
                            {.fd = notify, .events = POLLIN}};
    for (;;) {
        if (typing && window_changed) {
            window_changed = 0;
            struct winsize size;
            // Best effort: the console keeps its size when the terminal tells none.
            if (ioctl(STDIN_FILENO, TIOCGWINSZ, &size) == 0) (void)ioctl(console, TIOCSWINSZ, &size);
        }
        if (poll(fds, 4, -1) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (fds[0].revents & POLLIN) drain(console);
        if (fds[0].revents & (POLLHUP | POLLERR) && !(fds[0].revents & POLLIN)) fds[0].fd = -1;
        // Keys typed at the user's terminal go to the console, until the end of input.
        if (fds[2].revents & (POLLIN | POLLHUP | POLLERR) && coop_copy_once(STDIN_FILENO, console) < 0)
            fds[2].fd = -1;
        if (fds[3].revents & POLLIN && ready_said(notify)) {
            tell_booted(booted_fd);
            booted_fd = -1;
            (void)coop_close(notify);
            fds[3].fd = -1;
        }
        if (fds[1].revents & POLLIN) break;
    }
    if (fds[3].fd >= 0) (void)coop_close(notify);
    while (waitpid(init_pid, &raw, 0) < 0 && errno == EINTR) {
    }
    while (drain(console)) {
    }
    (void)coop_close(exited);
    return raw;
}

// Ends PID 1 when the supervisor cannot go on with it.
static void end_pid1(void) {
    kill(init_pid, SIGKILL);
    while (waitpid(init_pid, NULL, 0) < 0 && errno == EINTR) {
    }
}

// `coop-supervisor --end-network SUPERVISOR PASTA`: started by `coop start` as the user beside a container
// in the background whose network pasta serves. pasta does not end when the container's namespaces go, so
// this waits for the container's supervisor to end, then ends that pasta (held by a pidfd from the start,
// so a recycled pid is never signalled). Exit status 0, or 2 when the arguments are not coop's.
static int end_network_after(const char *supervisor_text, const char *pasta_text) {
    pid_t supervisor = coop_pid_argument(supervisor_text), pasta = coop_pid_argument(pasta_text);
    if (supervisor < 0 || pasta < 0) {
        fprintf(stderr, "coop-supervisor: started by coop only (see coop start)\n");
        return 2;
    }
    // Nothing of coop's may stay open here for as long as the container runs.
    if (coop_close_descriptors(3, NULL, 0, 0) < 0) return 1;
    int pasta_fd = (int)syscall(SYS_pidfd_open, pasta, 0);
    // A pasta that is gone already needs no end.
    if (pasta_fd < 0) return 0;
    int watched = (int)syscall(SYS_pidfd_open, supervisor, 0);
    if (watched >= 0) {
        struct pollfd entry = {.fd = watched, .events = POLLIN};
        while (poll(&entry, 1, -1) < 0 && errno == EINTR) {
        }
    }
    // ESRCH: it ended on its own (coop stop ends it too).
    if (syscall(SYS_pidfd_send_signal, pasta_fd, SIGTERM, NULL, 0) < 0 && errno != ESRCH) return 1;
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "--end-network") == 0) return end_network_after(argv[2], argv[3]);
    if (argc == 6 && strcmp(argv[1], "--fleet-network") == 0) return coop_fleet_hold(argv[2], argv[3], argv[4], argv[5]);
    if (argc == 9 && strcmp(argv[1], "--fleet-plug") == 0)
        return coop_fleet_plug(argv[2], argv[3], argv[4], argv[5], argv[6], argv[7], argv[8]);
    if (argc >= 4 && strcmp(argv[1], "--fleet-join") == 0) return coop_fleet_join(argv[2], argv + 3);
    int request_fd = argc >= 3 && argc <= 4 ? descriptor_argument(argv[1]) : -1;
    int reply_fd = argc >= 3 && argc <= 4 ? descriptor_argument(argv[2]) : -1;
    if (request_fd < 0 || reply_fd < 0 || request_fd == reply_fd) {
        fprintf(stderr, "coop-supervisor: started by coop only (see coop start)\n");
        return 2;
    }
    coop_start_reply reply;
    memset(&reply, 0, sizeof reply);
    coop_failure *failure = &reply.failure;
    // Nothing the caller left open may reach the container: only stdio and the two pipes stay.
    const int keep[] = {request_fd, reply_fd};
    if (coop_close_descriptors(3, keep, 2, 0) < 0) {
        note(failure, COOP_RUN_DESCRIPTORS, "close_range from 3");
        return give_up(reply_fd, &reply);
    }
    if (fcntl(request_fd, F_SETFD, FD_CLOEXEC) < 0 || fcntl(reply_fd, F_SETFD, FD_CLOEXEC) < 0) {
        note(failure, COOP_RUN_DESCRIPTORS, "FD_CLOEXEC on the pipes to coop");
        return give_up(reply_fd, &reply);
    }
    coop_request request;
    int taken = coop_request_read(request_fd, &request, failure);
    // With a network to wait for, the request pipe also brings coop's word that it is ready: PID 1 reads it.
    int waits = taken == 0 && (request.flags & COOP_REQUEST_WAIT_NETWORK) != 0;
    if (!waits && coop_close(request_fd) < 0 && taken == 0) {
        note(failure, COOP_RUN_DESCRIPTORS, "close the request pipe");
        taken = -1;
    }
    if (taken < 0) return give_up(reply_fd, &reply);

    char console_path[64] = "";
    int console_peer = -1;
    int console = open_console(console_path, &console_peer, failure);
    if (console < 0) return give_up(reply_fd, &reply);
    int typing = (request.flags & COOP_REQUEST_CONSOLE_INPUT) != 0;
    coop_container_spec spec = {
        .rootfs = request.rootfs,
        .hostname = request.hostname,
        .argv = request.argv,
        .envp = request.envp,
        .share_network = (request.flags & COOP_REQUEST_SHARE_NETWORK) != 0,
        .console_path = console_path,
        .console_stdio = (request.flags & (COOP_REQUEST_CONSOLE_STDIO | COOP_REQUEST_CONSOLE_INPUT)) != 0,
        .cgroup_mounts = request.cgroup_mounts,
        .cgroup_count = request.cgroup_count,
        .overlay_lower = request.overlay_lower,
        .overlay_on_disk = (request.flags & COOP_REQUEST_OVERLAY_ON_DISK) != 0,
        .network_ready_fd = waits ? request_fd : -1,
        .resolv_conf = request.resolv_conf,
        .hosts = request.hosts,
    };
    // At most COOP_REQUEST_MAX_CGROUPS, as the request reader makes sure.
    int cgroup_folders[COOP_REQUEST_MAX_CGROUPS];
    coop_cgroup_hold(request.cgroup_mounts, request.cgroup_count, cgroup_folders);
    int report = -1;
    init_pid = coop_container_fork(&spec, &report, failure);
    if (waits && coop_close(request_fd) < 0 && init_pid > 0) {
        // PID 1 holds its own copy; ours must go, or PID 1 would never see coop give up.
        note(failure, COOP_RUN_DESCRIPTORS, "close the request pipe");
        (void)coop_close(report);
        end_pid1();
        return give_up(reply_fd, &reply);
    }
    if (init_pid < 0) return give_up(reply_fd, &reply);
    if (waits && announce(reply_fd, init_pid) < 0) {
        note(failure, COOP_RUN_REPORT, "tell coop PID 1's pid");
        (void)coop_close(report);
        end_pid1();
        return coop_failure_status(failure);
    }
    init_pid = coop_container_wait(init_pid, report, failure);
    if (init_pid < 0) return give_up(reply_fd, &reply);
    if (take_signals(typing, failure) < 0) {
        end_pid1();
        return give_up(reply_fd, &reply);
    }
    reply.pid = init_pid;
    // The socket is bound in the container's network namespace (the supervisor is in it since the fork).
    int notify = (request.flags & COOP_REQUEST_NOTIFY_BOOT) && !spec.share_network ? open_notify_socket() : -1;
    if (answer_keeping(reply_fd, &reply, notify >= 0) < 0) {
        // No one will know this container: it must not run on unseen.
        note(failure, COOP_RUN_REPORT, "reply to coop");
        end_pid1();
        coop_cgroup_prune(cgroup_folders, request.cgroup_count);
        return coop_failure_status(failure);
    }

    // The pipe to coop stays open only to tell the boot; otherwise it is closed by now.
    int raw = supervise(console, typing, notify, notify >= 0 ? reply_fd : -1);
    // The supervisor is on its way out: closing its own pty ends has no one to tell.
    (void)coop_close(console_peer);
    (void)coop_close(console);
    // Cgroups made inside (systemd makes many) belong to the container's root: only we can remove them.
    coop_cgroup_prune(cgroup_folders, request.cgroup_count);
    return status_of(raw);
}
