#define _GNU_SOURCE
#include "coop_runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/keyctl.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/close_range.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <grp.h>
#include <dirent.h>
#include <stdlib.h>
#include <poll.h>
#include <termios.h>
#include <sys/wait.h>
#include <unistd.h>

// A failing stage is reported through a close-on-exec pipe: end-of-file means exec succeeded.
struct report {
    int stage;
    int error_number;
};

static void fail(int fd, int stage) {
    struct report r = {stage, errno};
    ssize_t ignored = write(fd, &r, sizeof r);
    (void)ignored;
    _exit(127);
}

// The host devices a container may use, bound onto empty files in its /dev tmpfs.
static const char *const devices[] = {"null", "zero", "full", "random", "urandom", "tty", NULL};

// /proc entries that tell about or act on the host: covered by /dev/null (files) or made read-only.
static const char *const masked[] = {"/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug",
                                     "/proc/kallsyms", "/proc/sysrq-trigger", NULL};
static const char *const read_only[] = {"/proc/sys", "/proc/bus", "/proc/fs", "/proc/irq", NULL};

// The folder `name` right below the rootfs (made when missing), as a path that the kernel resolves to that
// very folder: /proc/self/fd/N of a descriptor opened with the rootfs as its root and no symbolic link
// followed. A link planted there (by the image or by root inside, to a folder of the host's) is refused.
static void mount_point(const char *rootfs, const char *name, mode_t mode, char *out, size_t size, int report,
                        int stage) {
    int root = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root < 0) fail(report, stage);
    mkdirat(root, name, mode);
    struct open_how how = {.flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
                           .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS};
    int fd = (int)syscall(SYS_openat2, root, name, &how, sizeof how);
    close(root);
    if (fd < 0) fail(report, stage);
    snprintf(out, size, "/proc/self/fd/%d", fd);
}

static void set_up_dev(const char *rootfs, int report) {
    char path[4096], target[4096];
    mount_point(rootfs, "dev", 0755, path, sizeof path, report, COOP_RUN_MOUNT_DEV);
    if (mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=65536k") < 0)
        fail(report, COOP_RUN_MOUNT_DEV);
    for (int i = 0; devices[i] != NULL; i++) {
        snprintf(target, sizeof target, "%s/dev/%s", rootfs, devices[i]);
        snprintf(path, sizeof path, "/dev/%s", devices[i]);
        int fd = open(target, O_CREAT | O_WRONLY | O_CLOEXEC, 0666);
        if (fd < 0) fail(report, COOP_RUN_DEVICE);
        close(fd);
        if (mount(path, target, NULL, MS_BIND, NULL) < 0) fail(report, COOP_RUN_DEVICE);
    }
    snprintf(path, sizeof path, "%s/dev/pts", rootfs);
    mkdir(path, 0755);
    if (mount("devpts", path, "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5") < 0 &&
        mount("devpts", path, "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620") < 0)
        fail(report, COOP_RUN_DEVPTS);
    snprintf(path, sizeof path, "%s/dev/ptmx", rootfs);
    if (symlink("pts/ptmx", path) < 0) fail(report, COOP_RUN_DEVPTS);
    snprintf(path, sizeof path, "%s/dev/shm", rootfs);
    mkdir(path, 01777);
    if (mount("shm", path, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=65536k") < 0) fail(report, COOP_RUN_MOUNT_DEV);
    snprintf(path, sizeof path, "%s/dev/mqueue", rootfs);
    mkdir(path, 0755);
    // A message queue filesystem needs an IPC namespace of our own: skip it quietly otherwise.
    mount("mqueue", path, "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    const char *links[][2] = {{"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"},
                              {"/proc/self/fd/2", "stderr"}};
    for (size_t i = 0; i < sizeof links / sizeof links[0]; i++) {
        snprintf(path, sizeof path, "%s/dev/%s", rootfs, links[i][1]);
        if (symlink(links[i][0], path) < 0) fail(report, COOP_RUN_MOUNT_DEV);
    }
}

// The console pty's other end, bound onto an empty /dev/console.
static void set_up_console(const char *rootfs, const char *console_path, int report) {
    char path[4096];
    snprintf(path, sizeof path, "%s/dev/console", rootfs);
    int fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0) fail(report, COOP_RUN_CONSOLE);
    close(fd);
    if (mount(console_path, path, NULL, MS_BIND, NULL) < 0) fail(report, COOP_RUN_CONSOLE);
}

// Splits a cgroup mount line "DIR TYPE OPTIONS HOSTDIR" in place; returns 0 when it has four fields.
static int split_cgroup_line(char *line, char *fields[4]) {
    char *save = NULL;
    for (int i = 0; i < 4; i++) {
        fields[i] = strtok_r(i == 0 ? line : NULL, " ", &save);
        if (fields[i] == NULL) return -1;
    }
    return 0;
}

// A tmpfs on /sys/fs/cgroup holding the host's hierarchies as the container's cgroup namespace shows
// them (its own cgroup as the root), then made read-only; the hierarchies keep their own permissions.
static void set_up_cgroups(const char *rootfs, const char *const *lines, int report) {
    char top[4096], path[4096], line[4096];
    snprintf(top, sizeof top, "%s/sys/fs/cgroup", rootfs);
    const unsigned long flags = MS_NOSUID | MS_NODEV | MS_NOEXEC;
    int tmpfs = 0;
    for (int i = 0; lines[i] != NULL; i++) {
        char *field[4];
        snprintf(line, sizeof line, "%s", lines[i]);
        if (split_cgroup_line(line, field) < 0) continue;
        const char *options = strcmp(field[2], "-") == 0 ? NULL : field[2];
        if (strcmp(field[0], ".") == 0) {
            if (mount("cgroup2", top, "cgroup2", flags, NULL) < 0) fail(report, COOP_RUN_CGROUP);
            continue;
        }
        if (!tmpfs) {
            if (mount("cgroup", top, "tmpfs", flags, "mode=0755,size=64k") < 0) fail(report, COOP_RUN_CGROUP);
            tmpfs = 1;
        }
        snprintf(path, sizeof path, "%s/%s", top, field[0]);
        if (strcmp(field[1], "link") == 0) {
            if (symlink(field[2], path) < 0) fail(report, COOP_RUN_CGROUP);
            continue;
        }
        if (mkdir(path, 0755) < 0 && errno != EEXIST) fail(report, COOP_RUN_CGROUP);
        if (mount("cgroup", path, field[1], flags, options) < 0) fail(report, COOP_RUN_CGROUP);
    }
    if (tmpfs && mount(NULL, top, NULL, MS_REMOUNT | MS_RDONLY | flags, "mode=0755,size=64k") < 0)
        fail(report, COOP_RUN_CGROUP);
}

static void remove_below(const char *folder) {
    DIR *listing = opendir(folder);
    if (listing == NULL) return;
    struct dirent *entry;
    char path[4096];
    while ((entry = readdir(listing)) != NULL) {
        if (entry->d_type != DT_DIR || entry->d_name[0] == '.') continue;
        if (snprintf(path, sizeof path, "%s/%s", folder, entry->d_name) >= (int)sizeof path) continue;
        remove_below(path);
        // A cgroup stays busy for a moment after its last process was reaped.
        for (int tries = 0; rmdir(path) < 0 && errno == EBUSY && tries < 100; tries++) usleep(10000);
    }
    closedir(listing);
}

void coop_cgroup_prune(const char *const *lines) {
    char line[4096];
    for (int i = 0; lines != NULL && lines[i] != NULL; i++) {
        char *field[4];
        snprintf(line, sizeof line, "%s", lines[i]);
        if (split_cgroup_line(line, field) == 0 && strcmp(field[3], "-") != 0) remove_below(field[3]);
    }
}

static void mask_proc(int report) {
    for (int i = 0; masked[i] != NULL; i++) {
        struct stat info;
        if (stat(masked[i], &info) < 0) continue;
        if (S_ISDIR(info.st_mode)) {
            if (mount("tmpfs", masked[i], "tmpfs", MS_RDONLY, "size=0") < 0) fail(report, COOP_RUN_MASK_PROC);
        } else if (mount("/dev/null", masked[i], NULL, MS_BIND, NULL) < 0) {
            fail(report, COOP_RUN_MASK_PROC);
        }
    }
    for (int i = 0; read_only[i] != NULL; i++) {
        if (access(read_only[i], F_OK) < 0) continue;
        if (mount(read_only[i], read_only[i], NULL, MS_BIND | MS_REC, NULL) < 0 ||
            mount(NULL, read_only[i], NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
            fail(report, COOP_RUN_MASK_PROC);
    }
}

static void bring_up_loopback(int report) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) fail(report, COOP_RUN_LOOPBACK);
    struct ifreq request;
    memset(&request, 0, sizeof request);
    strncpy(request.ifr_name, "lo", IFNAMSIZ - 1);
    if (ioctl(fd, SIOCGIFFLAGS, &request) < 0) fail(report, COOP_RUN_LOOPBACK);
    request.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (ioctl(fd, SIOCSIFFLAGS, &request) < 0) fail(report, COOP_RUN_LOOPBACK);
    close(fd);
}

// Capabilities no container needs (as LXC's common.conf drops them): loading kernel modules, raw I/O,
// setting the clock, MAC policy.
static const int dropped_capabilities[] = {16 /* SYS_MODULE */, 17 /* SYS_RAWIO */, 25 /* SYS_TIME */,
                                            32 /* MAC_OVERRIDE */, 33 /* MAC_ADMIN */, -1};

// System calls refused with EPERM, in the spirit of LXC's default seccomp policy.
static const long denied_syscalls[] = {SYS_kexec_load, SYS_kexec_file_load, SYS_open_by_handle_at, SYS_init_module,
                                       SYS_finit_module, SYS_delete_module, SYS_iopl, SYS_ioperm, SYS_swapon,
                                       SYS_swapoff, SYS_syslog, SYS_acct, -1};

static void confine(int report) {
    for (int i = 0; dropped_capabilities[i] >= 0; i++) {
        if (prctl(PR_CAPBSET_DROP, dropped_capabilities[i], 0, 0, 0) < 0 && errno != EINVAL)
            fail(report, COOP_RUN_CAPABILITIES);
    }
    struct sock_filter filter[64];
    size_t n = 0;
    filter[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
    // Another architecture's calls (x32, i386 on x86_64) have other numbers: refuse them outright.
    filter[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
    filter[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM);
    filter[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
    filter[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000 /* x32 */, 0, 1);
    filter[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM);
    for (int i = 0; denied_syscalls[i] >= 0; i++) {
        filter[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)denied_syscalls[i], 0, 1);
        filter[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM);
    }
    filter[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    struct sock_fprog program = {(unsigned short)n, filter};
    // Root of the user namespace may install a filter without no_new_privs, so setuid tools inside keep working.
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &program) < 0) fail(report, COOP_RUN_SECCOMP);
}

// Appends `text` to `out` with overlayfs' separators (',' and ':') escaped.
static int append_escaped(char *out, size_t size, const char *text) {
    size_t used = strlen(out);
    for (; *text; text++) {
        if ((*text == ',' || *text == ':' || *text == '\\') && used + 1 < size) out[used++] = '\\';
        if (used + 1 >= size) return -1;
        out[used++] = *text;
    }
    out[used] = '\0';
    return 0;
}

// The root of a throwaway container: the image below, its changes in a tmpfs that goes with the mount
// namespace. Returns the merged folder.
static const char *set_up_overlay(const char *rootfs, const char *lower, char *merged, size_t size, int report) {
    char upper[4096], work[4096], options[12288] = "lowerdir=";
    if (mount("tmpfs", rootfs, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") < 0) fail(report, COOP_RUN_OVERLAY);
    snprintf(upper, sizeof upper, "%s/upper", rootfs);
    snprintf(work, sizeof work, "%s/work", rootfs);
    snprintf(merged, size, "%s/merged", rootfs);
    if (mkdir(upper, 0755) < 0 || mkdir(work, 0755) < 0 || mkdir(merged, 0755) < 0) fail(report, COOP_RUN_OVERLAY);
    if (append_escaped(options, sizeof options, lower) < 0) fail(report, COOP_RUN_OVERLAY);
    strncat(options, ",upperdir=", sizeof options - strlen(options) - 1);
    if (append_escaped(options, sizeof options, upper) < 0) fail(report, COOP_RUN_OVERLAY);
    strncat(options, ",workdir=", sizeof options - strlen(options) - 1);
    if (append_escaped(options, sizeof options, work) < 0) fail(report, COOP_RUN_OVERLAY);
    // Extended attributes of the user. namespace: the trusted. ones are root's of the host only.
    strncat(options, ",userxattr", sizeof options - strlen(options) - 1);
    if (mount("overlay", merged, "overlay", 0, options) < 0) fail(report, COOP_RUN_OVERLAY);
    return merged;
}

// A new, empty session keyring: the one of the user who started coop stays out of the container.
static int new_session_keyring(void) {
    if (syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, NULL) < 0 && errno != ENOSYS) return -1;
    return 0;
}

static void become_pid1(const coop_container_spec *spec, int report) {
    const char *rootfs = spec->rootfs;
    char path[4096], merged[4096];
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) fail(report, COOP_RUN_MOUNT_PRIVATE);
    if (spec->overlay_lower != NULL) rootfs = set_up_overlay(rootfs, spec->overlay_lower, merged, sizeof merged, report);
    if (mount(rootfs, rootfs, NULL, MS_BIND | MS_REC, NULL) < 0) fail(report, COOP_RUN_BIND_ROOTFS);
    // /proc before pivot_root: afterwards the kernel refuses a fresh proc mount here.
    mount_point(rootfs, "proc", 0555, path, sizeof path, report, COOP_RUN_MOUNT_PROC);
    if (mount("proc", path, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) fail(report, COOP_RUN_MOUNT_PROC);
    mount_point(rootfs, "sys", 0555, path, sizeof path, report, COOP_RUN_MOUNT_SYS);
    unsigned long sys_flags = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC;
    if (mount("sysfs", path, "sysfs", sys_flags, NULL) < 0) {
        // A shared network namespace is not ours to mount sysfs for: bind the host's, read-only. The
        // remount names the new mount by its path (the descriptor's path is the folder below it); the
        // folder was just found to be no symbolic link, and nothing runs in the container yet.
        char mounted[4096];
        snprintf(mounted, sizeof mounted, "%s/sys", rootfs);
        if (mount("/sys", path, NULL, MS_BIND | MS_REC, NULL) < 0 ||
            mount(NULL, mounted, NULL, MS_BIND | MS_REMOUNT | sys_flags, NULL) < 0)
            fail(report, COOP_RUN_MOUNT_SYS);
    }
    set_up_dev(rootfs, report);
    if (spec->console_path != NULL) set_up_console(rootfs, spec->console_path, report);
    if (spec->cgroup_mounts != NULL) set_up_cgroups(rootfs, spec->cgroup_mounts, report);
    if (chdir(rootfs) < 0 || syscall(SYS_pivot_root, ".", ".") < 0) fail(report, COOP_RUN_PIVOT_ROOT);
    if (umount2(".", MNT_DETACH) < 0 || chdir("/") < 0) fail(report, COOP_RUN_PIVOT_ROOT);
    mask_proc(report);
    if (spec->hostname != NULL && sethostname(spec->hostname, strlen(spec->hostname)) < 0)
        fail(report, COOP_RUN_HOSTNAME);
    if (!spec->share_network) bring_up_loopback(report);
    if (new_session_keyring() < 0) fail(report, COOP_RUN_KEYRING);
    if (spec->console_stdio) {
        // A session of its own with the console as controlling terminal, as a booting kernel gives init.
        int fd = -1;
        if (setsid() < 0 || (fd = open("/dev/console", O_RDWR)) < 0 || ioctl(fd, TIOCSCTTY, 0) < 0)
            fail(report, COOP_RUN_CONSOLE);
        for (int i = 0; i < 3; i++) {
            if (dup2(fd, i) < 0) fail(report, COOP_RUN_CONSOLE);
        }
        if (fd > 2) close(fd);
    } else if (setsid() < 0) {
        // A session of its own, without a controlling terminal: /dev/tty reaches no terminal of the user's.
        fail(report, COOP_RUN_CONSOLE);
    }
    confine(report);
    syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC);
    // A bare command name is looked up in PID 1's PATH, inside the container.
    environ = (char **)spec->envp;
    execvp(spec->argv[0], spec->argv);
    fail(report, COOP_RUN_EXEC);
}

// Records a failure in the calling process (not the child) and returns -1.
static pid_t failed(coop_spawn_failure *failure, int stage) {
    failure->stage = (coop_stage)stage;
    failure->error_number = errno;
    return -1;
}

static pid_t finish(int report_read, pid_t pid, coop_spawn_failure *failure) {
    struct report r;
    ssize_t got = read(report_read, &r, sizeof r);
    close(report_read);
    if (got == (ssize_t)sizeof r) {
        failure->stage = (coop_stage)r.stage;
        failure->error_number = r.error_number;
        waitpid(pid, NULL, 0);
        return -1;
    }
    return pid;
}

pid_t coop_container_start(const coop_container_spec *spec, coop_spawn_failure *failure) {
    memset(failure, 0, sizeof *failure);
    int flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWCGROUP;
    if (!spec->share_network) flags |= CLONE_NEWNET;
    // The user's supplementary groups are not mapped here: shed them.
    setgroups(0, NULL);
    if (unshare(flags) < 0) {
        return failed(failure, COOP_RUN_UNSHARE);
    }
    int report[2];
    if (pipe2(report, O_CLOEXEC) < 0) {
        return failed(failure, COOP_STAGE_PIPE);
    }
    pid_t pid = fork();
    if (pid < 0) {
        return failed(failure, COOP_RUN_FORK);
    }
    if (pid == 0) {
        close(report[0]);
        become_pid1(spec, report[1]);
    }
    close(report[1]);
    return finish(report[0], pid, failure);
}

static const char *const namespace_kinds[] = {"user", "mnt", "pid", "uts", "ipc", "net", "cgroup", NULL};

// Writes this process into each cgroup whose cgroup.procs is listed; clears the entries that took it.
static void join_cgroups(char *procs[], int count) {
    for (int i = 0; i < count; i++) {
        if (procs[i] == NULL) continue;
        int fd = open(procs[i], O_WRONLY | O_CLOEXEC);
        if (fd < 0) continue;
        if (write(fd, "0", 1) == 1) procs[i] = NULL;
        close(fd);
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

// Enters the running container of `init_pid` as its root, in this order: the container's cgroups by the
// host paths recorded at start (the user's files first, then those handed to the container's root), the
// user namespace, the container's root with no supplementary groups, then the other namespaces and a new
// session keyring. The process is non-dumpable throughout, and holds no credential of the user's by the
// time anything inside can see it: only the children it forks after this enter the PID namespace.
static int enter_container(pid_t init_pid, char *const cgroup_procs[], coop_spawn_failure *failure) {
    enum { kinds = 7, max_cgroups = 32 };
    int fds[kinds];
    char path[64];
    char *pending[max_cgroups];
    int count = 0;
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) return failed(failure, COOP_RUN_SETID);
    for (int i = 0; i < kinds; i++) {
        snprintf(path, sizeof path, "/proc/%d/ns/%s", (int)init_pid, namespace_kinds[i]);
        fds[i] = open(path, O_RDONLY | O_CLOEXEC);
        if (fds[i] < 0) {
            for (int j = 0; j < i; j++) close(fds[j]);
            return failed(failure, COOP_RUN_SETNS);
        }
        if (i > 0 && same_namespace(fds[i], namespace_kinds[i])) {
            close(fds[i]);
            fds[i] = -1;
        }
    }
    for (; cgroup_procs != NULL && cgroup_procs[count] != NULL && count < max_cgroups; count++)
        pending[count] = cgroup_procs[count];
    join_cgroups(pending, count);
    int result = 0;
    if (setns(fds[0], CLONE_NEWUSER) < 0) {
        result = failed(failure, COOP_RUN_SETNS);
    } else if (setgroups(0, NULL) < 0 || setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0 ||
               prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
        result = failed(failure, COOP_RUN_SETID);
    } else {
        // Still in the host's mount namespace: the cgroups handed over to the container's root.
        join_cgroups(pending, count);
        for (int i = 1; i < kinds && result == 0; i++) {
            if (fds[i] >= 0 && setns(fds[i], 0) < 0) result = failed(failure, COOP_RUN_SETNS);
        }
    }
    for (int i = 0; i < kinds; i++) {
        if (fds[i] >= 0) close(fds[i]);
    }
    if (result == 0 && new_session_keyring() < 0) result = failed(failure, COOP_RUN_KEYRING);
    return result;
}

static pid_t forwarded_child = -1;

// Signals for the helper (Ctrl-C at the user's terminal, a kill of coop) are meant for the command.
static void forward_to_child(int sig) {
    if (forwarded_child > 0) kill(forwarded_child, sig);
}

static void forward_signals(pid_t child) {
    forwarded_child = child;
    struct sigaction action = {0};
    action.sa_handler = forward_to_child;
    const int signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
    for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++) sigaction(signals[i], &action, NULL);
}

pid_t coop_container_exec(pid_t init_pid, char *const cgroup_procs[], char *const argv[], char *const envp[],
                          coop_spawn_failure *failure) {
    memset(failure, 0, sizeof *failure);
    if (enter_container(init_pid, cgroup_procs, failure) < 0) return -1;
    int report[2];
    if (pipe2(report, O_CLOEXEC) < 0) {
        return failed(failure, COOP_STAGE_PIPE);
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(report[0]);
        // A session of its own without a controlling terminal: /dev/tty reaches no terminal of the user's.
        if (setsid() < 0) fail(report[1], COOP_RUN_CONSOLE);
        if (chdir("/") < 0) fail(report[1], COOP_RUN_EXEC);
        confine(report[1]);
        // PATH is looked up in the container's environment, not in the caller's.
        environ = (char **)envp;
        // No descriptor of the caller's but stdio may reach the container.
        syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC);
        execvp(argv[0], argv);
        fail(report[1], COOP_RUN_EXEC);
    }
    close(report[1]);
    if (pid < 0) {
        int fork_errno = errno;
        close(report[0]);
        errno = fork_errno;
        return failed(failure, COOP_RUN_FORK);
    }
    forward_signals(pid);
    return finish(report[0], pid, failure);
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
    fclose(passwd);
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
    return sendmsg(socket_fd, &message, MSG_NOSIGNAL) == 1 ? 0 : -1;
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
    struct cmsghdr *header = got == 1 ? CMSG_FIRSTHDR(&message) : NULL;
    if (header == NULL || header->cmsg_type != SCM_RIGHTS) return -1;
    int fd;
    memcpy(&fd, CMSG_DATA(header), sizeof(int));
    return fd;
}

pid_t coop_container_attach(pid_t init_pid, char *const cgroup_procs[], int socket_fd, unsigned short rows,
                            unsigned short columns, char *const command[], char *const envp[],
                            coop_spawn_failure *failure) {
    memset(failure, 0, sizeof *failure);
    // Root of the container from here on, so that the pty below is root's inside.
    if (enter_container(init_pid, cgroup_procs, failure) < 0) return -1;
    int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    char slave[64];
    if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0 || ptsname_r(master, slave, sizeof slave) != 0)
        return failed(failure, COOP_RUN_CONSOLE);
    struct winsize size = {.ws_row = rows, .ws_col = columns};
    if (rows > 0 && columns > 0) ioctl(master, TIOCSWINSZ, &size);
    char shell[256], argv0[258];
    login_shell(shell, sizeof shell);
    const char *base = strrchr(shell, '/');
    // A leading dash makes it a login shell, as login(1) starts it.
    snprintf(argv0, sizeof argv0, "-%s", base != NULL ? base + 1 : shell);
    int report[2];
    if (pipe2(report, O_CLOEXEC) < 0) return failed(failure, COOP_STAGE_PIPE);
    pid_t pid = fork();
    if (pid == 0) {
        close(report[0]);
        int fd = -1;
        if (setsid() < 0 || (fd = open(slave, O_RDWR)) < 0 || ioctl(fd, TIOCSCTTY, 0) < 0)
            fail(report[1], COOP_RUN_CONSOLE);
        for (int i = 0; i < 3; i++) {
            if (dup2(fd, i) < 0) fail(report[1], COOP_RUN_CONSOLE);
        }
        if (fd > 2) close(fd);
        if (chdir("/root") < 0 && chdir("/") < 0) fail(report[1], COOP_RUN_EXEC);
        confine(report[1]);
        syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC);
        if (command != NULL && command[0] != NULL) {
            // PATH is looked up in the container's environment, not in the caller's.
            environ = (char **)envp;
            execvp(command[0], command);
        } else {
            char *const argv[] = {argv0, NULL};
            execve(shell, argv, envp);
        }
        fail(report[1], COOP_RUN_EXEC);
    }
    close(report[1]);
    if (pid < 0) {
        close(report[0]);
        return failed(failure, COOP_RUN_FORK);
    }
    forward_signals(pid);
    pid = finish(report[0], pid, failure);
    // The terminal is relayed by the caller, outside the container: only the pty's master leaves.
    if (pid > 0 && send_fd(socket_fd, master) < 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return failed(failure, COOP_RUN_CONSOLE);
    }
    close(master);
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
            poll(&out, 1, 100);
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
    if (is_terminal) {
        struct termios raw = saved;
        cfmakeraw(&raw);
        tcsetattr(input, TCSADRAIN, &raw);
    } else {
        // Input from a pipe or file is not typed: the pty must not echo it back into the output.
        struct termios quiet;
        if (tcgetattr(master, &quiet) == 0) {
            quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
            tcsetattr(master, TCSANOW, &quiet);
        }
    }
    struct sigaction action = {0}, previous;
    action.sa_handler = note_window_change;
    sigaction(SIGWINCH, &action, &previous);
    // SIGWINCH only arrives while waiting, so that a new size is passed on before the next keys are.
    sigset_t blocked, waiting;
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGWINCH);
    sigprocmask(SIG_BLOCK, &blocked, &waiting);
    sigdelset(&waiting, SIGWINCH);
    window_changed = 1;
    struct pollfd fds[2] = {{.fd = input, .events = POLLIN}, {.fd = master, .events = POLLIN}};
    for (;;) {
        if (window_changed) {
            window_changed = 0;
            struct winsize size;
            if (ioctl(input, TIOCGWINSZ, &size) == 0) ioctl(master, TIOCSWINSZ, &size);
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
                ssize_t ignored = write(master, &eof, 1);
                (void)ignored;
            }
        }
    }
    sigprocmask(SIG_UNBLOCK, &blocked, NULL);
    sigaction(SIGWINCH, &previous, NULL);
    if (is_terminal) tcsetattr(input, TCSADRAIN, &saved);
    return 0;
}

int coop_relay_stdio(pid_t child, const int from[3], const int to[3]) {
    int exited = (int)syscall(SYS_pidfd_open, child, 0);
    struct pollfd fds[4];
    int open_ends[3];
    for (int i = 0; i < 3; i++) open_ends[i] = from[i] >= 0 && to[i] >= 0;
    int child_gone = exited < 0;
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
        if (ready <= 0) break;
        for (int i = 0; i < 3; i++) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            if (coop_copy_once(from[i], to[i]) < 0) {
                open_ends[i] = 0;
                // End of the user's input: the command reads end of file.
                if (i == 0) close(to[0]);
            }
        }
        if (fds[3].fd >= 0 && (fds[3].revents & POLLIN)) {
            child_gone = 1;
            // Its input is no longer read by anyone: stop waiting for the user to type.
            if (open_ends[0]) {
                close(to[0]);
                open_ends[0] = 0;
            }
        }
    }
    if (open_ends[0]) close(to[0]);
    if (exited >= 0) close(exited);
    return 0;
}
