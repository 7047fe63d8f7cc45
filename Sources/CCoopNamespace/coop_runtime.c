#define _GNU_SOURCE
#include "coop_runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <grp.h>
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

static int join(char *buffer, size_t size, const char *a, const char *b) {
    int n = snprintf(buffer, size, "%s%s", a, b);
    return n > 0 && (size_t)n < size ? 0 : -1;
}

// The host devices a container may use, bound onto empty files in its /dev tmpfs.
static const char *const devices[] = {"null", "zero", "full", "random", "urandom", "tty", NULL};

// /proc entries that tell about or act on the host: covered by /dev/null (files) or made read-only.
static const char *const masked[] = {"/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug",
                                     "/proc/kallsyms", "/proc/sysrq-trigger", NULL};
static const char *const read_only[] = {"/proc/sys", "/proc/bus", "/proc/fs", "/proc/irq", NULL};

static void set_up_dev(const char *rootfs, int report) {
    char path[4096], target[4096];
    if (join(path, sizeof path, rootfs, "/dev") < 0) fail(report, COOP_RUN_MOUNT_DEV);
    mkdir(path, 0755);
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

static void become_pid1(const coop_container_spec *spec, int report) {
    const char *rootfs = spec->rootfs;
    char path[4096];
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) fail(report, COOP_RUN_MOUNT_PRIVATE);
    if (mount(rootfs, rootfs, NULL, MS_BIND | MS_REC, NULL) < 0) fail(report, COOP_RUN_BIND_ROOTFS);
    // /proc before pivot_root: afterwards the kernel refuses a fresh proc mount here.
    snprintf(path, sizeof path, "%s/proc", rootfs);
    mkdir(path, 0555);
    if (mount("proc", path, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) fail(report, COOP_RUN_MOUNT_PROC);
    snprintf(path, sizeof path, "%s/sys", rootfs);
    mkdir(path, 0555);
    unsigned long sys_flags = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC;
    if (mount("sysfs", path, "sysfs", sys_flags, NULL) < 0) {
        // A shared network namespace is not ours to mount sysfs for: bind the host's, read-only.
        if (mount("/sys", path, NULL, MS_BIND | MS_REC, NULL) < 0 ||
            mount(NULL, path, NULL, MS_BIND | MS_REMOUNT | sys_flags, NULL) < 0)
            fail(report, COOP_RUN_MOUNT_SYS);
    }
    set_up_dev(rootfs, report);
    if (chdir(rootfs) < 0 || syscall(SYS_pivot_root, ".", ".") < 0) fail(report, COOP_RUN_PIVOT_ROOT);
    if (umount2(".", MNT_DETACH) < 0 || chdir("/") < 0) fail(report, COOP_RUN_PIVOT_ROOT);
    mask_proc(report);
    if (spec->hostname != NULL && sethostname(spec->hostname, strlen(spec->hostname)) < 0)
        fail(report, COOP_RUN_HOSTNAME);
    if (!spec->share_network) bring_up_loopback(report);
    confine(report);
    execve(spec->argv[0], spec->argv, spec->envp);
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

pid_t coop_container_exec(pid_t init_pid, char *const argv[], char *const envp[], coop_spawn_failure *failure) {
    memset(failure, 0, sizeof *failure);
    // The user namespace first: the others belong to it, and joining them needs its capabilities.
    static const char *const kinds[] = {"user", "mnt", "pid", "uts", "ipc", "net", "cgroup", NULL};
    int fds[8];
    char path[64];
    for (int i = 0; kinds[i] != NULL; i++) {
        snprintf(path, sizeof path, "/proc/%d/ns/%s", (int)init_pid, kinds[i]);
        fds[i] = open(path, O_RDONLY | O_CLOEXEC);
        if (fds[i] < 0) {
            return failed(failure, COOP_RUN_SETNS);
        }
    }
    for (int i = 0; kinds[i] != NULL; i++) {
        // A namespace the container shares with the host (net with lxc.net.0.type = none) is already ours.
        if (setns(fds[i], 0) < 0 && !(errno == EINVAL && i > 0)) {
            return failed(failure, COOP_RUN_SETNS);
        }
        close(fds[i]);
    }
    int report[2];
    if (pipe2(report, O_CLOEXEC) < 0) {
        return failed(failure, COOP_STAGE_PIPE);
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(report[0]);
        if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0) fail(report[1], COOP_RUN_SETID);
        if (chdir("/") < 0) fail(report[1], COOP_RUN_EXEC);
        confine(report[1]);
        // PATH is looked up in the container's environment, not in the caller's.
        environ = (char **)envp;
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
    return finish(report[0], pid, failure);
}
