#ifndef COOP_PROTOCOL_H
#define COOP_PROTOCOL_H

#include <stdint.h>
#include "coop_runtime.h"

// What `coop start` and its supervisor say to each other, over two pipes. The supervisor is started as
// `coop-supervisor REQUEST_FD REPLY_FD [LABEL]` (LABEL, the rootfs, only shows in ps) and reads one
// request on REQUEST_FD; end of file before it means coop gave up. It answers with one coop_start_reply
// on REPLY_FD. Both sides run on the same machine: integers are in its byte order.
//
// With COOP_REQUEST_WAIT_NETWORK the supervisor answers twice: first a coop_start_reply with PID 1's pid
// as soon as PID 1 is forked (or a failure, and nothing more), then, once coop has configured the network
// from outside and written one byte on REQUEST_FD (PID 1 reads it before it execs; end of file instead:
// coop gave up, and PID 1 fails at COOP_RUN_NETWORK), the usual final reply.
//
// A request is a coop_request_header, then `size` bytes of fields in this order, each string as a
// uint32_t length, that many bytes and a NUL (no NUL inside):
//   ROOTFS, HOSTNAME, LOWER ("": not a throwaway container),
//   RESOLV, HOSTS (files bound onto /etc/resolv.conf and /etc/hosts inside; "": the image's stay),
//   for each of `cgroup_count` mounts: a uint32_t coop_cgroup_kind, FOLDER, OPTIONS, HOST_FOLDER ("": none),
//   `argc` strings of PID 1's command line, `envc` strings of its environment ("NAME=VALUE").
// The supervisor refuses anything else: a wrong magic or version, a count or size above the limits below,
// a field that runs past `size`, bytes left over after the last field.

#define COOP_REQUEST_MAGIC 0x636f6f70u
#define COOP_REQUEST_VERSION 2u
/// The largest request the supervisor reads, fields included.
#define COOP_REQUEST_MAX_SIZE (1u << 20)
/// The most strings of PID 1's command line, and of its environment, in one request.
#define COOP_REQUEST_MAX_STRINGS 4096u
#define COOP_REQUEST_MAX_CGROUPS 64u

/// Flags of a request.
#define COOP_REQUEST_SHARE_NETWORK 1u
/// PID 1's stdio is the console (as `coop start` in the background gives it).
#define COOP_REQUEST_CONSOLE_STDIO 2u
/// As CONSOLE_STDIO, and the supervisor's stdin (the user's terminal, in raw mode) is typed into the console.
#define COOP_REQUEST_CONSOLE_INPUT 4u
/// A copy-on-write container: the overlay's upper layer is `delta0` and its work folder `work` beside
/// ROOTFS (in the container's folder, as LXC names them), and the overlay is mounted on ROOTFS itself.
#define COOP_REQUEST_OVERLAY_ON_DISK 0x100u
/// PID 1 waits before exec until coop says the network is ready (see above).
#define COOP_REQUEST_WAIT_NETWORK 8u
/// The supervisor listens on the abstract socket COOP_NOTIFY_SOCKET of the container's own network
/// namespace (coop names it to PID 1 as NOTIFY_SOCKET, which systemd tells READY=1 once booted), keeps
/// REPLY_FD open after its final reply, and writes one byte COOP_BOOTED there when PID 1 says it is ready.
#define COOP_REQUEST_NOTIFY_BOOT 0x10u
#define COOP_NOTIFY_SOCKET "@coop-notify"
#define COOP_BOOTED 'B'

typedef struct {
    uint32_t magic;
    uint32_t version;
    uint32_t flags;
    uint32_t cgroup_count;
    uint32_t argc;
    uint32_t envc;
    /// Bytes of fields after this header.
    uint32_t size;
} coop_request_header;

/// A request as the supervisor holds it once checked: the strings point into memory of its own.
typedef struct {
    uint32_t flags;
    const char *rootfs;
    const char *hostname;
    /// NULL: not a throwaway container.
    const char *overlay_lower;
    /// NULL: the image's own.
    const char *resolv_conf;
    const char *hosts;
    coop_cgroup_mount *cgroup_mounts;
    size_t cgroup_count;
    /// NULL-terminated.
    char **argv;
    char **envp;
} coop_request;

/// Reads one request from `fd` and checks it whole. Returns 0, or -1 with `failure` saying what was wrong
/// (stage COOP_RUN_REQUEST; errno EBADMSG for a malformed request, ENODATA when none came).
int coop_request_read(int fd, coop_request *request, coop_failure *failure);

/// The supervisor's answer: PID 1's pid as coop sees it, or 0 and what failed.
typedef struct {
    int32_t pid;
    coop_failure failure;
} coop_start_reply;

#endif
