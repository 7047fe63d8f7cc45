#!/usr/bin/env bash
# Removes the traces of earlier test runs that a fresh machine would not
# have, so that `make test` sees what CI on a new machine sees:
#   - processes in coop's cgroups (containers, supervisors) and in the test
#     users' LXC cgroups, coop supervisors of root and the test users, and
#     every process of the test users;
#   - fixture servers of earlier runs (/tmp/coop-server.*), LXD daemons of
#     the LXD tests (/tmp/coop-tests/lxd-*) and what is mounted below the
#     folders removed here;
#   - coop's cgroup folders (`coop` below each hierarchy) and the test users'
#     LXC cgroups (`lxc-user/USER`), depth first;
#   - the test users themselves: their accounts, homes (with their coop and
#     LXC state), /run/user/UID and subordinate id ranges (make-test-user.sh
#     and the tests make them again);
#   - root's containers and builds (/var/lib/coop), caches (/var/cache/coop,
#     the checkout's cache/ except its tracked files) and config
#     (~root/.config/coop), /tmp/coop-tests (the sandboxes, with the LXC
#     containers of the interop tests) and the tests' temporary files.
# The fixtures folder (/var/tmp/coop-fixtures, built once) stays, and so does
# everything that is neither coop's nor a test user's.
#
# Usage: clean-slate.sh [--dry-run] [USER...]    (run as root)
#   USER      more test users, besides coop-test and the users the tests
#             make (coop-setup-test, coop-plain-test, coop-noids-test,
#             coop-lxc-test)
#   --dry-run only print what would be done
set -euo pipefail

DRY=0
if [ "${1:-}" = --dry-run ]; then
    DRY=1
    shift
fi
mapfile -t USERS < <(printf '%s\n' coop-test coop-setup-test coop-plain-test coop-noids-test coop-lxc-test "$@" | sort -u)
# shellcheck source=cgroups.sh
source "$(dirname "${BASH_SOURCE[0]}")/cgroups.sh"
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CHECKOUT=$(cd "$HERE/../.." && pwd)

if [ "$(id -u)" -ne 0 ] && [ "$DRY" -eq 0 ]; then
    # As an ordinary user the tests that need root are skipped, and there is nothing of theirs to remove.
    echo "$(basename "$0"): not root: nothing removed" >&2
    exit 0
fi

# run COMMAND...: runs it, or only prints it with --dry-run.
run() {
    if [ "$DRY" -eq 1 ]; then
        printf 'would run:'
        printf ' %q' "$@"
        printf '\n'
    else
        "$@" || echo "$(basename "$0"): failed (ignored): $*" >&2
    fi
}

# The cgroup folders that are coop's or the test users': coop/ in every
# hierarchy, and lxc-user/USER (lxc-user-setup.sh) of each test user.
cgroup_folders() {
    local mnt user
    while read -r mnt; do
        if [ -d "$mnt/coop" ]; then echo "$mnt/coop"; fi
        for user in "${USERS[@]}"; do
            if [ -d "$mnt/lxc-user/$user" ]; then echo "$mnt/lxc-user/$user"; fi
        done
    done < <(cgroup_mounts)
    return 0
}

# 1. Processes: what runs in those cgroups (containers and their
# supervisors), supervisors that stayed in their caller's cgroups, and every
# process of a test user. Stopped with SIGKILL, as a reboot would.
pids=()
while read -r folder; do
    [ -n "$folder" ] || continue
    while read -r pid; do
        [ -n "$pid" ] && pids+=("$pid")
    done < <(find "$folder" -name cgroup.procs -exec cat {} + 2>/dev/null)
done < <(cgroup_folders)
owners=(root)
for user in "${USERS[@]}"; do
    id -u "$user" >/dev/null 2>&1 && owners+=("$user")
done
while read -r pid; do
    [ -n "$pid" ] && pids+=("$pid")
done < <(pgrep -x -u "$(
    IFS=,
    echo "${owners[*]}"
)" coop-supervisor || true)
for user in "${owners[@]:1}"; do
    while read -r pid; do
        [ -n "$pid" ] && pids+=("$pid")
    done < <(pgrep -u "$user" || true)
done
if [ "${#pids[@]}" -gt 0 ]; then
    mapfile -t pids < <(printf '%s\n' "${pids[@]}" | grep -v -x -e "$$" -e 0 | sort -un)
fi
if [ "${#pids[@]}" -gt 0 ]; then
    run kill -KILL "${pids[@]}"
    [ "$DRY" -eq 1 ] || sleep 1
fi

# 2. Fixture servers of earlier runs and of the interop tests.
for state in /tmp/coop-server.* /tmp/coop-tests/*/server; do
    if [ -d "$state" ]; then run "$HERE/serve.sh" stop "$state"; fi
done
# LXD daemons of the LXD tests (lxd.sh), with their instances.
for state in /tmp/coop-tests/lxd-*; do
    if [ -d "$state" ]; then run "$HERE/lxd.sh" stop "$state"; fi
done

# 3. Mounts below what goes (tmpfs of the disk-full tests, a container's
# rootfs left mounted), deepest first.
gone=(/tmp/coop-tests /var/lib/coop /var/cache/coop "$CHECKOUT/cache")
for user in "${USERS[@]}"; do
    home=$(getent passwd "$user" | cut -d: -f6 || true)
    if [ -n "$home" ] && [ "$home" != / ]; then gone+=("$home"); fi
done
while read -r target; do
    for folder in "${gone[@]}"; do
        case "$target" in "$folder" | "$folder"/*) run umount -l "$target" ;; esac
    done
done < <(awk '{ print $2 }' /proc/self/mounts | sort -r)

# 4. cgroup folders, depth first (rmdir: the kernel removes their files).
while read -r folder; do
    [ -n "$folder" ] || continue
    while read -r dir; do
        run rmdir "$dir"
    done < <(find "$folder" -depth -type d)
done < <(cgroup_folders)
while read -r mnt; do
    if [ -d "$mnt/lxc-user" ] && [ -z "$(find "$mnt/lxc-user" -mindepth 1 -maxdepth 1 -type d)" ]; then
        run rmdir "$mnt/lxc-user"
    fi
done < <(cgroup_mounts)

# 5. The test users: account, home, runtime folder, subordinate ids.
for user in "${USERS[@]}"; do
    uid=$(id -u "$user" 2>/dev/null) || continue
    [ "$uid" -ne 0 ] || continue
    if [ -d "/run/user/$uid" ]; then run rm -rf "/run/user/$uid"; fi
    home=$(getent passwd "$user" | cut -d: -f6)
    run userdel "$user"
    if [ -n "$home" ] && [ "$home" != / ] && [ -d "$home" ]; then
        run rm -rf "$home"
    fi
    for file in /etc/subuid /etc/subgid; do
        if grep -q -e "^$user:" -e "^$uid:" "$file" 2>/dev/null; then
            run sed -i -e "/^$user:/d" -e "/^$uid:/d" "$file"
        fi
    done
done

# 6. Root's containers, builds, caches and config; the tests' folders.
for path in /var/lib/coop /var/cache/coop /root/.config/coop /tmp/coop-tests /tmp/coop-tests-bin-* \
    /tmp/coop-server.* /tmp/coop-run-* /tmp/lxc-interop.*; do
    if [ -e "$path" ]; then run rm -rf "$path"; fi
done
# The checkout's cache: everything but what git tracks there (cache/.gitignore).
if [ -d "$CHECKOUT/cache" ]; then
    while read -r entry; do
        [ -n "$entry" ] || continue
        if ! git -C "$CHECKOUT" ls-files --error-unmatch "cache/$entry" >/dev/null 2>&1; then
            run rm -rf "$CHECKOUT/cache/$entry"
        fi
    done < <(ls -A "$CHECKOUT/cache")
fi
[ "$DRY" -eq 1 ] || echo "clean slate: done"
