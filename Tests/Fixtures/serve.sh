#!/usr/bin/env bash
# Runs a local nginx that serves the image fixture tree over http and https,
# bound to 127.0.0.1 only.
#
# Usage: serve.sh start WWW STATE    (WWW is OUT/www from build-images.sh)
#        serve.sh stop STATE
#
# STATE receives nginx.conf, nginx.pid, logs, ports (shell-sourceable
# HTTP_PORT=/HTTPS_PORT=) and tls/ with a throw-away CA (tls/ca.pem) and a
# server certificate for 127.0.0.1 and localhost. The CA is kept and reused
# across runs so that clients can be pointed at one file.
#
# Besides the sites under WWW, both ports serve:
#   /         200 "coop fixture server"
#   /err500/  500 for every path
#   /stall/   the "good" site, but rootfs.tar.xz stalls after 16 KiB (1 byte/s)
#   /slow/    the "good" site, with rootfs.tar.xz at 4 MB/s
# and a third port, PROXY_PORT, is a forward proxy for plain http (log: proxy.log).
# nginx stops by itself after 3 hours if stop is never called.
set -euo pipefail

usage() {
    echo "usage: $0 start WWW STATE | $0 stop STATE" >&2
    exit 2
}

# alive PID: the process exists and is not a zombie.
alive() {
    [ -r "/proc/$1/stat" ] && ! grep -q '^[0-9]* ([^)]*) Z' "/proc/$1/stat" 2>/dev/null
}

# nginx_pid STATE: prints the pid of a running nginx master for STATE.
nginx_pid() {
    local pid
    [ -s "$1/nginx.pid" ] || return 1
    pid=$(tr -dc '0-9' <"$1/nginx.pid")
    [ -n "$pid" ] && alive "$pid" &&
        [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = nginx ] || return 1
    echo "$pid"
}

# free_ports: three distinct unused TCP ports on 127.0.0.1.
free_ports() {
    python3 -c '
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
'
}

# make_tls DIR: CA (kept if present) and a server certificate signed by it.
make_tls() {
    local dir=$1
    mkdir -p "$dir"
    chmod 0755 "$dir"
    if [ ! -s "$dir/ca.pem" ] || [ ! -s "$dir/ca.key" ]; then
        cat >"$dir/ca.cnf" <<'EOF'
[req]
distinguished_name = dn
x509_extensions = v3_ca
prompt = no
[dn]
CN = Coop Fixture CA
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
EOF
        (umask 077 && openssl req -x509 -new -newkey rsa:2048 -nodes -sha256 \
            -days 3650 -config "$dir/ca.cnf" \
            -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null)
        chmod 0644 "$dir/ca.pem"
        rm -f "$dir/server.pem"
    fi
    if [ -s "$dir/server.pem" ] && [ -s "$dir/server.key" ] &&
        openssl verify -CAfile "$dir/ca.pem" "$dir/server.pem" >/dev/null 2>&1 &&
        openssl x509 -checkend 86400 -noout -in "$dir/server.pem" >/dev/null; then
        return 0
    fi
    cat >"$dir/server.ext" <<'EOF'
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer
EOF
    (umask 077 && openssl req -new -newkey rsa:2048 -nodes -subj /CN=localhost \
        -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null)
    openssl x509 -req -sha256 -days 825 -in "$dir/server.csr" \
        -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
        -set_serial "0x$(openssl rand -hex 16)" \
        -extfile "$dir/server.ext" -out "$dir/server.pem" 2>/dev/null
    chmod 0644 "$dir/server.pem"
    rm -f "$dir/server.csr"
}

# write_conf STATE WWW HTTP_PORT HTTPS_PORT PROXY_PORT
write_conf() {
    local state=$1 www=$2 http=$3 https=$4 proxy=$5 user=""
    # nginx refuses "user" unless the master runs as root.
    if [ "$(id -u)" -eq 0 ]; then
        user="user nobody nogroup;"
    fi
    cat >"$state/nginx.conf" <<EOF
$user
daemon off;
master_process on;
worker_processes 1;
pid "$state/nginx.pid";
error_log "$state/error.log" warn;

events {
    worker_connections 256;
}

http {
    types {
        application/json json;
        application/pgp-signature asc;
        application/x-xz xz;
        application/x-tar tar;
        text/plain txt;
    }
    default_type application/octet-stream;
    access_log "$state/access.log";
    client_body_temp_path "$state/tmp/client_body";
    proxy_temp_path "$state/tmp/proxy";
    fastcgi_temp_path "$state/tmp/fastcgi";
    uwsgi_temp_path "$state/tmp/uwsgi";
    scgi_temp_path "$state/tmp/scgi";
    sendfile on;
    autoindex off;
    server_tokens off;

    server {
        listen 127.0.0.1:$http;
        listen 127.0.0.1:$https ssl;
        server_name localhost 127.0.0.1;
        ssl_certificate "$state/tls/server.pem";
        ssl_certificate_key "$state/tls/server.key";
        # TLS 1.3 as well: LXD's client speaks nothing older (nginx 1.22 offers up to 1.2 by default).
        ssl_protocols TLSv1.2 TLSv1.3;
        root "$www";

        location = / {
            default_type text/plain;
            return 200 "coop fixture server";
        }

        location /err500/ {
            return 500;
        }

        # Small files arrive at once; for rootfs.tar.xz the status line,
        # headers and the first 16 KiB do too, then 1 byte/s: a client has
        # to notice a transfer that stalls in the middle of the body.
        # The good site with rootfs.tar.xz at 4 MB/s: slow enough to kill a
        # download halfway or to race two of them.
        location /slow/ {
            alias "$www/good/";
            location ~ /rootfs\.tar\.xz\$ {
                limit_rate 4m;
            }
        }

        location /stall/ {
            alias "$www/good/";
            location ~ /rootfs\.tar\.xz\$ {
                limit_rate_after 16k;
                limit_rate 1;
            }
        }
    }

    # A forward proxy for plain http, logging what passes through it: for clients that must
    # honour http_proxy and no_proxy.
    server {
        listen 127.0.0.1:$proxy;
        access_log "$state/proxy.log";
        location / {
            proxy_pass http://127.0.0.1:$http;
        }
    }
}
EOF
}

# answers HTTP_PORT HTTPS_PORT CA: both ports serve GET /.
answers() {
    curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$1/" 2>/dev/null &&
        curl -fsS -o /dev/null --max-time 2 --cacert "$3" \
            "https://127.0.0.1:$2/" 2>/dev/null
}

start() {
    local www=$1 state=$2 pid launcher attempt i http https
    www=$(realpath -e "$www")
    mkdir -p "$state"
    state=$(realpath -e "$state")
    chmod 0755 "$state"

    if pid=$(nginx_pid "$state"); then
        if [ "$(cat "$state/www" 2>/dev/null)" != "$www" ]; then
            echo "$0: nginx $pid already serves another tree from $state" >&2
            exit 1
        fi
        cat "$state/ports"
        return 0
    fi

    # The workers run as nobody when started by root and must reach WWW.
    if [ "$(id -u)" -eq 0 ] &&
        ! setpriv --reuid=nobody --regid=nogroup --clear-groups test -r "$www" -a -x "$www"; then
        echo "$0: $www is not readable by user nobody" >&2
        exit 1
    fi

    make_tls "$state/tls"
    mkdir -p "$state/tmp"
    rm -f "$state/nginx.pid" "$state/ports"
    echo "$www" >"$state/www"

    # A port picked as free can be taken before nginx binds it; retry then.
    for attempt in 1 2 3; do
        read -r http https proxy < <(free_ports)
        write_conf "$state" "$www" "$http" "$https" "$proxy"
        # Detached from the caller's session and output so that a test
        # runner waiting for the script's output does not wait for nginx.
        setsid timeout 3h nginx -e "$state/error.log" -p "$state/" \
            -c "$state/nginx.conf" </dev/null >>"$state/nginx.out" 2>&1 &
        launcher=$!
        for ((i = 0; i < 100; i++)); do
            if ! alive "$launcher"; then
                break
            fi
            if nginx_pid "$state" >/dev/null &&
                answers "$http" "$https" "$state/tls/ca.pem"; then
                printf 'HTTP_PORT=%s\nHTTPS_PORT=%s\nPROXY_PORT=%s\n' "$http" "$https" "$proxy" >"$state/ports.tmp"
                mv "$state/ports.tmp" "$state/ports"
                cat "$state/ports"
                return 0
            fi
            sleep 0.1
        done
        # Not up within 10 s: make sure this attempt leaves nothing behind.
        if pid=$(nginx_pid "$state"); then
            stop_pid "$pid"
        fi
        if alive "$launcher"; then
            kill "$launcher" 2>/dev/null || true
        fi
        echo "$0: nginx did not come up (attempt $attempt)" >&2
    done
    tail -n 20 "$state/error.log" >&2 || true
    exit 1
}

# stop_pid PID: fast shutdown of an nginx master, then SIGKILL if it hangs.
stop_pid() {
    local pid=$1 children i
    children=$(cat "/proc/$pid/task/$pid/children" 2>/dev/null || true)
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        alive "$pid" || return 0
        sleep 0.1
    done
    # shellcheck disable=SC2086 # word splitting of the pid list is wanted
    kill -KILL "$pid" $children 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        alive "$pid" || return 0
        sleep 0.1
    done
    echo "$0: nginx $pid does not exit" >&2
    return 1
}

stop() {
    local state=$1 pid
    if pid=$(nginx_pid "$state"); then
        stop_pid "$pid"
    fi
    rm -f "$state/nginx.pid" "$state/ports"
}

case "${1:-}" in
    start)
        [ "$#" -eq 3 ] || usage
        start "$2" "$3"
        ;;
    stop)
        [ "$#" -eq 2 ] || usage
        stop "$2"
        ;;
    *) usage ;;
esac
