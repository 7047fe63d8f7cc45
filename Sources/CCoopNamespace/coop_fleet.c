// The private network of a fleet, made with rtnetlink: no `ip` process per node, and nothing that needs
// more than the user's own namespaces. See coop_fleet.h for the three modes of coop-supervisor.
#define _GNU_SOURCE
#include "coop_fleet.h"
#include "coop_namespace.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

// One request being built: the header, then attributes, in a buffer big enough for any request here.
typedef struct {
    struct nlmsghdr header;
    char room[1024];
} nl_request;

static void *tail(nl_request *request) { return (char *)&request->header + NLMSG_ALIGN(request->header.nlmsg_len); }

static struct rtattr *add_attribute(nl_request *request, int type, const void *data, size_t size) {
    struct rtattr *attribute = tail(request);
    size_t length = RTA_LENGTH(size);
    if (NLMSG_ALIGN(request->header.nlmsg_len) + RTA_ALIGN(length) > sizeof *request) abort();
    attribute->rta_type = (unsigned short)type;
    attribute->rta_len = (unsigned short)length;
    if (size > 0) memcpy(RTA_DATA(attribute), data, size);
    request->header.nlmsg_len = (uint32_t)(NLMSG_ALIGN(request->header.nlmsg_len) + RTA_ALIGN(length));
    return attribute;
}

static struct rtattr *begin_nest(nl_request *request, int type) { return add_attribute(request, type, NULL, 0); }

static void end_nest(nl_request *request, struct rtattr *nest) {
    nest->rta_len = (unsigned short)((char *)tail(request) - (char *)nest);
}

static void *add_bytes(nl_request *request, const void *data, size_t size) {
    void *at = tail(request);
    if (NLMSG_ALIGN(request->header.nlmsg_len) + NLMSG_ALIGN(size) > sizeof *request) abort();
    memcpy(at, data, size);
    request->header.nlmsg_len = (uint32_t)(NLMSG_ALIGN(request->header.nlmsg_len) + NLMSG_ALIGN(size));
    return at;
}

static void begin(nl_request *request, int type, int flags) {
    memset(request, 0, sizeof *request);
    request->header.nlmsg_len = NLMSG_HDRLEN;
    request->header.nlmsg_type = (unsigned short)type;
    request->header.nlmsg_flags = (unsigned short)(NLM_F_REQUEST | NLM_F_ACK | flags);
}

// Sends the request and waits for its acknowledgement; 0, or -1 with errno from the kernel's answer.
static int talk(int fd, nl_request *request) {
    static uint32_t sequence = 0;
    request->header.nlmsg_seq = ++sequence;
    struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
    if (sendto(fd, request, request->header.nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0) return -1;
    char answer[8192];
    for (;;) {
        ssize_t got = recv(fd, answer, sizeof answer, 0);
        if (got < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        for (struct nlmsghdr *message = (struct nlmsghdr *)answer; NLMSG_OK(message, (unsigned int)got);
             message = NLMSG_NEXT(message, got)) {
            if (message->nlmsg_seq != request->header.nlmsg_seq || message->nlmsg_type != NLMSG_ERROR) continue;
            const struct nlmsgerr *error = NLMSG_DATA(message);
            if (error->error == 0) return 0;
            errno = -error->error;
            return -1;
        }
    }
}

static int open_netlink(void) {
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0) return -1;
    struct sockaddr_nl local = {.nl_family = AF_NETLINK};
    if (bind(fd, (struct sockaddr *)&local, sizeof local) < 0) {
        (void)coop_close(fd);
        return -1;
    }
    return fd;
}

static int set_up(int fd, int index) {
    nl_request request;
    begin(&request, RTM_NEWLINK, 0);
    struct ifinfomsg info = {.ifi_family = AF_UNSPEC, .ifi_index = index, .ifi_flags = IFF_UP, .ifi_change = IFF_UP};
    add_bytes(&request, &info, sizeof info);
    return talk(fd, &request);
}

static int add_bridge(int fd, const char *name) {
    nl_request request;
    begin(&request, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
    struct ifinfomsg info = {.ifi_family = AF_UNSPEC};
    add_bytes(&request, &info, sizeof info);
    add_attribute(&request, IFLA_IFNAME, name, strlen(name) + 1);
    struct rtattr *link = begin_nest(&request, IFLA_LINKINFO);
    add_attribute(&request, IFLA_INFO_KIND, "bridge", strlen("bridge"));
    end_nest(&request, link);
    return talk(fd, &request);
}

// A veth pair: `name` here, on `master`, and its peer `peer` made directly in the network namespace of
// process `peer_pid`.
static int add_veth(int fd, const char *name, int master, const char *peer, pid_t peer_pid) {
    nl_request request;
    begin(&request, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
    struct ifinfomsg info = {.ifi_family = AF_UNSPEC};
    add_bytes(&request, &info, sizeof info);
    add_attribute(&request, IFLA_IFNAME, name, strlen(name) + 1);
    uint32_t master_index = (uint32_t)master;
    add_attribute(&request, IFLA_MASTER, &master_index, sizeof master_index);
    struct rtattr *link = begin_nest(&request, IFLA_LINKINFO);
    add_attribute(&request, IFLA_INFO_KIND, "veth", strlen("veth"));
    struct rtattr *data = begin_nest(&request, IFLA_INFO_DATA);
    struct rtattr *peer_info = begin_nest(&request, VETH_INFO_PEER);
    struct ifinfomsg peer_header = {.ifi_family = AF_UNSPEC};
    add_bytes(&request, &peer_header, sizeof peer_header);
    add_attribute(&request, IFLA_IFNAME, peer, strlen(peer) + 1);
    uint32_t pid = (uint32_t)peer_pid;
    add_attribute(&request, IFLA_NET_NS_PID, &pid, sizeof pid);
    end_nest(&request, peer_info);
    end_nest(&request, data);
    end_nest(&request, link);
    return talk(fd, &request);
}

static int add_address(int fd, int index, struct in_addr address, int prefix) {
    nl_request request;
    begin(&request, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
    struct ifaddrmsg info = {
        .ifa_family = AF_INET, .ifa_prefixlen = (unsigned char)prefix, .ifa_index = (unsigned int)index};
    add_bytes(&request, &info, sizeof info);
    add_attribute(&request, IFA_LOCAL, &address, sizeof address);
    add_attribute(&request, IFA_ADDRESS, &address, sizeof address);
    return talk(fd, &request);
}

static int add_default_route(int fd, struct in_addr gateway) {
    nl_request request;
    begin(&request, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
    struct rtmsg info = {.rtm_family = AF_INET,
                         .rtm_table = RT_TABLE_MAIN,
                         .rtm_protocol = RTPROT_BOOT,
                         .rtm_scope = RT_SCOPE_UNIVERSE,
                         .rtm_type = RTN_UNICAST};
    add_bytes(&request, &info, sizeof info);
    add_attribute(&request, RTA_GATEWAY, &gateway, sizeof gateway);
    return talk(fd, &request);
}

static int fail(const char *what, const char *detail) {
    int saved = errno;
    fprintf(stderr, "coop-supervisor: %s%s%s: %s\n", what, detail ? " " : "", detail ? detail : "", strerror(saved));
    return 1;
}

static int usage(void) {
    fprintf(stderr, "coop-supervisor: started by coop only (see coop fleet)\n");
    return 2;
}

pid_t coop_pid_argument(const char *text) {
    char *end = NULL;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value < 2 || value > INT_MAX) return -1;
    return (pid_t)value;
}

static int parse_prefix(const char *text) {
    char *end = NULL;
    long value = strtol(text, &end, 10);
    return end != text && *end == '\0' && value >= 8 && value <= 30 ? (int)value : -1;
}

// An interface name the kernel takes: 1 to 15 characters, no slash, space or colon.
static int valid_name(const char *name) {
    size_t length = strlen(name);
    return length > 0 && length < IFNAMSIZ && strpbrk(name, "/: \t\n") == NULL && strcmp(name, ".") != 0 &&
           strcmp(name, "..") != 0;
}

// Joins the holder's user and network namespaces as root there, giving up the user's groups first: from
// here on nothing of the user's own credentials is left.
static int join_holder(pid_t holder) {
    int pidfd = (int)syscall(SYS_pidfd_open, holder, 0);
    if (pidfd < 0) return fail("the fleet's network holder", "is gone");
    if (setns(pidfd, CLONE_NEWUSER | CLONE_NEWNET) < 0) {
        int saved = errno;
        (void)coop_close(pidfd);
        errno = saved;
        return fail("setns", "into the fleet's namespaces");
    }
    (void)coop_close(pidfd);
    if (setgroups(0, NULL) < 0 || setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
        return fail("switch to root", "of the fleet");
    return 0;
}

int coop_fleet_hold(const char *bridge, const char *gateway_text, const char *prefix_text, const char *ready_text) {
    struct in_addr gateway;
    int prefix = parse_prefix(prefix_text);
    char *end = NULL;
    long ready = strtol(ready_text, &end, 10);
    if (!valid_name(bridge) || inet_pton(AF_INET, gateway_text, &gateway) != 1 || prefix < 0 || *end != '\0' ||
        ready < 3 || ready > INT_MAX)
        return usage();
    const int keep[] = {(int)ready};
    if (coop_close_descriptors(3, keep, 1, 0) < 0) return fail("close_range", "from 3");
    if (unshare(CLONE_NEWNET) < 0) return fail("unshare", "of the network namespace");
    int fd = open_netlink();
    if (fd < 0) return fail("socket", "NETLINK_ROUTE");
    if (set_up(fd, (int)if_nametoindex("lo")) < 0) return fail("loopback", NULL);
    if (add_bridge(fd, bridge) < 0) return fail("bridge", bridge);
    int index = (int)if_nametoindex(bridge);
    if (index == 0) return fail("bridge", bridge);
    if (add_address(fd, index, gateway, prefix) < 0) return fail("address of", bridge);
    if (set_up(fd, index) < 0) return fail("link up", bridge);
    (void)coop_close(fd);
    // The namespace routes between the bridge and pasta's tap, where the NAT rules send the nodes' traffic.
    int forward = open("/proc/sys/net/ipv4/ip_forward", O_WRONLY | O_CLOEXEC);
    if (forward < 0 || write(forward, "1", 1) != 1) return fail("forwarding", "/proc/sys/net/ipv4/ip_forward");
    (void)coop_close(forward);
    // Published ports come in on the namespace's loopback too (pasta's path for the host's loopback), and
    // are sent on to a node: the kernel routes such packets only with route_localnet.
    int localnet = open("/proc/sys/net/ipv4/conf/all/route_localnet", O_WRONLY | O_CLOEXEC);
    if (localnet < 0 || write(localnet, "1", 1) != 1) return fail("route_localnet", NULL);
    (void)coop_close(localnet);
    char byte = 'r';
    if (coop_write_full((int)ready, &byte, 1) < 0) return fail("ready", NULL);
    (void)coop_close((int)ready);
    // Holds the namespaces: their last process. SIGTERM (coop fleet down) ends it with its default action.
    for (;;) pause();
}

int coop_fleet_plug(const char *holder_text, const char *node_text, const char *host_if, const char *bridge,
                    const char *address_text, const char *prefix_text, const char *gateway_text) {
    pid_t holder = coop_pid_argument(holder_text), node = coop_pid_argument(node_text);
    int prefix = parse_prefix(prefix_text);
    struct in_addr address, gateway;
    if (holder < 0 || node < 0 || prefix < 0 || !valid_name(host_if) || !valid_name(bridge) ||
        inet_pton(AF_INET, address_text, &address) != 1 || inet_pton(AF_INET, gateway_text, &gateway) != 1)
        return usage();
    if (coop_close_descriptors(3, NULL, 0, 0) < 0) return fail("close_range", "from 3");
    // The node's PID 1 is held before anything changes: a pidfd names that process and no other.
    int node_fd = (int)syscall(SYS_pidfd_open, node, 0);
    if (node_fd < 0) return fail("the node's PID 1", node_text);
    if (join_holder(holder) != 0) return 1;
    int fd = open_netlink();
    if (fd < 0) return fail("socket", "NETLINK_ROUTE");
    int master = (int)if_nametoindex(bridge);
    if (master == 0) return fail("bridge", bridge);
    if (add_veth(fd, host_if, master, "eth0", node) < 0) return fail("veth", host_if);
    int index = (int)if_nametoindex(host_if);
    if (index == 0 || set_up(fd, index) < 0) return fail("link up", host_if);
    (void)coop_close(fd);
    // Now inside the node: its eth0 gets the address and the route. The node's namespaces belong to the
    // fleet's user namespace, where this process is root.
    if (setns(node_fd, CLONE_NEWNET) < 0) return fail("setns", "into the node's network");
    (void)coop_close(node_fd);
    fd = open_netlink();
    if (fd < 0) return fail("socket", "NETLINK_ROUTE in the node");
    int eth0 = (int)if_nametoindex("eth0");
    if (eth0 == 0) return fail("eth0", "in the node");
    if (add_address(fd, eth0, address, prefix) < 0) return fail("address of eth0", address_text);
    if (set_up(fd, eth0) < 0) return fail("link up", "eth0");
    if (add_default_route(fd, gateway) < 0) return fail("default route via", gateway_text);
    (void)coop_close(fd);
    return 0;
}

int coop_fleet_join(const char *holder_text, char *const argv[]) {
    pid_t holder = coop_pid_argument(holder_text);
    if (holder < 0 || argv[0] == NULL || argv[0][0] != '/') return usage();
    if (coop_close_descriptors(3, NULL, 0, 0) < 0) return fail("close_range", "from 3");
    if (join_holder(holder) != 0) return 1;
    char *const environment[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL};
    execve(argv[0], argv, environment);
    return fail("exec", argv[0]);
}
