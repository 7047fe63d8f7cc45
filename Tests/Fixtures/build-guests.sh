#!/usr/bin/env bash
# Builds the images that boot a real init for the runtime tests, with coop itself: Debian bookworm and
# trixie (variant slim: systemd as init) and bookworm's default variant (the one LXD launches by its short
# alias), published as the image server tree OUT/www/guests and signed by a key of their own (public key
# OUT/keys/guests.asc, fingerprint OUT/keys/guests.fpr).
#
# Usage: build-guests.sh OUT COOP_BIN    (run as root; MIRROR=... overrides the mirror)
#
# OUT/www/guests/.complete marks a finished tree and holds the tree's format; when it names this script's
# format the script exits at once (a tree of an older format is made again). Builds go to OUT/guests-work,
# which is removed at the end.
set -euo pipefail

if [ "$#" -ne 2 ]; then
    echo "usage: $0 OUT COOP_BIN" >&2
    exit 2
fi
OUT=$1
COOP=$2
TREE=$OUT/www/guests
# 3: with LXD's and Incus's metadata, clearsigned JSON, and bookworm's default variant.
FORMAT=3
if [ "$(cat "$TREE/.complete" 2>/dev/null)" = "$FORMAT" ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "$0: must run as root" >&2
    exit 1
fi
[ -x "$COOP" ] || {
    echo "$0: $COOP is not an executable coop" >&2
    exit 1
}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
WORK=$OUT/guests-work
rm -rf "$WORK" "$TREE"
mkdir -p "$WORK/config" "$OUT/keys"
trap 'rm -rf "$WORK"' EXIT
coop() {
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$WORK" XDG_CONFIG_HOME="$WORK/config" \
        COOP_BUILDS="$WORK/builds" "$COOP" "$@"
}

for release in bookworm trixie; do
    echo "== coop build debian $release --variant slim"
    # The mirror may drop a connection now and then: one more try before giving up.
    coop build debian "$release" --variant slim --mirror "$MIRROR" >/dev/null ||
        coop build debian "$release" --variant slim --mirror "$MIRROR" >/dev/null
done
coop build debian bookworm --mirror "$MIRROR" >/dev/null || coop build debian bookworm --mirror "$MIRROR" >/dev/null
coop key create guests >/dev/null
coop key export --output "$WORK/guests.asc" --remote guests --url https://127.0.0.1/guests >"$WORK/line"
coop publish "$TREE.tmp" >/dev/null
# The line for images.index ends with the key's fingerprint.
awk -F';' '{print $NF}' "$WORK/line" >"$WORK/guests.fpr"
mv "$WORK/guests.asc" "$OUT/keys/guests.asc"
mv "$WORK/guests.fpr" "$OUT/keys/guests.fpr"
chmod -R a+rX "$TREE.tmp" "$OUT/keys"
mv "$TREE.tmp" "$TREE"
echo "$FORMAT" >"$TREE/.complete"
echo "== published debian bookworm and trixie in $TREE"
