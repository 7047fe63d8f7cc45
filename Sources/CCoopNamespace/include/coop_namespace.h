#ifndef COOP_NAMESPACE_H
#define COOP_NAMESPACE_H

#include <sys/types.h>

/// Where a spawn failed, so the caller can name the step in its error.
typedef enum {
    COOP_STAGE_NONE = 0,
    COOP_STAGE_PIPE,
    COOP_STAGE_FORK,
    COOP_STAGE_DUP,
    COOP_STAGE_UNSHARE,
    COOP_STAGE_SYNC,
    COOP_STAGE_UIDMAP,
    COOP_STAGE_GIDMAP,
    COOP_STAGE_SETID,
    COOP_STAGE_EXEC,
    COOP_STAGE_CGROUP,
    COOP_STAGE_SESSION,
    COOP_STAGE_SIGNALS,
} coop_stage;

typedef struct {
    coop_stage stage;
    int error_number;
    /// Exit status of newuidmap/newgidmap when one of them failed, else 0.
    int helper_status;
} coop_spawn_failure;

/// Starts `path` with `argv`/`envp` in a child process.
///
/// With `uidmap_argv` and `gidmap_argv` (NULL-terminated command lines of newuidmap/newgidmap without
/// the pid, which is inserted as their first argument) the child first enters a new user namespace,
/// waits until the parent has written its maps with those helpers, becomes uid and gid 0 inside and
/// then execs. With NULL maps it is a plain fork and exec. `join_userns` (a namespace fd of a user namespace
/// the caller owns, or -1) joins that namespace instead of a new one, whose maps are written already; the
/// child gives up the caller's groups and becomes root there. With `nested_uid_map` and `nested_gid_map`
/// (lines for uid_map and gid_map, in that namespace's ids) it then enters a new user namespace below the
/// joined one, whose maps a helper it forks writes as root of the joined namespace, and becomes root there.
///
/// The child only makes async-signal-safe calls before exec: the caller may be multithreaded.
/// `fds` are dup'ed to 0, 1 and 2 in the child (-1 keeps the parent's).
/// Returns the pid, or -1 with `failure` filled in.
/// With `new_session`, the child leads a session of its own (setsid), so that a tool which signals its
/// whole process group on failure cannot reach coop.
/// `cgroup_procs` (NULL-terminated, or NULL) are cgroup.procs files the parent writes the child's pid to
/// before the id maps: while the child still has the caller's credentials, which cgroup v1 asks for.
pid_t coop_spawn(const char *path, char *const argv[], char *const envp[], const int fds[3],
                 char *const uidmap_argv[], char *const gidmap_argv[], int join_userns, const char *nested_uid_map,
                 const char *nested_gid_map, char *const cgroup_procs[], int new_session,
                 coop_spawn_failure *failure);

/// Waits until process `pid` (any, not only a child) has ended, at most `timeout_ms` (-1: no limit).
/// Returns 1 once it ended, 0 on timeout, -1 when it cannot tell (no pidfd).
int coop_wait_for_exit(pid_t pid, int timeout_ms);

/// pipe2(O_CLOEXEC), which Swift's Glibc module does not expose.
int coop_pipe_cloexec(int fds[2]);

/// Writes all `size` bytes (EINTR retried). Returns 0, or -1 with errno (EPIPE and the like).
int coop_write_full(int fd, const void *data, size_t size);

/// Reads until `size` bytes or end of file (EINTR retried). Returns the count read, or -1 with errno.
ssize_t coop_read_full(int fd, void *data, size_t size);

/// close(2), where EINTR counts as closed (Linux releases the descriptor before it returns EINTR).
int coop_close(int fd);

/// Closes every descriptor from `first` up except the `keep_count` in `keep`, or with `cloexec` marks them
/// close-on-exec instead: close_range(2), or where the kernel lacks it (ENOSYS, or EINVAL for the cloexec
/// flag before Linux 5.11) one by one as /proc/self/fd lists them, up to the descriptor limit without /proc.
/// Async-signal-safe. Returns 0, or -1 with errno.
int coop_close_descriptors(int first, const int keep[], int keep_count, int cloexec);

/// setxattr(2) and getxattr(2), which Swift's Glibc module does not bring.
int coop_setxattr(const char *path, const char *name, const void *value, size_t size);
long coop_getxattr(const char *path, const char *name, void *value, size_t size);

/// lckpwdf(3) and ulckpwdf(3): the lock useradd and usermod take before they change /etc/subuid and
/// /etc/subgid (waits up to 15 s; -1 when it could not be had).
int coop_lock_id_files(void);
void coop_unlock_id_files(void);

#endif
