#!/usr/bin/env bash
# The web service against nginx (and `twistd web` when Twisted is installed) serving the same
# folder on this machine, in one alternating run: wrk, keep-alive, 64 connections, for a 1 KiB
# file, a 100 KiB file, a directory listing, and a reverse proxy to a small upstream (an nginx
# serving a 1 KiB file, shared by every proxy). Prints requests/s per row and server, the
# ratio to nginx, and the idle and peak RSS of each server.
#
#   bash bench/web.sh                 # needs: apt-get install -y wrk nginx
#   TWISTD=/path/to/venv/bin/twistd bash bench/web.sh   # adds twistd web as a third column
#   SECONDS_PER_RUN=5 ROUNDS=3 bash bench/web.sh
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in wrk nginx; do
    command -v "$tool" >/dev/null || { echo "bench/web.sh needs $tool: apt-get install -y wrk nginx" >&2; exit 1; }
done
SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-64}
TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
cargo build --release -q -p rtwisted-cli --bin rtwistd
RTWISTD="$TARGET_DIR/release/rtwistd"

WORK=$(mktemp -d /tmp/rtwisted-web-bench.XXXXXX)
chmod 755 "$WORK"  # nginx workers run as another user when started by root
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
    [ -f "$WORK/upstream.pid" ] && kill "$(cat "$WORK/upstream.pid")" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# The folder: two files and a folder of 100 files to list.
mkdir -p "$WORK/root/list" "$WORK/upstream"
head -c 1024 /dev/urandom > "$WORK/root/1k.bin"
head -c 102400 /dev/urandom > "$WORK/root/100k.bin"
for i in $(seq -w 1 100); do head -c $((10#$i * 37)) /dev/urandom > "$WORK/root/list/file-$i.txt"; done
head -c 1024 /dev/urandom > "$WORK/upstream/small.bin"

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
UP=$(port); NG=$(port); RT=$(port); TW=$(port)

wait_port() {
    for _ in $(seq 1 500); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.02
    done
    echo "nothing listens on port $1" >&2; exit 1
}

nginx_conf() { # $1 = name, $2 = body of the http block
    cat > "$WORK/$1.conf" <<CONF
worker_processes auto;
pid $WORK/$1.pid;
error_log $WORK/$1-error.log;
daemon on;
events { worker_connections 4096; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_body_temp_path $WORK/tmp-$1;
    proxy_temp_path $WORK/tmp-$1;
    fastcgi_temp_path $WORK/tmp-$1;
    uwsgi_temp_path $WORK/tmp-$1;
    scgi_temp_path $WORK/tmp-$1;
    $2
}
CONF
}
nginx_conf upstream "access_log off; server { listen 127.0.0.1:$UP; root $WORK/upstream; }"
nginx_conf nginx "access_log $WORK/nginx-access.log combined buffer=64k flush=1s;
    upstream small { server 127.0.0.1:$UP; keepalive 64; }
    server {
        listen 127.0.0.1:$NG;
        root $WORK/root;
        autoindex on;
        location /api/ {
            proxy_pass http://small/;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
        }
    }"
nginx -c "$WORK/upstream.conf" -e "$WORK/upstream-error.log" 2>/dev/null || nginx -c "$WORK/upstream.conf"
nginx -c "$WORK/nginx.conf" -e "$WORK/nginx-error.log" 2>/dev/null || nginx -c "$WORK/nginx.conf"
wait_port "$UP"; wait_port "$NG"

"$RTWISTD" -n -o --pidfile "" -l "$WORK/rtwistd.log" web --path "$WORK/root" --port "tcp:$RT:interface=127.0.0.1:backlog=1024" \
    --proxy "/api=tcp:127.0.0.1:$UP" --access-log "$WORK/rtwistd-access.log" &
PIDS+=($!); RT_PID=$!
wait_port "$RT"

SERVERS=(rtwistd nginx)
declare -A PORTS=([rtwistd]=$RT [nginx]=$NG)
if [ -n "${TWISTD:-}" ]; then
    cat > "$WORK/twisted.tac" <<TAC
from twisted.application import service, strports
from twisted.web import server, static, proxy
root = static.File("$WORK/root")
root.putChild(b"api", proxy.ReverseProxyResource("127.0.0.1", $UP, b""))
application = service.Application("web")
strports.service("tcp:$TW:interface=127.0.0.1", server.Site(root, logPath="$WORK/twisted-access.log")).setServiceParent(application)
TAC
    (cd "$WORK" && exec "$TWISTD" -n -l "$WORK/twistd.log" --pidfile= -y "$WORK/twisted.tac") &
    PIDS+=($!); TW_PID=$!
    wait_port "$TW"
    SERVERS+=(twistd)
    PORTS[twistd]=$TW
fi

rss_kb() { # total VmRSS (or VmHWM with $2=peak) of a pid and its children
    local field=${2:-VmRSS} total=0
    for pid in $1 $(pgrep -P "$1" || true); do
        local v; v=$(awk -v f="$field:" '$1==f {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
        total=$((total + ${v:-0}))
    done
    echo "$total"
}
nginx_master=$(cat "$WORK/nginx.pid")
declare -A IDLE PEAK_PID=([rtwistd]=$RT_PID [nginx]=$nginx_master)
[ -n "${TWISTD:-}" ] && PEAK_PID[twistd]=$TW_PID
sleep 0.5
for s in "${SERVERS[@]}"; do IDLE[$s]=$(rss_kb "${PEAK_PID[$s]}"); done

ROWS=("1 KiB file|/1k.bin" "100 KiB file|/100k.bin" "directory listing (100 files)|/list/" "reverse proxy, 1 KiB upstream|/api/small.bin")
declare -A BEST
for row in "${ROWS[@]}"; do
    path=${row#*|}
    for s in "${SERVERS[@]}"; do
        code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${PORTS[$s]}$path" || true)
        [ "$code" = 200 ] || { echo "$s answers $code for $path" >&2; exit 1; }
    done
done
for round in $(seq 1 "$ROUNDS"); do
    for row in "${ROWS[@]}"; do
        name=${row%%|*}; path=${row#*|}
        for s in "${SERVERS[@]}"; do
            rps=$(wrk -t2 -c"$CONNECTIONS" -d"${SECONDS_PER_RUN}s" "http://127.0.0.1:${PORTS[$s]}$path" | awk '/Requests\/sec/ {print $2}')
            key="$name|$s"
            if [ -z "${BEST[$key]:-}" ] || awk -v a="$rps" -v b="${BEST[$key]}" 'BEGIN{exit !(a>b)}'; then BEST[$key]=$rps; fi
            echo "round $round  $name  $s  $rps req/s" >&2
        done
    done
done

declare -A PEAK
for s in "${SERVERS[@]}"; do PEAK[$s]=$(rss_kb "${PEAK_PID[$s]}" VmHWM); done

echo
echo "wrk, keep-alive, $CONNECTIONS connections, best of $ROUNDS alternating runs of ${SECONDS_PER_RUN}s (requests/s)"
header="| row | rtwistd | nginx | rtwistd / nginx |"; sep="| --- | ---: | ---: | ---: |"
if [ -n "${TWISTD:-}" ]; then header="$header twistd web | rtwistd / twistd |"; sep="$sep ---: | ---: |"; fi
echo "$header"; echo "$sep"
for row in "${ROWS[@]}"; do
    name=${row%%|*}
    rt=${BEST["$name|rtwistd"]}; ng=${BEST["$name|nginx"]}
    line=$(awk -v n="$name" -v a="$rt" -v b="$ng" 'BEGIN{printf "| %s | %\047d | %\047d | %.2f |", n, a, b, a/b}')
    if [ -n "${TWISTD:-}" ]; then
        tw=${BEST["$name|twistd"]}
        line="$line$(awk -v a="$rt" -v c="$tw" 'BEGIN{printf " %\047d | %.0fx |", c, a/c}')"
    fi
    echo "$line"
done
echo
echo "| memory | rtwistd | nginx (master + workers) |$( [ -n "${TWISTD:-}" ] && echo ' twistd web |')"
echo "| --- | ---: | ---: |$( [ -n "${TWISTD:-}" ] && echo ' ---: |')"
for what in idle peak; do
    line="| RSS $( [ $what = idle ] && echo 'idle, after start' || echo 'peak, under load (VmHWM)') |"
    for s in "${SERVERS[@]}"; do
        v=$( [ $what = idle ] && echo "${IDLE[$s]}" || echo "${PEAK[$s]}")
        line="$line $(awk -v k="$v" 'BEGIN{printf "%.1f MB", k/1024}') |"
    done
    echo "$line"
done
