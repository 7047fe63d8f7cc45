#define _GNU_SOURCE
#include "coop_runtime.h"

#include <asm/unistd.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/keyctl.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

// The architecture this build's system call numbers belong to: the seccomp filter checks it first.
#if defined(__x86_64__) && !defined(__ILP32__)
#define COOP_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__) && !defined(__AARCH64EB__)
#define COOP_AUDIT_ARCH AUDIT_ARCH_AARCH64
#elif defined(__i386__)
#define COOP_AUDIT_ARCH AUDIT_ARCH_I386
#elif defined(__arm__) && !defined(__ARMEB__)
#define COOP_AUDIT_ARCH AUDIT_ARCH_ARM
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define COOP_AUDIT_ARCH AUDIT_ARCH_PPC64LE
#elif defined(__s390x__)
#define COOP_AUDIT_ARCH AUDIT_ARCH_S390X
#elif defined(__riscv) && __riscv_xlen == 64
#define COOP_AUDIT_ARCH AUDIT_ARCH_RISCV64
#else
#error "no seccomp architecture is known for this build: add its AUDIT_ARCH"
#endif

const char *coop_stage_name(int stage) {
    switch (stage) {
    case COOP_STAGE_NONE: return "nothing";
    case COOP_STAGE_PIPE: return "a pipe";
    case COOP_STAGE_FORK: return "fork";
    case COOP_STAGE_DUP: return "the child's descriptors";
    case COOP_STAGE_UNSHARE: return "a new user namespace";
    case COOP_STAGE_SYNC: return "the handshake with the child";
    case COOP_STAGE_UIDMAP: return "the uid map";
    case COOP_STAGE_GIDMAP: return "the gid map";
    case COOP_STAGE_SETID: return "switch to root";
    case COOP_STAGE_EXEC: return "exec";
    case COOP_STAGE_CGROUP: return "placing the child in its cgroups";
    case COOP_STAGE_SESSION: return "a session of its own";
    case COOP_STAGE_SIGNALS: return "the child's signals";
    case COOP_RUN_UNSHARE: return "unshare of the namespaces";
    case COOP_RUN_FORK: return "fork of PID 1";
    case COOP_RUN_MOUNT_PRIVATE: return "making / private";
    case COOP_RUN_BIND_ROOTFS: return "bind of the rootfs";
    case COOP_RUN_MOUNT_PROC: return "mount of /proc";
    case COOP_RUN_MOUNT_SYS: return "mount of /sys";
    case COOP_RUN_MOUNT_DEV: return "mount of /dev";
    case COOP_RUN_DEVICE: return "a device in /dev";
    case COOP_RUN_DEVPTS: return "mount of /dev/pts";
    case COOP_RUN_MASK_PROC: return "masking /proc";
    case COOP_RUN_PIVOT_ROOT: return "pivot_root";
    case COOP_RUN_HOSTNAME: return "hostname";
    case COOP_RUN_LOOPBACK: return "loopback";
    case COOP_RUN_CAPABILITIES: return "capabilities";
    case COOP_RUN_SECCOMP: return "seccomp";
    case COOP_RUN_SETID: return "switch to root";
    case COOP_RUN_EXEC: return "exec";
    case COOP_RUN_SETNS: return "joining the namespaces";
    case COOP_RUN_CONSOLE: return "the console";
    case COOP_RUN_CGROUP: return "mounting /sys/fs/cgroup";
    case COOP_RUN_OVERLAY: return "the overlay of a throwaway container";
    case COOP_RUN_KEYRING: return "a new session keyring";
    case COOP_RUN_DESCRIPTORS: return "the descriptors";
    case COOP_RUN_REQUEST: return "the supervisor's request";
    case COOP_RUN_SIGNALS: return "the signals";
    case COOP_RUN_REPORT: return "the report to coop";
    case COOP_RUN_JOIN_CGROUPS: return "joining the container's cgroups";
    case COOP_RUN_NETWORK: return "the network";
    default: return "an unknown stage";
    }
}

int coop_failure_status(const coop_failure *failure) {
    if (failure->stage == COOP_RUN_NONE) return 0;
    // As a shell: 127 for a command not found, 126 for one found that cannot run.
    if (failure->stage == COOP_RUN_EXEC) return failure->error_number == ENOENT ? 127 : 126;
    return failure->stage;
}

// Appends `text` to `out` (`size` bytes, `used` of them taken), cut to fit. Async-signal-safe.
static size_t append(char *out, size_t size, size_t used, const char *text) {
    while (*text != '\0' && used + 1 < size) out[used++] = *text++;
    out[used] = '\0';
    return used;
}

// Fills `failure` in: the stage, errno, and the pieces (NULL-terminated, empty ones left out) joined by
// spaces as its detail.
// Async-signal-safe (no snprintf), for the children forked from a threaded `coop __exec`.
static void record(coop_failure *failure, int stage, int error_number, va_list pieces) {
    failure->stage = stage;
    failure->error_number = error_number;
    size_t used = 0;
    failure->detail[0] = '\0';
    for (const char *piece = va_arg(pieces, const char *); piece != NULL; piece = va_arg(pieces, const char *)) {
        if (*piece == '\0') continue;
        if (used > 0) used = append(failure->detail, sizeof failure->detail, used, " ");
        used = append(failure->detail, sizeof failure->detail, used, piece);
    }
}

void coop_failure_note(coop_failure *failure, int stage, int error_number, const char *detail) {
    failure->stage = stage;
    failure->error_number = error_number;
    failure->detail[0] = '\0';
    append(failure->detail, sizeof failure->detail, 0, detail);
}

// In a forked child: reports that the call just made failed, naming it and what it acted on (the pieces,
// NULL-terminated), through the close-on-exec pipe `report`, and exits with the stage's status. The
// parent reads end of file instead when exec succeeds.
__attribute__((noreturn, sentinel)) static void fail(int report, int stage, ...) {
    int error_number = errno;
    coop_failure failure;
    va_list pieces;
    va_start(pieces, stage);
    record(&failure, stage, error_number, pieces);
    va_end(pieces);
    // A report that cannot be written has no one to go to: the parent then has the exit status alone.
    (void)coop_write_full(report, &failure, sizeof failure);
    _exit(coop_failure_status(&failure));
}

// In the calling process: records that the call just made failed, and returns -1.
__attribute__((sentinel)) static pid_t failed(coop_failure *failure, int stage, ...) {
    int error_number = errno;
    va_list pieces;
    va_start(pieces, stage);
    record(failure, stage, error_number, pieces);
    va_end(pieces);
    return -1;
}

// Formats a path into `out` (PATH_MAX bytes); one that does not fit fails the stage (ENAMETOOLONG).
// PID 1's setup only: its parent, the supervisor, is single-threaded, so snprintf is safe there.
__attribute__((format(printf, 4, 5))) static void path_format(char *out, int report, int stage, const char *format,
                                                               ...) {
    va_list values;
    va_start(values, format);
    int length = vsnprintf(out, PATH_MAX, format, values);
    va_end(values);
    if (length < 0 || length >= PATH_MAX) {
        errno = ENAMETOOLONG;
        fail(report, stage, "path too long:", out, NULL);
    }
}

static void close_or_fail(int fd, int report, int stage, const char *what) {
    if (coop_close(fd) < 0) fail(report, stage, "close", what, NULL);
}

// mkdir(2), where a folder that is there already will do.
static void make_folder(const char *path, mode_t mode, int report, int stage) {
    if (mkdir(path, mode) < 0 && errno != EEXIST) fail(report, stage, "mkdir", path, NULL);
}

// Signals as a fresh process has them: what the caller set (coop ignores SIGPIPE) is not the command's.
static void reset_signals(int report) {
    // signal() fails for SIGKILL, SIGSTOP and the signals glibc keeps for itself: nothing to reset there.
    for (int sig = 1; sig < NSIG; sig++) signal(sig, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    if (sigprocmask(SIG_SETMASK, &none, NULL) < 0) fail(report, COOP_RUN_SIGNALS, "sigprocmask", NULL);
}

// The host devices a container may use, bound onto empty files in its /dev tmpfs.
static const char *const devices[] = {"null", "zero", "full", "random", "urandom", "tty", NULL};

// /proc entries that tell about or act on the host: covered by /dev/null (files) or made read-only.
static const char *const masked[] = {"/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug",
                                     "/proc/kallsyms", "/proc/sysrq-trigger", NULL};
static const char *const read_only[] = {"/proc/sys", "/proc/bus", "/proc/fs", "/proc/irq", NULL};

// A folder right below the rootfs to mount on: `name` (made when missing), opened with the rootfs as its
// root and no symbolic link followed. A link planted there (by the image or by root inside, to a folder
// of the host's) is refused. `at` gets /proc/self/fd/N, a path the kernel resolves to that very folder;
// `path` is its name for messages. Returns the descriptor, to close once mounted on.
static int open_mount_point(const char *rootfs, const char *name, const char *path, mode_t mode, char at[32],
                            int report, int stage) {
    int root = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root < 0) fail(report, stage, "open", rootfs, NULL);
    if (mkdirat(root, name, mode) < 0 && errno != EEXIST) fail(report, stage, "mkdir", path, NULL);
    struct open_how how = {.flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
                           .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS};
    int fd = (int)syscall(SYS_openat2, root, name, &how, sizeof how);
    if (fd < 0) fail(report, stage, "openat2", path, "(no symbolic link followed)", NULL);
    close_or_fail(root, report, stage, rootfs);
    snprintf(at, 32, "/proc/self/fd/%d", fd);
    return fd;
}

// An empty file to bind a device or pty onto.
static void make_file(const char *path, mode_t mode, int report, int stage) {
    int fd = open(path, O_CREAT | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0) fail(report, stage, "create", path, NULL);
    close_or_fail(fd, report, stage, path);
}

static void set_up_dev(const char *rootfs, int report) {
    char dev[PATH_MAX], path[PATH_MAX], source[PATH_MAX], at[32];
    path_format(dev, report, COOP_RUN_MOUNT_DEV, "%s/dev", rootfs);
    int fd = open_mount_point(rootfs, "dev", dev, 0755, at, report, COOP_RUN_MOUNT_DEV);
    if (mount("tmpfs", at, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=65536k") < 0)
        fail(report, COOP_RUN_MOUNT_DEV, "mount tmpfs on", dev, NULL);
    close_or_fail(fd, report, COOP_RUN_MOUNT_DEV, dev);
    for (int i = 0; devices[i] != NULL; i++) {
        path_format(path, report, COOP_RUN_DEVICE, "%s/%s", dev, devices[i]);
        path_format(source, report, COOP_RUN_DEVICE, "/dev/%s", devices[i]);
        make_file(path, 0666, report, COOP_RUN_DEVICE);
        if (mount(source, path, NULL, MS_BIND, NULL) < 0) fail(report, COOP_RUN_DEVICE, "bind", source, "on", path, NULL);
    }
    path_format(path, report, COOP_RUN_DEVPTS, "%s/pts", dev);
    make_folder(path, 0755, report, COOP_RUN_DEVPTS);
    // gid=5 is the tty group of Debian and most others; a container without that group gets the default.
    if (mount("devpts", path, "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5") < 0 &&
        mount("devpts", path, "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620") < 0)
        fail(report, COOP_RUN_DEVPTS, "mount devpts on", path, NULL);
    path_format(path, report, COOP_RUN_DEVPTS, "%s/ptmx", dev);
    if (symlink("pts/ptmx", path) < 0) fail(report, COOP_RUN_DEVPTS, "symlink", path, "-> pts/ptmx", NULL);
    path_format(path, report, COOP_RUN_MOUNT_DEV, "%s/shm", dev);
    make_folder(path, 01777, report, COOP_RUN_MOUNT_DEV);
    if (mount("shm", path, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=65536k") < 0)
        fail(report, COOP_RUN_MOUNT_DEV, "mount tmpfs on", path, NULL);
    path_format(path, report, COOP_RUN_MOUNT_DEV, "%s/mqueue", dev);
    make_folder(path, 0755, report, COOP_RUN_MOUNT_DEV);
    // A message queue filesystem needs an IPC namespace of our own: without one /dev/mqueue stays empty.
    // ENODEV: a kernel without POSIX message queues.
    if (mount("mqueue", path, "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0 && errno != EPERM && errno != ENODEV)
        fail(report, COOP_RUN_MOUNT_DEV, "mount mqueue on", path, NULL);
    const char *links[][2] = {{"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"},
                              {"/proc/self/fd/2", "stderr"}};
    for (size_t i = 0; i < sizeof links / sizeof links[0]; i++) {
        path_format(path, report, COOP_RUN_MOUNT_DEV, "%s/%s", dev, links[i][1]);
        if (symlink(links[i][0], path) < 0) fail(report, COOP_RUN_MOUNT_DEV, "symlink", path, "->", links[i][0], NULL);
    }
}

// The console pty's other end, bound onto an empty /dev/console.
static void set_up_console(const char *rootfs, const char *console_path, int report) {
    char path[PATH_MAX];
    path_format(path, report, COOP_RUN_CONSOLE, "%s/dev/console", rootfs);
    make_file(path, 0600, report, COOP_RUN_CONSOLE);
    if (mount(console_path, path, NULL, MS_BIND, NULL) < 0)
        fail(report, COOP_RUN_CONSOLE, "bind", console_path, "on", path, NULL);
}

// A tmpfs on /sys/fs/cgroup holding the host's hierarchies as the container's cgroup namespace shows
// them (its own cgroup as the root), then made read-only; the hierarchies keep their own permissions.
static void set_up_cgroups(const char *rootfs, const coop_cgroup_mount *mounts, size_t count, int report) {
    char top[PATH_MAX], path[PATH_MAX];
    path_format(top, report, COOP_RUN_CGROUP, "%s/sys/fs/cgroup", rootfs);
    const unsigned long flags = MS_NOSUID | MS_NODEV | MS_NOEXEC;
    int tmpfs = 0;
    for (size_t i = 0; i < count; i++) {
        const coop_cgroup_mount *entry = &mounts[i];
        if (strcmp(entry->folder, ".") == 0) {
            // A pure cgroup2 host: the unified hierarchy is /sys/fs/cgroup itself.
            if (mount("cgroup2", top, "cgroup2", flags, NULL) < 0)
                fail(report, COOP_RUN_CGROUP, "mount cgroup2 on", top, NULL);
            continue;
        }
        if (!tmpfs) {
            if (mount("cgroup", top, "tmpfs", flags, "mode=0755,size=64k") < 0)
                fail(report, COOP_RUN_CGROUP, "mount tmpfs on", top, NULL);
            tmpfs = 1;
        }
        path_format(path, report, COOP_RUN_CGROUP, "%s/%s", top, entry->folder);
        if (entry->kind == COOP_CGROUP_LINK) {
            if (symlink(entry->options, path) < 0) fail(report, COOP_RUN_CGROUP, "symlink", path, "->", entry->options, NULL);
            continue;
        }
        const char *type = entry->kind == COOP_CGROUP_V2 ? "cgroup2" : "cgroup";
        make_folder(path, 0755, report, COOP_RUN_CGROUP);
        if (mount("cgroup", path, type, flags, entry->options) < 0)
            fail(report, COOP_RUN_CGROUP, "mount", type, entry->options != NULL ? entry->options : "", "on", path, NULL);
    }
    if (tmpfs && mount(NULL, top, NULL, MS_REMOUNT | MS_RDONLY | flags, "mode=0755,size=64k") < 0)
        fail(report, COOP_RUN_CGROUP, "remount read-only", top, NULL);
}

// Removes the cgroups below the folder `folder` (a descriptor, closed here), deepest first. Best effort:
// the supervisor is on its way out and has no one to tell, and what stays is removed by coop.
static void remove_below(int folder) {
    DIR *listing = fdopendir(folder);
    if (listing == NULL) {
        (void)coop_close(folder);
        return;
    }
    struct dirent *entry;
    while ((entry = readdir(listing)) != NULL) {
        if (entry->d_type != DT_DIR || entry->d_name[0] == '.') continue;
        int below = openat(dirfd(listing), entry->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (below >= 0) remove_below(below);
        // A cgroup stays busy for a moment after its last process was reaped.
        for (int tries = 0; unlinkat(dirfd(listing), entry->d_name, AT_REMOVEDIR) < 0 && errno == EBUSY && tries < 100;
             tries++)
            usleep(10000);
    }
    closedir(listing);
}

void coop_cgroup_hold(const coop_cgroup_mount *mounts, size_t count, int folders[]) {
    for (size_t i = 0; i < count; i++) {
        folders[i] = mounts[i].host_folder == NULL
                         ? -1
                         : open(mounts[i].host_folder, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
}

void coop_cgroup_prune(const int folders[], size_t count) {
    for (size_t i = 0; i < count; i++) {
        if (folders[i] >= 0) remove_below(folders[i]);
    }
}

static void mask_proc(int report) {
    for (int i = 0; masked[i] != NULL; i++) {
        struct stat info;
        if (stat(masked[i], &info) < 0) {
            // What this kernel does not have needs no cover.
            if (errno == ENOENT) continue;
            fail(report, COOP_RUN_MASK_PROC, "stat", masked[i], NULL);
        }
        if (S_ISDIR(info.st_mode)) {
            if (mount("tmpfs", masked[i], "tmpfs", MS_RDONLY, "size=0") < 0)
                fail(report, COOP_RUN_MASK_PROC, "mount tmpfs on", masked[i], NULL);
        } else if (mount("/dev/null", masked[i], NULL, MS_BIND, NULL) < 0) {
            fail(report, COOP_RUN_MASK_PROC, "bind /dev/null on", masked[i], NULL);
        }
    }
    for (int i = 0; read_only[i] != NULL; i++) {
        if (access(read_only[i], F_OK) < 0) {
            if (errno == ENOENT) continue;
            fail(report, COOP_RUN_MASK_PROC, "access", read_only[i], NULL);
        }
        if (mount(read_only[i], read_only[i], NULL, MS_BIND | MS_REC, NULL) < 0)
            fail(report, COOP_RUN_MASK_PROC, "bind", read_only[i], "on itself", NULL);
        if (mount(NULL, read_only[i], NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
            fail(report, COOP_RUN_MASK_PROC, "remount read-only", read_only[i], NULL);
    }
}

static void bring_up_loopback(int report) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) fail(report, COOP_RUN_LOOPBACK, "socket", NULL);
    struct ifreq request;
    memset(&request, 0, sizeof request);
    strncpy(request.ifr_name, "lo", IFNAMSIZ - 1);
    if (ioctl(fd, SIOCGIFFLAGS, &request) < 0) fail(report, COOP_RUN_LOOPBACK, "SIOCGIFFLAGS lo", NULL);
    request.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (ioctl(fd, SIOCSIFFLAGS, &request) < 0) fail(report, COOP_RUN_LOOPBACK, "SIOCSIFFLAGS lo", NULL);
    close_or_fail(fd, report, COOP_RUN_LOOPBACK, "the socket for lo");
}

// A file coop generated for the container's network (resolv.conf, hosts), bound onto `name` in the rootfs
// as openat2 finds it with the rootfs as root: a link there is followed inside the rootfs, never out of it.
// A missing file is made; a missing folder on the way (an image without /etc) leaves it out.
static void bind_file(const char *rootfs, const char *name, const char *source, int report) {
    char path[PATH_MAX], at[32];
    path_format(path, report, COOP_RUN_NETWORK, "%s/%s", rootfs, name);
    int root = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root < 0) fail(report, COOP_RUN_NETWORK, "open", rootfs, NULL);
    struct open_how how = {.flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
    int fd = (int)syscall(SYS_openat2, root, name, &how, sizeof how);
    if (fd < 0 && errno == ENOENT) {
        struct open_how create = {.flags = O_WRONLY | O_CREAT | O_NONBLOCK | O_NOCTTY | O_CLOEXEC,
                                  .mode = 0644,
                                  .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
        fd = (int)syscall(SYS_openat2, root, name, &create, sizeof create);
        if (fd < 0 && errno == ENOENT) {
            close_or_fail(root, report, COOP_RUN_NETWORK, rootfs);
            return;
        }
    }
    if (fd < 0) fail(report, COOP_RUN_NETWORK, "openat2", path, "(inside the rootfs)", NULL);
    close_or_fail(root, report, COOP_RUN_NETWORK, rootfs);
    struct stat info;
    if (fstat(fd, &info) < 0) fail(report, COOP_RUN_NETWORK, "fstat", path, NULL);
    if (!S_ISREG(info.st_mode)) {
        errno = EINVAL;
        fail(report, COOP_RUN_NETWORK, "bind onto", path, "(not a regular file)", NULL);
    }
    snprintf(at, sizeof at, "/proc/self/fd/%d", fd);
    if (mount(source, at, NULL, MS_BIND, NULL) < 0) fail(report, COOP_RUN_NETWORK, "bind", source, "on", path, NULL);
    close_or_fail(fd, report, COOP_RUN_NETWORK, path);
}

// Waits until coop has configured the network from outside: one byte, or end of file when it gave up.
static void wait_for_network(int fd, int report) {
    char go;
    ssize_t got;
    while ((got = read(fd, &go, 1)) < 0 && errno == EINTR) {
    }
    if (got != 1) {
        if (got == 0) errno = ECANCELED;
        fail(report, COOP_RUN_NETWORK, "wait for coop to configure the network", NULL);
    }
    close_or_fail(fd, report, COOP_RUN_NETWORK, "the pipe that says the network is ready");
}

// Capabilities no container needs (as LXC's common.conf drops them): loading kernel modules, raw I/O,
// setting the clock, MAC policy.
static const int dropped_capabilities[] = {16 /* SYS_MODULE */, 17 /* SYS_RAWIO */, 25 /* SYS_TIME */,
                                            32 /* MAC_OVERRIDE */, 33 /* MAC_ADMIN */, -1};

// System calls refused with EPERM, in the spirit of LXC's default seccomp policy (those this architecture
// has).
static const long denied_syscalls[] = {
    SYS_kexec_load,
#ifdef SYS_kexec_file_load
    SYS_kexec_file_load,
#endif
    SYS_open_by_handle_at, SYS_init_module, SYS_finit_module, SYS_delete_module,
#ifdef SYS_iopl
    SYS_iopl,
#endif
#ifdef SYS_ioperm
    SYS_ioperm,
#endif
    SYS_swapon, SYS_swapoff, SYS_syslog, SYS_acct, -1};

#define DENY_WITH_EPERM BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM)

static void confine(int report) {
    for (int i = 0; dropped_capabilities[i] >= 0; i++) {
        // EINVAL: a capability this kernel does not know, so no one has it.
        if (prctl(PR_CAPBSET_DROP, dropped_capabilities[i], 0, 0, 0) < 0 && errno != EINVAL)
            fail(report, COOP_RUN_CAPABILITIES, "PR_CAPBSET_DROP", NULL);
    }
    struct sock_filter filter[8 + 2 * sizeof denied_syscalls / sizeof denied_syscalls[0]];
    size_t n = 0;
    // Another architecture's calls (i386 on x86_64, arm on arm64) have other numbers: refuse them outright.
    filter[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
    filter[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, COOP_AUDIT_ARCH, 1, 0);
    filter[n++] = (struct sock_filter)DENY_WITH_EPERM;
    filter[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
#ifdef __X32_SYSCALL_BIT
    // x32 calls come with x86_64's architecture and their numbers offset by this bit: refused as well.
    filter[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, __X32_SYSCALL_BIT, 0, 1);
    filter[n++] = (struct sock_filter)DENY_WITH_EPERM;
#endif
    for (int i = 0; denied_syscalls[i] >= 0; i++) {
        filter[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)denied_syscalls[i], 0, 1);
        filter[n++] = (struct sock_filter)DENY_WITH_EPERM;
    }
    filter[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    struct sock_fprog program = {(unsigned short)n, filter};
    // Root of the user namespace may install a filter without no_new_privs, so setuid tools inside keep working.
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &program) < 0)
        fail(report, COOP_RUN_SECCOMP, "seccomp SECCOMP_SET_MODE_FILTER", NULL);
}

// Appends `text` to `out` with overlayfs' separators (',' and ':') escaped, or as it is; -1 when it does
// not fit.
static int append_option(char *out, size_t size, const char *text, int escape) {
    size_t used = strlen(out);
    for (; *text; text++) {
        if (escape && (*text == ',' || *text == ':' || *text == '\\')) {
            if (used + 1 >= size) return -1;
            out[used++] = '\\';
        }
        if (used + 1 >= size) return -1;
        out[used++] = *text;
    }
    out[used] = '\0';
    return 0;
}

// The root of a throwaway container: the image below, its changes in a tmpfs that goes with the mount
// namespace. A copy-on-write container keeps its changes on disk, in `delta0` beside its rootfs folder.
// Returns the merged folder.
static const char *set_up_overlay(const char *rootfs, const char *lower, int on_disk, char merged[PATH_MAX],
                                  int report) {
    char upper[PATH_MAX], work[PATH_MAX], options[3 * PATH_MAX] = "lowerdir=";
    if (on_disk) {
        // The container's folder: rootfs is NAME/rootfs, checked absolute, so it has a slash before its name.
        const char *slash = strrchr(rootfs, '/');
        int folder = (int)(slash - rootfs);
        path_format(upper, report, COOP_RUN_OVERLAY, "%.*s/delta0", folder, rootfs);
        path_format(work, report, COOP_RUN_OVERLAY, "%.*s/work", folder, rootfs);
        path_format(merged, report, COOP_RUN_OVERLAY, "%s", rootfs);
    } else {
        if (mount("tmpfs", rootfs, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") < 0)
            fail(report, COOP_RUN_OVERLAY, "mount tmpfs on", rootfs, NULL);
        path_format(upper, report, COOP_RUN_OVERLAY, "%s/upper", rootfs);
        path_format(work, report, COOP_RUN_OVERLAY, "%s/work", rootfs);
        path_format(merged, report, COOP_RUN_OVERLAY, "%s/merged", rootfs);
        make_folder(upper, 0755, report, COOP_RUN_OVERLAY);
        make_folder(work, 0755, report, COOP_RUN_OVERLAY);
        make_folder(merged, 0755, report, COOP_RUN_OVERLAY);
    }
    // Extended attributes of the user. namespace: the trusted. ones are root's of the host only.
    if (append_option(options, sizeof options, lower, 1) < 0 ||
        append_option(options, sizeof options, ",upperdir=", 0) < 0 ||
        append_option(options, sizeof options, upper, 1) < 0 ||
        append_option(options, sizeof options, ",workdir=", 0) < 0 ||
        append_option(options, sizeof options, work, 1) < 0 ||
        append_option(options, sizeof options, ",userxattr", 0) < 0) {
        errno = ENAMETOOLONG;
        fail(report, COOP_RUN_OVERLAY, "overlay options for", lower, NULL);
    }
    if (mount("overlay", merged, "overlay", 0, options) < 0)
        fail(report, COOP_RUN_OVERLAY, "mount overlay of", lower, "on", merged, NULL);
    return merged;
}

// A new, empty session keyring: the one of the user who started coop stays out of the container.
static int new_session_keyring(void) {
    if (syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, NULL) < 0 && errno != ENOSYS) return -1;
    return 0;
}

// /proc and /sys of the container, mounted before pivot_root: afterwards the kernel refuses a fresh proc
// mount there.
static void mount_proc_and_sys(const char *rootfs, int report) {
    char path[PATH_MAX], at[32];
    path_format(path, report, COOP_RUN_MOUNT_PROC, "%s/proc", rootfs);
    int fd = open_mount_point(rootfs, "proc", path, 0555, at, report, COOP_RUN_MOUNT_PROC);
    if (mount("proc", at, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        fail(report, COOP_RUN_MOUNT_PROC, "mount proc on", path, NULL);
    close_or_fail(fd, report, COOP_RUN_MOUNT_PROC, path);
    path_format(path, report, COOP_RUN_MOUNT_SYS, "%s/sys", rootfs);
    fd = open_mount_point(rootfs, "sys", path, 0555, at, report, COOP_RUN_MOUNT_SYS);
    unsigned long sys_flags = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC;
    if (mount("sysfs", at, "sysfs", sys_flags, NULL) < 0) {
        // A shared network namespace is not ours to mount sysfs for: bind the host's, read-only. The
        // remount names the new mount by its path (the descriptor's path is the folder below it); the
        // folder was just found to be no symbolic link, and nothing runs in the container yet.
        if (mount("/sys", at, NULL, MS_BIND | MS_REC, NULL) < 0) fail(report, COOP_RUN_MOUNT_SYS, "bind /sys on", path, NULL);
        if (mount(NULL, path, NULL, MS_BIND | MS_REMOUNT | sys_flags, NULL) < 0)
            fail(report, COOP_RUN_MOUNT_SYS, "remount read-only", path, NULL);
    }
    close_or_fail(fd, report, COOP_RUN_MOUNT_SYS, path);
}

// PID 1's stdio and session: the console as controlling terminal, as a booting kernel gives init, or a
// session without a controlling terminal, so that /dev/tty reaches no terminal of the user's.
static void take_console(int console_stdio, int report) {
    if (setsid() < 0) fail(report, COOP_RUN_CONSOLE, "setsid", NULL);
    if (!console_stdio) return;
    int fd = open("/dev/console", O_RDWR);
    if (fd < 0) fail(report, COOP_RUN_CONSOLE, "open /dev/console", NULL);
    if (ioctl(fd, TIOCSCTTY, 0) < 0) fail(report, COOP_RUN_CONSOLE, "TIOCSCTTY /dev/console", NULL);
    for (int i = 0; i < 3; i++) {
        if (dup2(fd, i) < 0) fail(report, COOP_RUN_CONSOLE, "dup2 /dev/console", NULL);
    }
    if (fd > 2) close_or_fail(fd, report, COOP_RUN_CONSOLE, "/dev/console");
}

// No descriptor of the caller's but stdio may reach the container: the rest are closed at exec.
static void close_at_exec(int report) {
    if (coop_close_descriptors(3, NULL, 0, 1) < 0) fail(report, COOP_RUN_DESCRIPTORS, "close_range from 3", NULL);
}

static void become_pid1(const void *argument, int report) {
    const coop_container_spec *spec = argument;
    const char *rootfs = spec->rootfs;
    char merged[PATH_MAX];
    reset_signals(report);
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) fail(report, COOP_RUN_MOUNT_PRIVATE, "make / private", NULL);
    if (spec->overlay_lower != NULL) rootfs = set_up_overlay(rootfs, spec->overlay_lower, spec->overlay_on_disk, merged, report);
    if (mount(rootfs, rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
        fail(report, COOP_RUN_BIND_ROOTFS, "bind", rootfs, "on itself", NULL);
    mount_proc_and_sys(rootfs, report);
    set_up_dev(rootfs, report);
    if (spec->console_path != NULL) set_up_console(rootfs, spec->console_path, report);
    if (spec->cgroup_count > 0) set_up_cgroups(rootfs, spec->cgroup_mounts, spec->cgroup_count, report);
    if (spec->resolv_conf != NULL) bind_file(rootfs, "etc/resolv.conf", spec->resolv_conf, report);
    if (spec->hosts != NULL) bind_file(rootfs, "etc/hosts", spec->hosts, report);
    if (chdir(rootfs) < 0) fail(report, COOP_RUN_PIVOT_ROOT, "chdir", rootfs, NULL);
    if (syscall(SYS_pivot_root, ".", ".") < 0) fail(report, COOP_RUN_PIVOT_ROOT, "pivot_root", rootfs, NULL);
    if (umount2(".", MNT_DETACH) < 0) fail(report, COOP_RUN_PIVOT_ROOT, "unmount the old root", NULL);
    if (chdir("/") < 0) fail(report, COOP_RUN_PIVOT_ROOT, "chdir /", NULL);
    mask_proc(report);
    if (spec->hostname != NULL && sethostname(spec->hostname, strlen(spec->hostname)) < 0)
        fail(report, COOP_RUN_HOSTNAME, "sethostname", spec->hostname, NULL);
    if (!spec->share_network) bring_up_loopback(report);
    if (new_session_keyring() < 0) fail(report, COOP_RUN_KEYRING, "KEYCTL_JOIN_SESSION_KEYRING", NULL);
    if (spec->network_ready_fd >= 0) wait_for_network(spec->network_ready_fd, report);
    take_console(spec->console_stdio, report);
    confine(report);
    close_at_exec(report);
    // A bare command name is looked up in PID 1's PATH, inside the container.
    environ = (char **)spec->envp;
    execvp(spec->argv[0], spec->argv);
    fail(report, COOP_RUN_EXEC, "execvp", spec->argv[0], NULL);
}

// Forks a child that runs `child` (which execs or fails, never returns) with a close-on-exec pipe for its
// report, whose read end goes to `report_read`. Returns the pid, or -1 with `failure` filled in.
static pid_t fork_reporting(void (*child)(const void *, int), const void *argument, int *report_read,
                            coop_failure *failure) {
    int report[2];
    if (pipe2(report, O_CLOEXEC) < 0) return failed(failure, COOP_RUN_DESCRIPTORS, "pipe for the report", NULL);
    pid_t pid = fork();
    if (pid == 0) {
        if (coop_close(report[0]) < 0) fail(report[1], COOP_RUN_DESCRIPTORS, "close the report's read end", NULL);
        child(argument, report[1]);
        _exit(COOP_RUN_EXEC);
    }
    int fork_errno = errno;
    int closed = coop_close(report[1]);
    int close_errno = errno;
    if (pid < 0) {
        (void)coop_close(report[0]);
        errno = fork_errno;
        return failed(failure, COOP_RUN_FORK, "fork", NULL);
    }
    *report_read = report[0];
    if (closed < 0) {
        errno = close_errno;
        failed(failure, COOP_RUN_DESCRIPTORS, "close the report's write end", NULL);
        (void)coop_close(report[0]);
        kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
        }
        return -1;
    }
    return pid;
}

// Waits for the report of a child from fork_reporting: end of file means it exec'd. Returns its pid, or
// -1 with `failure` as it reported it (the child then is reaped).
static pid_t finish(int report_read, pid_t pid, coop_failure *failure) {
    coop_failure reported;
    ssize_t got = coop_read_full(report_read, &reported, sizeof reported);
    int read_errno = errno;
    int closed = coop_close(report_read);
    if (got == 0 && closed == 0) return pid;
    if (got == (ssize_t)sizeof reported) {
        *failure = reported;
    } else if (got != 0) {
        errno = got < 0 ? read_errno : EBADMSG;
        failed(failure, COOP_RUN_REPORT, "read the report of the child", NULL);
    } else {
        failed(failure, COOP_RUN_DESCRIPTORS, "close the report's read end", NULL);
    }
    // It exits by itself after a report; without one it must not go on unwatched.
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
    }
    return -1;
}

pid_t coop_container_start(const coop_container_spec *spec, coop_failure *failure) {
    int report = -1;
    pid_t pid = coop_container_fork(spec, &report, failure);
    return pid < 0 ? -1 : coop_container_wait(pid, report, failure);
}

pid_t coop_container_wait(pid_t pid, int report, coop_failure *failure) { return finish(report, pid, failure); }

pid_t coop_container_fork(const coop_container_spec *spec, int *report, coop_failure *failure) {
    memset(failure, 0, sizeof *failure);
    int flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWCGROUP;
    if (!spec->share_network) flags |= CLONE_NEWNET;
    // The user's supplementary groups are not mapped here: shed them.
    if (setgroups(0, NULL) < 0) return failed(failure, COOP_RUN_SETID, "setgroups", NULL);
    if (unshare(flags) < 0) return failed(failure, COOP_RUN_UNSHARE, "unshare", NULL);
    return fork_reporting(become_pid1, spec, report, failure);
}

static const char *const namespace_kinds[] = {"user", "mnt", "pid", "uts", "ipc", "net", "cgroup", NULL};

// Writes this process into each cgroup whose cgroup.procs is listed; clears the entries that took it, and
// keeps the errno of the last that did not.
static void join_cgroups(char *procs[], int count, int *last_errno) {
    for (int i = 0; i < count; i++) {
        if (procs[i] == NULL) continue;
        int fd = open(procs[i], O_WRONLY | O_CLOEXEC);
        if (fd < 0) {
            *last_errno = errno;
            continue;
        }
        if (write(fd, "0", 1) == 1) {
            procs[i] = NULL;
        } else {
            *last_errno = errno;
        }
        if (coop_close(fd) < 0) *last_errno = errno;
    }
}

// Whether namespace `kind` of `init_pid` is the one this process is in already (a namespace the
// container shares with the host, as its network with lxc.net.0.type = none): nothing to join.
static int same_namespace(int fd, const char *kind) {
    char path[64];
    struct stat theirs, ours;
    snprintf(path, sizeof path, "/proc/self/ns/%s", kind);
    return fstat(fd, &theirs) == 0 && stat(path, &ours) == 0 && theirs.st_ino == ours.st_ino &&
           theirs.st_dev == ours.st_dev;
}

static void close_namespaces(int fds[], int count) {
    for (int i = 0; i < count; i++) {
        // Read-only descriptors of namespaces: closing them cannot lose anything.
        if (fds[i] >= 0) (void)coop_close(fds[i]);
    }
}

// Joins the container's user namespace, becomes its root without supplementary groups, joins the
// cgroups left for that root, then the other namespaces.
static int join_as_root(int fds[], char paths[][64], int kinds, char *pending[], int count,
                        coop_failure *failure) {
    if (setns(fds[0], CLONE_NEWUSER) < 0) return failed(failure, COOP_RUN_SETNS, "setns", paths[0], NULL);
    if (setgroups(0, NULL) < 0) return failed(failure, COOP_RUN_SETID, "setgroups", NULL);
    if (setresgid(0, 0, 0) < 0) return failed(failure, COOP_RUN_SETID, "setresgid 0", NULL);
    if (setresuid(0, 0, 0) < 0) return failed(failure, COOP_RUN_SETID, "setresuid 0", NULL);
    // Changing ids made the process dumpable again.
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) return failed(failure, COOP_RUN_SETID, "PR_SET_DUMPABLE", NULL);
    // Still in the host's mount namespace: the cgroups handed over to the container's root.
    int last_errno = 0;
    join_cgroups(pending, count, &last_errno);
    for (int i = 0; i < count; i++) {
        if (pending[i] == NULL) continue;
        errno = last_errno;
        return failed(failure, COOP_RUN_JOIN_CGROUPS, "write to", pending[i], NULL);
    }
    for (int i = 1; i < kinds; i++) {
        if (fds[i] >= 0 && setns(fds[i], 0) < 0) return failed(failure, COOP_RUN_SETNS, "setns", paths[i], NULL);
    }
    return 0;
}

// Enters the running container of `init_pid` as its root, in this order: the container's cgroups by the
// host paths recorded at start (the user's files first, then those handed to the container's root), the
// user namespace, the container's root with no supplementary groups, then the other namespaces and a new
// session keyring. The process is non-dumpable throughout, and holds no credential of the user's by the
// time anything inside can see it: only the children it forks after this enter the PID namespace.
static int enter_container(pid_t init_pid, char *const cgroup_procs[], coop_failure *failure) {
    enum { kinds = 7, max_cgroups = 64 };
    int fds[kinds];
    char paths[kinds][64];
    char *pending[max_cgroups];
    int count = 0;
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) return failed(failure, COOP_RUN_SETID, "PR_SET_DUMPABLE", NULL);
    for (; cgroup_procs != NULL && cgroup_procs[count] != NULL; count++) {
        if (count == max_cgroups) {
            errno = E2BIG;
            return failed(failure, COOP_RUN_JOIN_CGROUPS, "more cgroups than", "64", NULL);
        }
        pending[count] = cgroup_procs[count];
    }
    for (int i = 0; i < kinds; i++) {
        snprintf(paths[i], sizeof paths[i], "/proc/%d/ns/%s", (int)init_pid, namespace_kinds[i]);
        fds[i] = open(paths[i], O_RDONLY | O_CLOEXEC);
        if (fds[i] < 0) {
            failed(failure, COOP_RUN_SETNS, "open", paths[i], NULL);
            close_namespaces(fds, i);
            return -1;
        }
        if (i > 0 && same_namespace(fds[i], namespace_kinds[i])) {
            (void)coop_close(fds[i]);
            fds[i] = -1;
        }
    }
    // As the user: the cgroup files that stay the user's. Those handed over are refused until we are root.
    int ignored_errno = 0;
    join_cgroups(pending, count, &ignored_errno);
    int result = join_as_root(fds, paths, kinds, pending, count, failure);
    close_namespaces(fds, kinds);
    if (result == 0 && new_session_keyring() < 0)
        result = failed(failure, COOP_RUN_KEYRING, "KEYCTL_JOIN_SESSION_KEYRING", NULL);
    return result;
}

static pid_t forwarded_child = -1;

// Signals for the helper (Ctrl-C at the user's terminal, a kill of coop) are meant for the command.
static void forward_to_child(int sig) {
    if (forwarded_child > 0) kill(forwarded_child, sig);
}

static int forward_signals(pid_t child, coop_failure *failure) {
    forwarded_child = child;
    struct sigaction action = {0};
    action.sa_handler = forward_to_child;
    const int signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
    for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++) {
        if (sigaction(signals[i], &action, NULL) < 0) return failed(failure, COOP_RUN_SIGNALS, "sigaction", NULL);
    }
    return 0;
}

// Forwards signals to a child from fork_reporting and waits for its report.
static pid_t watch(pid_t pid, int report_read, coop_failure *failure) {
    if (forward_signals(pid, failure) < 0) {
        (void)coop_close(report_read);
        kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
        }
        return -1;
    }
    return finish(report_read, pid, failure);
}

struct command_plan {
    char *const *argv;
    char *const *envp;
};

static void run_command(const void *argument, int report) {
    const struct command_plan *plan = argument;
    reset_signals(report);
    // A session of its own without a controlling terminal: /dev/tty reaches no terminal of the user's.
    if (setsid() < 0) fail(report, COOP_RUN_CONSOLE, "setsid", NULL);
    if (chdir("/") < 0) fail(report, COOP_RUN_EXEC, "chdir /", NULL);
    confine(report);
    close_at_exec(report);
    // PATH is looked up in the container's environment, not in the caller's.
    environ = (char **)plan->envp;
    execvp(plan->argv[0], plan->argv);
    fail(report, COOP_RUN_EXEC, "execvp", plan->argv[0], NULL);
}

pid_t coop_container_exec(pid_t init_pid, char *const cgroup_procs[], char *const argv[], char *const envp[],
                          coop_failure *failure) {
    memset(failure, 0, sizeof *failure);
    if (enter_container(init_pid, cgroup_procs, failure) < 0) return -1;
    struct command_plan plan = {argv, envp};
    int report = -1;
    pid_t pid = fork_reporting(run_command, &plan, &report, failure);
    return pid < 0 ? -1 : watch(pid, report, failure);
}

// The root user's login shell from the container's /etc/passwd, or /bin/sh.
static void login_shell(char *shell, size_t size) {
    snprintf(shell, size, "/bin/sh");
    FILE *passwd = fopen("/etc/passwd", "re");
    if (passwd == NULL) return;
    char line[1024];
    while (fgets(line, sizeof line, passwd) != NULL) {
        if (strncmp(line, "root:", 5) != 0) continue;
        char *field = strrchr(line, ':');
        if (field != NULL) {
            field++;
            field[strcspn(field, "\n")] = '\0';
            if (field[0] == '/' && access(field, X_OK) == 0) snprintf(shell, size, "%s", field);
        }
        break;
    }
    // Read only: closing it loses nothing.
    (void)fclose(passwd);
}

static int send_fd(int socket_fd, int fd) {
    char byte = 'm';
    struct iovec data = {&byte, 1};
    char control[CMSG_SPACE(sizeof(int))];
    memset(control, 0, sizeof control);
    struct msghdr message = {.msg_iov = &data, .msg_iovlen = 1, .msg_control = control,
                             .msg_controllen = sizeof control};
    struct cmsghdr *header = CMSG_FIRSTHDR(&message);
    header->cmsg_level = SOL_SOCKET;
    header->cmsg_type = SCM_RIGHTS;
    header->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(header), &fd, sizeof(int));
    ssize_t sent;
    while ((sent = sendmsg(socket_fd, &message, MSG_NOSIGNAL)) < 0 && errno == EINTR) {
    }
    return sent == 1 ? 0 : -1;
}

int coop_receive_fd(int socket_fd) {
    char byte;
    struct iovec data = {&byte, 1};
    char control[CMSG_SPACE(sizeof(int))];
    struct msghdr message = {.msg_iov = &data, .msg_iovlen = 1, .msg_control = control,
                             .msg_controllen = sizeof control};
    ssize_t got;
    while ((got = recvmsg(socket_fd, &message, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR) {
    }
    struct cmsghdr *header = got == 1 && !(message.msg_flags & MSG_CTRUNC) ? CMSG_FIRSTHDR(&message) : NULL;
    if (header == NULL || header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS ||
        header->cmsg_len != CMSG_LEN(sizeof(int)))
        return -1;
    int fd;
    memcpy(&fd, CMSG_DATA(header), sizeof(int));
    return fd;
}

struct shell_plan {
    const char *pty;
    const char *shell;
    char *const *login_argv;
    char *const *command;
    char *const *envp;
};

static void run_on_pty(const void *argument, int report) {
    const struct shell_plan *plan = argument;
    reset_signals(report);
    if (setsid() < 0) fail(report, COOP_RUN_CONSOLE, "setsid", NULL);
    int fd = open(plan->pty, O_RDWR);
    if (fd < 0) fail(report, COOP_RUN_CONSOLE, "open", plan->pty, NULL);
    if (ioctl(fd, TIOCSCTTY, 0) < 0) fail(report, COOP_RUN_CONSOLE, "TIOCSCTTY", plan->pty, NULL);
    for (int i = 0; i < 3; i++) {
        if (dup2(fd, i) < 0) fail(report, COOP_RUN_CONSOLE, "dup2", plan->pty, NULL);
    }
    if (fd > 2 && coop_close(fd) < 0) fail(report, COOP_RUN_CONSOLE, "close", plan->pty, NULL);
    if (chdir("/root") < 0 && chdir("/") < 0) fail(report, COOP_RUN_EXEC, "chdir /", NULL);
    confine(report);
    close_at_exec(report);
    if (plan->command != NULL && plan->command[0] != NULL) {
        // PATH is looked up in the container's environment, not in the caller's.
        environ = (char **)plan->envp;
        execvp(plan->command[0], plan->command);
        fail(report, COOP_RUN_EXEC, "execvp", plan->command[0], NULL);
    }
    execve(plan->shell, plan->login_argv, plan->envp);
    fail(report, COOP_RUN_EXEC, "execve", plan->shell, NULL);
}

// A pty opened inside the container (root's, as this process is root there by now): its master, with
// `pty` naming the other end, or -1 with `failure` filled in.
static int open_pty(char pty[64], unsigned short rows, unsigned short columns, coop_failure *failure) {
    int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0) return failed(failure, COOP_RUN_CONSOLE, "open /dev/ptmx", NULL);
    struct winsize size = {.ws_row = rows, .ws_col = columns};
    int error_number;
    if (grantpt(master) < 0) {
        failed(failure, COOP_RUN_CONSOLE, "grantpt", NULL);
    } else if (unlockpt(master) < 0) {
        failed(failure, COOP_RUN_CONSOLE, "unlockpt", NULL);
    } else if ((error_number = ptsname_r(master, pty, 64)) != 0) {
        errno = error_number;
        failed(failure, COOP_RUN_CONSOLE, "ptsname_r", NULL);
    } else if (rows > 0 && columns > 0 && ioctl(master, TIOCSWINSZ, &size) < 0) {
        failed(failure, COOP_RUN_CONSOLE, "TIOCSWINSZ", pty, NULL);
    } else {
        return master;
    }
    (void)coop_close(master);
    return -1;
}

pid_t coop_container_attach(pid_t init_pid, char *const cgroup_procs[], int socket_fd, unsigned short rows,
                            unsigned short columns, char *const command[], char *const envp[],
                            coop_failure *failure) {
    memset(failure, 0, sizeof *failure);
    // Root of the container from here on, so that the pty below is root's inside.
    if (enter_container(init_pid, cgroup_procs, failure) < 0) return -1;
    char pty[64];
    int master = open_pty(pty, rows, columns, failure);
    if (master < 0) return -1;
    char shell[256], argv0[258];
    login_shell(shell, sizeof shell);
    const char *base = strrchr(shell, '/');
    // A leading dash makes it a login shell, as login(1) starts it.
    snprintf(argv0, sizeof argv0, "-%s", base != NULL ? base + 1 : shell);
    char *const login_argv[] = {argv0, NULL};
    struct shell_plan plan = {pty, shell, login_argv, command, envp};
    int report = -1;
    pid_t pid = fork_reporting(run_on_pty, &plan, &report, failure);
    if (pid > 0) pid = watch(pid, report, failure);
    // The terminal is relayed by the caller, outside the container: only the pty's master leaves.
    if (pid > 0 && send_fd(socket_fd, master) < 0) {
        failed(failure, COOP_RUN_CONSOLE, "send the pty to coop", NULL);
        kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
        }
        pid = -1;
    }
    // Sent (the caller holds its own copy) or of no more use.
    (void)coop_close(master);
    return pid;
}

static volatile sig_atomic_t window_changed = 0;

static void note_window_change(int sig) {
    (void)sig;
    window_changed = 1;
}

int coop_copy_once(int from, int to) {
    char buffer[4096];
    ssize_t n;
    while ((n = read(from, buffer, sizeof buffer)) < 0 && errno == EINTR) {
    }
    if (n <= 0) return -1;
    for (ssize_t done = 0; done < n;) {
        ssize_t written = write(to, buffer + done, (size_t)(n - done));
        if (written < 0 && errno == EINTR) continue;
        if (written < 0 && errno == EAGAIN) {
            // A non-blocking destination (the supervisor's console) that is full: wait until it drains.
            struct pollfd out = {.fd = to, .events = POLLOUT};
            if (poll(&out, 1, 100) < 0 && errno != EINTR) return -1;
            continue;
        }
        if (written <= 0) return -1;
        done += written;
    }
    return 0;
}

int coop_relay_terminal(int master, int input, int output) {
    struct termios saved;
    int is_terminal = isatty(input) && tcgetattr(input, &saved) == 0;
    int raw_mode = 0;
    if (is_terminal) {
        struct termios raw = saved;
        cfmakeraw(&raw);
        // Without raw mode the relay still works, a line at a time.
        raw_mode = tcsetattr(input, TCSADRAIN, &raw) == 0;
    } else {
        // Input from a pipe or file is not typed: the pty must not echo it back into the output. Should the
        // pty refuse, the relay still works, with the input echoed.
        struct termios quiet;
        if (tcgetattr(master, &quiet) == 0) {
            quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
            (void)tcsetattr(master, TCSANOW, &quiet);
        }
    }
    struct sigaction action = {0}, previous;
    action.sa_handler = note_window_change;
    // SIGWINCH only arrives while waiting, so that a new size is passed on before the next keys are.
    sigset_t blocked, waiting;
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGWINCH);
    if (sigaction(SIGWINCH, &action, &previous) < 0) goto restore_terminal;
    if (sigprocmask(SIG_BLOCK, &blocked, &waiting) < 0) goto restore_handler;
    sigdelset(&waiting, SIGWINCH);
    window_changed = 1;
    struct pollfd fds[2] = {{.fd = input, .events = POLLIN}, {.fd = master, .events = POLLIN}};
    for (;;) {
        if (window_changed) {
            window_changed = 0;
            struct winsize size;
            // Best effort: input that is no terminal has no size, and a pty that takes none keeps its own.
            if (ioctl(input, TIOCGWINSZ, &size) == 0) (void)ioctl(master, TIOCSWINSZ, &size);
        }
        if (ppoll(fds, 2, NULL, &waiting) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        // The shell's side closed (it exited): what it wrote last is read before the hang-up.
        if (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) {
            if (coop_copy_once(master, output) < 0) break;
        }
        if (fds[0].revents & (POLLIN | POLLHUP)) {
            // End of input: the shell gets end-of-file (^D) and decides.
            if (coop_copy_once(input, master) < 0) {
                fds[0].fd = -1;
                char eof = 4;
                if (coop_write_full(master, &eof, 1) < 0) break;
            }
        }
    }
    (void)sigprocmask(SIG_UNBLOCK, &blocked, NULL);
restore_handler:
    (void)sigaction(SIGWINCH, &previous, NULL);
restore_terminal:
    // Best effort on the way out: a terminal that cannot be restored has no one else to tell.
    if (raw_mode) (void)tcsetattr(input, TCSADRAIN, &saved);
    return 0;
}

int coop_relay_stdio(pid_t child, const int from[3], const int to[3]) {
    int exited = (int)syscall(SYS_pidfd_open, child, 0);
    struct pollfd fds[4];
    int open_ends[3];
    for (int i = 0; i < 3; i++) open_ends[i] = from[i] >= 0 && to[i] >= 0;
    // Without a pidfd (Linux before 5.3) the relay ends with the outputs.
    int child_gone = exited < 0;
    int result = 0;
    for (;;) {
        int outputs = open_ends[1] + open_ends[2];
        if (!open_ends[0] && outputs == 0) break;
        if (child_gone && outputs == 0) break;
        for (int i = 0; i < 3; i++) fds[i] = (struct pollfd){.fd = open_ends[i] ? from[i] : -1, .events = POLLIN};
        fds[3] = (struct pollfd){.fd = child_gone ? -1 : exited, .events = POLLIN};
        // Once the command is gone, what it wrote last is read; a process it left behind holding the
        // pipe gets a moment, not forever.
        int ready = poll(fds, 4, child_gone ? 200 : -1);
        if (ready < 0 && errno == EINTR) continue;
        if (ready < 0) result = -1;
        if (ready <= 0) break;
        for (int i = 0; i < 3; i++) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            if (coop_copy_once(from[i], to[i]) < 0) {
                open_ends[i] = 0;
                // End of the user's input: the command reads end of file.
                if (i == 0 && coop_close(to[0]) < 0) result = -1;
            }
        }
        if (fds[3].fd >= 0 && (fds[3].revents & POLLIN)) {
            child_gone = 1;
            // Its input is no longer read by anyone: stop waiting for the user to type.
            if (open_ends[0]) {
                if (coop_close(to[0]) < 0) result = -1;
                open_ends[0] = 0;
            }
        }
    }
    if (open_ends[0] && coop_close(to[0]) < 0) result = -1;
    if (exited >= 0 && coop_close(exited) < 0) result = -1;
    return result;
}
