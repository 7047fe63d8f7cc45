#define _GNU_SOURCE
#include "coop_namespace.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/close_range.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
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
    // A report that cannot be written has no one to go to: the parent then sees the exit status alone.
    (void)coop_write_full(fd, &r, sizeof r);
    _exit(127);
}

ssize_t coop_read_full(int fd, void *data, size_t size) {
    size_t done = 0;
    while (done < size) {
        ssize_t n = read(fd, (char *)data + done, size - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -1;
        if (n == 0) break;
        done += (size_t)n;
    }
    return (ssize_t)done;
}

int coop_write_full(int fd, const void *data, size_t size) {
    size_t done = 0;
    while (done < size) {
        ssize_t n = write(fd, (const char *)data + done, size - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            if (n == 0) errno = EIO;
            return -1;
        }
        done += (size_t)n;
    }
    return 0;
}

int coop_close(int fd) { return close(fd) < 0 && errno != EINTR ? -1 : 0; }

static int close_or_mark(int fd, int cloexec) {
    if (!cloexec) return coop_close(fd);
    int flags = fcntl(fd, F_GETFD);
    return flags < 0 ? -1 : fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
}

// What getdents64(2) fills in; glibc declares no such type for the raw call.
struct directory_entry {
    uint64_t inode;
    int64_t offset;
    unsigned short length;
    unsigned char type;
    char name[];
};

// Closes or marks the open descriptors in [from, to] as /proc/self/fd lists them, with raw system calls
// only (no opendir, which allocates), or every number up to the descriptor limit when /proc is missing.
static int close_each(unsigned int from, unsigned int to, int cloexec) {
    int listing = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (listing < 0) {
        struct rlimit limit;
        if (getrlimit(RLIMIT_NOFILE, &limit) < 0) return -1;
        rlim_t last = limit.rlim_cur == RLIM_INFINITY || limit.rlim_cur > to ? to : limit.rlim_cur;
        for (rlim_t fd = from; fd <= last && fd < (rlim_t)INT32_MAX; fd++) {
            if (close_or_mark((int)fd, cloexec) < 0 && errno != EBADF) return -1;
        }
        return 0;
    }
    char buffer[4096];
    int result = 0;
    for (;;) {
        long got = syscall(SYS_getdents64, listing, buffer, sizeof buffer);
        if (got <= 0) {
            result = got < 0 ? -1 : 0;
            break;
        }
        for (long offset = 0; offset < got;) {
            struct directory_entry *entry = (struct directory_entry *)(buffer + offset);
            offset += entry->length;
            unsigned long fd = 0;
            const char *digit = entry->name;
            if (*digit < '0' || *digit > '9') continue;
            for (; *digit >= '0' && *digit <= '9' && fd <= UINT32_MAX; digit++) fd = fd * 10 + (unsigned long)(*digit - '0');
            if (*digit != '\0' || fd < from || fd > to || fd == (unsigned long)listing) continue;
            // EBADF: the descriptor was the listing's own of an earlier round, or is gone already.
            if (close_or_mark((int)fd, cloexec) < 0 && errno != EBADF) result = -1;
        }
        if (result < 0) break;
    }
    int saved = errno;
    if (coop_close(listing) < 0 && result == 0) return -1;
    errno = saved;
    return result;
}

static int close_range_or_each(unsigned int from, unsigned int to, int cloexec) {
    if (syscall(SYS_close_range, from, to, cloexec ? CLOSE_RANGE_CLOEXEC : 0) == 0) return 0;
    if (errno != ENOSYS && errno != EINVAL) return -1;
    return close_each(from, to, cloexec);
}

int coop_close_descriptors(int first, const int keep[], int keep_count, int cloexec) {
    enum { most_kept = 8 };
    int sorted[most_kept];
    if (first < 0 || keep_count < 0 || keep_count > most_kept) {
        errno = EINVAL;
        return -1;
    }
    // Insertion sort: a handful of descriptors, and no qsort in async-signal-safe code.
    for (int i = 0; i < keep_count; i++) {
        int j = i;
        for (; j > 0 && sorted[j - 1] > keep[i]; j--) sorted[j] = sorted[j - 1];
        sorted[j] = keep[i];
    }
    unsigned int from = (unsigned int)first;
    for (int i = 0; i < keep_count; i++) {
        if (sorted[i] < 0 || (unsigned int)sorted[i] < from) continue;
        if ((unsigned int)sorted[i] > from && close_range_or_each(from, (unsigned int)sorted[i] - 1, cloexec) < 0)
            return -1;
        from = (unsigned int)sorted[i] + 1;
    }
    return close_range_or_each(from, ~0U, cloexec);
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
        if (n < 0 || (size_t)n >= sizeof text - used) {
            errno = E2BIG;
            return -1;
        }
        used += (size_t)n;
    }
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    // A map is taken in one write(2), or not at all.
    ssize_t written = write(fd, text, used);
    int saved = errno;
    if (coop_close(fd) < 0 && written == (ssize_t)used) return -1;
    errno = saved;
    return written == (ssize_t)used ? 0 : -1;
}

static int write_pid(const char *file, pid_t pid) {
    char text[16];
    int n = snprintf(text, sizeof text, "%d", (int)pid);
    int fd = open(file, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t written = write(fd, text, (size_t)n);
    int saved = errno;
    if (coop_close(fd) < 0 && written == n) return -1;
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

    // posix_spawn, not fork: it borrows the caller's memory until the exec (vfork), where a fork of coop
    // would copy the page tables of a large process twice per start. The helper starts with no signal
    // blocked or ignored, as after a fresh login.
    posix_spawnattr_t attributes;
    pid_t helper = -1;
    int error = posix_spawnattr_init(&attributes);
    if (error == 0) {
        sigset_t none, all;
        sigemptyset(&none);
        sigfillset(&all);
        error = posix_spawnattr_setsigmask(&attributes, &none);
        if (error == 0) error = posix_spawnattr_setsigdefault(&attributes, &all);
        if (error == 0) error = posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
        if (error == 0) error = posix_spawnp(&helper, argv[0], NULL, &attributes, argv, environ);
        posix_spawnattr_destroy(&attributes);
    }
    free(argv);
    if (error != 0) {
        errno = error;
        return -1;
    }
    return helper;
}

// One start_map_helper call, run on a thread of its own.
struct helper_start {
    char *const *argv;
    pid_t pid;
    pid_t helper;
    int error;
};

static void *start_helper_thread(void *argument) {
    struct helper_start *start = argument;
    start->helper = start_map_helper(start->argv, start->pid);
    start->error = start->helper < 0 ? errno : 0;
    return NULL;
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

static void note(coop_spawn_failure *failure, coop_stage stage, int error_number) {
    if (failure->stage != COOP_STAGE_NONE) return;
    failure->stage = stage;
    failure->error_number = error_number;
}

// Closes a descriptor of the parent's; a failure is noted unless an earlier one was.
static void close_noting(int fd, coop_spawn_failure *failure) {
    if (fd >= 0 && coop_close(fd) < 0) note(failure, COOP_STAGE_PIPE, errno);
}

// Writes the child's pid into the cgroups, then lets newuidmap and newgidmap (or root itself) write its
// maps: both at once, as each helper is a setuid program of its own.
static void place_and_map(pid_t pid, char *const uidmap_argv[], char *const gidmap_argv[],
                          char *const cgroup_procs[], coop_spawn_failure *failure) {
    for (int i = 0; cgroup_procs != NULL && cgroup_procs[i] != NULL; i++) {
        if (write_pid(cgroup_procs[i], pid) < 0) {
            note(failure, COOP_STAGE_CGROUP, errno);
            return;
        }
    }
    // Joining a user namespace that exists: its maps are written already.
    if (uidmap_argv == NULL || gidmap_argv == NULL) return;
    // posix_spawn returns once its child has exec'd, and the exec of a setuid helper takes most of a
    // millisecond: newgidmap is started from a thread of its own, so that both helpers start at once.
    struct helper_start gid_start = {.argv = gidmap_argv, .pid = pid, .helper = -1, .error = 0};
    pthread_t thread;
    int threaded = pthread_create(&thread, NULL, start_helper_thread, &gid_start) == 0;
    pid_t uid_helper = start_map_helper(uidmap_argv, pid);
    int uid_errno = errno;
    if (threaded) {
        pthread_join(thread, NULL);
    } else {
        start_helper_thread(&gid_start);
    }
    pid_t gid_helper = gid_start.helper;
    int gid_errno = gid_start.error;
    int uid_status = finish_map_helper(uid_helper);
    if (uid_status < 0 && uid_helper > 0) uid_errno = errno;
    int gid_status = finish_map_helper(gid_helper);
    if (gid_status < 0 && gid_helper > 0) gid_errno = errno;
    if (uid_status != 0) {
        note(failure, COOP_STAGE_UIDMAP, uid_status < 0 ? uid_errno : 0);
        failure->helper_status = uid_status;
    } else if (gid_status != 0) {
        note(failure, COOP_STAGE_GIDMAP, gid_status < 0 ? gid_errno : 0);
        failure->helper_status = gid_status;
    }
}

// Writes `text` to /proc/PID/`file`; 0 or -1. Async-signal-safe.
static int write_map(pid_t pid, const char *file, const char *text) {
    char path[64] = "/proc/";
    size_t at = 6;
    char digits[16];
    int count = 0;
    for (unsigned value = (unsigned)pid; value > 0 || count == 0; value /= 10) digits[count++] = (char)('0' + value % 10);
    while (count > 0) path[at++] = digits[--count];
    path[at++] = '/';
    for (const char *c = file; *c != '\0'; c++) path[at++] = *c;
    path[at] = '\0';
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    int written = coop_write_full(fd, text, strlen(text));
    int closed = coop_close(fd);
    return written < 0 || closed < 0 ? -1 : 0;
}

// In the child, root of a joined user namespace: enters a new user namespace below it. A namespace's maps
// may name more than the writer's own id only when written from its parent namespace, so a helper forked
// first (still in the parent, as its root) writes them once the child has unshared. Async-signal-safe.
static void enter_nested_userns(const char *uid_map, const char *gid_map, int report_fd) {
    int unshared[2];
    // The change to root made the child undumpable, which gives its /proc files to the host's root: the
    // helper could not open its maps.
    if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0) child_fail(report_fd, COOP_STAGE_SETID);
    if (pipe2(unshared, O_CLOEXEC) < 0) child_fail(report_fd, COOP_STAGE_PIPE);
    pid_t child = getpid();
    pid_t helper = fork();
    if (helper < 0) child_fail(report_fd, COOP_STAGE_FORK);
    if (helper == 0) {
        char byte;
        (void)coop_close(unshared[1]);
        if (coop_read_full(unshared[0], &byte, 1) != 1) _exit(2);
        _exit(write_map(child, "uid_map", uid_map) == 0 && write_map(child, "gid_map", gid_map) == 0 ? 0 : 1);
    }
    if (coop_close(unshared[0]) < 0) child_fail(report_fd, COOP_STAGE_DUP);
    int unshare_errno = unshare(CLONE_NEWUSER) < 0 ? errno : 0;
    char byte = 'u';
    // Without the byte the helper ends without writing; its status is then waited for all the same.
    if (unshare_errno == 0 && coop_write_full(unshared[1], &byte, 1) < 0) unshare_errno = errno;
    (void)coop_close(unshared[1]);
    int status = 0;
    while (waitpid(helper, &status, 0) < 0) {
        if (errno != EINTR) child_fail(report_fd, COOP_STAGE_SYNC);
    }
    if (unshare_errno != 0) {
        errno = unshare_errno;
        child_fail(report_fd, COOP_STAGE_UNSHARE);
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        errno = EPERM;
        child_fail(report_fd, COOP_STAGE_UIDMAP);
    }
}

pid_t coop_spawn(const char *path, char *const argv[], char *const envp[], const int fds[3],
                 char *const uidmap_argv[], char *const gidmap_argv[], int join_userns, const char *nested_uid_map,
                 const char *nested_gid_map, char *const cgroup_procs[], int new_session,
                 coop_spawn_failure *failure) {
    memset(failure, 0, sizeof *failure);
    int joins = join_userns >= 0;
    int use_userns = (uidmap_argv != NULL && gidmap_argv != NULL) || joins;
    int report_pipe[2] = {-1, -1}, ready_pipe[2] = {-1, -1}, go_pipe[2] = {-1, -1};

    if (pipe2(report_pipe, O_CLOEXEC) < 0 ||
        (use_userns && (pipe2(ready_pipe, O_CLOEXEC) < 0 || pipe2(go_pipe, O_CLOEXEC) < 0))) {
        note(failure, COOP_STAGE_PIPE, errno);
        for (int i = 0; i < 2; i++) {
            close_noting(report_pipe[i], failure);
            close_noting(ready_pipe[i], failure);
            close_noting(go_pipe[i], failure);
        }
        return -1;
    }

    // Block signals around fork so that no handler of the parent runs in the child.
    sigset_t all, old;
    sigfillset(&all);
    int mask_error = pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t pid = mask_error != 0 ? -1 : fork();
    if (pid == 0) {
        // Child: async-signal-safe calls only until exec. signal() fails for SIGKILL, SIGSTOP and the
        // signals glibc keeps for itself, which have no handler to reset.
        for (int sig = 1; sig < NSIG; sig++) signal(sig, SIG_DFL);
        sigset_t none;
        sigemptyset(&none);
        if (sigprocmask(SIG_SETMASK, &none, NULL) < 0) child_fail(report_pipe[1], COOP_STAGE_SIGNALS);
        if (coop_close(report_pipe[0]) < 0) child_fail(report_pipe[1], COOP_STAGE_DUP);
        if (new_session && setsid() < 0) child_fail(report_pipe[1], COOP_STAGE_SESSION);
        for (int i = 0; i < 3; i++) {
            if (fds[i] >= 0 && fds[i] != i && dup2(fds[i], i) < 0) child_fail(report_pipe[1], COOP_STAGE_DUP);
        }
        if (use_userns) {
            if (coop_close(ready_pipe[0]) < 0 || coop_close(go_pipe[1]) < 0) child_fail(report_pipe[1], COOP_STAGE_DUP);
            if (!joins && unshare(CLONE_NEWUSER) < 0) child_fail(report_pipe[1], COOP_STAGE_UNSHARE);
            char byte = 'r';
            if (write(ready_pipe[1], &byte, 1) != 1) child_fail(report_pipe[1], COOP_STAGE_SYNC);
            // The parent writes one byte once both maps are in place (or, joining, once the child is in its
            // cgroups), or closes the pipe on failure (and reports that failure itself).
            if (coop_read_full(go_pipe[0], &byte, 1) != 1) _exit(126);
            // A namespace that exists already is joined only now: the cgroups took the child while it still
            // had the caller's credentials. The user's groups go before the switch to root there.
            if (joins && (setns(join_userns, CLONE_NEWUSER) < 0 || coop_close(join_userns) < 0))
                child_fail(report_pipe[1], COOP_STAGE_UNSHARE);
            if (joins && setgroups(0, NULL) < 0) child_fail(report_pipe[1], COOP_STAGE_SETID);
            if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0) child_fail(report_pipe[1], COOP_STAGE_SETID);
            if (joins && nested_uid_map != NULL && nested_gid_map != NULL) {
                enter_nested_userns(nested_uid_map, nested_gid_map, report_pipe[1]);
                if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0) child_fail(report_pipe[1], COOP_STAGE_SETID);
            }
        }
        execve(path, argv, envp);
        child_fail(report_pipe[1], COOP_STAGE_EXEC);
    }
    int fork_errno = mask_error != 0 ? mask_error : errno;
    if (mask_error == 0 && (mask_error = pthread_sigmask(SIG_SETMASK, &old, NULL)) != 0)
        note(failure, COOP_STAGE_SIGNALS, mask_error);
    close_noting(report_pipe[1], failure);
    close_noting(ready_pipe[1], failure);
    close_noting(go_pipe[0], failure);
    if (pid < 0) {
        failure->stage = COOP_STAGE_FORK;
        failure->error_number = fork_errno;
        close_noting(report_pipe[0], failure);
        close_noting(ready_pipe[0], failure);
        close_noting(go_pipe[1], failure);
        return -1;
    }

    if (use_userns) {
        char byte;
        ssize_t ready = coop_read_full(ready_pipe[0], &byte, 1);
        if (ready == 1) {
            place_and_map(pid, joins ? NULL : uidmap_argv, joins ? NULL : gidmap_argv, cgroup_procs, failure);
            byte = 'g';
            if (failure->stage == COOP_STAGE_NONE && coop_write_full(go_pipe[1], &byte, 1) < 0)
                note(failure, COOP_STAGE_SYNC, errno);
        } else if (ready < 0) {
            note(failure, COOP_STAGE_SYNC, errno);
        }
        // End of file without the byte: the child failed and says why below.
        close_noting(go_pipe[1], failure);
        close_noting(ready_pipe[0], failure);
    }

    struct report r;
    ssize_t got = coop_read_full(report_pipe[0], &r, sizeof r);
    if (got == (ssize_t)sizeof r) note(failure, (coop_stage)r.stage, r.error_number);
    close_noting(report_pipe[0], failure);
    if (failure->stage != COOP_STAGE_NONE) {
        // Our own child, not reaped yet: kill cannot fail.
        kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
        }
        return -1;
    }
    return pid;
}

int coop_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

int coop_wait_for_exit(pid_t pid, int timeout_ms) {
    int fd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (fd < 0) return errno == ESRCH ? 1 : -1;
    struct pollfd entry = {.fd = fd, .events = POLLIN};
    int ready;
    while ((ready = poll(&entry, 1, timeout_ms)) < 0 && errno == EINTR) {
    }
    if (coop_close(fd) < 0) return -1;
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
