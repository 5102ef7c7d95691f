#!/usr/bin/env bash
# nginx uwsgi_pass in front of gw vs in front of uWSGI, same Python app,
# same worker count, same load: the deployment most uWSGI users have.
#
#   GW=./gw bench/nginx_uwsgi.sh [APP.py]      (defaults: ../shared/bench/apps/hello.py)
#
# Needs nginx, wrk, uwsgi-core + uwsgi-plugin-python3. Loopback only; every
# process it starts is stopped by PID on exit.
set -euo pipefail
GW=${GW:-./gw}
APP=$(realpath "${1:-../shared/bench/apps/hello.py}")
DURATION=${DURATION:-8}
CONNS=${CONNS:-32}
PORT=${PORT:-18777}
WORK=$(mktemp -d /tmp/gw-nginx-uwsgi.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

start_nginx() {   # $1 = socket
    local user=""
    [ "$(id -u)" = 0 ] && user="user root;"   # workers must reach the 0700 socket dir
    cat >"$WORK/nginx.conf" <<CONF
$user
daemon off; master_process on; worker_processes 1; error_log $WORK/nginx.err; pid $WORK/nginx.pid;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $WORK/body; uwsgi_temp_path $WORK/uwsgi;
    proxy_temp_path $WORK/p; fastcgi_temp_path $WORK/f; scgi_temp_path $WORK/s;
    server { listen 127.0.0.1:$PORT; location / { include /etc/nginx/uwsgi_params; uwsgi_pass unix:$1; } }
}
CONF
    nginx -p "$WORK" -c "$WORK/nginx.conf" & PIDS+=($!)
}

wait_up() { for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PORT/" >/dev/null && return 0; sleep 0.1; done; echo "not up" >&2; return 1; }

measure() {   # $1 = label
    wrk -t1 -c"$CONNS" -d2s "http://127.0.0.1:$PORT/" >/dev/null
    local out rps p50 p99
    out=$(wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "http://127.0.0.1:$PORT/")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p50=$(awk '$1=="50%" {print $2}' <<<"$out")
    p99=$(awk '$1=="99%" {print $2}' <<<"$out")
    printf '| %-28s | %10s | %8s | %8s |\n' "$1" "$rps" "$p50" "$p99"
}

stop_all() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; PIDS=(); }

echo "| nginx uwsgi_pass to | req/s c$CONNS | p50 | p99 |"
echo "|---|---:|---:|---:|"
uwsgi --master --processes 2 --disable-logging --die-on-term --plugins python3 \
      --socket "$WORK/uwsgi.sock" --wsgi-file "$APP" >"$WORK/uwsgi.log" 2>&1 & PIDS+=($!)
start_nginx "$WORK/uwsgi.sock"; wait_up; measure "uWSGI (--socket, 2 workers)"; stop_all
"$GW" run --allow-root --workers 2 --uwsgi "unix:$WORK/gw.sock" "$APP" >"$WORK/gw.log" 2>&1 & PIDS+=($!)
start_nginx "$WORK/gw.sock"; wait_up; measure "gw (--uwsgi, 2 workers)"; stop_all
