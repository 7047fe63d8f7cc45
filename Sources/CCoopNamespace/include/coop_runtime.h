#ifndef COOP_RUNTIME_H
#define COOP_RUNTIME_H

#include <stdint.h>
#include <sys/types.h>
#include "coop_namespace.h"

/// Stages of a container start, exec and attach. A process of the runtime that fails at one (the
/// supervisor, `coop __exec`, `coop __attach`) exits with its value as status (docs/errors.md), except
/// COOP_RUN_EXEC, which exits as a shell does: 127 when the command was not found, else 126.
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
    COOP_RUN_DESCRIPTORS,
    COOP_RUN_REQUEST,
    COOP_RUN_SIGNALS,
    COOP_RUN_REPORT,
    COOP_RUN_JOIN_CGROUPS,
    COOP_RUN_NETWORK,
} coop_run_stage;

/// Room for the call and what it acted on in a failure report; a longer text is cut.
#define COOP_FAILURE_DETAIL_SIZE 1024

/// A failure of the runtime, as the process that failed reports it to coop.
typedef struct {
    /// A coop_run_stage (COOP_RUN_NONE: nothing failed).
    int32_t stage;
    /// errno at the failing call (0 when there was none).
    int32_t error_number;
    /// The call and the path or device it acted on: "mount devpts on /…/rootfs/dev/pts".
    char detail[COOP_FAILURE_DETAIL_SIZE];
} coop_failure;

/// What a stage does, for messages: "mount of /dev/pts". Also names the stages of coop_spawn.
const char *coop_stage_name(int stage);

/// The exit status of a runtime process that failed as `failure` says (0 when nothing failed).
int coop_failure_status(const coop_failure *failure);

/// Fills `failure` in: `stage`, `error_number` and `detail` (cut to fit).
void coop_failure_note(coop_failure *failure, int stage, int error_number, const char *detail);

/// How a cgroup hierarchy appears below the container's /sys/fs/cgroup.
typedef enum {
    /// A v1 hierarchy, mounted with its options (its controllers, or name=…).
    COOP_CGROUP_V1 = 1,
    /// The unified hierarchy.
    COOP_CGROUP_V2,
    /// A symbolic link to another entry, as the host has for co-mounted controllers (cpu -> cpu,cpuacct).
    COOP_CGROUP_LINK,
} coop_cgroup_kind;

typedef struct {
    coop_cgroup_kind kind;
    /// The entry's name below /sys/fs/cgroup, one component; "." is /sys/fs/cgroup itself (v2 only).
    const char *folder;
    /// V1: the mount options (NULL: none). Link: its target.
    const char *options;
    /// The container's cgroup on the host, removed below when the container ends (NULL: none).
    const char *host_folder;
} coop_cgroup_mount;

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
    /// The entries of /sys/fs/cgroup inside, on a read-only tmpfs (or the unified hierarchy itself when
    /// its folder is "."). None: /sys/fs/cgroup stays as sysfs has it.
    const coop_cgroup_mount *cgroup_mounts;
    size_t cgroup_count;
    /// A throwaway container: `rootfs` is an empty folder that gets a tmpfs, and the root is an overlay of
    /// this (read-only, shared) image tree below a fresh upper layer on it. NULL: `rootfs` is the root.
    const char *overlay_lower;
    /// With `overlay_lower`: a copy-on-write container, whose upper layer is `delta0` and work folder
    /// `work` beside `rootfs` (on the host's disk); the overlay is mounted on `rootfs` itself.
    int overlay_on_disk;
    /// PID 1 reads one byte here before it takes its console and execs, so that its command starts with
    /// the network coop configures from outside; end of file means coop gave up. -1: no wait.
    int network_ready_fd;
    /// Files bound onto /etc/resolv.conf and /etc/hosts inside (NULL: those of the image stay).
    const char *resolv_conf;
    const char *hosts;
} coop_container_spec;

/// Called in a fresh single-threaded process that is root of the container's user namespace: makes the
/// other namespaces, then forks PID 1, which sets up its mounts, pivots into the rootfs, confines itself
/// and execs `argv`. Returns PID 1's pid as the caller sees it (the caller stays outside and supervises),
/// or -1 with `failure` naming the stage.
pid_t coop_container_start(const coop_container_spec *spec, coop_failure *failure);

/// The first half of coop_container_start: makes the namespaces and forks PID 1, whose report pipe goes to
/// `report`. Returns its pid (-1 with `failure` filled in). PID 1 may still be setting up or waiting.
pid_t coop_container_fork(const coop_container_spec *spec, int *report, coop_failure *failure);

/// The second half: waits until PID 1 execs (its report pipe reads end of file). Returns its pid, or -1
/// with `failure` as PID 1 reported it (PID 1 then is reaped).
pid_t coop_container_wait(pid_t pid, int report, coop_failure *failure);

/// Opens the host folder of each of `mounts` (-1 for one without), before PID 1 is forked: its pivot_root
/// moves the root of every process of the mount namespace, the supervisor's too, and the host's paths are
/// gone from there.
void coop_cgroup_hold(const coop_cgroup_mount *mounts, size_t count, int folders[]);

/// Removes the cgroups made below each folder `coop_cgroup_hold` opened (deepest first), once PID 1 is
/// gone, and closes the folders.
void coop_cgroup_prune(const int folders[], size_t count);

/// Called in a fresh single-threaded process: enters the container whose PID 1 is `init_pid` as its root
/// (its cgroups by the `cgroup.procs` files in `cgroup_procs`, NULL-terminated or NULL, then its
/// namespaces), forks, and execs `argv` inside it in a session of its own with the container's
/// confinement. Returns the child's pid, or -1 with `failure` filled in.
pid_t coop_container_exec(pid_t init_pid, char *const cgroup_procs[], char *const argv[], char *const envp[],
                          coop_failure *failure);

/// Called in a fresh single-threaded process: joins the container of `init_pid` as its root, opens a pty
/// there, starts `command` (NULL: root's login shell) on it (session leader, controlling terminal, `rows`
/// x `columns`), sends the pty's master over `socket_fd` and returns the child's pid (-1 with `failure`
/// filled in).
pid_t coop_container_attach(pid_t init_pid, char *const cgroup_procs[], int socket_fd, unsigned short rows,
                            unsigned short columns, char *const command[], char *const envp[],
                            coop_failure *failure);

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
