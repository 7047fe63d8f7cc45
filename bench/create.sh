#!/usr/bin/env bash
# Times `coop create NAME REMOTE:debian/bookworm` against its anchor, real LXC:
# `lxc-create -t download -n NAME -- --server 127.0.0.1:PORT -d debian -r bookworm -a amd64`.
# Both run as the same ordinary user, fetch the same signed fixture image over https from
# the same loopback nginx, and unpack it into the user's subuid range, side by side in the
# user's home: LXC into ~/.local/share/lxc, coop into ~/.local/share/coop-bench/containers
# (cache ~/.cache/coop-bench).
#
# Usage: bench/create.sh FIXTURES USER      (run as root; `make bench`)
#   FIXTURES  output folder of Tests/Fixtures/build-images.sh
#   USER      ordinary user to run both tools as (made by Tests/Fixtures/make-test-user.sh)
# Environment:
#   COOP_BIN  coop binary to time (default: .build/release/coop of this checkout)
#   RUNS      timed runs per case, median reported (default 5)
#   SETTLE      seconds to wait at the end of each reset, after sync (default 2)
#   QUIET_WAIT  seconds to wait after deleting trees, after sync, before a case (default 65)
#
# Cases (hyperfine, one warmup run each, --prepare resets the state before every run):
#   coop cold   no container, empty coop cache: download, verify, decode and unpack
#   lxc cold    no container, empty ~/.cache/lxc: download, decode and unpack
#   coop warm   no container, the image in coop's cache
#   lxc warm    no container, the image in LXC's cache
#   tar -xJf    anchor: root unpacks rootfs.tar.xz into an empty folder
#   xz -dc      anchor: decoding rootfs.tar.xz alone
#   floor       anchor: root runs xz -T2 -dc rootfs.tar.xz | tar -x: what an unpack cannot beat here
#   ... (single-stream)  coop cold, lxc cold and the floor again, for the same rootfs recompressed as one
#               xz stream of one block (as images.linuxcontainers.org publishes them: no parallel decoding),
#               signed with the fixture key and served from a second loopback server
# Targets: cold <= 0.5 x lxc-create and <= 1.25 x the floor on both images, warm <= 0.25 x lxc-create.
# With BENCH_PLOT=FILE.png (and python3-matplotlib) the medians are also drawn as a bar chart.
# Prints machine facts, the image size, a table of medians and the coop/lxc ratios.
# Exits non-zero only when a command fails, not when a ratio misses its target.
#
# Deleted trees: ext4 without a journal skips inodes freed in the last 60 s (5 min more
# while their inode table block is dirty; recently_deleted() in fs/ext4/ialloc.c) when it
# allocates new ones. Unpacking ~8700 entries right after destroying a container of the
# same size costs several seconds of system time, more than the work measured. So no tree
# is deleted while a case runs: before each run the previous container (or folder) is
# renamed into a trash folder, which frees its name but no inode. Before each case the
# trash is emptied, followed by sync and QUIET_WAIT seconds, so that every case starts from
# the same state of the filesystem. The last containers are removed with coop destroy and
# lxc-destroy. Both tools get exactly the same treatment.
set -euo pipefail

COLD_TARGET=0.5
FLOOR_TARGET=1.25
WARM_TARGET=0.25
NAME=coop-bench

die() {
    echo "bench: $*" >&2
    exit 1
}

# set_aside DIR: renames DIR (if any) into the trash, freeing its name.
set_aside() {
    if [ -e "$1" ]; then
        mv "$1" "$(mktemp -u -p "$BENCH_TRASH" tree.XXXXXXXX)"
    fi
}

# reset CASE: state before one timed run. Called by hyperfine --prepare through this script,
# with the BENCH_* variables exported by the main part.
reset() {
    case "$1" in
        coop-cold | coop-warm | coop-cold-single)
            set_aside "$BENCH_CONTAINERS/$NAME"
            if [ "$1" != coop-warm ]; then
                find "$BENCH_CACHE" -mindepth 1 -delete
            fi
            ;;
        lxc-cold | lxc-warm | lxc-cold-single)
            set_aside "$BENCH_HOME/.local/share/lxc/$NAME"
            if [ "$1" != lxc-warm ]; then
                rm -rf "$BENCH_HOME/.cache/lxc"
            fi
            ;;
        tar | floor)
            set_aside "$BENCH_WORK/tar"
            mkdir "$BENCH_WORK/tar"
            ;;
        none) ;;
        *) die "unknown reset case: $1" ;;
    esac
    # Nothing of the previous run is left to write back during the next one.
    sync
    sleep "$BENCH_SETTLE"
}

if [ "${1:-}" = --reset ]; then
    reset "${2:?case}"
    exit 0
fi

[ "$#" -eq 2 ] || {
    echo "usage: $0 FIXTURES USER" >&2
    exit 2
}
[ "$(id -u)" -eq 0 ] || die "run as root (it starts the image server and switches to USER)"
for cmd in hyperfine lxc-create lxc-destroy runuser python3 xz tar wget nginx sync gpg gpgconf sha256sum; do
    command -v "$cmd" >/dev/null || die "missing command: $cmd"
done

script=$(realpath -e "$0")
repo=$(dirname "$(dirname "$script")")
fixtures=$(realpath -e "$1")
user=$2
runs=${RUNS:-5}
settle=${SETTLE:-2}
quiet_wait=${QUIET_WAIT:-65}
coop_bin=${COOP_BIN:-$repo/.build/release/coop}
[ -x "$coop_bin" ] || die "no coop binary at $coop_bin (make release)"
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive number"
[[ "$settle" =~ ^[0-9]+$ && "$quiet_wait" =~ ^[0-9]+$ ]] || die "SETTLE and QUIET_WAIT are whole seconds"

# The image: the fixture's debian/bookworm build, as the LXC index lists it.
site=$fixtures/www/good
arch=$(dpkg --print-architecture)
build_path=$(awk -F';' -v arch="$arch" \
    '$1 == "debian" && $2 == "bookworm" && $3 == arch && $4 == "default" { print $6; exit }' \
    "$site/meta/1.0/index-user")
[ -n "$build_path" ] || die "no debian/bookworm/$arch build in $site/meta/1.0/index-user"
rootfs=$site/$build_path/rootfs.tar.xz
[ -s "$rootfs" ] || die "missing $rootfs"
fingerprint=$(tr -d '[:space:]' <"$fixtures/keys/signer.fpr")

read -r _ _ subuid subgid < <("$repo/Tests/Fixtures/make-test-user.sh" "$user")
home=$(getent passwd "$user" | cut -d: -f6)
group=$(id -gn "$user")
lxc_path=$home/.local/share/lxc
lxc_cache=$home/.cache/lxc/download/debian/bookworm/$arch/default
# coop's folders for the benchmark, next to LXC's; the trash holds the trees set aside.
coop_home=$home/.local/share/coop-bench
containers=$coop_home/containers
cache=$home/.cache/coop-bench
trash=$coop_home/trash

work=$(mktemp -d /var/tmp/coop-bench.XXXXXX)
chmod 0755 "$work"
lxc_used=false

# destroy_last: removes the containers of the last runs with the tools themselves.
destroy_last() {
    local out
    if [ -e "$containers/$NAME" ] && ! out=$("$work/bin/as-user" coop destroy "$NAME"); then
        echo "bench: coop destroy $NAME failed: $out" >&2
        return 1
    fi
    if [ -e "$lxc_path/$NAME" ] && ! out=$("$work/bin/as-user" lxc-destroy -n "$NAME"); then
        echo "bench: lxc-destroy -n $NAME failed: $out" >&2
        return 1
    fi
}

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    if [ -x "$work/bin/as-user" ]; then
        destroy_last || status=1
    fi
    # serve.sh stops the nginx master by the pid in its pid file.
    "$repo/Tests/Fixtures/serve.sh" stop "$work/server" >/dev/null 2>&1 || status=1
    "$repo/Tests/Fixtures/serve.sh" stop "$work/server-single" >/dev/null 2>&1 || true
    if [ -d "$work/gnupg" ]; then
        gpgconf --homedir "$work/gnupg" --kill all 2>/dev/null || true
    fi
    if [ "$lxc_used" = true ]; then
        rm -rf "$home/.cache/lxc"
    fi
    rm -rf "$coop_home" "$cache" "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The server root is the "good" site itself, so that both tools use the same root URL:
# lxc-download fetches https://SERVER/meta/1.0/..., coop https://127.0.0.1:PORT/meta/1.0/...
mkdir -p "$work/www"
for entry in "$site"/*; do
    ln -s "$entry" "$work/www/$(basename "$entry")"
done
eval "$("$repo/Tests/Fixtures/serve.sh" start "$work/www" "$work/server" | grep -E '^HTTPS?_PORT=[0-9]+$')"
[ -n "${HTTPS_PORT:-}" ] || die "image server did not report its port"
ca=$work/server/tls/ca.pem

# The single-stream site: the same build with its rootfs recompressed as one xz block, signed again
# (rootfs.tar.xz and SHA256SUMS) with the fixture key; everything else, the signed indexes included,
# as it is. A second loopback server serves it.
single=$work/www-single
cp -a "$site" "$single"
single_rootfs=$single/$build_path/rootfs.tar.xz
single_dir=$(dirname "$single_rootfs")
xz -dc "$rootfs" | xz -T1 -6 -c >"$single_rootfs.new"
mv "$single_rootfs.new" "$single_rootfs"
cp -a "$fixtures/gnupg/signer" "$work/gnupg"
for file in "$single_rootfs" "$single_dir/SHA256SUMS"; do
    if [ "$file" = "$single_dir/SHA256SUMS" ]; then
        (cd "$single_dir" && sha256sum rootfs.tar.xz meta.tar.xz >SHA256SUMS)
    fi
    gpg --homedir "$work/gnupg" --batch --quiet --yes --armor --detach-sign -o "$file.asc" "$file"
done
gpgconf --homedir "$work/gnupg" --kill all 2>/dev/null || true
single_port=$("$repo/Tests/Fixtures/serve.sh" start "$single" "$work/server-single" |
    sed -n 's/^HTTPS_PORT=\([0-9]*\)$/\1/p')
[ -n "$single_port" ] || die "the single-stream server did not report its port"
# Each server has a CA of its own: both tools get both.
cat "$ca" "$work/server-single/tls/ca.pem" >"$work/ca.pem"
chmod 0644 "$work/ca.pem"
ca=$work/ca.pem

# coop, installed into a private prefix whose images.index names the local remote
# (COOP_DATA below points at it explicitly).
prefix=$work/prefix
install -D -m 0755 "$coop_bin" "$prefix/bin/coop"
install -D -m 0755 "$(dirname "$coop_bin")/coop-supervisor" "$prefix/libexec/coop/coop-supervisor"
install -D -m 0644 "$repo/images.index" "$prefix/share/coop/images.index"
install -d -m 0755 "$prefix/share/coop/keys"
install -m 0644 "$repo"/keys/*.asc "$prefix/share/coop/keys/"
install -m 0644 "$fixtures/keys/signer.asc" "$prefix/share/coop/keys/bench-local.asc"
{
    echo "local;lxc;https://127.0.0.1:$HTTPS_PORT;keys/bench-local.asc;$fingerprint"
    echo "single;lxc;https://127.0.0.1:$single_port;keys/bench-local.asc;$fingerprint"
} >>"$prefix/share/coop/images.index"
install -d -o "$user" -g "$group" -m 0755 "$work/log"

# wget (used by lxc-download) trusts the fixture CA through WGETRC, curl in coop through
# CURL_CA_BUNDLE. Both tools get the same environment.
echo "ca_certificate=$ca" >"$work/wgetrc"
chmod 0644 "$work/wgetrc"
mkdir -p "$work/bin"
{
    echo '#!/bin/sh'
    echo '# Runs a command as the benchmark user, output and errors on stdout.'
    echo 'exec 2>&1'
    printf 'exec runuser -u %q -- env -i HOME=%q USER=%q LOGNAME=%q LANG=C.UTF-8 ' \
        "$user" "$home" "$user" "$user"
    printf 'PATH=%q COOP_DATA=%q COOP_CACHE=%q COOP_CONTAINERS=%q CURL_CA_BUNDLE=%q WGETRC=%q "$@"\n' \
        "$prefix/bin:/usr/sbin:/usr/bin:/sbin:/bin" "$prefix/share/coop" "$cache" "$containers" \
        "$ca" "$work/wgetrc"
} >"$work/bin/as-user"
chmod 0755 "$work/bin/as-user"
as_user=$work/bin/as-user

# Unprivileged LXC: the user's id map. Written once if missing; an existing file must map
# root to the user's subordinate range.
lxc_conf=$home/.config/lxc/default.conf
if [ ! -e "$lxc_conf" ]; then
    runuser -u "$user" -- mkdir -p "$home/.config/lxc"
    printf 'lxc.include = /etc/lxc/default.conf\nlxc.idmap = u 0 %s 65536\nlxc.idmap = g 0 %s 65536\n' \
        "$subuid" "$subgid" | runuser -u "$user" -- tee "$lxc_conf" >/dev/null
fi
if ! grep -Eq "^lxc\.idmap *= *u 0 $subuid " "$lxc_conf" ||
    ! grep -Eq "^lxc\.idmap *= *g 0 $subgid " "$lxc_conf"; then
    die "$lxc_conf does not map root to $user's subordinate ids ($subuid/$subgid)"
fi
# Leftovers of an interrupted run.
if [ -e "$lxc_path/$NAME" ]; then
    "$as_user" lxc-destroy -n "$NAME" >/dev/null
fi
rm -rf "$coop_home" "$cache"
runuser -u "$user" -- mkdir -p "$lxc_path" "$containers" "$cache"
install -d -m 0700 "$trash"
# Trees are set aside by renaming them into the trash: one filesystem needed.
for place in "$containers" "$lxc_path" "$work"; do
    [ "$(stat -c %d "$place")" = "$(stat -c %d "$trash")" ] ||
        die "$place is not on the filesystem of $trash"
done

export BENCH_WORK=$work BENCH_HOME=$home BENCH_SETTLE=$settle
export BENCH_CONTAINERS=$containers BENCH_CACHE=$cache BENCH_TRASH=$trash

echo "== machine"
echo "   cpus:     $(nproc) ($(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'))"
echo "   memory:   $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
echo "   kernel:   $(uname -r)"
echo "   fs:       $(df -T "$home" | awk 'NR == 2 { print $2 " on " $1 }') ($home)"
changes=$(git -C "$repo" status --porcelain -- Sources Package.swift 2>/dev/null | head -n1)
echo "   coop:     $coop_bin, built $(date -u -r "$coop_bin" '+%F %T UTC');" \
    "checkout at $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')${changes:+ with local changes}"
echo "   lxc:      $(lxc-create --version)"
echo "   load:     $(cut -d' ' -f1-3 /proc/loadavg)"
echo "   tools:    $(hyperfine --version), $(xz --version | head -n1), $(tar --version | head -n1)"
echo "== image debian/bookworm/$arch build $(basename "$build_path")"
for file in "$rootfs" "$single_rootfs"; do
    xz --robot --list "$file" | awk -F'\t' '$1 == "totals" {
        printf "   rootfs.tar.xz %.1f MB (%d xz blocks), %.1f MB as tar\n", $4 / 1e6, $3, $5 / 1e6 }'
done

coop_create=("$as_user" coop create "$NAME" local:debian/bookworm)
lxc_create=("$as_user" lxc-create -t download -n "$NAME" --
    --server "127.0.0.1:$HTTPS_PORT" -d debian -r bookworm -a "$arch")
coop_create_single=("$as_user" coop create "$NAME" single:debian/bookworm)
lxc_create_single=("$as_user" lxc-create -t download -n "$NAME" --
    --server "127.0.0.1:$single_port" -d debian -r bookworm -a "$arch")

# Check once, with output shown, that both tools really create the container.
echo "== checking both tools as $user"
"${coop_create[@]}" | sed 's/^/   coop: /'
[ -s "$containers/$NAME/rootfs/etc/os-release" ] || die "coop made no rootfs"
lxc_used=true
rm -rf "$home/.cache/lxc"
"${lxc_create[@]}" | sed 's/^/   lxc:  /'
[ -s "$lxc_path/$NAME/rootfs/etc/os-release" ] || die "lxc-create made no rootfs"
echo "   entries:  coop $(find "$containers/$NAME/rootfs" | wc -l)," \
    "lxc $(find "$lxc_path/$NAME/rootfs" | wc -l)"
echo "   /etc/shadow owner: coop $(stat -c %u:%g "$containers/$NAME/rootfs/etc/shadow")," \
    "lxc $(stat -c %u:%g "$lxc_path/$NAME/rootfs/etc/shadow")"

# purge: empties the trash, then lets the freed inodes age (see the top of this file).
purge() {
    find "$trash" -mindepth 1 -delete
    sync
    echo "   (emptied the trash; waiting $quiet_wait s)"
    sleep "$quiet_wait"
}

# bench LABEL CASE COMMAND...: hyperfine with --prepare "create.sh --reset CASE".
bench() {
    local label=$1 case=$2 command prepare output=$work/log/$2.log
    shift 2
    command=$(printf '%q ' "$@")
    prepare=$(printf '%q ' "$script" --reset "$case")
    if [ "$case" = none ]; then
        output=null # xz -dc: the decoded tar goes to /dev/null
    fi
    echo "== $label"
    if [ "$case" != none ]; then
        purge
    fi
    if ! hyperfine --runs "$runs" --warmup 1 --style basic \
        --prepare "$prepare" \
        --output "$output" \
        --export-json "$work/$case.json" \
        --command-name "$label" "$command"; then
        echo "bench: '$label' failed; output of its last run:" >&2
        tail -n 20 "$output" >&2 || true
        exit 1
    fi
}

bench "coop create (cold)" coop-cold "${coop_create[@]}"
bench "lxc-create (cold)" lxc-cold "${lxc_create[@]}"

# Warm: the image is cached and current. coop marks an expired cache entry current again
# once the remote confirms the build; LXC does not and would fetch the index on every run.
# The fixture build is dated (its expiry is build date + 30 days), so LXC's cached expiry is
# moved 30 days ahead: both warm runs stay off the network.
"$as_user" coop fetch local:debian bookworm "$arch" >"$work/log/fill.log"
if [ ! -s "$lxc_cache/rootfs.tar.xz" ]; then
    BENCH_SETTLE=0 "$script" --reset lxc-warm
    "${lxc_create[@]}" >>"$work/log/fill.log"
fi
# shellcheck disable=SC2016 # expanded by the user's shell
"$as_user" sh -c 'echo $(($(date +%s) + 30 * 86400)) >"$1"' sh "$lxc_cache/expiry"

bench "coop create (warm)" coop-warm "${coop_create[@]}"
bench "lxc-create (warm)" lxc-warm "${lxc_create[@]}"
bench "tar -xJf rootfs.tar.xz (root)" tar tar -xJf "$rootfs" -C "$work/tar"
bench "xz -dc rootfs.tar.xz" none xz -dc "$rootfs"
# shellcheck disable=SC2016 # expanded by the timed shell
unpack='xz -T2 -dc "$1" | tar -x -C "$2"'
bench "floor: xz -T2 -dc | tar -x (root)" floor sh -c "$unpack" sh "$rootfs" "$work/tar"
mv "$work/floor.json" "$work/floor-multi.json"
bench "coop create (cold, single-stream)" coop-cold-single "${coop_create_single[@]}"
bench "lxc-create (cold, single-stream)" lxc-cold-single "${lxc_create_single[@]}"
bench "floor (single-stream, root)" floor sh -c "$unpack" sh "$single_rootfs" "$work/tar"
mv "$work/floor.json" "$work/floor-single.json"

echo
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine adds noise)"
# Debian's python3, where python3-matplotlib is (a python3 earlier in PATH may lack it).
python=/usr/bin/python3
[ -x "$python" ] || python=python3
"$python" - "$work" "$runs" "$COLD_TARGET" "$FLOOR_TARGET" "$WARM_TARGET" "${BENCH_PLOT:-}" <<'EOF'
import json
import sys

work, runs = sys.argv[1], sys.argv[2]
cold_target, floor_target, warm_target = map(float, sys.argv[3:6])
plot = sys.argv[6]
cases = ["coop-cold", "lxc-cold", "coop-warm", "lxc-warm", "tar", "none", "floor-multi",
         "coop-cold-single", "lxc-cold-single", "floor-single"]
results = {}
for case in cases:
    with open(f"{work}/{case}.json") as f:
        results[case] = json.load(f)["results"][0]

print(f"median of {runs} runs, seconds")
print(f"{'case':<36} {'median':>8} {'min':>8} {'max':>8}   runs in order")
for case in cases:
    r = results[case]
    times = " ".join(f"{t:.2f}" for t in r["times"])
    print(f"{r['command']:<36} {r['median']:>8.3f} {r['min']:>8.3f} {r['max']:>8.3f}   {times}")
print()


def ratio(a, b, target, label):
    value = results[a]["median"] / results[b]["median"]
    verdict = "met" if value <= target else "missed"
    print(f"{label:<36} {value:.2f}  (target <= {target:g}: {verdict})")


ratio("coop-cold", "lxc-cold", cold_target, "coop/lxc cold")
ratio("coop-cold", "floor-multi", floor_target, "coop cold/floor")
ratio("coop-cold-single", "lxc-cold-single", cold_target, "coop/lxc cold, single-stream")
ratio("coop-cold-single", "floor-single", floor_target, "coop cold/floor, single-stream")
ratio("coop-warm", "lxc-warm", warm_target, "coop/lxc warm")

if plot:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("no plot: python3-matplotlib is not installed")
        sys.exit(0)
    order = ["coop-cold", "lxc-cold", "floor-multi", "coop-warm", "lxc-warm",
             "coop-cold-single", "lxc-cold-single", "floor-single"]
    labels = [results[name]["command"] for name in order]
    medians = [results[name]["median"] for name in order]
    colours = ["tab:blue" if n.startswith("coop") else "tab:gray" if n.startswith("floor") else "tab:orange"
               for n in order]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    bars = ax.barh(range(len(labels)), medians, color=colours)
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.set_xlabel(f"seconds (median of {runs} runs)")
    ax.set_title("coop create against lxc-create -t download and the unpack floor")
    for bar, value in zip(bars, medians):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {value:.2f}", va="center")
    fig.tight_layout()
    fig.savefig(plot, dpi=110)
    print(f"plot: {plot}")
EOF

echo
echo "== destroying the last containers with coop destroy and lxc-destroy"
destroy_last
