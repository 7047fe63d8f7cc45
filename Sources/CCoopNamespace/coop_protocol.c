#define _GNU_SOURCE
#include "coop_protocol.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// The part of a request's fields not read yet.
struct cursor {
    const char *next;
    size_t left;
};

static int take_number(struct cursor *fields, uint32_t *value) {
    if (fields->left < sizeof *value) return -1;
    memcpy(value, fields->next, sizeof *value);
    fields->next += sizeof *value;
    fields->left -= sizeof *value;
    return 0;
}

// A string field: its length, that many bytes and a NUL, with no NUL inside. NULL when it is not one.
static const char *take_string(struct cursor *fields) {
    uint32_t length;
    if (take_number(fields, &length) < 0 || length >= fields->left) return NULL;
    const char *text = fields->next;
    if (text[length] != '\0' || memchr(text, '\0', length) != NULL) return NULL;
    fields->next += (size_t)length + 1;
    fields->left -= (size_t)length + 1;
    return text;
}

__attribute__((format(printf, 3, 4))) static int refuse(coop_failure *failure, int error_number, const char *format,
                                                         ...) {
    char detail[COOP_FAILURE_DETAIL_SIZE];
    va_list values;
    va_start(values, format);
    vsnprintf(detail, sizeof detail, format, values);
    va_end(values);
    coop_failure_note(failure, COOP_RUN_REQUEST, error_number, detail);
    return -1;
}

static int is_absolute(const char *path) { return path[0] == '/'; }

// A folder name below /sys/fs/cgroup: one component that stays there.
static int is_cgroup_entry(const char *name) {
    return name[0] != '\0' && strchr(name, '/') == NULL && strcmp(name, "..") != 0;
}

static int take_cgroup_mount(struct cursor *fields, coop_cgroup_mount *mount) {
    uint32_t kind;
    if (take_number(fields, &kind) < 0) return -1;
    const char *folder = take_string(fields), *options = take_string(fields), *host = take_string(fields);
    if (folder == NULL || options == NULL || host == NULL || !is_cgroup_entry(folder)) return -1;
    if (kind != COOP_CGROUP_V1 && kind != COOP_CGROUP_V2 && kind != COOP_CGROUP_LINK) return -1;
    // Only the unified hierarchy may be /sys/fs/cgroup itself, and a link needs a target.
    if (strcmp(folder, ".") == 0 && kind != COOP_CGROUP_V2) return -1;
    if (kind == COOP_CGROUP_LINK && options[0] == '\0') return -1;
    if (host[0] != '\0' && !is_absolute(host)) return -1;
    mount->kind = (coop_cgroup_kind)kind;
    mount->folder = folder;
    mount->options = options[0] != '\0' ? options : NULL;
    mount->host_folder = host[0] != '\0' ? host : NULL;
    return 0;
}

// `count` strings into `list` (NULL-terminated); which one was malformed goes to `bad`.
static int take_strings(struct cursor *fields, char **list, uint32_t count, uint32_t *bad) {
    for (uint32_t i = 0; i < count; i++) {
        const char *text = take_string(fields);
        if (text == NULL) {
            *bad = i;
            return -1;
        }
        list[i] = (char *)text;
    }
    list[count] = NULL;
    return 0;
}

// Checks the fields of `header` in `data` and points `request` into them.
static int decode(const coop_request_header *header, const char *data, coop_request *request,
                  coop_failure *failure) {
    struct cursor fields = {data, header->size};
    request->flags = header->flags;
    request->rootfs = take_string(&fields);
    request->hostname = take_string(&fields);
    request->overlay_lower = take_string(&fields);
    request->resolv_conf = take_string(&fields);
    request->hosts = take_string(&fields);
    if (request->rootfs == NULL || request->hostname == NULL || request->overlay_lower == NULL ||
        request->resolv_conf == NULL || request->hosts == NULL)
        return refuse(failure, EBADMSG, "request: the rootfs, hostname, lower tree or a network file is not a string");
    if (!is_absolute(request->rootfs)) return refuse(failure, EBADMSG, "request: rootfs %s is not absolute", request->rootfs);
    if (request->overlay_lower[0] == '\0') {
        request->overlay_lower = NULL;
    } else if (!is_absolute(request->overlay_lower)) {
        return refuse(failure, EBADMSG, "request: lower tree %s is not absolute", request->overlay_lower);
    }
    const char **files[] = {&request->resolv_conf, &request->hosts};
    for (size_t i = 0; i < 2; i++) {
        if (**files[i] == '\0') {
            *files[i] = NULL;
        } else if (!is_absolute(*files[i])) {
            return refuse(failure, EBADMSG, "request: network file %s is not absolute", *files[i]);
        }
    }
    for (uint32_t i = 0; i < header->cgroup_count; i++) {
        if (take_cgroup_mount(&fields, &request->cgroup_mounts[i]) < 0)
            return refuse(failure, EBADMSG, "request: cgroup mount %u is malformed", i);
    }
    request->cgroup_count = header->cgroup_count;
    uint32_t bad = 0;
    if (take_strings(&fields, request->argv, header->argc, &bad) < 0)
        return refuse(failure, EBADMSG, "request: argument %u of the command is not a string", bad);
    if (request->argv[0][0] == '\0') return refuse(failure, EBADMSG, "request: the command is empty");
    if (take_strings(&fields, request->envp, header->envc, &bad) < 0)
        return refuse(failure, EBADMSG, "request: environment entry %u is not a string", bad);
    if (fields.left != 0) return refuse(failure, EBADMSG, "request: %zu bytes left over after the last field", fields.left);
    return 0;
}

static int check_header(const coop_request_header *header, coop_failure *failure) {
    const uint32_t known_flags = COOP_REQUEST_SHARE_NETWORK | COOP_REQUEST_CONSOLE_STDIO | COOP_REQUEST_CONSOLE_INPUT |
                                 COOP_REQUEST_NOTIFY_BOOT |
                                 COOP_REQUEST_OVERLAY_ON_DISK | COOP_REQUEST_WAIT_NETWORK;
    if (header->magic != COOP_REQUEST_MAGIC) return refuse(failure, EBADMSG, "request: not one of coop's");
    if (header->version != COOP_REQUEST_VERSION)
        return refuse(failure, EBADMSG, "request: version %u, this supervisor reads %u", header->version,
                      COOP_REQUEST_VERSION);
    if (header->flags & ~known_flags) return refuse(failure, EBADMSG, "request: unknown flags %#x", header->flags);
    if (header->size > COOP_REQUEST_MAX_SIZE)
        return refuse(failure, EBADMSG, "request: %u bytes, at most %u", header->size, COOP_REQUEST_MAX_SIZE);
    if (header->argc == 0 || header->argc > COOP_REQUEST_MAX_STRINGS)
        return refuse(failure, EBADMSG, "request: %u arguments, 1 to %u", header->argc, COOP_REQUEST_MAX_STRINGS);
    if (header->envc > COOP_REQUEST_MAX_STRINGS)
        return refuse(failure, EBADMSG, "request: %u environment entries, at most %u", header->envc,
                      COOP_REQUEST_MAX_STRINGS);
    if (header->cgroup_count > COOP_REQUEST_MAX_CGROUPS)
        return refuse(failure, EBADMSG, "request: %u cgroup mounts, at most %u", header->cgroup_count,
                      COOP_REQUEST_MAX_CGROUPS);
    return 0;
}

static void release(coop_request *request, char *data) {
    free(data);
    free(request->cgroup_mounts);
    free(request->argv);
    free(request->envp);
    memset(request, 0, sizeof *request);
}

int coop_request_read(int fd, coop_request *request, coop_failure *failure) {
    memset(request, 0, sizeof *request);
    memset(failure, 0, sizeof *failure);
    coop_request_header header;
    ssize_t got = coop_read_full(fd, &header, sizeof header);
    if (got < 0) return refuse(failure, errno, "read the request");
    if (got == 0) return refuse(failure, ENODATA, "request: none came (coop gave up)");
    if (got < (ssize_t)sizeof header)
        return refuse(failure, EBADMSG, "request: %zd bytes, fewer than its header's %zu", got, sizeof header);
    if (check_header(&header, failure) < 0) return -1;
    char *data = malloc(header.size > 0 ? header.size : 1);
    request->cgroup_mounts = calloc(header.cgroup_count > 0 ? header.cgroup_count : 1, sizeof(coop_cgroup_mount));
    request->argv = calloc((size_t)header.argc + 1, sizeof(char *));
    request->envp = calloc((size_t)header.envc + 1, sizeof(char *));
    if (data == NULL || request->cgroup_mounts == NULL || request->argv == NULL || request->envp == NULL) {
        release(request, data);
        return refuse(failure, ENOMEM, "request: room for %u bytes", header.size);
    }
    got = coop_read_full(fd, data, header.size);
    if (got != (ssize_t)header.size) {
        int error_number = got < 0 ? errno : EBADMSG;
        release(request, data);
        return got < 0 ? refuse(failure, error_number, "read the request")
                       : refuse(failure, EBADMSG, "request: %zd of its %u bytes of fields came", got, header.size);
    }
    if (decode(&header, data, request, failure) < 0) {
        release(request, data);
        return -1;
    }
    // The strings point into `data`, which lives as long as the process.
    return 0;
}
