#ifndef COOP_RUNTIME_H
#define COOP_RUNTIME_H

#include <sys/types.h>
#include "coop_namespace.h"

/// Stages of a container start, reported with errno when one fails.
typedef enum {
    COOP_RUN_NONE = 0,
    COOP_RUN_UNSHARE = 20,
    COOP_RUN_FORK,
    COOP_RUN_MOUNT_PRIVATE,
    COOP_RUN_BIND_ROOTFS,
    COOP_RUN_MOUNT_PROC,
    COOP_RUN_MOUNT_SYS,
    COOP_RUN_MOUNT_DEV,
    COOP_RUN_DEVICE,
    COOP_RUN_DEVPTS,
    COOP_RUN_MASK_PROC,
    COOP_RUN_PIVOT_ROOT,
    COOP_RUN_HOSTNAME,
    COOP_RUN_LOOPBACK,
    COOP_RUN_CAPABILITIES,
    COOP_RUN_SECCOMP,
    COOP_RUN_SETID,
    COOP_RUN_EXEC,
    COOP_RUN_SETNS,
    COOP_RUN_CONSOLE,
    COOP_RUN_CGROUP,
    COOP_RUN_OVERLAY,
    COOP_RUN_KEYRING,
} coop_run_stage;

typedef struct {
    /// Absolute path of the rootfs.
    const char *rootfs;
    const char *hostname;
    /// PID 1's command line and environment (resolved inside the container).
    char *const *argv;
    char *const *envp;
    /// Keep the host's network namespace (lxc.net.0.type = none).
    int share_network;
    /// A pty on the host's devpts, bound onto /dev/console (NULL: no console).
    const char *console_path;
    /// PID 1 gets the console as its controlling terminal and stdio (else it keeps the caller's).
    int console_stdio;
    /// NULL-terminated lines "DIR TYPE OPTIONS HOSTDIR" for /sys/fs/cgroup inside: TYPE cgroup or cgroup2
    /// mounts that hierarchy (OPTIONS its controllers, or "-") at /sys/fs/cgroup/DIR ("." for the top);
    /// TYPE link makes DIR a symlink to OPTIONS. HOSTDIR is the container's cgroup on the host, or "-".
    /// NULL or empty: /sys/fs/cgroup stays as sysfs has it.
    const char *const *cgroup_mounts;
    /// A throwaway container: `rootfs` is an empty folder that gets a tmpfs, and the root is an overlay of
    /// this (read-only, shared) image tree below a fresh upper layer on it. NULL: `rootfs` is the root.
    const char *overlay_lower;
} coop_container_spec;

/// Called in a fresh single-threaded process that is root of the container's user namespace: makes the
/// other namespaces, then forks PID 1, which sets up its mounts, pivots into the rootfs, confines itself
/// and execs `argv`. Returns PID 1's pid as the caller sees it (the caller stays outside and supervises),
/// or -1 with `failure` naming the stage.
pid_t coop_container_start(const coop_container_spec *spec, coop_spawn_failure *failure);

/// Removes the cgroups made below each HOSTDIR of `cgroup_mounts` (deepest first), once PID 1 is gone.
void coop_cgroup_prune(const char *const *cgroup_mounts);

/// Called in a fresh single-threaded process: enters the container whose PID 1 is `init_pid` as its root
/// (its cgroups by the `cgroup.procs` files in `cgroup_procs`, NULL-terminated or NULL, then its
/// namespaces), forks, and execs `argv` inside it in a session of its own with the container's
/// confinement. Returns the child's pid, or -1 with `failure` filled in.
pid_t coop_container_exec(pid_t init_pid, char *const cgroup_procs[], char *const argv[], char *const envp[],
                          coop_spawn_failure *failure);

/// Called in a fresh single-threaded process: joins the container of `init_pid` as its root, opens a pty
/// there, starts `command` (NULL: root's login shell) on it (session leader, controlling terminal, `rows`
/// x `columns`), sends the pty's master over `socket_fd` and returns the child's pid (-1 with `failure`
/// filled in).
pid_t coop_container_attach(pid_t init_pid, char *const cgroup_procs[], int socket_fd, unsigned short rows,
                            unsigned short columns, char *const command[], char *const envp[],
                            coop_spawn_failure *failure);

/// Receives a file descriptor sent with SCM_RIGHTS; -1 when none came.
int coop_receive_fd(int socket_fd);

/// Relays between a terminal (`input`, `output`) and a pty `master` until the pty hangs up: `input` in
/// raw mode meanwhile (so ^C and ^Z reach the container's foreground job), window size passed on.
int coop_relay_terminal(int master, int input, int output);

/// Copies what one read(2) of `from` gives to `to`, whole (waiting while a non-blocking `to` is full);
/// -1 at end of file or on an error of either side.
int coop_copy_once(int from, int to);

/// Relays the caller's terminals through pipes, so that no terminal of the user's reaches the container:
/// `from[i]` is copied to `to[i]` for each i with both set (-1: not relayed); `to[0]` is closed at the end
/// of input. Returns once the outputs reach end of file, or shortly after process `child` has ended.
int coop_relay_stdio(pid_t child, const int from[3], const int to[3]);

#endif
