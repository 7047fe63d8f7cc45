#define _GNU_SOURCE
#include "coop_namespace.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <shadow.h>
#include <unistd.h>

// Child-to-parent report: a stage and an errno, written through a CLOEXEC pipe. A successful exec
// closes the pipe, so the parent reads end-of-file.
struct report {
    int stage;
    int error_number;
};

static void child_fail(int fd, coop_stage stage) {
    struct report r = {stage, errno};
    ssize_t ignored = write(fd, &r, sizeof r);
    (void)ignored;
    _exit(127);
}

static ssize_t read_full(int fd, void *buf, size_t len) {
    size_t done = 0;
    while (done < len) {
        ssize_t n = read(fd, (char *)buf + done, len - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return n < 0 ? -1 : (ssize_t)done;
        done += (size_t)n;
    }
    return (ssize_t)done;
}

// Root may write a child's id map itself; the setuid helpers would look for root's own subuid range.
static int write_map_directly(char *const helper_argv[], pid_t pid) {
    char path[64], text[256];
    size_t used = 0;
    int is_uid = strstr(helper_argv[0], "uid") != NULL;
    snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, is_uid ? "uid_map" : "gid_map");
    for (int i = 1; helper_argv[i] && helper_argv[i + 1] && helper_argv[i + 2]; i += 3) {
        int n = snprintf(text + used, sizeof text - used, "%s %s %s\n", helper_argv[i], helper_argv[i + 1],
                         helper_argv[i + 2]);
        if (n < 0 || (size_t)n >= sizeof text - used) return -1;
        used += (size_t)n;
    }
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t written = write(fd, text, used);
    close(fd);
    return written == (ssize_t)used ? 0 : -1;
}

static int write_pid(const char *file, pid_t pid) {
    char text[16];
    int n = snprintf(text, sizeof text, "%d", (int)pid);
    int fd = open(file, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t written = write(fd, text, (size_t)n);
    int saved = errno;
    close(fd);
    errno = saved;
    return written == n ? 0 : -1;
}

// Starts newuidmap or newgidmap for `pid`; returns the helper's pid, 0 when root wrote the map itself,
// or -1 (errno set).
static pid_t start_map_helper(char *const helper_argv[], pid_t pid) {
    char pid_text[16];
    int n = 0;
    if (geteuid() == 0) return write_map_directly(helper_argv, pid) == 0 ? 0 : -1;
    while (helper_argv[n] != NULL) n++;
    char **argv = calloc((size_t)n + 2, sizeof(char *));
    if (argv == NULL) return -1;
    argv[0] = helper_argv[0];
    // snprintf is fine here: this runs in the parent, not in the forked child.
    snprintf(pid_text, sizeof pid_text, "%d", (int)pid);
    argv[1] = pid_text;
    for (int i = 1; i < n; i++) argv[i + 1] = helper_argv[i];
    argv[n + 1] = NULL;

    pid_t helper = fork();
    if (helper == 0) {
        execvp(argv[0], argv);
        _exit(127);
    }
    free(argv);
    return helper;
}

// The wait status of a helper from start_map_helper (0 for a map root wrote), or -1.
static int finish_map_helper(pid_t helper) {
    if (helper <= 0) return helper;
    int status = 0;
    while (waitpid(helper, &status, 0) < 0) {
        if (errno != EINTR) return -1;
    }
    return status;
}

pid_t coop_spawn(const char *path, char *const argv[], char *const envp[], const int fds[3],
                 char *const uidmap_argv[], char *const gidmap_argv[], char *const cgroup_procs[], int new_session,
                 coop_spawn_failure *failure) {
    memset(failure, 0, sizeof *failure);
    int use_userns = uidmap_argv != NULL && gidmap_argv != NULL;
    int report_pipe[2], ready_pipe[2] = {-1, -1}, go_pipe[2] = {-1, -1};

    if (pipe2(report_pipe, O_CLOEXEC) < 0) goto pipe_failed;
    if (use_userns && (pipe2(ready_pipe, O_CLOEXEC) < 0 || pipe2(go_pipe, O_CLOEXEC) < 0)) goto pipe_failed;

    // Block signals around fork so that no handler of the parent runs in the child.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t pid = fork();
    if (pid == 0) {
        // Child: async-signal-safe calls only until exec.
        for (int sig = 1; sig < NSIG; sig++) signal(sig, SIG_DFL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        close(report_pipe[0]);
        if (new_session) setsid();
        for (int i = 0; i < 3; i++) {
            if (fds[i] >= 0 && fds[i] != i && dup2(fds[i], i) < 0) child_fail(report_pipe[1], COOP_STAGE_DUP);
        }
        if (use_userns) {
            close(ready_pipe[0]);
            close(go_pipe[1]);
            if (unshare(CLONE_NEWUSER) < 0) child_fail(report_pipe[1], COOP_STAGE_UNSHARE);
            char byte = 'r';
            if (write(ready_pipe[1], &byte, 1) != 1) child_fail(report_pipe[1], COOP_STAGE_SYNC);
            // The parent writes one byte once both maps are in place, or closes the pipe on failure.
            if (read_full(go_pipe[0], &byte, 1) != 1) _exit(126);
            if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0) child_fail(report_pipe[1], COOP_STAGE_SETID);
        }
        execve(path, argv, envp);
        child_fail(report_pipe[1], COOP_STAGE_EXEC);
    }
    int fork_errno = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close(report_pipe[1]);
    if (use_userns) {
        close(ready_pipe[1]);
        close(go_pipe[0]);
    }
    if (pid < 0) {
        failure->stage = COOP_STAGE_FORK;
        failure->error_number = fork_errno;
        goto close_parent_ends;
    }

    if (use_userns) {
        char byte;
        if (read_full(ready_pipe[0], &byte, 1) == 1) {
            for (int i = 0; cgroup_procs != NULL && cgroup_procs[i] != NULL; i++) {
                if (write_pid(cgroup_procs[i], pid) < 0) {
                    failure->stage = COOP_STAGE_CGROUP;
                    failure->error_number = errno;
                    break;
                }
            }
            if (failure->stage == COOP_STAGE_NONE) {
                // Both maps at once: each helper is a setuid program of its own.
                pid_t uid_helper = start_map_helper(uidmap_argv, pid);
                int uid_errno = errno;
                pid_t gid_helper = start_map_helper(gidmap_argv, pid);
                int gid_errno = errno;
                int uid_status = finish_map_helper(uid_helper);
                if (uid_status < 0 && uid_helper > 0) uid_errno = errno;
                int gid_status = finish_map_helper(gid_helper);
                if (gid_status < 0 && gid_helper > 0) gid_errno = errno;
                if (uid_status != 0) {
                    failure->stage = COOP_STAGE_UIDMAP;
                    failure->error_number = uid_status < 0 ? uid_errno : 0;
                    failure->helper_status = uid_status;
                } else if (gid_status != 0) {
                    failure->stage = COOP_STAGE_GIDMAP;
                    failure->error_number = gid_status < 0 ? gid_errno : 0;
                    failure->helper_status = gid_status;
                }
            }
            if (failure->stage == COOP_STAGE_NONE) {
                byte = 'g';
                if (write(go_pipe[1], &byte, 1) != 1) {
                    failure->stage = COOP_STAGE_SYNC;
                    failure->error_number = errno;
                }
            }
        }
        close(go_pipe[1]);
        close(ready_pipe[0]);
    }

    struct report r;
    ssize_t got = read_full(report_pipe[0], &r, sizeof r);
    close(report_pipe[0]);
    if (got == (ssize_t)sizeof r && failure->stage == COOP_STAGE_NONE) {
        failure->stage = (coop_stage)r.stage;
        failure->error_number = r.error_number;
    }
    if (failure->stage != COOP_STAGE_NONE) {
        kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
        }
        return -1;
    }
    return pid;

pipe_failed:
    failure->stage = COOP_STAGE_PIPE;
    failure->error_number = errno;
    return -1;
close_parent_ends:
    close(report_pipe[0]);
    if (use_userns) {
        close(ready_pipe[0]);
        close(go_pipe[1]);
    }
    return -1;
}

int coop_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

int coop_wait_for_exit(pid_t pid, int timeout_ms) {
    int fd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (fd < 0) return errno == ESRCH ? 1 : -1;
    struct pollfd entry = {.fd = fd, .events = POLLIN};
    int ready;
    while ((ready = poll(&entry, 1, timeout_ms)) < 0 && errno == EINTR) {
    }
    close(fd);
    return ready > 0 ? 1 : ready == 0 ? 0 : -1;
}

int coop_setxattr(const char *path, const char *name, const void *value, size_t size) {
    return setxattr(path, name, value, size, 0);
}

long coop_getxattr(const char *path, const char *name, void *value, size_t size) {
    return (long)getxattr(path, name, value, size);
}

int coop_lock_id_files(void) { return lckpwdf(); }

void coop_unlock_id_files(void) { ulckpwdf(); }
