#!/usr/bin/env bash
# WebSocket echo round trips per second, gw against uWSGI and gunicorn +
# UvicornWorker, 2 processes each, in the same run, alternated ROUNDS times;
# then the RSS of gw and its runners holding IDLE idle WebSockets.
#
#   GW=./gw bench/websocket.sh            (about 2 minutes)
#   GW0=./gw-main GW=./gw SERVERS="gw0-asgi gw-asgi gunicorn" IDLE_SERVERS="gw0-asgi gw-asgi" bench/websocket.sh
#                                         (before/after: GW0's binary as gw0-asgi, alternated with the others)
#
# Servers (apps in internal/e2e/testdata/python):
#   gw ASGI       asgi/ws_app.py (FastAPI websocket echo), --workers 2
#   gw WSGI       uwsgi_ws_app.py (Flask on uWSGI's websocket_* API), --workers 2
#   uWSGI         the same uwsgi_ws_app.py, --http-socket, 2 processes x 32 threads
#   gunicorn      asgi/ws_app.py, -w 2 -k uvicorn.workers.UvicornWorker (python3-websockets)
# Load: bench/wsecho (Go, github.com/coder/websocket), 32-byte text
# messages, CONNS connection counts, DURATION s each after a 1 s warm-up.
# Loopback only; every process it starts is stopped by PID on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
GW=$(realpath "${GW:-./gw}")
GW0=${GW0:+$(realpath "$GW0")}
SERVERS=${SERVERS:-"gw-asgi gw-wsgi uwsgi gunicorn"}
IDLE_SERVERS=${IDLE_SERVERS:-"gw-asgi gw-wsgi"}
PY=${PY:-/usr/bin/python3}
DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-2}
CONNS=${CONNS:-"1 32"}
IDLE=${IDLE:-1000}
PORT=${PORT:-18799}
ADDR=127.0.0.1:$PORT
DIR=$(realpath internal/e2e/testdata/python)
WORK=$(mktemp -d /tmp/gw-wsbench.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
go build -o "$WORK/wsecho" ./bench/wsecho

start() {   # $1 = server name; sets URL
    case $1 in
    gw0-asgi)
        "$GW0" run --allow-root --workers 2 --http "$ADDR" --interpreter "$PY" --dir "$DIR" asgi.ws_app:app >"$WORK/s.log" 2>&1 & PIDS+=($!)
        URL=ws://$ADDR/echo ;;
    gw-asgi)
        "$GW" run --allow-root --workers 2 --http "$ADDR" --interpreter "$PY" --dir "$DIR" asgi.ws_app:app >"$WORK/s.log" 2>&1 & PIDS+=($!)
        URL=ws://$ADDR/echo ;;
    gw-wsgi)
        "$GW" run --allow-root --workers 2 --http "$ADDR" --interpreter "$PY" --dir "$DIR" uwsgi_ws_app:app >"$WORK/s.log" 2>&1 & PIDS+=($!)
        URL=ws://$ADDR/echo ;;
    uwsgi)
        uwsgi --plugin python3 --http-socket "$ADDR" --chdir "$DIR" --wsgi-file uwsgi_ws_app.py --callable app \
            --master --processes 2 --threads 32 --die-on-term --disable-logging >"$WORK/s.log" 2>&1 & PIDS+=($!)
        URL=ws://$ADDR/echo ;;
    gunicorn)
        "$PY" -m gunicorn -w 2 -k uvicorn.workers.UvicornWorker --chdir "$DIR/asgi" -b "$ADDR" ws_app:app >"$WORK/s.log" 2>&1 & PIDS+=($!)
        URL=ws://$ADDR/echo ;;
    esac
    for _ in $(seq 150); do curl -s -o /dev/null "http://$ADDR/" && return 0; sleep 0.1; done
    echo "$1 did not come up:" >&2; cat "$WORK/s.log" >&2; return 1
}

stop() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; PIDS=(); }

children() { local p=$1 c; for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do echo "$c"; children "$c"; done; }
rss() { awk '/VmRSS/ {printf "%.0f", $2/1024}' /proc/"$1"/status 2>/dev/null || echo "?"; }

echo "| server | conns | round | round trips/s | p50 | p99 | load avg (1m) |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for round in $(seq "$ROUNDS"); do
    for s in $SERVERS; do
        start "$s"
        for c in $CONNS; do
            out=$("$WORK/wsecho" -url "$URL" -c "$c" -d "${DURATION}s")
            read -r _ rts _ p50 _ p99 _ _ <<<"$out"
            printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$s" "$c" "$round" "$rts" "$p50" "$p99" "$(cut -d' ' -f1 /proc/loadavg)"
        done
        stop
    done
done

echo
echo "| server | $IDLE idle WebSockets: gw RSS MiB | runners RSS MiB |"
echo "|---|---:|---|"
for s in $IDLE_SERVERS; do
    start "$s"
    gwpid=${PIDS[0]}
    "$WORK/wsecho" -url "$URL" -idle "$IDLE" -hold 60s >"$WORK/idle.out" 2>&1 & PIDS+=($!)
    for _ in $(seq 600); do grep -qs '^open' "$WORK/idle.out" && break; sleep 0.1; done
    grep -q '^open' "$WORK/idle.out" || { echo "$s: idle sockets did not open:" >&2; cat "$WORK/idle.out" >&2; exit 1; }
    sleep 1   # let allocations settle; not synchronisation
    r=""; for c in $(children "$gwpid"); do r="$r $(rss "$c")"; done
    printf '| %s | %s |%s |\n' "$s" "$(rss "$gwpid")" "$r"
    stop
done
