#ifndef COOP_FLEET_H
#define COOP_FLEET_H

#include <stdint.h>
#include <sys/types.h>

// The private network of a fleet: a bridge in a network namespace of the user's own (no setuid, nothing of
// the host's network touched), a veth pair per node, and the node's address and route. Each function is
// one mode of coop-supervisor; all print a one-line reason to stderr on failure and return an exit status.

/// `coop-supervisor --fleet-network BRIDGE GATEWAY PREFIX READY_FD`: spawned by coop in the fleet's user
/// namespace (root over the user's id range), makes a network namespace with the bridge (GATEWAY/PREFIX
/// on it) and forwarding on, writes one byte to READY_FD and then holds the namespaces until SIGTERM.
int coop_fleet_hold(const char *bridge, const char *gateway, const char *prefix, const char *ready_fd);

/// `coop-supervisor --fleet-plug HOLDER NODE HOSTIF BRIDGE ADDRESS PREFIX GATEWAY`: run as the user, joins
/// the user and network namespaces of the holder (pid HOLDER), makes the veth pair HOSTIF (on BRIDGE) and
/// eth0 in the network namespace of the node's PID 1 (pid NODE), and gives eth0 ADDRESS/PREFIX and a
/// default route through GATEWAY.
int coop_fleet_plug(const char *holder, const char *node, const char *host_if, const char *bridge,
                    const char *address, const char *prefix, const char *gateway);

/// `coop-supervisor --fleet-join HOLDER PROGRAM ARGS…`: run as the user, joins the user and network
/// namespaces of the holder as root there, and execs PROGRAM (nft, for the fleet's NAT rules).
int coop_fleet_join(const char *holder, char *const argv[]);

/// A pid given on coop-supervisor's command line (2 or more); -1 when it is not one.
pid_t coop_pid_argument(const char *text);

#endif
