#!/usr/bin/env bash
# faye-websocket echo (internal/e2e/testdata/ruby/hijack/config.ru, /faye)
# under gw and under Puma, same app, WORKERS processes x THREADS threads
# each, alternated ROUNDS times (the order reversed every other round):
# round trips per second and CPU per round trip of gw's own process, of its
# runners, and of Puma's whole tree (utime+stime from /proc, before and
# after each timed run).
#
#   GW=./gw [GW0=./gw-old] bench/faye.sh      (about 1 minute per round)
#
# GW0, when set, is a second gw binary measured alongside (before/after).
# Load: bench/wsecho (Go, coder/websocket), 32-byte text messages, CONNS
# connection counts, DURATION s each after a 1 s warm-up. Loopback only;
# every process it starts is stopped by PID on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
GW=$(realpath "${GW:-./gw}")
GW0=${GW0:+$(realpath "$GW0")}
DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-2}
CONNS=${CONNS:-"1 32"}
WORKERS=${WORKERS:-2}
THREADS=${THREADS:-4}
PORT=${PORT:-18797}
ADDR=127.0.0.1:$PORT
APP=$(realpath internal/e2e/testdata/ruby/hijack/config.ru)
WORK=$(mktemp -d /tmp/gw-fayebench.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
go build -o "$WORK/wsecho" ./bench/wsecho
HZ=$(getconf CLK_TCK)

start() {   # $1 = server name
    case $1 in
    gw)  "$GW" run --allow-root --workers "$WORKERS" --threads "$THREADS" --http "$ADDR" "$APP" >"$WORK/s.log" 2>&1 & PIDS+=($!) ;;
    gw0) "$GW0" run --allow-root --workers "$WORKERS" --threads "$THREADS" --http "$ADDR" "$APP" >"$WORK/s.log" 2>&1 & PIDS+=($!) ;;
    puma) RACK_ENV=deployment puma -w "$WORKERS" -t "$THREADS:$THREADS" -b "tcp://$ADDR" "$APP" >"$WORK/s.log" 2>&1 & PIDS+=($!) ;;
    esac
    for _ in $(seq 300); do
        if curl -s -o /dev/null "http://$ADDR/info"; then
            # Puma's workers boot after the port opens: wait for them.
            [ "$1" != puma ] || [ "$(children "${PIDS[0]}" | wc -l)" -ge "$WORKERS" ] && return 0
        fi
        sleep 0.1
    done
    echo "$1 did not come up:" >&2; cat "$WORK/s.log" >&2; return 1
}
stop() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; PIDS=(); }
children() { local p=$1 c; for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do echo "$c"; children "$c"; done; }
ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14+$15}' /proc/"$p"/stat 2>/dev/null || echo 0))); done; echo "$t"; }

echo "| server | conns | round | round trips/s | CPU µs/rt: server | runners | load avg (1m) |"
echo "|---|---:|---:|---:|---:|---:|---:|"
servers="gw puma"; [ -n "$GW0" ] && servers="gw0 gw puma"
for round in $(seq "$ROUNDS"); do
    order=$servers; [ $((round % 2)) = 0 ] && order=$(echo "$servers" | tr ' ' '\n' | tac | tr '\n' ' ')
    for s in $order; do
        start "$s"
        main=${PIDS[0]}
        for c in $CONNS; do
            "$WORK/wsecho" -url "ws://$ADDR/faye" -c "$c" -d 1s -warm 0s >/dev/null # warm every worker's EventMachine
            kids=$(children "$main" | tr '\n' ' ')
            m0=$(ticks "$main"); k0=$(ticks $kids)
            out=$("$WORK/wsecho" -url "ws://$ADDR/faye" -c "$c" -d "${DURATION}s" -warm 0s)
            m1=$(ticks "$main"); k1=$(ticks $kids)
            read -r _ rts _ _ _ _ _ n <<<"$out"
            if [ "$s" = puma ]; then # Puma's master does nothing per message: the workers are the server
                srv=$(awk -v a=$((m1 - m0 + k1 - k0)) -v n="$n" -v hz="$HZ" 'BEGIN{printf "%.1f", a/hz*1e6/n}'); run="-"
            else
                srv=$(awk -v a=$((m1 - m0)) -v n="$n" -v hz="$HZ" 'BEGIN{printf "%.1f", a/hz*1e6/n}')
                run=$(awk -v a=$((k1 - k0)) -v n="$n" -v hz="$HZ" 'BEGIN{printf "%.1f", a/hz*1e6/n}')
            fi
            printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$s" "$c" "$round" "$rts" "$srv" "$run" "$(cut -d' ' -f1 /proc/loadavg)"
        done
        stop
    done
done
