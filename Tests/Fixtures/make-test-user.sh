#!/usr/bin/env bash
# Creates (once) an ordinary user for unprivileged tests, with a home
# directory and 65536 subordinate uids and gids for user namespaces.
#
# Usage: make-test-user.sh [NAME]      (run as root; NAME defaults to coop-test)
# Prints: NAME UID SUBUID_START SUBGID_START
set -euo pipefail

NAME=${1:-coop-test}
COUNT=65536

if [ "$(id -u)" -ne 0 ]; then
    echo "$0: must run as root" >&2
    exit 1
fi

if ! id -u "$NAME" >/dev/null 2>&1; then
    useradd -m -s /bin/bash "$NAME"
fi
USER_ID=$(id -u "$NAME")
HOME_DIR=$(getent passwd "$NAME" | cut -d: -f6)
if [ ! -d "$HOME_DIR" ]; then
    install -d -m 0750 -o "$NAME" -g "$(id -g "$NAME")" "$HOME_DIR"
fi

touch /etc/subuid /etc/subgid

# range_start FILE: start of NAME's first range of at least COUNT ids
# (entries may name the user or its uid).
range_start() {
    awk -F: -v name="$NAME" -v uid="$USER_ID" -v count="$COUNT" \
        '($1 == name || $1 == uid) && $3 >= count { print $2; exit }' "$1"
}

# free_start: first multiple of COUNT, at least 100000, above every range
# already given out in either file, so one start fits both.
free_start() {
    awk -F: -v count="$COUNT" '
        NF >= 3 && $2 + $3 > top { top = $2 + $3 }
        END {
            start = 100000
            if (top > start) start = top
            print int((start + count - 1) / count) * count
        }' /etc/subuid /etc/subgid
}

# Recent useradd assigns ranges itself; only fill in what is missing.
SUBUID=$(range_start /etc/subuid)
SUBGID=$(range_start /etc/subgid)
if [ -z "$SUBUID" ]; then
    start=$(free_start)
    usermod --add-subuids "$start-$((start + COUNT - 1))" "$NAME"
    SUBUID=$(range_start /etc/subuid)
fi
if [ -z "$SUBGID" ]; then
    start=$(free_start)
    usermod --add-subgids "$start-$((start + COUNT - 1))" "$NAME"
    SUBGID=$(range_start /etc/subgid)
fi

if [ -z "$SUBUID" ] || [ -z "$SUBGID" ]; then
    echo "$0: could not give $NAME subordinate ids" >&2
    exit 1
fi

echo "$NAME $USER_ID $SUBUID $SUBGID"
