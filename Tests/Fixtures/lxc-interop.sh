#!/usr/bin/env bash
# End-to-end check of real LXC run by an ordinary user: lxc-create from an
# image server with the download template, lxc-start, wait until RUNNING,
# lxc-attach cat /etc/os-release (must be bookworm), lxc-stop, lxc-destroy.
# The steps can also run on their own, for containers another tool made or
# runs: create, start (start, attach, stop) and destroy.
#
# Usage: lxc-interop.sh USER SERVER [CA_PEM]    (run as root)
#   SERVER  host:port[/path] of the https image server, e.g.
#           127.0.0.1:8443/www (lxc-download builds https://SERVER/meta/...);
#           only used by the create step
#   CA_PEM  if given, lxc-user-setup.sh USER CA_PEM runs first, and
#           lxc-create trusts this CA through a private wget configuration
#           and cache (so runs against different servers do not meet in
#           ~/.wgetrc or ~/.cache/lxc); otherwise lxc-user-setup.sh must
#           have been run before, and ~/.wgetrc is used.
# Environment: LXC_INTEROP_NAME     container name (default c1)
#              LXC_INTEROP_TIMEOUT  seconds allowed per step (default 60)
#              LXC_INTEROP_VARIANT  image variant (default default)
#              LXC_INTEROP_PATH     LXC path of the container (lxc-* -P;
#                                   default the user's ~/.local/share/lxc)
#              LXC_INTEROP_STEPS    the steps to run, in this order: any of
#                                   create, start, destroy (default all)
#
# The start step prints the container's /etc/os-release, then "PID1=" and
# the command name of its PID 1. Progress and errors go to stderr. Exits
# non-zero on any failure, after removing the container if this run was to
# create it (or else stopping it).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
AS_USER=$HERE/lxc-as-user.sh

if [ "$#" -lt 2 ] || [ "$#" -gt 3 ]; then
    echo "usage: $0 USER SERVER [CA_PEM]" >&2
    exit 2
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "$0: must run as root" >&2
    exit 2
fi

USER_NAME=$1
SERVER=$2
NAME=${LXC_INTEROP_NAME:-c1}
STEP=${LXC_INTEROP_TIMEOUT:-60}
VARIANT=${LXC_INTEROP_VARIANT:-default}
STEPS=" ${LXC_INTEROP_STEPS:-create start destroy} "
ARCH=$(dpkg --print-architecture)
LXC_PATH_ARGS=()
if [ -n "${LXC_INTEROP_PATH:-}" ]; then
    LXC_PATH_ARGS=(-P "$LXC_INTEROP_PATH")
fi
for step in $STEPS; do
    case "$step" in
        create | start | destroy) ;;
        *)
            echo "$0: unknown step in LXC_INTEROP_STEPS: $step" >&2
            exit 2
            ;;
    esac
done
LOGDIR=""
ok=0

say() {
    echo "lxc-interop: $*" >&2
}

fail() {
    say "FAIL: $*"
    exit 1
}

# step NAME: NAME is one of the steps to run.
step() {
    [[ $STEPS == *" $1 "* ]]
}

# run_for SECONDS COMMAND...: COMMAND as the user, killed after SECONDS.
run_for() {
    local secs=$1
    shift
    timeout --kill-after=5 "$secs" "$AS_USER" "$USER_NAME" "$@"
}

# lxc_for SECONDS TOOL ARG...: lxc-TOOL as the user on the container's LXC
# path, killed after SECONDS.
lxc_for() {
    local secs=$1 tool=lxc-$2
    shift 2
    run_for "$secs" "$tool" "${LXC_PATH_ARGS[@]}" "$@"
}

# state: the container's state (RUNNING, STOPPED, ...), empty if unknown.
state() {
    lxc_for 10 info -n "$NAME" -s -H 2>/dev/null || true
}

exists() {
    lxc_for 10 ls -1 2>/dev/null | grep -qxF -- "$NAME"
}

# wait_state STATE: polls until the container is in STATE, for STEP seconds.
wait_state() {
    local want=$1 deadline=$((SECONDS + STEP)) st
    while :; do
        st=$(state)
        [ "$st" = "$want" ] && return 0
        if [ "$want" = RUNNING ] && [ "$st" = STOPPED ]; then
            # Started and died already: lxc-start itself still exits 0.
            fail "container $NAME stopped right after lxc-start (see logs below)"
        fi
        [ "$SECONDS" -lt "$deadline" ] || fail "container $NAME not $want after ${STEP}s (state: ${st:-unknown})"
        sleep 1
    done
}

# monitor_gone: the container's monitor ("[lxc monitor] LXCPATH NAME") has
# exited, so lxc-stop left no process behind.
monitor_gone() {
    local deadline=$((SECONDS + 10))
    while pgrep -u "$USER_NAME" -f "^\[lxc monitor\] .* ${NAME}\$" >/dev/null; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.5
    done
}

# remove_container: best effort, for leftovers of an aborted run.
remove_container() {
    if exists; then
        lxc_for "$STEP" stop -n "$NAME" -k >/dev/null 2>&1 || true
        lxc_for "$STEP" destroy -n "$NAME" -f >/dev/null 2>&1 || true
    fi
}

show_logs() {
    [ -n "$LOGDIR" ] || return 0
    if [ -s "$LOGDIR/lxc.log" ]; then
        say "lxc-start log ($LOGDIR/lxc.log), errors and warnings:"
        grep -E ' (ERROR|WARN) ' "$LOGDIR/lxc.log" | tail -n 20 >&2 || true
    fi
    if [ -s "$LOGDIR/console.log" ]; then
        say "container console ($LOGDIR/console.log), last lines:"
        tail -n 20 "$LOGDIR/console.log" >&2 || true
    fi
}

on_exit() {
    local rc=$?
    trap - EXIT
    if [ "$ok" -ne 1 ]; then
        show_logs
        # A container this run did not create is only stopped.
        if step create; then
            remove_container
            exists && say "container $NAME could not be removed"
        elif [ "$(state)" = RUNNING ]; then
            lxc_for "$STEP" stop -n "$NAME" -k >/dev/null 2>&1 || true
        fi
        [ -z "$LOGDIR" ] || say "logs kept in $LOGDIR"
        [ "$rc" -ne 0 ] || rc=1
    elif [ -n "$LOGDIR" ]; then
        rm -rf "$LOGDIR"
    fi
    exit "$rc"
}
trap on_exit EXIT

if [ "$#" -eq 3 ]; then
    "$HERE/lxc-user-setup.sh" "$USER_NAME" "$3"
fi

# The user writes lxc-start's log and the console log here.
LOGDIR=$(mktemp -d /tmp/lxc-interop.XXXXXX)
chown "$USER_NAME:" "$LOGDIR"

if step create; then
    say "removing leftovers of container $NAME, if any"
    remove_container
    exists && fail "a container $NAME exists and cannot be removed"

    # With a CA of its own, lxc-download (wget) trusts it through a private
    # configuration and keeps its image cache here too.
    create_env=()
    if [ "$#" -eq 3 ]; then
        install -o "$USER_NAME" -m 0644 "$3" "$LOGDIR/ca.pem"
        echo "ca_certificate = $LOGDIR/ca.pem" >"$LOGDIR/wgetrc"
        chown "$USER_NAME:" "$LOGDIR/wgetrc"
        create_env=(env "WGETRC=$LOGDIR/wgetrc" "LXC_CACHE_PATH=$LOGDIR/cache")
    fi
    say "lxc-create $NAME from $SERVER"
    run_for "$STEP" "${create_env[@]}" lxc-create "${LXC_PATH_ARGS[@]}" -t download -n "$NAME" -- \
        --server "$SERVER" -d debian -r bookworm -a "$ARCH" --variant "$VARIANT" >"$LOGDIR/create.log" 2>&1 ||
        fail "lxc-create failed (exit $?): $(tail -n 5 "$LOGDIR/create.log")"
    exists || fail "container $NAME not listed by lxc-ls after lxc-create"
fi

if step start; then
    exists || fail "there is no container $NAME to start"
    say "lxc-start $NAME"
    lxc_for "$STEP" start -n "$NAME" -l DEBUG -o "$LOGDIR/lxc.log" \
        -s "lxc.console.logfile=$LOGDIR/console.log" </dev/null ||
        fail "lxc-start failed (exit $?)"
    wait_state RUNNING

    # lxc-attach works once init runs; retry while systemd is coming up.
    say "lxc-attach $NAME -- cat /etc/os-release"
    deadline=$((SECONDS + STEP))
    while :; do
        if os_release=$(lxc_for 15 attach -n "$NAME" -- cat /etc/os-release \
            </dev/null 2>"$LOGDIR/attach.err"); then
            break
        fi
        st=$(state)
        [ "$st" = RUNNING ] || fail "container $NAME is ${st:-gone} while waiting for lxc-attach"
        [ "$SECONDS" -lt "$deadline" ] ||
            fail "lxc-attach did not succeed within ${STEP}s: $(tail -n 3 "$LOGDIR/attach.err")"
        sleep 1
    done
    grep -qx 'VERSION_CODENAME=bookworm' <<<"$os_release" ||
        fail "/etc/os-release in $NAME does not say bookworm:"$'\n'"$os_release"
    init=$(lxc_for 15 attach -n "$NAME" -- cat /proc/1/comm </dev/null) ||
        fail "lxc-attach $NAME -- cat /proc/1/comm failed"
    [ "$(state)" = RUNNING ] || fail "container $NAME did not stay RUNNING"

    say "lxc-stop $NAME"
    lxc_for "$STEP" stop -n "$NAME" -t $((STEP / 2)) ||
        fail "lxc-stop failed (exit $?)"
    wait_state STOPPED
    monitor_gone || fail "the monitor of $NAME is still running after lxc-stop"
fi

if step destroy; then
    say "lxc-destroy $NAME"
    lxc_for "$STEP" destroy -n "$NAME" || fail "lxc-destroy failed (exit $?)"
    ! exists || fail "container $NAME still exists after lxc-destroy"
fi

ok=1
if step start; then
    printf '%s\nPID1=%s\n' "$os_release" "$init"
fi
