#!/usr/bin/env bash
# ASGI hello and echo, gw against gunicorn + uvicorn (issue 16's bar), 2
# processes each, in the same run, alternated ROUNDS times (the order
# rotated every round): req/s, CPU µs per request of each server's whole
# process tree (gw's own process and its runners split out), the ratio to
# gunicorn per round, the median, and the 1-minute load average.
#
#   GW=./gw [GW0=./gw-main] bench/asgi.sh      (about 30 s per round)
#
# Servers, both on internal/e2e/testdata/python/asgi/hello_echo.py:
#   gw        gw run --workers 2 --interpreter $PY asgi.hello_echo:app
#   gw0       the same with the binary GW0 (before/after in one run)
#   gunicorn  $PY -m gunicorn -w 2 -k uvicorn.workers.UvicornWorker
# Load: wrk -t1 -c$CONNS -d$DURATION after a WARM s warm-up; hello is GET /,
# echo is POST /echo with 64 KiB (bench/wrk_echo.lua), answered with 16 KiB.
# CPU is utime+stime of the tree from /proc (children via
# /proc/PID/task/*/children), read before and after the timed run.
# Loopback only; every process it starts is stopped by PID on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
GW=$(realpath "${GW:-./gw}")
GW0=${GW0:+$(realpath "$GW0")}
PY=${PY:-/usr/bin/python3}
DURATION=${DURATION:-10}
WARM=${WARM:-2}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-32}
WORKLOADS=${WORKLOADS:-"hello echo"}
PORT=${PORT:-18796}
ADDR=127.0.0.1:$PORT
DIR=$(realpath internal/e2e/testdata/python)
LUA=$(realpath bench/wrk_echo.lua)
WORK=$(mktemp -d /tmp/gw-asgibench.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
HZ=$(getconf CLK_TCK)

start() {   # $1 = server name
    case $1 in
    gw|gw0)
        bin=$GW; [ "$1" = gw0 ] && bin=$GW0
        "$bin" run --allow-root --workers 2 --http "$ADDR" --interpreter "$PY" --dir "$DIR" asgi.hello_echo:app >"$WORK/s.log" 2>&1 & PIDS+=($!) ;;
    gunicorn)
        "$PY" -m gunicorn -w 2 -k uvicorn.workers.UvicornWorker --chdir "$DIR/asgi" -b "$ADDR" hello_echo:app >"$WORK/s.log" 2>&1 & PIDS+=($!) ;;
    esac
    for _ in $(seq 300); do
        # gunicorn's workers boot after the port opens: wait for both.
        curl -s -o /dev/null "http://$ADDR/" && [ "$(children "${PIDS[0]}" | wc -l)" -ge 2 ] && return 0
        sleep 0.1
    done
    echo "$1 did not come up:" >&2; cat "$WORK/s.log" >&2; return 1
}
stop() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; PIDS=(); }
children() { local p=$1 c; for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do echo "$c"; children "$c"; done; }
ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14+$15}' /proc/"$p"/stat 2>/dev/null || echo 0))); done; echo "$t"; }
us() { awk -v a="$1" -v n="$2" -v hz="$HZ" 'BEGIN{ if (n > 0) printf "%.1f", a/hz*1e6/n; else print "-" }'; }
load() {   # $1 = workload; prints "requests req/s"
    local args=()
    [ "$1" = echo ] && args=(-s "$LUA")
    wrk -t1 -c"$CONNS" -d"$2" "${args[@]}" "http://$ADDR/" | awk '
        /requests in/ {n=$1} /Requests\/sec/ {r=$2}
        /Non-2xx|Socket errors/ {bad=1}
        END {if (bad) print "wrk saw errors" > "/dev/stderr"; print n, r}'
}
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

servers="gw gunicorn"; [ -n "$GW0" ] && servers="gw0 gw gunicorn"
declare -A RPS CPU
echo "| workload | server | round | req/s | vs gunicorn | CPU µs/req: tree | gw | runners | load avg (1m) |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
for round in $(seq "$ROUNDS"); do
    # Each round starts one server later (for two servers: the order
    # reversed), so no server keeps a position: the middle of three
    # measured worse in every round when the order was only reversed.
    set -- $servers; for _ in $(seq $(((round - 1) % $#))); do set -- "${@:2}" "$1"; done; order="$*"
    declare -A line=()
    for s in $order; do
        start "$s"
        main=${PIDS[0]}
        for w in $WORKLOADS; do
            load "$w" "${WARM}s" >/dev/null
            kids=$(children "$main" | tr '\n' ' ')
            m0=$(ticks "$main"); k0=$(ticks $kids)
            read -r n rps < <(load "$w" "${DURATION}s")
            m1=$(ticks "$main"); k1=$(ticks $kids)
            tree=$(us $((m1 - m0 + k1 - k0)) "$n")
            RPS[$w,$s]+=" $rps"; CPU[$w,$s]+=" $tree"
            line[$w,$s]="$rps|$tree|$(us $((m1 - m0)) "$n")|$(us $((k1 - k0)) "$n")|$(cut -d' ' -f1 /proc/loadavg)"
        done
        stop
    done
    for w in $WORKLOADS; do
        base=${line[$w,gunicorn]%%|*}
        for s in $servers; do
            IFS='|' read -r rps tree own run la <<<"${line[$w,$s]}"
            ratio=$(awk -v a="$rps" -v b="$base" 'BEGIN{printf "%.2f", a/b}')
            [ "$s" = gunicorn ] && { ratio="-"; own="-"; run="-"; }
            printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$w" "$s" "$round" "$rps" "$ratio" "$tree" "$own" "$run" "$la"
        done
    done
    unset line
done

echo
echo "| workload | server | median req/s | vs gunicorn | median CPU µs/req (tree) |"
echo "|---|---|---:|---:|---:|"
for w in $WORKLOADS; do
    base=$(echo "${RPS[$w,gunicorn]}" | median)
    for s in $servers; do
        m=$(echo "${RPS[$w,$s]}" | median)
        printf '| %s | %s | %s | %s | %s |\n' "$w" "$s" "$m" "$(awk -v a="$m" -v b="$base" 'BEGIN{printf "%.2f", a/b}')" "$(echo "${CPU[$w,$s]}" | median)"
    done
done
echo "load avg (1m) at end: $(cut -d' ' -f1 /proc/loadavg)"
