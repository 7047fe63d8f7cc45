#!/usr/bin/env bash
# Times coop's runtime against its anchors, as one ordinary user, on one Debian bookworm rootfs with
# systemd (made once with `coop create`; the LXC container of case 2 comes from the same image):
#   1. /bin/true in a fresh container: `coop start NAME --foreground -- /bin/true` (and `coop run IMAGE --
#      /bin/true`, a throwaway container over the same image) against
#      `bwrap --unshare-all --uid 0 --gid 0 --ro-bind ROOTFS / --proc /proc --dev /dev /bin/true` and
#      rootless crun doing the same job (`crun spec --rootless`, root.path = ROOTFS read-only, args
#      ["/bin/true"], and the user's whole first subordinate range as uid and gid mappings, which crun
#      writes with newuidmap and newgidmap as coop does; `crun --root $XDG_RUNTIME_DIR/crun run -b BUNDLE
#      ID`); anchors: the setpriv wrapper alone
#      running /bin/true, and `coop --version` (the start of one coop process);
#   2. boot to running: `coop start NAME && coop exec NAME -- systemctl is-system-running --wait`
#      against `lxc-start -n NAME && lxc-attach -n NAME -- systemctl is-system-running --wait`
#      (each: `running` or `degraded` counts as booted), the container stopped before every run;
#   3. stop: `coop stop NAME` against `lxc-stop -n NAME`, the container booted before every run;
#   4. memory left on the host per container: coop's supervisor (the parent of the PID 1 in
#      state.json) for SUPERVISORS busybox containers started with `coop start` (the target's
#      figure) and for the booted bookworm container, against LXC's monitor ("[lxc monitor]
#      LXCPATH NAME") of the booted bookworm container: VmRSS, Pss and private memory
#      (Private_Clean + Private_Dirty of /proc/PID/smaps_rollup), in KiB.
#
# Usage: bench/runtime.sh FIXTURES USER      (run as root; `make bench`)
#   FIXTURES  output folder of Tests/Fixtures/build-images.sh (busybox image) and, if there, of
#             Tests/Fixtures/build-guests.sh (the bookworm image with systemd)
#   USER      ordinary user to run every tool as (made by Tests/Fixtures/make-test-user.sh;
#             Tests/Fixtures/lxc-user-setup.sh and `coop setup-host --user USER` are run for it)
# Environment:
#   COOP_BIN     coop binary to time (default: .build/release/coop of this checkout)
#   RUNS         timed runs of case 1 (default 100), after WARMUP runs (default 3)
#   BOOT_RUNS    timed runs of cases 2 and 3 (default 5), after one warmup run
#   SUPERVISORS  busybox containers of case 4 (default 5)
#   SETTLE       seconds to wait at the end of each --prepare of cases 2 and 3 (default 1)
#   BUILD        a `coop build` folder (.../debian/bookworm/ARCH/VARIANT/BUILD) to publish and use
#                instead of FIXTURES/www/guests
#   MIRROR       Debian mirror for a build made here when there is neither (default deb.debian.org)
#
# The image: the fixture's www/good bookworm is minbase without an init, so neither tool can boot
# it. The script uses debian/bookworm/slim of FIXTURES/www/guests (made by build-guests.sh in
# `make fixtures`: `coop build --variant slim`, minbase with systemd-sysv, dbus, iproute2, netbase,
# ifupdown, procps). Without it, it publishes BUILD, or a `coop build debian bookworm --variant
# slim` made here as USER (about a minute), with `coop publish`, signed by a key made here. One
# nginx on 127.0.0.1 (Tests/Fixtures/serve.sh) serves that tree beside the fixture's www/good
# (busybox): coop creates from https://127.0.0.1:PORT/SITE, lxc-create -t download from the same URL.
#
# How the tools run: case 1 through `setpriv --reuid --regid --init-groups env -i ...` (one
# process, no shell), each command in its own hyperfine -N. Cases 2 to 4 through
# Tests/Fixtures/lxc-as-user.sh (LXC needs the user's delegated cgroups), for coop as well, so that
# both tools start from the same cgroups and environment. LXC uses a private lxcpath and download
# cache under the work folder and reads the fixture CA through WGETRC, so nothing of the user's own
# LXC containers or caches is touched. Before each boot the guest shell waits for systemd's
# private socket (/run/systemd/private): systemctl cannot connect before it exists, in either tool.
# crun: on a hybrid cgroup host with a controller left on cgroup2 (such as hugetlb), crun 1.8
# refuses to run ("cgroups in hybrid mode not supported, drop all controllers from cgroupv2");
# then every command of case 1 runs in a private mount namespace without /sys/fs/cgroup/unified.
#
# Prints machine facts, a table of medians and the ratios with their targets. A command that fails
# shows as "n/a (failed: ...)" and the other cases go on; the script then exits 1 at the end. It
# never fails because a ratio misses its target. Everything it made is removed on exit: containers
# (coop stop/destroy, lxc-stop/lxc-destroy), the crun container, the server, the work folder.
set -euo pipefail

BWRAP_TARGET=1
CRUN_TARGET=1
BOOT_TARGET=1
STOP_TARGET=0.3333
MEMORY_TARGET_KIB=2048
NAME=coop-bench-rt
BUSYBOX=coop-bench-bb
CRUN_ID=coop-bench-rt
STEP_TIMEOUT=120
# Runs in the guest after the start: waits for systemd's socket, then for the end of the boot.
# shellcheck disable=SC2016 # expanded by the guest's sh
WAIT_RUNNING='i=0
until [ -S /run/systemd/private ]; do
    i=$((i + 1))
    if [ "$i" -gt 1500 ]; then echo "error: no /run/systemd/private after 30 s" >&2; exit 1; fi
    sleep 0.02
done
state=$(systemctl is-system-running --wait)
echo "$state"
[ "$state" = running ] || [ "$state" = degraded ]'

die() {
    echo "bench: $*" >&2
    exit 1
}

# coop_state: the state of container NAME as `coop list` tells it (running, stopped), as the user.
coop_state() {
    "$BENCH_AS_CG" coop list --json | jq -r --arg n "$NAME" '.[] | select(.name == $n) | .state'
}

# step ACTION TOOL: one piece of cases 2 and 3, called by hyperfine (as --prepare or as the timed
# command) through this script, with the BENCH_* variables exported by the main part.
#   boot   start the container and wait until systemd is running or degraded (timed in case 2)
#   down   stop the container if it runs, then wait SETTLE seconds (prepare of case 2)
#   ready  down, boot, wait SETTLE seconds (prepare of case 3)
step() {
    local action=$1 tool=$2
    case "$action/$tool" in
        boot/coop)
            # shellcheck disable=SC2016 # expanded by the user's sh
            timeout "$STEP_TIMEOUT" "$BENCH_AS_CG" sh -c \
                'coop start "$1" && exec coop exec "$1" -- /bin/sh -c "$2"' sh "$NAME" "$WAIT_RUNNING"
            ;;
        boot/lxc)
            # shellcheck disable=SC2016 # expanded by the user's sh
            timeout "$STEP_TIMEOUT" "$BENCH_AS_CG" sh -c \
                'lxc-start -P "$1" -n "$2" && exec lxc-attach -P "$1" -n "$2" -- /bin/sh -c "$3"' \
                sh "$BENCH_LXC_PATH" "$NAME" "$WAIT_RUNNING"
            ;;
        down/coop)
            if [ "$(coop_state)" = running ]; then
                timeout "$STEP_TIMEOUT" "$BENCH_AS_CG" coop stop "$NAME"
            fi
            sleep "$BENCH_SETTLE"
            ;;
        down/lxc)
            if [ "$("$BENCH_AS_CG" lxc-info -P "$BENCH_LXC_PATH" -n "$NAME" -s -H)" != STOPPED ]; then
                timeout "$STEP_TIMEOUT" "$BENCH_AS_CG" lxc-stop -P "$BENCH_LXC_PATH" -n "$NAME"
            fi
            sleep "$BENCH_SETTLE"
            ;;
        ready/coop | ready/lxc)
            step down "$tool"
            step boot "$tool" >/dev/null
            sleep "$BENCH_SETTLE"
            ;;
        *) die "unknown step: $action $tool" ;;
    esac
}

if [ "${1:-}" = --step ]; then
    step "${2:?action}" "${3:?tool}"
    exit 0
fi

[ "$#" -eq 2 ] || {
    echo "usage: $0 FIXTURES USER" >&2
    exit 2
}
[ "$(id -u)" -eq 0 ] || die "run as root (it starts the image server and switches to USER)"
for cmd in hyperfine bwrap crun jq lxc-create lxc-start lxc-attach lxc-stop lxc-info lxc-destroy \
    setpriv unshare timeout python3 nginx gpg; do
    command -v "$cmd" >/dev/null || die "missing command: $cmd"
done

script=$(realpath -e "$0")
repo=$(dirname "$(dirname "$script")")
fixtures=$(realpath -e "$1")
user=$2
runs=${RUNS:-100}
warmup=${WARMUP:-3}
boot_runs=${BOOT_RUNS:-5}
supervisors=${SUPERVISORS:-5}
settle=${SETTLE:-1}
mirror=${MIRROR:-http://deb.debian.org/debian}
build=${BUILD:-}
coop_bin=${COOP_BIN:-$repo/.build/release/coop}
[ -x "$coop_bin" ] || die "no coop binary at $coop_bin (make release)"
for n in "$runs" "$boot_runs" "$supervisors"; do
    [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "RUNS, BOOT_RUNS and SUPERVISORS must be positive numbers"
done
[[ "$warmup" =~ ^[0-9]+$ && "$settle" =~ ^[0-9]+$ ]] || die "WARMUP and SETTLE are whole numbers"
if [ -n "$build" ]; then
    build=$(realpath -e "$build")
    if [ ! -s "$build/rootfs.tar.xz" ] || [ ! -s "$build/meta.tar.xz" ]; then
        die "$build is not a coop build folder"
    fi
fi
fixture_fpr=$(tr -d '[:space:]' <"$fixtures/keys/signer.fpr")
[ -s "$fixtures/www/good/meta/1.0/index-user" ] || die "no image tree at $fixtures/www/good"
arch=$(dpkg --print-architecture)
lxc_as_user=$repo/Tests/Fixtures/lxc-as-user.sh

"$repo/Tests/Fixtures/make-test-user.sh" "$user" >/dev/null
uid=$(id -u "$user")
gid=$(id -g "$user")
home=$(getent passwd "$user" | cut -d: -f6)
runtime_dir=/run/user/$uid
cd /

work=$(mktemp -d /var/tmp/coop-bench-runtime.XXXXXX)
chmod 0755 "$work"
containers=$work/containers
lxc_path=$work/lxc
rootfs=$containers/$NAME/rootfs
failed=false

# The user's environment, for both tools: coop's folders and remotes (XDG_CONFIG_HOME; LXC reads
# HOME only), the fixture CA for curl (coop) and wget (lxc-download), LXC's download cache.
user_env=(HOME="$home" USER="$user" LOGNAME="$user" LANG=C.UTF-8
    PATH="$work/prefix/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
    XDG_RUNTIME_DIR="$runtime_dir" XDG_CONFIG_HOME="$work/config"
    COOP_DATA="$work/prefix/share/coop" COOP_CACHE="$work/cache" COOP_CONTAINERS="$containers"
    CURL_CA_BUNDLE="$work/server/tls/ca.pem" WGETRC="$work/wgetrc" LXC_CACHE_PATH="$work/lxc-cache")
# as_user: the prefix of case 1's commands, and of the set-up steps.
as_user=(setpriv --reuid="$uid" --regid="$gid" --init-groups env -i "${user_env[@]}")
as_cg=$work/bin/as-user-cg

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

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    if [ -x "$as_cg" ]; then
        for dir in "$containers"/*/; do
            [ -d "$dir" ] || continue
            stop_coop "$(basename "$dir")"
            "${as_user[@]}" coop destroy "$(basename "$dir")" >/dev/null 2>&1 || {
                echo "bench: coop destroy $(basename "$dir") failed" >&2
                status=1
            }
        done
        "${as_user[@]}" crun --root "$runtime_dir/crun" delete -f "$CRUN_ID" >/dev/null 2>&1 || true
        if [ -e "$lxc_path/$NAME" ]; then
            timeout 60 "$as_cg" lxc-stop -P "$lxc_path" -n "$NAME" -k >/dev/null 2>&1 || true
            timeout 60 "$as_cg" lxc-destroy -P "$lxc_path" -n "$NAME" >/dev/null 2>&1 || {
                echo "bench: lxc-destroy -n $NAME failed" >&2
                status=1
            }
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

mkdir -p "$work/bin" "$work/log" "$work/res" "$work/prefix/bin" "$work/www" "$work/gnupg"
chmod 0700 "$work/gnupg"
install -d -o "$uid" -g "$gid" -m 0755 "$containers" "$lxc_path" "$work/cache" "$work/config" \
    "$work/config/coop" "$work/lxc-cache" "$work/builds" "$work/www/tree" "$work/bundle" "$work/keys"
chmod 0755 "$work/log"
chown "$uid:$gid" "$work/log"

# coop, installed into a private prefix (COOP_DATA points at its data folder), with its supervisor.
install -m 0755 "$coop_bin" "$work/prefix/bin/coop"
if [ -x "$(dirname "$coop_bin")/coop-supervisor" ]; then
    install -D -m 0755 "$(dirname "$coop_bin")/coop-supervisor" "$work/prefix/libexec/coop/coop-supervisor"
fi
install -D -m 0644 "$repo/images.index" "$work/prefix/share/coop/images.index"
install -d -m 0755 "$work/prefix/share/coop/keys"
install -m 0644 "$repo"/keys/*.asc "$work/prefix/share/coop/keys/"

# as-user-cg: a command as the user in its delegated cgroups (lxc-as-user.sh), with user_env.
{
    echo '#!/bin/sh'
    printf 'exec %q %q env' "$lxc_as_user" "$user"
    printf ' %q' "${user_env[@]}"
    printf ' "$@"\n'
} >"$as_cg"
chmod 0755 "$as_cg"

# The server root: the fixture's good tree (busybox), later the bookworm tree (guests or tree).
ln -s "$fixtures/www/good" "$work/www/good"
eval "$("$repo/Tests/Fixtures/serve.sh" start "$work/www" "$work/server" | grep -E '^HTTPS?_PORT=[0-9]+$')"
[ -n "${HTTPS_PORT:-}" ] || die "image server did not report its port"
ca=$work/server/tls/ca.pem
echo "ca_certificate=$ca" >"$work/wgetrc"
chmod 0644 "$work/wgetrc"
# lxc-user-setup.sh also points the user's ~/.wgetrc at the CA it is given. lxc-download reads
# this server's CA through WGETRC here, so an existing ~/.config/lxc/ca.pem is handed back
# unchanged: other LXC work of the user keeps trusting its own server.
setup_ca=$ca
# (Read as the user: root follows no link of the user's.)
if "${as_user[@]}" test -s "$home/.config/lxc/ca.pem"; then
    setup_ca=$work/user-ca.pem
    "${as_user[@]}" cat "$home/.config/lxc/ca.pem" >"$setup_ca"
fi
"$repo/Tests/Fixtures/lxc-user-setup.sh" "$user" "$setup_ca"
# coop's counterpart (subordinate ids, a cgroup subtree coop/USER), when the binary has it.
if "$work/prefix/bin/coop" --help 2>/dev/null | grep -q '^ *setup-host '; then
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$work/prefix/bin/coop" setup-host --user "$user" \
        >"$work/log/setup-host.log" 2>&1 || die "coop setup-host: $(tail -n 5 "$work/log/setup-host.log")"
fi

echo "== machine"
echo "   cpus:     $(nproc) ($(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'))"
echo "   memory:   $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
echo "   kernel:   $(uname -r)"
hide_unified=false
if [ "$(stat -f -c %T /sys/fs/cgroup)" = cgroup2fs ]; then
    echo "   cgroups:  unified (cgroup2)"
elif [ -r /sys/fs/cgroup/unified/cgroup.controllers ]; then
    controllers=$(cat /sys/fs/cgroup/unified/cgroup.controllers)
    echo "   cgroups:  hybrid (v1, cgroup2 at /sys/fs/cgroup/unified with controllers: ${controllers:-none})"
    if [ -n "$controllers" ]; then
        hide_unified=true
    fi
else
    echo "   cgroups:  legacy (v1)"
fi
echo "   fs:       $(df -T "$work" | awk 'NR == 2 { print $2 " on " $1 }') ($work)"
changes=$(git -C "$repo" status --porcelain -- Sources Package.swift 2>/dev/null | head -n1)
echo "   coop:     $coop_bin, built $(date -u -r "$coop_bin" '+%F %T UTC');" \
    "checkout at $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')${changes:+ with local changes}"
echo "   tools:    lxc $(lxc-start --version), $(bwrap --version), $(crun --version | head -n1)," \
    "$(hyperfine --version)"
echo "   load:     $(cut -d' ' -f1-3 /proc/loadavg)"

# --- the image ----------------------------------------------------------------------------------
# The server path of the bookworm tree, its key and the variant: FIXTURES/www/guests when there, or
# a tree published here from BUILD or from a build made here.
if [ -z "$build" ] && [ -e "$fixtures/www/guests/.complete" ]; then
    site=guests
    ln -s "$fixtures/www/guests" "$work/www/guests"
    key=$fixtures/keys/guests.asc
    key_fpr=$(tr -d '[:space:]' <"$fixtures/keys/guests.fpr")
    variant=slim
    echo "== image: debian/bookworm/$variant of $fixtures/www/guests (build-guests.sh)"
else
    if [ -z "$build" ]; then
        echo "== coop build debian bookworm --variant slim (as $user, from $mirror)"
        "${as_user[@]}" coop build debian bookworm --variant slim --output "$work/builds" \
            --mirror "$mirror" >"$work/log/build.out" 2>"$work/log/build.err" ||
            die "coop build failed: $(tail -n 5 "$work/log/build.err")"
        build=$(tail -n 1 "$work/log/build.out")
        [ -s "$build/rootfs.tar.xz" ] || die "coop build named no build folder: $build"
        grep -E '^ +[0-9.]+ s ' "$work/log/build.err" | sed 's/^ */   /' || true
    fi
    site=tree
    variant=$(basename "$(dirname "$build")")
    echo "== image: $build, published with a key made here"
    "${as_user[@]}" coop key create coop-bench >"$work/log/key.log" 2>&1 ||
        die "coop key create: $(cat "$work/log/key.log")"
    key=$work/keys/bench.asc
    "${as_user[@]}" coop key export --output "$key" >>"$work/log/key.log" 2>&1 ||
        die "coop key export: $(cat "$work/log/key.log")"
    key_fpr=$(gpg --batch --quiet --homedir "$work/gnupg" --show-keys --with-colons "$key" |
        awk -F: '$1 == "fpr" { print $10; exit }')
    "${as_user[@]}" coop publish "$work/www/tree" "$build" >"$work/log/publish.log" 2>&1 ||
        die "coop publish: $(cat "$work/log/publish.log")"
fi
[ -n "$key_fpr" ] || die "no fingerprint for $key"
build_path=$(awk -F';' -v arch="$arch" -v variant="$variant" \
    '$1 == "debian" && $2 == "bookworm" && $3 == arch && $4 == variant { print $6; exit }' \
    "$work/www/$site/meta/1.0/index-user")
[ -n "$build_path" ] || die "no debian/bookworm/$arch/$variant in $work/www/$site"
xz --robot --list "$work/www/$site/$build_path/rootfs.tar.xz" | awk -F'\t' '$1 == "totals" {
    printf "   rootfs.tar.xz %.1f MB, %.1f MB as tar\n", $4 / 1e6, $5 / 1e6 }'
{
    echo "bench;lxc;https://127.0.0.1:$HTTPS_PORT/$site;$key;$key_fpr"
    echo "fixtures;lxc;https://127.0.0.1:$HTTPS_PORT/good;$fixtures/keys/signer.asc;$fixture_fpr"
} >"$work/config/coop/images.index"
chmod 0644 "$work/config/coop/images.index"

echo "== containers"
# Loopback only, as LXC's container here (lxc.net.0.type = empty) and crun's spec (a network namespace
# of its own): coop's default network, pasta, is a job none of the anchors does.
"${as_user[@]}" coop create "$NAME" "bench:debian/bookworm/$arch/$variant" --network none \
    >"$work/log/create.log" 2>&1 ||
    die "coop create: $(tail -n 5 "$work/log/create.log")"
[ -x "$rootfs/lib/systemd/systemd" ] || die "coop made no rootfs with systemd at $rootfs"
echo "   coop: $rootfs ($(find "$rootfs" | wc -l) entries)"
"$as_cg" lxc-create -P "$lxc_path" -t download -n "$NAME" -- --server "127.0.0.1:$HTTPS_PORT/$site" \
    -d debian -r bookworm -a "$arch" --variant "$variant" >"$work/log/lxc-create.log" 2>&1 ||
    die "lxc-create: $(tail -n 5 "$work/log/lxc-create.log")"
[ -x "$lxc_path/$NAME/rootfs/lib/systemd/systemd" ] || die "lxc-create made no rootfs with systemd"
echo "   lxc:  $lxc_path/$NAME/rootfs ($(find "$lxc_path/$NAME/rootfs" | wc -l) entries)"

# crun's bundle: the spec of `crun spec --rootless`, pointed at coop's rootfs.
(cd "$work/bundle" && "${as_user[@]}" crun spec --rootless)
# The same id mappings as coop's: the user's first subordinate ranges, through newuidmap and newgidmap.
subuid=$(awk -F: -v u="$user" '$1 == u { print $2 " " $3; exit }' /etc/subuid)
subgid=$(awk -F: -v u="$user" '$1 == u { print $2 " " $3; exit }' /etc/subgid)
[ -n "$subuid" ] && [ -n "$subgid" ] || die "$user has no subordinate ids in /etc/subuid and /etc/subgid"
jq --arg root "$rootfs" --argjson uid "[${subuid// /,}]" --argjson gid "[${subgid// /,}]" \
    '.root.path = $root | .root.readonly = true
    | .process.args = ["/bin/true"] | .process.terminal = false
    | .linux.uidMappings = [{"containerID": 0, "hostID": $uid[0], "size": $uid[1]}]
    | .linux.gidMappings = [{"containerID": 0, "hostID": $gid[0], "size": $gid[1]}]' \
    "$work/bundle/config.json" >"$work/bundle/config.json.new"
mv "$work/bundle/config.json.new" "$work/bundle/config.json"
chown "$uid:$gid" "$work/bundle/config.json"

export BENCH_AS_CG=$as_cg BENCH_LXC_PATH=$lxc_path BENCH_SETTLE=$settle

# --- running cases ------------------------------------------------------------------------------
# first_error FILE: the first line that reads like an error, else the first non-empty line.
first_error() {
    local line
    line=$(grep -m1 -i -E 'error|fail|denied|refuse|not |cannot|unable' "$1" 2>/dev/null ||
        grep -m1 -v '^[[:space:]]*$' "$1" 2>/dev/null || true)
    line=${line:-no output}
    echo "${line:0:200}"
}

# mark_failed ID MESSAGE: the case shows as n/a with MESSAGE.
mark_failed() {
    echo "$2" >"$work/res/$1.failed"
    echo "   FAILED: $2"
    failed=true
}

# bench ID LABEL RUNS WARMUP PREPARE COMMAND...: one check run (PREPARE, then COMMAND, output
# kept), then hyperfine -N. PREPARE is a command line for hyperfine --prepare, or empty. A failure
# of either marks ID as failed. NS (an array, maybe empty) is put in front of both.
bench() {
    local id=$1 label=$2 n=$3 w=$4 prepare=$5 command status=0
    shift 5
    command=$(printf '%q ' "$@")
    echo "== $label"
    if [ -n "$prepare" ] && ! bash -c "$prepare" >"$work/log/$id.check" 2>&1; then
        mark_failed "$id" "in the prepare step: $(first_error "$work/log/$id.check")"
        return 0
    fi
    "${NS[@]}" "$@" >>"$work/log/$id.check" 2>&1 || status=$?
    if [ "$status" -ne 0 ]; then
        mark_failed "$id" "exit $status: $(first_error "$work/log/$id.check")"
        return 0
    fi
    local args=(-N --runs "$n" --warmup "$w" --style basic --output "$work/log/$id.out"
        --export-json "$work/res/$id.json" --command-name "$label")
    if [ -n "$prepare" ]; then
        args+=(--prepare "$prepare")
    fi
    if ! "${NS[@]}" hyperfine "${args[@]}" "$command"; then
        rm -f "$work/res/$id.json"
        mark_failed "$id" "in the timed runs: $(first_error "$work/log/$id.out")"
    fi
}

# Case 1. The two rootfs just made (some 300 MB) are written back first: their writeback would otherwise
# land on whichever case runs first. NS: crun's hybrid cgroup refusal (see the top of this file), the same
# for every command.
sync
sleep "$settle"
NS=()
if [ "$hide_unified" = true ]; then
    # shellcheck disable=SC2016 # expanded by the inner sh
    NS=(unshare --mount --propagation private sh -c 'umount /sys/fs/cgroup/unified && exec "$@"' sh)
    echo "== case 1 runs in a private mount namespace without /sys/fs/cgroup/unified (for crun)"
fi
bench true-coop "coop start -- /bin/true" "$runs" "$warmup" "" \
    "${as_user[@]}" coop start "$NAME" --foreground -- /bin/true
# coop run: a throwaway container over the image's base (unpacked by the warmup run), a tmpfs on top.
bench true-run "coop run -- /bin/true" "$runs" "$warmup" "" \
    "${as_user[@]}" coop run "bench:debian/bookworm/$arch/$variant" --network none -- /bin/true
bench true-bwrap "bwrap /bin/true" "$runs" "$warmup" "" \
    "${as_user[@]}" bwrap --unshare-all --uid 0 --gid 0 --ro-bind "$rootfs" / --proc /proc --dev /dev /bin/true
# crun run deletes the container when it ends: the same id serves every run.
bench true-crun "crun run /bin/true" "$runs" "$warmup" "" \
    "${as_user[@]}" crun --root "$runtime_dir/crun" run -b "$work/bundle" "$CRUN_ID"
bench true-setpriv "setpriv + env /bin/true" "$runs" "$warmup" "" "${as_user[@]}" /bin/true
bench true-version "coop --version" "$runs" "$warmup" "" "${as_user[@]}" coop --version

# Cases 2 and 3.
NS=()
bench boot-coop "coop start + exec is-system-running" "$boot_runs" 1 \
    "$(printf '%q ' "$script" --step down coop)" "$script" --step boot coop
bench boot-lxc "lxc-start + lxc-attach is-system-running" "$boot_runs" 1 \
    "$(printf '%q ' "$script" --step down lxc)" "$script" --step boot lxc
bench stop-coop "coop stop" "$boot_runs" 1 \
    "$(printf '%q ' "$script" --step ready coop)" "$as_cg" coop stop "$NAME"
bench stop-lxc "lxc-stop" "$boot_runs" 1 \
    "$(printf '%q ' "$script" --step ready lxc)" "$as_cg" lxc-stop -P "$lxc_path" -n "$NAME"
"$script" --step down coop >>"$work/log/down.log" 2>&1 || true

# Case 4. memory.tsv: KIND NAME PID VmRSS Pss PRIVATE (KiB).
# memory PID: VmRSS, Pss and Private_Clean + Private_Dirty of PID, in KiB.
memory() {
    local rss
    rss=$(awk '$1 == "VmRSS:" { print $2 }' "/proc/$1/status")
    awk -v rss="$rss" '$1 == "Pss:" { pss = $2 } $1 ~ /^Private_(Clean|Dirty):$/ { private += $2 }
        END { print rss, pss, private }' "/proc/$1/smaps_rollup"
}
# parent PID: field 4 of /proc/PID/stat (after the command in parentheses).
parent() {
    sed 's/^.*) //' "/proc/$1/stat" | cut -d' ' -f2
}

# supervisor_row KIND NAME: appends the memory of coop container NAME's supervisor to memory.tsv;
# on failure marks memory-KIND as failed and returns 1.
supervisor_row() {
    local kind=$1 name=$2 pid supervisor argv
    pid=$(jq -r '.pid // empty' "$containers/$name/state.json" 2>/dev/null || true)
    if [ -z "$pid" ] || [ ! -e "/proc/$pid" ]; then
        mark_failed "memory-$kind" "$name: no running PID 1 in state.json"
        return 1
    fi
    supervisor=$(parent "$pid")
    # coop-supervisor, or `coop __supervise` of builds before it.
    argv=$(tr '\0' '\n' <"/proc/$supervisor/cmdline" | head -n 2 | tr '\n' ' ')
    if [[ ! "$argv" =~ ^[^\ ]*coop-supervisor\  && ! "$argv" =~ ^[^\ ]+\ __supervise\  ]]; then
        mark_failed "memory-$kind" "$name: the parent $supervisor of PID 1 $pid is no coop supervisor"
        return 1
    fi
    echo "$kind $name $supervisor $(memory "$supervisor")" >>"$work/res/memory.tsv"
}

echo "== memory: $supervisors busybox containers with coop start; $NAME booted with coop and with LXC"
: >"$work/res/memory.tsv"
for ((i = 1; i <= supervisors; i++)); do
    name=$BUSYBOX$i
    if ! "${as_user[@]}" coop create "$name" fixtures:busybox/1.36 --network none >"$work/log/$name.log" 2>&1 ||
        ! "$as_cg" coop start "$name" >>"$work/log/$name.log" 2>&1; then
        mark_failed memory-coop "$name: $(first_error "$work/log/$name.log")"
        break
    fi
done
sleep "$settle"
if [ ! -e "$work/res/memory-coop.failed" ]; then
    for ((i = 1; i <= supervisors; i++)); do
        supervisor_row coop "$BUSYBOX$i" || break
    done
fi
# The booted bookworm container, for coop (a row beside the target) and for LXC (its monitor).
if "$script" --step ready coop >"$work/log/memory-coop-boot.log" 2>&1; then
    supervisor_row coop-boot "$NAME" || true
else
    mark_failed memory-coop-boot "boot: $(first_error "$work/log/memory-coop-boot.log")"
fi
"$script" --step down coop >>"$work/log/down.log" 2>&1 || true
if "$script" --step ready lxc >"$work/log/memory-lxc.log" 2>&1; then
    monitor=""
    for pid in $(pgrep -u "$user" -f 'lxc monitor' || true); do
        if [ "$(tr '\0' ' ' <"/proc/$pid/cmdline" | sed 's/ *$//')" = "[lxc monitor] $lxc_path $NAME" ]; then
            monitor=$pid
        fi
    done
    if [ -n "$monitor" ]; then
        echo "lxc $NAME $monitor $(memory "$monitor")" >>"$work/res/memory.tsv"
    else
        mark_failed memory-lxc "no process \"[lxc monitor] $lxc_path $NAME\""
    fi
else
    mark_failed memory-lxc "boot: $(first_error "$work/log/memory-lxc.log")"
fi
sed 's/^/   /' "$work/res/memory.tsv"
"$script" --step down lxc >>"$work/log/down.log" 2>&1 || true
for ((i = 1; i <= supervisors; i++)); do
    stop_coop "$BUSYBOX$i"
done

echo
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine adds noise)"
python3 - "$work/res" "$runs" "$warmup" "$boot_runs" "$supervisors" \
    "$BWRAP_TARGET" "$BOOT_TARGET" "$STOP_TARGET" "$MEMORY_TARGET_KIB" "$CRUN_TARGET" <<'EOF'
import json
import os
import sys

res = sys.argv[1]
runs, warmup, boot_runs, supervisors = sys.argv[2:6]
bwrap_target, boot_target, stop_target = map(float, sys.argv[6:9])
memory_target = int(sys.argv[9])
crun_target = float(sys.argv[10])


def result(case):
    path = f"{res}/{case}.json"
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)["results"][0]
    failed = f"{res}/{case}.failed"
    if os.path.exists(failed):
        with open(failed) as f:
            return {"failed": f.read().strip()}
    return {"failed": "not run"}


def table(title, cases, scale, unit, in_order):
    print(title)
    print(f"{'command':<42} {'median':>8} {'min':>8} {'max':>8}" + ("   runs in order" if in_order else ""))
    for case, label in cases:
        r = result(case)
        if "failed" in r:
            print(f"{label:<42} n/a (failed: {r['failed']})")
            continue
        digits = 3 if unit == "s" else 1
        line = f"{label:<42}" + "".join(f" {r[k] * scale:>8.{digits}f}" for k in ("median", "min", "max"))
        if in_order:
            line += "   " + " ".join(f"{t * scale:.2f}" for t in r["times"])
        print(line)
    print()


table(f"1. /bin/true in a fresh container: milliseconds, median of {runs} runs after {warmup} warmup runs",
      [("true-coop", "coop start -- /bin/true"), ("true-run", "coop run IMAGE -- /bin/true"),
       ("true-bwrap", "bwrap /bin/true"),
       ("true-crun", "crun run /bin/true"), ("true-setpriv", "setpriv + env /bin/true (wrapper alone)"),
       ("true-version", "coop --version (one coop process)")],
      1000, "ms", False)
table(f"2. boot to running: seconds, median of {boot_runs} runs",
      [("boot-coop", "coop start && coop exec is-system-running"),
       ("boot-lxc", "lxc-start && lxc-attach is-system-running")], 1, "s", True)
table(f"3. stop a booted container: seconds, median of {boot_runs} runs",
      [("stop-coop", "coop stop"), ("stop-lxc", "lxc-stop")], 1, "s", True)

memory = {"coop": [], "coop-boot": [], "lxc": []}
with open(f"{res}/memory.tsv") as f:
    for line in f:
        kind, name, pid, rss, pss, private = line.split()
        memory[kind].append((int(rss), int(pss), int(private)))


def mean(rows, i):
    return sum(r[i] for r in rows) / len(rows)


print("4. memory on the host per container, KiB")
print(f"{'process':<42} {'VmRSS':>8} {'Pss':>8} {'private':>8}")
for kind, label, case in (("coop", f"coop supervisor (mean of {supervisors} busybox)", "memory-coop"),
                          ("coop-boot", "coop supervisor (bookworm, booted)", "memory-coop-boot"),
                          ("lxc", "lxc monitor (bookworm, booted)", "memory-lxc")):
    rows = memory[kind]
    if not rows or os.path.exists(f"{res}/{case}.failed"):
        print(f"{label:<42} n/a (failed: {result(case)['failed']})")
    else:
        print(f"{label:<42} {mean(rows, 0):>8.0f} {mean(rows, 1):>8.0f} {mean(rows, 2):>8.0f}")
print()


def ratio(name, a, b, target, note=""):
    ra, rb = result(a), result(b)
    if "failed" in ra or "failed" in rb:
        print(f"{name}: n/a ({a if 'failed' in ra else b} failed)")
        return
    value = ra["median"] / rb["median"]
    if target is None:
        print(f"{name}: {value:.2f}{note}")
    else:
        verdict = "met" if value <= target else "missed"
        print(f"{name}: {value:.2f}  (target <= {target:.2g}: {verdict})")


ratio("coop/bwrap /bin/true", "true-coop", "true-bwrap", bwrap_target)
ratio("coop/crun  /bin/true", "true-coop", "true-crun", crun_target)
ratio("coop run/bwrap /bin/true", "true-run", "true-bwrap", bwrap_target)
ratio("coop/lxc   boot", "boot-coop", "boot-lxc", boot_target)
ratio("coop/lxc   stop", "stop-coop", "stop-lxc", stop_target)
if memory["coop"] and not os.path.exists(f"{res}/memory-coop.failed"):
    rss, private = mean(memory["coop"], 0), mean(memory["coop"], 2)
    for what, value in (("VmRSS", rss), ("private", private)):
        verdict = "met" if value < memory_target else "missed"
        print(f"coop supervisor {what}: {value:.0f} KiB  (target < {memory_target} KiB: {verdict})")
else:
    print("coop supervisor memory: n/a (memory-coop failed)")
if memory["coop-boot"] and memory["lxc"]:
    boot, lxc = memory["coop-boot"], memory["lxc"]
    print(f"coop supervisor / lxc monitor, bookworm booted: VmRSS {mean(boot, 0) / mean(lxc, 0):.2f}, "
          f"private {mean(boot, 2) / mean(lxc, 2):.2f}  (no target)")
EOF

echo
echo "== destroying the containers with coop destroy and lxc-destroy (on exit)"
