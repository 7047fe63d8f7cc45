#!/usr/bin/env bash
# Prepares an ordinary user to run real LXC (lxc-create -t download,
# lxc-start, lxc-attach, lxc-stop, lxc-destroy) as an unprivileged user on a
# host without systemd, with a cgroup v1 (legacy or hybrid) layout.
#
# Usage: lxc-user-setup.sh USER [CA_PEM]    (run as root; idempotent)
#
# USER needs a subordinate uid and gid range of at least 65536 ids (see
# make-test-user.sh). CA_PEM is the CA that signed the image server's
# certificate; lxc-download fetches with wget over https only. Without it
# the wget configuration is left as it is (lxc-as-user.sh sets up that way).
#
# What it sets up:
#   ~/.config/lxc/default.conf  id map from /etc/subuid and /etc/subgid, no
#                               network (a veth would need lxc-user-nic)
#   ~/.config/lxc/ca.pem, ~/.wgetrc  wget trusts the fixture CA
#   /run/user/UID               XDG_RUNTIME_DIR, as a login would make it
#   /sys/fs/cgroup/*/lxc-user/USER  a cgroup owned by USER in every
#                               hierarchy; lxc-as-user.sh runs commands in it
# Processes must be moved into the cgroups by lxc-as-user.sh: without a
# writable cgroup LXC skips every hierarchy and systemd in the guest dies
# with "Failed to create /init.scope control group: Permission denied".
set -euo pipefail

COUNT=65536
# shellcheck source=cgroups.sh
source "$(dirname "${BASH_SOURCE[0]}")/cgroups.sh"
CGROUP_DIR=lxc-user

die() {
    echo "$(basename "$0"): $*" >&2
    exit 1
}

[ "$#" -eq 1 ] || [ "$#" -eq 2 ] || die "usage: $0 USER [CA_PEM]"
[ "$(id -u)" -eq 0 ] || die "must run as root"

USER_NAME=$1
CA_PEM=${2:-}

id -u "$USER_NAME" >/dev/null 2>&1 || die "no such user: $USER_NAME"
if [ -n "$CA_PEM" ] && { [ ! -r "$CA_PEM" ] || [ ! -s "$CA_PEM" ]; }; then
    die "cannot read CA certificate $CA_PEM"
fi

USER_ID=$(id -u "$USER_NAME")
GROUP_ID=$(id -g "$USER_NAME")
HOME_DIR=$(getent passwd "$USER_NAME" | cut -d: -f6)
[ -d "$HOME_DIR" ] || die "home directory $HOME_DIR of $USER_NAME does not exist"

# range_start FILE: start of the user's first range of at least COUNT ids
# (entries may name the user or its uid).
range_start() {
    awk -F: -v name="$USER_NAME" -v uid="$USER_ID" -v count="$COUNT" \
        '($1 == name || $1 == uid) && $3 >= count { print $2; exit }' "$1" 2>/dev/null
}

SUBUID=$(range_start /etc/subuid)
SUBGID=$(range_start /etc/subgid)
[ -n "$SUBUID" ] || die "$USER_NAME has no range of $COUNT subordinate uids in /etc/subuid"
[ -n "$SUBGID" ] || die "$USER_NAME has no range of $COUNT subordinate gids in /etc/subgid"

# LXC maps the ids with the setuid helpers from the uidmap package.
for helper in newuidmap newgidmap; do
    path=$(command -v "$helper" || true)
    if [ -z "$path" ] || [ ! -u "$path" ]; then
        die "$helper missing or not setuid (install uidmap)"
    fi
done

# User namespaces must be open to ordinary users. Debian kernels have a
# switch for it; upstream kernels only have the namespace limit.
if [ -e /proc/sys/kernel/unprivileged_userns_clone ] &&
    [ "$(cat /proc/sys/kernel/unprivileged_userns_clone)" != 1 ]; then
    sysctl -q -w kernel.unprivileged_userns_clone=1
fi
if [ "$(cat /proc/sys/user/max_user_namespaces)" -eq 0 ]; then
    die "user.max_user_namespaces is 0: user namespaces are disabled"
fi

# as_user_file MODE PATH: makes PATH (content on stdin) owned by the user,
# replaced in one step.
as_user_file() {
    local mode=$1 path=$2 tmp
    tmp=$(mktemp "$path.XXXXXX")
    cat >"$tmp"
    chown "$USER_ID:$GROUP_ID" "$tmp"
    chmod "$mode" "$tmp"
    mv -f "$tmp" "$path"
}

# The container's root (SUBUID on the host) has to reach the rootfs under
# ~/.local/share/lxc, so every directory on the way must be searchable.
install -d -o "$USER_ID" -g "$GROUP_ID" -m 0755 \
    "$HOME_DIR/.config" "$HOME_DIR/.config/lxc" \
    "$HOME_DIR/.local" "$HOME_DIR/.local/share" "$HOME_DIR/.local/share/lxc"
for dir in "$HOME_DIR" "$HOME_DIR/.local" "$HOME_DIR/.local/share" \
    "$HOME_DIR/.local/share/lxc"; do
    if [ "$(($(stat -c '0%a' "$dir") & 01))" -eq 0 ]; then
        chmod o+x "$dir"
    fi
done

# /etc/lxc/default.conf brings a veth on lxcbr0, which an unprivileged
# user could only get through lxc-user-nic and /etc/lxc/lxc-usernet:
# "lxc.net =" drops it and the container gets a loopback-only network.
as_user_file 0644 "$HOME_DIR/.config/lxc/default.conf" <<EOF
lxc.include = /etc/lxc/default.conf
lxc.idmap = u 0 $SUBUID $COUNT
lxc.idmap = g 0 $SUBGID $COUNT
lxc.net =
lxc.net.0.type = empty
EOF

# lxc-download runs wget as the user, inside a user namespace, and the
# file must stay readable there: keep a copy in the user's home.
if [ -n "$CA_PEM" ]; then
    as_user_file 0644 "$HOME_DIR/.config/lxc/ca.pem" <"$CA_PEM"
    WGETRC=$HOME_DIR/.wgetrc
    {
        if [ -f "$WGETRC" ]; then
            grep -v -i -E '^[[:space:]]*ca_?certificate[[:space:]]*=' "$WGETRC" || true
        fi
        echo "ca_certificate = $HOME_DIR/.config/lxc/ca.pem"
    } | as_user_file 0644 "$WGETRC"
fi

# Without logind nobody creates XDG_RUNTIME_DIR; LXC keeps its locks there.
install -d -m 0755 /run/user
install -d -o "$USER_ID" -g "$GROUP_ID" -m 0700 "/run/user/$USER_ID"

# Files a cgroup2 owner needs to write to delegate a subtree.
delegate_files() {
    if [ -r /sys/kernel/cgroup/delegate ]; then
        cat /sys/kernel/cgroup/delegate
    else
        printf '%s\n' cgroup.procs cgroup.threads cgroup.subtree_control
    fi
}

# cpuset_fill DIR: a v1 cpuset cgroup takes no task until cpus and mems are
# set; copy them from the parent unless the mount has clone_children.
cpuset_fill() {
    local dir=$1 file
    for file in cpuset.cpus cpuset.mems; do
        [ -e "$dir/$file" ] || continue
        if [ -z "$(tr -d '[:space:]' <"$dir/$file")" ]; then
            cat "$(dirname "$dir")/$file" >"$dir/$file"
        fi
    done
}

found=0
while read -r mnt; do
    [ -n "$mnt" ] || continue
    found=1
    base=$mnt/$CGROUP_DIR
    cg=$base/$USER_NAME
    mkdir -p "$cg"
    cpuset_fill "$base"
    cpuset_fill "$cg"
    # The user creates the containers' cgroups below and moves processes in.
    chown "$USER_ID:$GROUP_ID" "$cg"
    if [ "$(stat -f -c %T "$mnt")" = cgroup2fs ]; then
        files=$(delegate_files)
    else
        files="cgroup.procs tasks"
    fi
    for file in $files; do
        if [ -e "$cg/$file" ]; then
            chown "$USER_ID:$GROUP_ID" "$cg/$file"
        fi
    done
done < <(cgroup_mounts)
[ "$found" -eq 1 ] || die "no cgroup hierarchy mounted under $CGROUP_ROOT"
