#!/usr/bin/env bash
# Runs a command as an ordinary user as if logged in for LXC: in
# the cgroups that lxc-user-setup.sh delegated to the user, with a clean
# login-like environment. Output and exit status are the command's.
# lxc-user-setup.sh runs first (it is idempotent) when the user's runtime
# folder or one of its cgroups is missing, as on a fresh machine.
#
# Usage: lxc-as-user.sh USER COMMAND [ARG...]    (run as root)
#
# PAM (su, runuser -l) is avoided on purpose: Debian's pam_cgfs would move
# the process back into /user/USER/0 of only a few v1 hierarchies.
set -euo pipefail

# shellcheck source=cgroups.sh
source "$(dirname "${BASH_SOURCE[0]}")/cgroups.sh"
CGROUP_DIR=lxc-user
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

die() {
    echo "$(basename "$0"): $*" >&2
    exit 125
}

[ "$#" -ge 2 ] || die "usage: $0 USER COMMAND [ARG...]"
[ "$(id -u)" -eq 0 ] || die "must run as root"

USER_NAME=$1
shift
id -u "$USER_NAME" >/dev/null 2>&1 || die "no such user: $USER_NAME"
USER_ID=$(id -u "$USER_NAME")
GROUP_ID=$(id -g "$USER_NAME")
HOME_DIR=$(getent passwd "$USER_NAME" | cut -d: -f6)
USER_SHELL=$(getent passwd "$USER_NAME" | cut -d: -f7)
RUNTIME_DIR=/run/user/$USER_ID

# set_up: whether the user's runtime folder and a cgroup of its own in every
# hierarchy are there.
set_up() {
    local mnt
    [ -d "$RUNTIME_DIR" ] || return 1
    while read -r mnt; do
        [ -d "$mnt/$CGROUP_DIR/$USER_NAME" ] || return 1
        [ "$(stat -c %u "$mnt/$CGROUP_DIR/$USER_NAME")" = "$USER_ID" ] || return 1
    done < <(cgroup_mounts)
}

if ! set_up; then
    "$HERE/lxc-user-setup.sh" "$USER_NAME" >&2 || die "lxc-user-setup.sh $USER_NAME failed"
fi
[ -d "$RUNTIME_DIR" ] || die "$RUNTIME_DIR missing after lxc-user-setup.sh $USER_NAME"

# Move this process (and so the command it becomes) into the user's cgroup
# in every hierarchy. lxc-start creates the container's cgroups below the
# caller's own ones and skips every hierarchy it cannot write to.
moved=0
while read -r mnt; do
    cg=$mnt/$CGROUP_DIR/$USER_NAME
    if [ ! -d "$cg" ] || [ "$(stat -c %u "$cg")" != "$USER_ID" ]; then
        die "$cg missing or not owned by $USER_NAME; run lxc-user-setup.sh first"
    fi
    echo "$$" >"$cg/cgroup.procs"
    moved=1
done < <(cgroup_mounts)
[ "$moved" -eq 1 ] || die "no cgroup hierarchy mounted under $CGROUP_ROOT"

# LXC resolves ~/.config/lxc, ~/.local/share/lxc and ~/.cache/lxc from HOME
# and wget reads ~/.wgetrc; nothing of root's environment is kept. No
# --no-new-privs: LXC needs the setuid newuidmap and newgidmap.
cd "$HOME_DIR"
exec setpriv --reuid="$USER_ID" --regid="$GROUP_ID" --init-groups \
    env -i \
    HOME="$HOME_DIR" USER="$USER_NAME" LOGNAME="$USER_NAME" \
    SHELL="${USER_SHELL:-/bin/sh}" \
    PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin \
    LANG=C.UTF-8 \
    XDG_RUNTIME_DIR="$RUNTIME_DIR" \
    "$@"
