#!/usr/bin/env bash
# Runs a command as an ordinary user as if logged in for LXC: in
# the cgroups that lxc-user-setup.sh delegated to the user, with a clean
# login-like environment. Output and exit status are the command's.
#
# Usage: lxc-as-user.sh USER COMMAND [ARG...]    (run as root)
#
# PAM (su, runuser -l) is avoided on purpose: Debian's pam_cgfs would move
# the process back into /user/USER/0 of only a few v1 hierarchies.
set -euo pipefail

CGROUP_ROOT=/sys/fs/cgroup
CGROUP_DIR=lxc-user

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

[ -d "$RUNTIME_DIR" ] || die "$RUNTIME_DIR missing; run lxc-user-setup.sh $USER_NAME CA_PEM first"

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
done < <(awk -v root="$CGROUP_ROOT" '
    ($3 == "cgroup" || $3 == "cgroup2") {
        dir = $2; sub("/[^/]*$", "", dir)
        if ($2 == root || dir == root) print $2
    }' /proc/self/mounts | sort -u)
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
