#!/usr/bin/env bash
# Times `coop build debian bookworm` against the same image made by hand (mmdebstrap into a folder,
# then `tar -cJf`, single-threaded xz as image scripts usually do), both as root from the same mirror,
# and compares their sizes. Then times decoding coop's multi-block rootfs.tar.xz against a
# single-block xz of the same tar, with `xz -T0 -dc` (all cores where the file allows it).
#
# Usage: bench/build.sh        (run as root; `make bench`)
# Environment: COOP_BIN (default .build/release/coop), RUNS (default 3), MIRROR, RELEASE (bookworm)
set -euo pipefail
cd "$(dirname "$0")/.."

COOP_BIN=${COOP_BIN:-$PWD/.build/release/coop}
RUNS=${RUNS:-3}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
RELEASE=${RELEASE:-bookworm}
[ "$(id -u)" = 0 ] || { echo "bench: run as root" >&2; exit 1; }
[ -x "$COOP_BIN" ] || { echo "bench: no $COOP_BIN (make release)" >&2; exit 1; }

work=$(mktemp -d /var/tmp/coop-bench-build.XXXXXX)
trap 'rm -rf "$work"' EXIT
export SOURCE_DATE_EPOCH=1764374400
packages=systemd-sysv,dbus,iproute2,netbase,ifupdown,procps

hyperfine --runs "$RUNS" --export-json "$work/build.json" \
    --prepare "rm -rf '$work/coop'" --prepare "rm -rf '$work/hand'" \
    -n "coop build" "COOP_BUILDS='$work/coop' '$COOP_BIN' build debian $RELEASE --mirror '$MIRROR'" \
    -n "mmdebstrap + tar -cJf" "mkdir -p '$work/hand' && mmdebstrap --quiet --mode=root --variant=minbase \
        --include=$packages $RELEASE '$work/hand/root' '$MIRROR' && \
        tar --numeric-owner -C '$work/hand/root' -cJf '$work/hand/rootfs.tar.xz' ." >&2

coop_file=$(ls "$work"/coop/debian/"$RELEASE"/*/default/*/rootfs.tar.xz)
hand_file=$work/hand/rootfs.tar.xz
xz -dc "$coop_file" > "$work/rootfs.tar"
xz -T1 -6 -c "$work/rootfs.tar" > "$work/single.tar.xz"

hyperfine --runs 5 --warmup 1 --export-json "$work/decode.json" \
    -n "decode coop multi-block" "xz -T0 -dc '$coop_file' > /dev/null" \
    -n "decode single-block" "xz -T0 -dc '$work/single.tar.xz' > /dev/null" >&2

python3 - "$work/build.json" "$work/decode.json" "$coop_file" "$hand_file" "$work/single.tar.xz" <<'PY'
import json, os, sys, statistics
build, decode = (json.load(open(p))["results"] for p in sys.argv[1:3])
coop, hand, single = (os.path.getsize(p) for p in sys.argv[3:6])
def row(r): return "| %-26s | %7.2f | %7.2f | %7.2f |" % (r["command"], statistics.median(r["times"]), min(r["times"]), max(r["times"]))
print("| case | median s | min s | max s |\n|---|---|---|---|")
for r in build + decode: print(row(r))
b = {r["command"]: statistics.median(r["times"]) for r in build + decode}
print()
print("| file | bytes |\n|---|---|")
print("| coop rootfs.tar.xz (8 MiB blocks) | %d |" % coop)
print("| by hand (tar -cJf, one block) | %d |" % hand)
print("| same tar, single-block xz -6 | %d |" % single)
print()
print("build: coop / by hand = %.2f" % (b["coop build"] / b["mmdebstrap + tar -cJf"]))
print("decode: multi-block / single-block = %.2f" % (b["decode coop multi-block"] / b["decode single-block"]))
print("size: coop / by hand = %.3f" % (coop / hand))
PY
