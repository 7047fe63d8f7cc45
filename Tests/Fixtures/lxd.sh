#!/usr/bin/env bash
# Runs a real LXD daemon (Debian's lxd) for the interop tests: its own folder, its unix socket only (no
# listener on the network), a `dir` storage pool and no network of its own. Image servers are trusted
# through CA only (the fixture server's test CA), as SSL_CERT_FILE of the daemon and of the client.
#
# Usage: lxd.sh start STATE CA [cluster]   (STATE: an empty folder; run as root)
#        lxd.sh stop STATE
#        lxd.sh run STATE CLIENT-ARGS...   (the lxc client against this daemon)
#
# With `cluster`, the daemon is a one-node cluster (its API on a free port of 127.0.0.1, the port in
# STATE/https-port) with a bridge of its own, cooptestbr0 (10.126.0.1/24, DHCP and DNS by LXD's dnsmasq, no
# NAT, nothing beyond the bridge), on every instance through the default profile.
#
# STATE receives lxd/ (LXD_DIR), pool/ (the storage pool), lxd.log and config/ (the client's). The daemon
# stops by itself after 2 hours if stop is never called; stop ends its instances, unmounts what it mounted
# below STATE and removes STATE.
set -euo pipefail

usage() {
    echo "usage: $0 start STATE CA | $0 stop STATE | $0 run STATE ARGS..." >&2
    exit 2
}

[ $# -ge 2 ] || usage
command=$1
state=$(realpath -m "$2")
shift 2
export LXD_DIR=$state/lxd LXD_CONF=$state/config
BRIDGE=cooptestbr0

# lxd_pid: the daemon of this STATE, if it runs.
lxd_pid() {
    local pid
    for pid in $(pgrep -x lxd 2>/dev/null); do
        if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "--logfile $state/lxd.log"; then
            echo "$pid"
            return 0
        fi
    done
    return 1
}

# unmount_below DIR: everything mounted at or below DIR, deepest first.
unmount_below() {
    awk -v dir="$1" '$5 == dir || index($5, dir "/") == 1 {print $5}' /proc/self/mountinfo | sort -r |
        while read -r mount; do umount -l "$mount" 2>/dev/null || true; done
}

case $command in
start)
    [ $# = 1 ] || [ $# = 2 ] || usage
    ca=$1
    cluster=${2:-}
    [ "$(id -u)" = 0 ] || {
        echo "$0: must run as root" >&2
        exit 1
    }
    mkdir -p "$state/pool" "$LXD_DIR" "$LXD_CONF"
    chmod 0711 "$state" "$LXD_DIR"
    # Detached from the caller's session and output, so that a test waiting for the script's output does
    # not wait for the daemon.
    # Image servers other than loopback's are unreachable on purpose: LXD fetches instance types from the
    # internet at start, and goes to a closed loopback port for them instead.
    SSL_CERT_FILE=$ca HTTPS_PROXY=http://127.0.0.1:9 HTTP_PROXY=http://127.0.0.1:9 NO_PROXY=127.0.0.1,localhost \
        setsid timeout 2h lxd --group root --logfile "$state/lxd.log" \
        </dev/null >>"$state/lxd.out" 2>&1 &
    if ! lxd waitready --timeout 60; then
        echo "$0: lxd did not get ready; its log:" >&2
        tail -20 "$state/lxd.log" "$state/lxd.out" >&2 || true
        exit 1
    fi
    # One preseed: the pool and the default profile's disk always; for a cluster, its address, the bridge
    # and a nic on it.
    config="config: {}"
    networks=""
    nic=""
    if [ "$cluster" = cluster ]; then
        port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        echo "$port" >"$state/https-port"
        config="config:
  core.https_address: 127.0.0.1:$port
cluster:
  server_name: coop-test-node
  enabled: true"
        networks="networks:
- name: $BRIDGE
  type: bridge
  config:
    ipv4.address: 10.126.0.1/24
    ipv4.nat: \"false\"
    ipv4.firewall: \"false\"
    ipv6.address: none"
        nic="    eth0:
      name: eth0
      network: $BRIDGE
      type: nic"
    fi
    lxd init --preseed <<EOF
$config
$networks
storage_pools:
- name: default
  driver: dir
  config:
    source: $state/pool
profiles:
- name: default
  devices:
    root:
      path: /
      pool: default
      type: disk
$nic
EOF
    ;;
run)
    SSL_CERT_FILE=${SSL_CERT_FILE:-} exec lxc "$@"
    ;;
stop)
    [ $# = 0 ] || usage
    if pid=$(lxd_pid); then
        # Instances stop with the daemon; a daemon that does not end in time is killed.
        timeout 60 lxd shutdown --timeout 50 >/dev/null 2>&1 || kill -9 "$pid" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
    fi
    # What the instances left (their monitors), then the mounts below the folder.
    pkill -9 -f -- "$LXD_DIR/" 2>/dev/null || true
    # The bridge of a cluster stays on the host after its daemon: removed here.
    if [ -f "$state/https-port" ]; then ip link delete "$BRIDGE" 2>/dev/null || true; fi
    unmount_below "$state"
    rm -rf "$state"
    ;;
*)
    usage
    ;;
esac
