#!/usr/bin/env bash
# The main job, end to end, as an ordinary user: build a Debian bookworm image from the mirror
# (`coop build`, reused when already built), sign and publish it (`coop key`, `coop publish`), serve it
# with nginx on loopback, then fetch it through the verified path, create a container whose root
# is the user's first subordinate id, and run a command inside it.
set -euo pipefail
user=${1:-coop-test}
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

home=$(getent passwd "$user" | cut -d: -f6)
as_user() {
    runuser -u "$user" -- env -i HOME="$home" PATH="$work/prefix/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
        CURL_CA_BUNDLE="$work/server/tls/ca.pem" TERM="${TERM:-dumb}" "$@"
}

arch=$(dpkg --print-architecture)
builds="$home/.local/share/coop/builds/debian/bookworm/$arch/default"
if [ -n "$(ls -A "$builds" 2>/dev/null)" ]; then
    echo "== reusing the build in $builds"
else
    echo "== coop build debian bookworm (as $user: mmdebstrap --mode=unshare from the Debian mirror)"
    as_user coop build debian bookworm >/dev/null
fi

echo "== coop key create / coop publish (as $user)"
as_user coop key export >/dev/null 2>&1 || as_user coop key create demo >/dev/null
install -d -o "$user" -g "$user" -m 0755 "$work/www"
as_user coop publish "$work/www/demo"
as_user coop key export --output "$home/.config/coop/demo.asc" >/dev/null 2>&1

Tests/Fixtures/serve.sh start "$work/www" "$work/server" >/dev/null
# shellcheck disable=SC1091
source "$work/server/ports"
fingerprint=$(as_user coop key export 2>&1 >/dev/null | sed 's/.*;//')
echo "demo;lxc;https://127.0.0.1:$HTTPS_PORT/demo;$home/.config/coop/demo.asc;$fingerprint" |
    as_user tee "$home/.config/coop/images.index" >/dev/null

as_user coop stop demo >/dev/null 2>&1 || true
as_user coop destroy demo >/dev/null 2>&1 || true
echo "== coop images demo: (as $user)"
as_user coop images demo:
echo "== coop create demo demo:debian/bookworm --flush-cache (as $user)"
folder=$(as_user coop create demo demo:debian/bookworm --flush-cache)
echo "== $folder/rootfs/etc/os-release"
cat "$folder/rootfs/etc/os-release"
echo "== host ownership (container root is the user's first subuid)"
stat -c '%u:%g %A %n' "$folder/rootfs" "$folder/rootfs/etc/os-release" "$folder/rootfs/etc/shadow" \
    "$folder/rootfs/usr/bin/passwd"
echo "== config"
cat "$folder/config"
echo "== coop setup-host --user $user (as root, once: subordinate ids and a cgroup subtree for limits)"
"$work/prefix/bin/coop" setup-host --user "$user"
echo "== a command as PID 1: coop start demo --foreground -- … (as $user)"
as_user coop start demo --foreground -- /bin/sh -c 'grep PRETTY /etc/os-release; id; cat /proc/self/uid_map; ps -e'
echo "== boot: coop start demo; coop exec demo -- systemctl is-system-running --wait (as $user)"
as_user coop start demo
# start returns once PID 1 runs; systemd's bus comes a moment later.
for _ in $(seq 50); do
    state=$(as_user coop exec demo -- systemctl is-system-running --wait 2>/dev/null) && break
    case "$state" in running | degraded) break ;; esac
    sleep 0.1
done
echo "systemd: $state"
echo "== commands in the running container: coop exec demo -- … (as $user)"
as_user coop exec demo -- /bin/sh -c 'grep PRETTY /etc/os-release; ps -e -o pid,user,comm; cat /proc/1/cgroup | head -3'
as_user coop list
echo "== demo runs on. With coop installed (make install): 'coop attach demo' for a shell, 'coop stop demo' to power it off (as $user)"
