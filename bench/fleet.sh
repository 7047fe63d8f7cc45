#!/usr/bin/env bash
# Times a fleet of NODES booted Debian bookworm containers, coop against LXC, as one ordinary user:
# from nothing to NODES containers booted ("up"), and from there back to nothing ("down").
#   LXC   one base container, made once before the timed runs (lxc-create -t download of the same
#         image as bench/runtime.sh's LXC container, not timed). Up: `lxc-copy -s -B overlay` of the
#         base into fb-lxc-1..fb-lxc-NODES, all in parallel, then `lxc-start` of each (in parallel),
#         then every node polled in parallel with `lxc-attach -- systemctl is-system-running --wait`
#         until it answers running or degraded (a node answering anything else is asked again, until
#         BOOT_TIMEOUT seconds; the nodes that never answered are printed). Down: `lxc-stop -k` then
#         `lxc-destroy` of every node, all nodes in parallel.
#   coop  a fleet file (name fb, the same image, NODES nodes, subnet 10.123.0.0/24 with outbound
#         access) in a folder of the user's. Up: `coop fleet up FILE` (copy-on-write nodes fb-1..fb-N,
#         started; it returns once all are booted, exit 0 when all booted), then checked, not timed,
#         with `coop fleet exec FILE -- systemctl is-system-running`. Down: `coop fleet down FILE`.
#         Before the timed runs a copy-on-write container fb-base of the image is made (not timed), so
#         that the image is cached and its shared base unpacked, as LXC's base container is.
#         If `coop fleet` is not in the binary, the coop rows say so and the LXC half still runs.
#   memory, once per tool, after its first up and before that down, in KiB per node:
#         coop's own processes on the host (comm coop, coop-supervisor, pasta* or passt*, of this
#         run's coop: its executable or a path of its folders on the command line) against LXC's
#         monitors ("[lxc monitor] LXCPATH NAME"), both of the user's uid or of its first subordinate
#         range (coop-supervisor runs as the container's root): VmRSS and Pss (/proc/PID/smaps_rollup)
#         summed, divided by NODES, in all and per kind. Each is compared with the pid namespace of a
#         shell of the user; the ones in another pid namespace are still counted, and the table says
#         how many (pasta sandboxes itself in a pid namespace of its own, not the container's). And
#         the whole node:
#         the memory of the nodes' cgroups (memory.current on cgroup2, memory.usage_in_bytes on v1;
#         page cache included), and the Pss of the processes in those cgroups, divided by NODES
#         (pasta stays in the user's cgroup: it is in coop's own figure, not in the node's).
# Targets: coop up <= 0.5 x LXC up, coop down <= 1.0 x LXC down, coop's own memory < 2 MiB per node
# (judged on Pss, VmRSS shown beside it).
#
# Usage: bench/fleet.sh [FIXTURES [USER]]    (run as root; `make bench`)
#   FIXTURES  output folder of Tests/Fixtures/build-images.sh and Tests/Fixtures/build-guests.sh,
#             with the bookworm image with systemd at FIXTURES/www/guests (default
#             /var/tmp/coop-fixtures)
#   USER      ordinary user to run both tools as (made by Tests/Fixtures/make-test-user.sh;
#             Tests/Fixtures/lxc-user-setup.sh and `coop setup-host --user USER` are run for it;
#             default coop-test)
# Environment:
#   NODES         containers per fleet (default 50)
#   RUNS          timed up and down runs per tool, median reported (default 3)
#   COOP_BIN      coop binary to time (default: .build/release/coop of this checkout)
#   BENCH_PLOT    a PNG file: the up and down times of every run of both tools as a grouped bar
#                 chart (needs python3-matplotlib)
#   BOOT_TIMEOUT  seconds the LXC nodes have to answer running or degraded (default 180); each coop
#                 fleet command is bounded by the larger of BOOT_TIMEOUT and 18 s per node
#   SETTLE        seconds to wait after sync before every timed step (default 5)
#
# The image: debian/bookworm/slim of FIXTURES/www/guests (build-guests.sh: minbase with systemd),
# served by one nginx on 127.0.0.1 (Tests/Fixtures/serve.sh), as in bench/runtime.sh: coop names it
# bench:debian/bookworm/ARCH/slim (a remote of a private images.index), lxc-create -t download
# fetches it from the same URL.
#
# How the tools run: every command goes through Tests/Fixtures/lxc-as-user.sh (the user's delegated
# cgroups, XDG_RUNTIME_DIR, a clean environment), for coop as well. Each timed LXC step is one such
# command, a bash as the user that runs the nodes' commands in parallel, so the wrapper is paid once
# per step, as for coop's one command. LXC uses a private lxcpath (-P) and cache under the work
# folder; coop private folders (COOP_CONTAINERS, COOP_CACHE, XDG_CONFIG_HOME) there too. Networks
# differ: LXC's nodes have loopback only (lxc.net.0.type = empty, lxc-user-setup.sh), coop's have
# the fleet's subnet with outbound access through pasta, as the fleet file asks.
#
# Host settings: LXC stalls at about 25 nodes with Debian's inotify limits (every systemd takes
# inotify instances of the user's uid range). The script raises fs.inotify.max_user_instances to at
# least 8192 and fs.inotify.max_user_watches to at least 1048576 with sysctl -w before the runs,
# and leaves them raised: nothing else is changed back either way.
#
# Prints machine facts, the commands timed, a table of medians, the coop/LXC ratios and one line
# per target (met or missed). A failed step shows as n/a and the script exits 1 at the end; it never
# fails because a target is missed. On exit every fb-* container of both tools is removed (coop fleet
# down, then coop stop and coop destroy of what is left; lxc-stop -k and lxc-destroy), the server
# stopped and the work folder deleted.
set -euo pipefail

UP_TARGET=0.5
DOWN_TARGET=1.0
MEMORY_TARGET_KIB=2048
LXC_BASE=fb-lxc-base
COOP_BASE=fb-base
FLEET=fb

die() {
    echo "bench: $*" >&2
    exit 1
}

# --- the timed LXC steps, run as the user (lxc-as-user.sh) ----------------------------------------
# now: seconds since the epoch, whole.
now() {
    echo "${EPOCHREALTIME%.*}"
}

# in_parallel STEP NODES LOG: runs `STEP I` for every I in 1..NODES at once, output in LOG.I; names
# the nodes whose STEP failed and returns 1 if there are any.
in_parallel() {
    local step=$1 nodes=$2 log=$3 i
    local -a pids=() missed=()
    for ((i = 1; i <= nodes; i++)); do
        "$step" "$i" >"$log.$i" 2>&1 &
        pids[i]=$!
    done
    for ((i = 1; i <= nodes; i++)); do
        wait "${pids[i]}" || missed+=("fb-lxc-$i")
    done
    if [ "${#missed[@]}" -gt 0 ]; then
        echo "$step failed on ${#missed[@]} of $nodes nodes: ${missed[*]}" >&2
        return 1
    fi
}

node_copy() {
    lxc-copy -P "$PHASE_PATH" -s -B overlay -n "$PHASE_BASE" -N "fb-lxc-$1"
}

node_start() {
    lxc-start -P "$PHASE_PATH" -n "fb-lxc-$1"
}

# node_booted I: asks until node I answers running or degraded, or the deadline passes.
node_booted() {
    local name=fb-lxc-$1 answer left
    while :; do
        left=$((PHASE_DEADLINE - $(now)))
        if [ "$left" -le 0 ]; then
            echo "$name: no running or degraded before the deadline; last answer: ${answer:-none}"
            return 1
        fi
        answer=$(timeout "$left" lxc-attach -P "$PHASE_PATH" -n "$name" -- \
            systemctl is-system-running --wait 2>>"$PHASE_LOG.$1.err" | tail -n 1) || true
        case "$answer" in
            running | degraded) return 0 ;;
        esac
        # Not before systemd's socket is there. Asking more often costs the booting nodes: every
        # lxc-attach is a process of its own, on the same cores.
        sleep 0.5
    done
}

node_down() {
    lxc-stop -P "$PHASE_PATH" -n "fb-lxc-$1" -k
    lxc-destroy -P "$PHASE_PATH" -n "fb-lxc-$1"
}

# phase up|down LXCPATH BASE NODES LOG BOOT_TIMEOUT: one timed LXC step, all nodes at once.
phase() {
    local action=$1 nodes=$4 log=$5 status=0
    PHASE_PATH=$2 PHASE_BASE=$3 PHASE_LOG=$log
    case "$action" in
        up)
            in_parallel node_copy "$nodes" "$log.copy" || status=1
            in_parallel node_start "$nodes" "$log.start" || status=1
            PHASE_DEADLINE=$(($(now) + $6))
            if ! in_parallel node_booted "$nodes" "$log.boot"; then
                status=1
                cat "$log".boot.[0-9]* >&2
            fi
            ;;
        down) in_parallel node_down "$nodes" "$log.down" || status=1 ;;
        *) die "unknown phase: $action" ;;
    esac
    return "$status"
}

if [ "${1:-}" = --phase ]; then
    shift
    phase "$@"
    exit
fi

# --- set-up ---------------------------------------------------------------------------------------
[ "$#" -le 2 ] || {
    echo "usage: $0 [FIXTURES [USER]]" >&2
    exit 2
}
[ "$(id -u)" -eq 0 ] || die "run as root (it starts the image server, sets sysctls and switches to USER)"
for cmd in jq lxc-create lxc-copy lxc-start lxc-attach lxc-stop lxc-info lxc-destroy setpriv \
    timeout python3 nginx sysctl; do
    command -v "$cmd" >/dev/null || die "missing command: $cmd"
done

script=$(realpath -e "$0")
repo=$(dirname "$(dirname "$script")")
fixtures=$(realpath -e "${1:-/var/tmp/coop-fixtures}")
user=${2:-coop-test}
nodes=${NODES:-50}
runs=${RUNS:-3}
boot_timeout=${BOOT_TIMEOUT:-180}
settle=${SETTLE:-5}
plot=${BENCH_PLOT:-}
coop_bin=${COOP_BIN:-$repo/.build/release/coop}
[ -x "$coop_bin" ] || die "no coop binary at $coop_bin (make release)"
for n in "$nodes" "$runs" "$boot_timeout"; do
    [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "NODES, RUNS and BOOT_TIMEOUT must be positive numbers"
done
[[ "$settle" =~ ^[0-9]+$ ]] || die "SETTLE is whole seconds"
if [ -n "$plot" ]; then
    plot=$(realpath -m "$plot")
fi
[ -e "$fixtures/www/guests/.complete" ] ||
    die "no bookworm image with systemd at $fixtures/www/guests (Tests/Fixtures/build-guests.sh)"
arch=$(dpkg --print-architecture)
variant=slim
lxc_as_user=$repo/Tests/Fixtures/lxc-as-user.sh
# A fleet command may take long with many nodes: the bound grows with NODES.
fleet_timeout=$((boot_timeout > nodes * 18 ? boot_timeout : nodes * 18))

"$repo/Tests/Fixtures/make-test-user.sh" "$user" >/dev/null
uid=$(id -u "$user")
gid=$(id -g "$user")
home=$(getent passwd "$user" | cut -d: -f6)
runtime_dir=/run/user/$uid
cd /

work=$(mktemp -d /var/tmp/coop-bench-fleet.XXXXXX)
chmod 0755 "$work"
containers=$work/containers
lxc_path=$work/lxc
fleet_file=$work/fleet/fleet.yaml
res=$work/res
log=$work/log
failed=false
fleet=false

user_env=(HOME="$home" USER="$user" LOGNAME="$user" LANG=C.UTF-8
    PATH="$work/prefix/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
    XDG_RUNTIME_DIR="$runtime_dir" XDG_CONFIG_HOME="$work/config"
    COOP_DATA="$work/prefix/share/coop" COOP_CACHE="$work/cache" COOP_CONTAINERS="$containers"
    CURL_CA_BUNDLE="$work/server/tls/ca.pem" WGETRC="$work/wgetrc" LXC_CACHE_PATH="$work/lxc-cache")
as_user=(setpriv --reuid="$uid" --regid="$gid" --init-groups env -i "${user_env[@]}")
as_cg=$work/bin/as-user-cg
phase_bin=$work/bin/fleet-phase

# start_ticks PID: field 22 of /proc/PID/stat, when the process started.
start_ticks() {
    sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f20
}

# stop_coop NAME: stops a coop container if it runs; kills its PID 1 if coop cannot.
stop_coop() {
    local state=$containers/$1/state.json pid ticks
    [ -s "$state" ] || return 0
    timeout 30 "$as_cg" coop stop "$1" --timeout 5 >/dev/null 2>&1 || true
    [ -s "$state" ] || return 0
    pid=$(jq -r '.pid // empty' "$state" 2>/dev/null || true)
    ticks=$(jq -r '.startTicks // empty' "$state" 2>/dev/null || true)
    # Only the PID 1 that state.json recorded (same start time), never a recycled pid.
    if [ -n "$pid" ] && [ -n "$ticks" ] && [ "$(start_ticks "$pid")" = "$ticks" ]; then
        kill -KILL "$pid" 2>/dev/null || true
    fi
}

# lxc_remove NAME: stops and destroys an LXC container of the private lxcpath.
lxc_remove() {
    timeout 60 "$as_cg" lxc-stop -P "$lxc_path" -n "$1" -k >/dev/null 2>&1 || true
    timeout 60 "$as_cg" lxc-destroy -P "$lxc_path" -n "$1" >/dev/null 2>&1 || {
        echo "bench: lxc-destroy -n $1 failed" >&2
        return 1
    }
}

cleanup() {
    local status=$? dir name
    trap - EXIT INT TERM
    if [ -x "$as_cg" ]; then
        if [ "$fleet" = true ] && [ -s "$fleet_file" ]; then
            timeout "$fleet_timeout" "$as_cg" coop fleet down "$fleet_file" >/dev/null 2>&1 || true
        fi
        for dir in "$containers"/*/; do
            [ -d "$dir" ] || continue
            name=$(basename "$dir")
            stop_coop "$name"
            "${as_user[@]}" coop destroy "$name" >/dev/null 2>&1 || {
                echo "bench: coop destroy $name failed" >&2
                status=1
            }
        done
        # The nodes (snapshots of the base) first, all at once, then the base.
        local -a pids=()
        for dir in "$lxc_path"/fb-lxc-*/; do
            [ -d "$dir" ] || continue
            name=$(basename "$dir")
            [ "$name" != "$LXC_BASE" ] || continue
            lxc_remove "$name" &
            pids+=($!)
        done
        for pid in "${pids[@]}"; do
            wait "$pid" || status=1
        done
        if [ -d "$lxc_path/$LXC_BASE" ]; then
            lxc_remove "$LXC_BASE" || status=1
        fi
    fi
    "$repo/Tests/Fixtures/serve.sh" stop "$work/server" >/dev/null 2>&1 || status=1
    rm -rf "$work"
    if [ "$status" -eq 0 ] && [ "$failed" = true ]; then
        status=1
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$work/bin" "$res" "$work/prefix/bin" "$work/www"
install -d -o "$uid" -g "$gid" -m 0755 "$containers" "$lxc_path" "$work/cache" "$work/config" \
    "$work/config/coop" "$work/lxc-cache" "$work/fleet" "$log"

# coop, installed into a private prefix (COOP_DATA points at its data folder), with its supervisor.
install -m 0755 "$coop_bin" "$work/prefix/bin/coop"
if [ -x "$(dirname "$coop_bin")/coop-supervisor" ]; then
    install -D -m 0755 "$(dirname "$coop_bin")/coop-supervisor" "$work/prefix/libexec/coop/coop-supervisor"
fi
install -D -m 0644 "$repo/images.index" "$work/prefix/share/coop/images.index"
install -d -m 0755 "$work/prefix/share/coop/keys"
install -m 0644 "$repo"/keys/*.asc "$work/prefix/share/coop/keys/"
# This script, for the timed LXC steps the user runs.
install -m 0755 "$script" "$phase_bin"

# as-user-cg: a command as the user in its delegated cgroups (lxc-as-user.sh), with user_env.
{
    echo '#!/bin/sh'
    printf 'exec %q %q env' "$lxc_as_user" "$user"
    printf ' %q' "${user_env[@]}"
    printf ' "$@"\n'
} >"$as_cg"
chmod 0755 "$as_cg"

ln -s "$fixtures/www/guests" "$work/www/guests"
eval "$("$repo/Tests/Fixtures/serve.sh" start "$work/www" "$work/server" | grep -E '^HTTPS?_PORT=[0-9]+$')"
[ -n "${HTTPS_PORT:-}" ] || die "image server did not report its port"
ca=$work/server/tls/ca.pem
echo "ca_certificate=$ca" >"$work/wgetrc"
chmod 0644 "$work/wgetrc"
# lxc-user-setup.sh also points the user's ~/.wgetrc at the CA it is given; an existing
# ~/.config/lxc/ca.pem is handed back unchanged (lxc-download reads this server's CA through WGETRC).
setup_ca=$ca
if "${as_user[@]}" test -s "$home/.config/lxc/ca.pem"; then
    setup_ca=$work/user-ca.pem
    "${as_user[@]}" cat "$home/.config/lxc/ca.pem" >"$setup_ca"
fi
"$repo/Tests/Fixtures/lxc-user-setup.sh" "$user" "$setup_ca"
if "$work/prefix/bin/coop" --help 2>/dev/null | grep -q '^ *setup-host '; then
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$work/prefix/bin/coop" setup-host --user "$user" \
        >"$log/setup-host.log" 2>&1 || die "coop setup-host: $(tail -n 5 "$log/setup-host.log")"
fi
key_fpr=$(tr -d '[:space:]' <"$fixtures/keys/guests.fpr")
echo "bench;lxc;https://127.0.0.1:$HTTPS_PORT/guests;$fixtures/keys/guests.asc;$key_fpr" \
    >"$work/config/coop/images.index"
chmod 0644 "$work/config/coop/images.index"
image=bench:debian/bookworm/$arch/$variant

# `coop fleet`: an unknown subcommand's --help prints the top-level help, so the subcommand must
# also be listed there.
if "$work/prefix/bin/coop" fleet --help >"$log/fleet-help.log" 2>&1 &&
    "$work/prefix/bin/coop" --help 2>/dev/null | grep -q '^ *fleet '; then
    fleet=true
fi

echo "== machine"
echo "   cpus:     $(nproc) ($(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'))"
echo "   memory:   $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
echo "   kernel:   $(uname -r)"
if [ "$(stat -f -c %T /sys/fs/cgroup)" = cgroup2fs ]; then
    echo "   cgroups:  unified (cgroup2)"
elif [ -d /sys/fs/cgroup/unified ]; then
    echo "   cgroups:  hybrid (v1, cgroup2 at /sys/fs/cgroup/unified)"
else
    echo "   cgroups:  legacy (v1)"
fi
echo "   fs:       $(df -T "$work" | awk 'NR == 2 { print $2 " on " $1 }') ($work)"
changes=$(git -C "$repo" status --porcelain -- Sources Package.swift 2>/dev/null | head -n1)
echo "   coop:     $coop_bin, built $(date -u -r "$coop_bin" '+%F %T UTC');" \
    "checkout at $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')${changes:+ with local changes}"
echo "   lxc:      $(lxc-start --version)"
echo "   load:     $(cut -d' ' -f1-3 /proc/loadavg)"
echo "   fleet:    $nodes nodes, $runs runs per tool"

echo "== host settings (left as set)"
# raise KEY MINIMUM: sets sysctl KEY to MINIMUM if it is lower.
raise() {
    local value
    value=$(sysctl -n "$1")
    if [ "$value" -lt "$2" ]; then
        sysctl -q -w "$1=$2"
        echo "   raised $1 from $value to $2"
    else
        echo "   $1 = $value (at least $2 already)"
    fi
}
raise fs.inotify.max_user_instances 8192
raise fs.inotify.max_user_watches 1048576

echo "== base containers (not timed)"
"$as_cg" lxc-create -P "$lxc_path" -t download -n "$LXC_BASE" -- --server "127.0.0.1:$HTTPS_PORT/guests" \
    -d debian -r bookworm -a "$arch" --variant "$variant" >"$log/lxc-create.log" 2>&1 ||
    die "lxc-create: $(tail -n 5 "$log/lxc-create.log")"
[ -x "$lxc_path/$LXC_BASE/rootfs/lib/systemd/systemd" ] || die "lxc-create made no rootfs with systemd"
echo "   lxc:  $LXC_BASE, debian/bookworm/$arch/$variant from https://127.0.0.1:$HTTPS_PORT/guests"
if [ "$fleet" = true ]; then
    "${as_user[@]}" coop create "$COOP_BASE" "$image" --cow --network none >"$log/create.log" 2>&1 ||
        die "coop create: $(tail -n 5 "$log/create.log")"
    echo "   coop: $COOP_BASE, $image (--cow: the image cached, its shared base unpacked)"
    cat >"$fleet_file" <<EOF
name: $FLEET
image: $image
nodes: $nodes
network:
  subnet: 10.123.0.0/24
  outbound: true
EOF
    chown "$uid:$gid" "$fleet_file"
    chmod 0644 "$fleet_file"
else
    echo "   coop: coop fleet: not available in this build"
fi

echo "== commands timed (each as $user, through lxc-as-user.sh; I = 1..$nodes)"
echo "   lxc up:     lxc-copy -P LXCPATH -s -B overlay -n $LXC_BASE -N fb-lxc-I   (all I at once)"
echo "               lxc-start -P LXCPATH -n fb-lxc-I   (all I at once)"
echo "               lxc-attach -P LXCPATH -n fb-lxc-I -- systemctl is-system-running --wait" \
    "(all I at once, again until running or degraded, at most $boot_timeout s)"
echo "   lxc down:   lxc-stop -P LXCPATH -n fb-lxc-I -k && lxc-destroy -P LXCPATH -n fb-lxc-I   (all I at once)"
if [ "$fleet" = true ]; then
    echo "   coop up:    coop fleet up FILE"
    echo "   coop down:  coop fleet down FILE"
    echo "   (not timed: coop fleet exec FILE -- systemctl is-system-running, after each up)"
    sed 's/^/   FILE: /' "$fleet_file"
else
    echo "   coop:       coop fleet: not available in this build"
fi

# --- measuring ------------------------------------------------------------------------------------
# quiet: what the previous step wrote goes to disk before the next one is timed.
quiet() {
    sync
    sleep "$settle"
}

# timed TOOL ACTION RUN COMMAND...: runs COMMAND, appends "TOOL ACTION RUN SECONDS ok|failed" to
# times.tsv; output in the log folder. Returns COMMAND's status.
timed() {
    local tool=$1 action=$2 run=$3 start end status=0 out
    shift 3
    out=$log/$tool-$action-$run.log
    start=$EPOCHREALTIME
    "$@" >"$out" 2>&1 || status=$?
    end=$EPOCHREALTIME
    local seconds
    seconds=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }')
    if [ "$status" -eq 0 ]; then
        echo "$tool $action $run $seconds ok" >>"$res/times.tsv"
        echo "   $tool $action, run $run: $seconds s"
    else
        echo "$tool $action $run $seconds failed" >>"$res/times.tsv"
        echo "   $tool $action, run $run: FAILED after $seconds s (exit $status); the nodes that failed, last lines:"
        grep -h 'failed on [0-9]* of [0-9]* nodes' "$out" | sed 's/^/      /' || true
        grep -v 'failed on [0-9]* of [0-9]* nodes' "$out" | tail -n 15 | sed 's/^/      /'
        failed=true
    fi
    return "$status"
}

# kib PID: VmRSS and Pss of PID in KiB ("0 0" if it is gone).
kib() {
    local rss pss
    rss=$(awk '$1 == "VmRSS:" { print $2 }' "/proc/$1/status" 2>/dev/null || true)
    pss=$(awk '$1 == "Pss:" { print $2 }' "/proc/$1/smaps_rollup" 2>/dev/null || true)
    echo "${rss:-0} ${pss:-0}"
}

# user_procs: pid, where (host: in the pid namespace of a shell of the user; other: in another
# one), executable, comm and command line (spaces for NULs) of every process of the user: its own
# uid, or one of its first subordinate range (coop-supervisor runs as the container's root), one a
# line, tab-separated.
user_pidns=""
user_procs() {
    local dir pid ns puid where
    for dir in /proc/[0-9]*; do
        pid=${dir#/proc/}
        puid=$(awk '$1 == "Uid:" { print $2 }' "$dir/status" 2>/dev/null) || continue
        [ -n "$puid" ] || continue
        if [ "$puid" != "$uid" ] && { [ "$puid" -lt "$sub_start" ] || [ "$puid" -ge "$sub_end" ]; }; then
            continue
        fi
        ns=$(readlink "$dir/ns/pid" 2>/dev/null) || continue
        where=other
        if [ "$ns" = "$user_pidns" ]; then
            where=host
        fi
        printf '%s\t%s\t%s\t%s\t%s\n' "$pid" "$where" \
            "$(readlink "$dir/exe" 2>/dev/null || true)" \
            "$(cat "$dir/comm" 2>/dev/null || true)" \
            "$(tr '\0' ' ' <"$dir/cmdline" 2>/dev/null || true)"
    done
}

# memory_root: the mount point of the hierarchy with the memory controller (none: no output).
memory_root() {
    if [ -e /sys/fs/cgroup/memory/memory.usage_in_bytes ]; then
        echo /sys/fs/cgroup/memory
    elif grep -qw memory /sys/fs/cgroup/cgroup.controllers 2>/dev/null; then
        echo /sys/fs/cgroup
    fi
}

# cgroup_row TOOL NAME FOLDER: appends "TOOL node NAME BYTES PSS_KIB" to memory.tsv: the memory of
# cgroup FOLDER and the Pss of every process in it and below.
cgroup_row() {
    local bytes pss=0 pid p
    if [ -e "$3/memory.current" ]; then
        bytes=$(cat "$3/memory.current")
    else
        bytes=$(cat "$3/memory.usage_in_bytes")
    fi
    for pid in $(find "$3" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -un); do
        read -r _ p < <(kib "$pid")
        pss=$((pss + p))
    done
    echo "$1 node $2 $bytes $pss" >>"$res/memory.tsv"
}

# memory_coop: coop's own processes, and the nodes' cgroups from their state.json.
memory_coop() {
    local pid puid exe comm cmdline state folder name count=0 root
    while IFS=$'\t' read -r pid where exe comm cmdline; do
        case "$comm" in coop | coop-supervisor | pasta* | passt*) ;; *) continue ;; esac
        # This run's coop only (its private prefix and folders): other work of the user is not counted.
        [[ "$exe" == "$work/"* || "$cmdline" == *"$work/"* ]] || continue
        echo "coop own $pid $comm $where $(kib "$pid")" >>"$res/memory.tsv"
    done < <(user_procs)
    root=$(memory_root)
    for state in "$containers"/*/state.json; do
        name=$(basename "$(dirname "$state")")
        [ "$name" != "$COOP_BASE" ] || continue
        folder=""
        for folder in $(jq -r '.cgroups // [] | .[]' "$state" 2>/dev/null); do
            if [ -e "$folder/memory.current" ] || [ -e "$folder/memory.usage_in_bytes" ]; then
                break
            fi
            folder=""
        done
        if [ -n "$folder" ] && [ -n "$root" ]; then
            cgroup_row coop "$name" "$folder"
            count=$((count + 1))
        fi
    done
    echo "   coop: $count node cgroups with memory figures, $(grep -c '^coop own ' "$res/memory.tsv" || true) own processes"
}

# memory_lxc: LXC's monitors, and the nodes' payload cgroups (found through their init).
memory_lxc() {
    local pid puid exe comm cmdline i name init path root count=0
    while IFS=$'\t' read -r pid where exe comm cmdline; do
        [[ "$cmdline" == "[lxc monitor] $lxc_path fb-lxc-"* ]] || continue
        [[ "$cmdline" != *" $LXC_BASE "* ]] || continue
        echo "lxc own $pid monitor $where $(kib "$pid")" >>"$res/memory.tsv"
    done < <(user_procs)
    root=$(memory_root)
    for ((i = 1; i <= nodes; i++)); do
        name=fb-lxc-$i
        init=$("$as_cg" lxc-info -P "$lxc_path" -n "$name" -p -H 2>/dev/null || true)
        if [ -z "$init" ] || [ -z "$root" ]; then
            continue
        fi
        # memory's line of /proc/PID/cgroup (v1), or the unified one; the payload cgroup is
        # lxc.payload.NAME, systemd's own below it.
        path=$(awk -F: '$2 ~ /(^|,)memory(,|$)/ { print $3 }' "/proc/$init/cgroup" 2>/dev/null)
        if [ -z "$path" ]; then
            path=$(awk -F: '$1 == "0" { print $3 }' "/proc/$init/cgroup" 2>/dev/null)
        fi
        [[ "$path" == *"/lxc.payload.$name"* ]] || continue
        path="${path%%/lxc.payload."$name"*}/lxc.payload.$name"
        cgroup_row lxc "$name" "$root$path"
        count=$((count + 1))
    done
    echo "   lxc:  $count node cgroups with memory figures, $(grep -c '^lxc own ' "$res/memory.tsv" || true) monitors"
}

user_pidns=$("${as_user[@]}" readlink /proc/self/ns/pid)
read -r sub_start sub_count < <(awk -F: -v u="$user" '$1 == u { print $2, $3; exit }' /etc/subuid)
[ -n "${sub_count:-}" ] || die "$user has no subordinate ids in /etc/subuid"
sub_end=$((sub_start + sub_count))
: >"$res/times.tsv"
: >"$res/memory.tsv"

echo "== lxc: $runs runs of up and down, $nodes nodes"
for ((run = 1; run <= runs; run++)); do
    quiet
    up_ok=true
    timed lxc up "$run" "$as_cg" "$phase_bin" --phase up "$lxc_path" "$LXC_BASE" "$nodes" \
        "$log/lxc-$run" "$boot_timeout" || up_ok=false
    if [ "$run" -eq 1 ]; then
        if [ "$up_ok" = true ]; then
            memory_lxc
        else
            echo "   (no memory figures: the up failed)"
        fi
    fi
    quiet
    timed lxc down "$run" "$as_cg" "$phase_bin" --phase down "$lxc_path" "$LXC_BASE" "$nodes" \
        "$log/lxc-$run" || true
    # What a failed step left behind goes before the next run.
    for dir in "$lxc_path"/fb-lxc-[0-9]*/; do
        [ -d "$dir" ] || continue
        lxc_remove "$(basename "$dir")" || true
    done
done

if [ "$fleet" = true ]; then
    echo "== coop: $runs runs of up and down, $nodes nodes"
    for ((run = 1; run <= runs; run++)); do
        quiet
        up_ok=true
        timed coop up "$run" timeout "$fleet_timeout" "$as_cg" coop fleet up "$fleet_file" || up_ok=false
        if "$as_cg" coop fleet exec "$fleet_file" -- systemctl is-system-running \
            >"$log/coop-exec-$run.log" 2>&1; then
            echo "   check: coop fleet exec FILE -- systemctl is-system-running: exit 0," \
                "$(grep -c -E '(running|degraded)[[:space:]]*$' "$log/coop-exec-$run.log" || true) answers running or degraded"
        else
            echo "   check: coop fleet exec FILE -- systemctl is-system-running FAILED; last lines:"
            tail -n 10 "$log/coop-exec-$run.log" | sed 's/^/      /'
            failed=true
        fi
        if [ "$run" -eq 1 ]; then
            if [ "$up_ok" = true ]; then
                memory_coop
            else
                echo "   (no memory figures: the up failed)"
            fi
        fi
        quiet
        timed coop down "$run" timeout "$fleet_timeout" "$as_cg" coop fleet down "$fleet_file" || true
        for dir in "$containers"/*/; do
            [ -d "$dir" ] || continue
            name=$(basename "$dir")
            [ "$name" != "$COOP_BASE" ] || continue
            stop_coop "$name"
            "${as_user[@]}" coop destroy "$name" >/dev/null 2>&1 || true
        done
    done
fi

echo
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine adds noise)"
# Debian's python3, where python3-matplotlib is (a python3 earlier in PATH may lack it).
python=/usr/bin/python3
[ -x "$python" ] || python=python3
"$python" - "$res" "$nodes" "$runs" "$fleet" "$UP_TARGET" "$DOWN_TARGET" "$MEMORY_TARGET_KIB" "$plot" <<'EOF'
import statistics
import sys

res, nodes, runs, fleet = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "true"
up_target, down_target = float(sys.argv[5]), float(sys.argv[6])
memory_target, plot = int(sys.argv[7]), sys.argv[8]
NA = "coop fleet: not available in this build"

times = {}  # (tool, action) -> [(run, seconds, ok)]
with open(f"{res}/times.tsv") as f:
    for line in f:
        tool, action, run, seconds, status = line.split()
        times.setdefault((tool, action), []).append((int(run), float(seconds), status == "ok"))


def median(tool, action):
    good = [s for _, s, ok in times.get((tool, action), []) if ok]
    return statistics.median(good) if good else None


print(f"fleet of {nodes} nodes: seconds, median of the runs that succeeded (of {runs})")
print(f"{'step':<16} {'median':>8} {'min':>8} {'max':>8}   runs in order (x: failed)")
for tool in ("coop", "lxc"):
    for action in ("up", "down"):
        label = f"{tool} {action}"
        if tool == "coop" and not fleet:
            print(f"{label:<16} {NA}")
            continue
        rows = times.get((tool, action), [])
        good = [s for _, s, ok in rows if ok]
        order = " ".join(f"{s:.2f}" + ("" if ok else "x") for _, s, ok in rows)
        if not good:
            print(f"{label:<16} n/a (failed)   {order}")
            continue
        print(f"{label:<16} {median(tool, action):>8.2f} {min(good):>8.2f} {max(good):>8.2f}   {order}")
print()

own = {"coop": [], "lxc": []}
node = {"coop": [], "lxc": []}
with open(f"{res}/memory.tsv") as f:
    for line in f:
        fields = line.split()
        if fields[1] == "own":
            own[fields[0]].append((fields[3], int(fields[5]), int(fields[6]), fields[4]))
        else:
            node[fields[0]].append((int(fields[3]), int(fields[4])))

print(f"memory on the host per node, KiB (after the first up, sums divided by {nodes})")
print(f"{'what':<52} {'VmRSS':>8} {'Pss':>8}")
for tool, label in (("coop", "coop's own processes"), ("lxc", "LXC's monitors")):
    rows = own[tool]
    if tool == "coop" and not fleet:
        print(f"{label:<52} {NA}")
    elif not rows:
        print(f"{label:<52} n/a (none found)")
    else:
        what = f"{label} ({len(rows)} processes)"
        print(f"{what:<52} {sum(r[1] for r in rows) / nodes:>8.0f} {sum(r[2] for r in rows) / nodes:>8.0f}")
        for comm in sorted({r[0] for r in rows}):
            mine = [r for r in rows if r[0] == comm]
            outside = sum(1 for r in mine if r[3] != "host")
            what = f"   {len(mine)} {comm}" + (f", {outside} not in the host's pid namespace" if outside else "")
            print(f"{what:<52} {sum(r[1] for r in mine) / nodes:>8.0f} {sum(r[2] for r in mine) / nodes:>8.0f}")
print(f"{'what':<52} {'cgroup':>8} {'Pss':>8}")
for tool in ("coop", "lxc"):
    label = f"{tool} whole node ({len(node[tool])} cgroups)"
    if tool == "coop" and not fleet:
        print(f"{tool + ' whole node':<52} {NA}")
    elif not node[tool]:
        print(f"{label:<52} n/a (no cgroup found)")
    else:
        print(f"{label:<52} {sum(r[0] for r in node[tool]) / 1024 / nodes:>8.0f} "
              f"{sum(r[1] for r in node[tool]) / nodes:>8.0f}")
print("(cgroup: memory.current or memory.usage_in_bytes, page cache included; Pss: of its processes)")
print()


def ratio(action, target):
    label = f"target coop {action} <= {target:g} x LXC {action}"
    if not fleet:
        return f"{label}: n/a ({NA})"
    coop, lxc = median("coop", action), median("lxc", action)
    if coop is None or lxc is None:
        return f"{label}: n/a ({'coop' if coop is None else 'lxc'} {action} failed)"
    value = coop / lxc
    return f"{label}: {value:.2f} ({coop:.2f} s / {lxc:.2f} s): {'met' if value <= target else 'missed'}"


print(ratio("up", up_target))
print(ratio("down", down_target))
label = f"target coop's own memory < {memory_target} KiB per node"
if not fleet:
    print(f"{label}: n/a ({NA})")
elif not own["coop"]:
    print(f"{label}: n/a (no process found)")
else:
    rss = sum(r[1] for r in own["coop"]) / nodes
    pss = sum(r[2] for r in own["coop"]) / nodes
    print(f"{label}: Pss {pss:.0f} KiB: {'met' if pss < memory_target else 'missed'} "
          f"(VmRSS {rss:.0f} KiB: {'under' if rss < memory_target else 'over'})")

if plot:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("no plot: python3-matplotlib is not installed")
        sys.exit(0)
    tools = ["coop", "lxc"] if fleet else ["lxc"]
    groups = [(action, run) for action in ("up", "down") for run in range(1, runs + 1)]
    width = 0.8 / len(tools)
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for k, tool in enumerate(tools):
        colour = "tab:blue" if tool == "coop" else "tab:orange"
        values = []
        for action, run in groups:
            found = [s for r, s, ok in times.get((tool, action), []) if r == run and ok]
            values.append(found[0] if found else 0)
        xs = [i + (k - (len(tools) - 1) / 2) * width for i in range(len(groups))]
        bars = ax.bar(xs, values, width, color=colour, label="coop fleet" if tool == "coop" else "LXC")
        for bar, value in zip(bars, values):
            ax.text(bar.get_x() + bar.get_width() / 2, bar.get_height(),
                    f"{value:.2f}" if value else "n/a", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(groups)), [f"{action} {run}" for action, run in groups])
    ax.set_ylabel("seconds")
    ax.set_title(f"{nodes} booted bookworm containers: up and down, every run")
    ax.legend()
    fig.tight_layout()
    fig.savefig(plot, dpi=110)
    print(f"plot: {plot}")
EOF

echo
echo "== removing every fb-* container of both tools (on exit)"
