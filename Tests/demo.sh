#!/usr/bin/env bash
# The main job, end to end, as an ordinary user: a signed bookworm image on a local image server is
# fetched through the verified path and unpacked into a container whose root is the user's subuid.
set -euo pipefail
fixtures=${1:?fixtures folder}
user=${2:-coop-test}
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
    echo "make demo needs root once: it creates the user '$user' and starts the local image server" >&2
    exit 1
fi
Tests/Fixtures/make-test-user.sh "$user" >/dev/null
work=$(mktemp -d /tmp/coop-demo.XXXXXX)
chmod 0755 "$work"
cleanup() {
    Tests/Fixtures/serve.sh stop "$work/server" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
make --no-print-directory install PREFIX="$work/prefix" >/dev/null
Tests/Fixtures/serve.sh start "$fixtures/www" "$work/server" >/dev/null
# shellcheck disable=SC1091
source "$work/server/ports"

home=$(getent passwd "$user" | cut -d: -f6)
install -d -o "$user" -g "$user" "$home/.config/coop"
install -m 0644 "$fixtures/keys/signer.asc" "$work/local.asc"
echo "local;lxc;https://127.0.0.1:$HTTPS_PORT/good;$work/local.asc;$(cat "$fixtures/keys/signer.fpr")" >"$work/images.index"
install -o "$user" -g "$user" -m 0644 "$work/images.index" "$home/.config/coop/images.index"

as_user() {
    runuser -u "$user" -- env -i HOME="$home" PATH="$work/prefix/bin:/usr/bin:/bin" \
        CURL_CA_BUNDLE="$work/server/tls/ca.pem" TERM="${TERM:-dumb}" "$@"
}
as_user coop destroy demo >/dev/null 2>&1 || true
echo "== coop images local: (as $user)"
as_user coop images local:
echo "== coop create demo local:debian/bookworm (as $user)"
folder=$(as_user coop create demo local:debian/bookworm)
echo "== $folder/rootfs/etc/os-release"
cat "$folder/rootfs/etc/os-release"
echo "== host ownership (container root is the user's first subuid)"
stat -c '%u:%g %A %n' "$folder/rootfs" "$folder/rootfs/etc/os-release" "$folder/rootfs/etc/shadow" \
    "$folder/rootfs/usr/bin/passwd"
echo "== config"
cat "$folder/config"
echo "== coop cache list (as $user)"
as_user coop cache list
