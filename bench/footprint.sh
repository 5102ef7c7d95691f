#!/usr/bin/env bash
# bench/footprint.sh — gw's footprint against issue 9's targets, on loopback:
# start-up time, gw's own idle RSS with four apps, one runner's RSS beside the
# bare interpreter, and 1 GiB up/down through gw with gw's peak RSS.
#   GW=./gw bench/footprint.sh    knobs: RUNS=5 XFER_LANGS="python ruby perl php"
#                                 XFER_RUNS=2 XFER_TIMEOUT=60 (seconds per transfer)
# Prints a markdown table (progress on stderr). Listens only on 127.0.0.1:19500-19599;
# every process it starts is stopped by PID on exit.
set -euo pipefail

# Debian's interpreters, as users' distro packages give them (not a pyenv shim).
export PATH=/usr/bin:/bin:/usr/sbin:/sbin:$PATH
GW=${GW:-./gw}
[[ -x $GW ]] || { echo "footprint: GW=$GW is not an executable gw binary" >&2; exit 2; }
GW=$(realpath "$GW")
RUNS=${RUNS:-5}
XFER_LANGS=${XFER_LANGS-python ruby perl php}   # empty: no transfers
XFER_RUNS=${XFER_RUNS:-2}
XFER_TIMEOUT=${XFER_TIMEOUT:-60}
BIG=$((1 << 30))
LANGS=(python ruby perl php)
declare -A NAME=([python]=hello.py [ruby]=config.ru [perl]=hello.psgi [php]=hello.php)
declare -A EXT=([python]=py [ruby]=ru [perl]=psgi [php]=php)
ROOT=(); [[ $(id -u) == 0 ]] && ROOT=(--allow-root)   # gw refuses root runners otherwise

log() { echo "footprint: $*" >&2; }
die() { log "$*"; exit 1; }
LOAD=$(cut -d' ' -f1 /proc/loadavg)   # anything else running on 2 cores skews every figure
if awk -v l="$LOAD" 'BEGIN { exit !(l >= 1) }'; then log "warning: load average $LOAD before start"; fi

TMP=$(mktemp -d)
PIDS=()
alive() { local s; s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1; s=${s##*) }; [[ ${s:0:1} != Z ]]; }
stop() {   # SIGTERM, SIGKILL after 10 s; then any child it left behind (gw's runners); reap
    local p=$1 i kids
    kids=$(pgrep -P "$p" || true)
    kill -TERM "$p" 2>/dev/null || true
    for ((i = 0; i < 200; i++)); do alive "$p" || break; sleep 0.05; done
    if alive "$p"; then kill -KILL "$p" 2>/dev/null || true; fi
    wait "$p" 2>/dev/null || true
    for i in $kids; do if alive "$i"; then kill -KILL "$i" 2>/dev/null || true; fi; done
}
forget() { local p keep=(); for p in "${PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done; PIDS=("${keep[@]}"); }
cleanup() { local p; for p in "${PIDS[@]}"; do stop "$p"; done; rm -rf "$TMP"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

listening() { local fd; { exec {fd}<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null && exec {fd}>&-; }
PORT=19499
next_port() {   # the next port in 19500-19599 that nothing listens on
    while ((++PORT <= 19599)); do listening "$PORT" || return 0; done
    die "no free port in 19500-19599"
}
# GET PATH on PORT answers 200. Pure bash (no fork), so polling costs ~50 µs;
# SIGPIPE ignored only around the write (a reset must not kill the script).
http_ok() {
    local fd line=
    { exec {fd}<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 1
    trap '' PIPE
    printf 'GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' "$2" >&"$fd" 2>/dev/null &&
        read -t 5 -r line <&"$fd" 2>/dev/null || true
    trap - PIPE
    exec {fd}>&-
    [[ $line == "HTTP/1.1 200 "* ]]
}
start_gw() {   # NAME ARGS... -> GWPID, its log in LOG
    LOG=$TMP/$1.log; shift
    "$GW" run "${ROOT[@]}" "$@" >"$LOG" 2>&1 &
    GWPID=$!; PIDS+=("$GWPID")
}
wait_ok() {    # PORT PATH: 200 within 20 s, or die with the tail of gw's log
    local deadline=$((SECONDS + 20))
    until http_ok "$1" "$2"; do
        alive "$GWPID" || { tail -n 20 "$LOG" >&2; die "gw exited before GET $2 answered 200 (its log above)"; }
        ((SECONDS < deadline)) || { tail -n 20 "$LOG" >&2; die "no 200 on GET $2 within 20 s (gw's log above)"; }
        sleep 0.005
    done
}
stop_gw() { stop "$GWPID"; forget "$GWPID"; }

kb() { awk -v k="$2:" '$1 == k { print $2 }' "$1" 2>/dev/null || true; }   # FILE FIELD -> kB
mib() { awk -v k="${1:-0}" 'BEGIN { printf "%.1f", k / 1024 }'; }
ROWS=()
row() { ROWS+=("| $1 | $2 | $3 | $4 | $5 |"); }
check() { if awk -v v="$1" -v t="$3" "BEGIN { exit !(v $2 t) }"; then echo yes; else echo "**no**"; fi; }

# The hello apps of the team's yardstick, or the same thing written here.
APPS=$(cd "$(dirname "$0")/../.." && pwd)/shared/bench/apps
if [[ ! -r $APPS/hello.py ]]; then
    APPS=$TMP/apps; mkdir -p "$APPS"; log "no ../shared/bench/apps: using built-in hello apps"
    echo 'application = lambda e, sr: (sr("200 OK", [("Content-Type", "text/plain")]), [b"Hello, World!"])[1]' >"$APPS/hello.py"
    echo 'run ->(env) { [200, { "content-type" => "text/plain", "content-length" => "13" }, ["Hello, World!"]] }' >"$APPS/config.ru"
    echo 'sub { [200, ["Content-Type" => "text/plain", "Content-Length" => 13], ["Hello, World!"]] };' >"$APPS/hello.psgi"
    echo '<?php header("Content-Type: text/plain"); echo "Hello, World!";' >"$APPS/hello.php"
fi

# 1. Start-up: from starting gw to the first 200 (gw serves once its runners are ready).
for lang in "${LANGS[@]}"; do
    took=()
    for ((i = 0; i < RUNS; i++)); do
        next_port; t0=${EPOCHREALTIME/./}
        start_gw "start-$lang-$i" --http "127.0.0.1:$PORT" --workers 2 "$APPS/${NAME[$lang]}"
        wait_ok "$PORT" /
        took+=($((${EPOCHREALTIME/./} - t0)))
        stop_gw
    done
    read -r med text < <(printf '%s\n' "${took[@]}" | sort -n | awk '{ v[NR] = $1 } END {
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf "%d %.0f ms (%.0f–%.0f)\n", m, m / 1e3, v[1] / 1e3, v[NR] / 1e3 }')
    log "start-up $lang: $text"
    row "start-up to first 200, --workers 2 (median of $RUNS; min–max)" "$lang" "$text" "< 1 s" "$(check "$med" "<" 1000000)"
done

# 2. gw alone (not its runners), four apps of 2 workers each, after each answered.
next_port
{
    printf 'listen:\n  http: "127.0.0.1:%s"\napps:\n' "$PORT"
    for lang in "${LANGS[@]}"; do
        printf '  - { name: %s, lang: %s, path: "%s", mount: /%s, workers: 2 }\n' "$lang" "$lang" "$APPS/${NAME[$lang]}" "$lang"
    done
} >"$TMP/four.yaml"
start_gw four --config "$TMP/four.yaml"
for lang in "${LANGS[@]}"; do wait_ok "$PORT" "/$lang/"; done
sleep 2   # idle, as a server sits between requests
st=/proc/$GWPID/status; rss=$(kb "$st" VmRSS); hwm=$(kb "$st" VmHWM); anon=$(kb "$st" RssAnon); file=$(kb "$st" RssFile)
log "gw with 4 apps: VmRSS $rss kB (anon $anon, file $file), VmHWM $hwm kB"
row "gw idle RSS, 4 apps × 2 workers (VmRSS = anon + file; VmHWM)" "all" \
    "$(mib "$rss") MiB ($(mib "$anon") + $(mib "$file")); HWM $(mib "$hwm")" "< 40 MiB" "$(check "$rss" "<" 40960)"
stop_gw

# 3. One runner after 100 requests, then the bare interpreter with the same app
# loaded and idle (one after the other, so they share no pages and PSS is fair).
bare() {   # LANG -> BAREPID, once the app is loaded (php-cgi: once it listens)
    local a=$APPS/${NAME[$1]} out=$TMP/bare-$1.out deadline=$((SECONDS + 20))
    next_port
    case $1 in   # exec: the PID measured is the interpreter's, not a subshell's
    python) exec python3 -c 'import sys, signal; sys.path.insert(0, sys.argv[1]); import hello; print("ready", flush=True); signal.pause()' "$APPS" ;;
    ruby) exec ruby -e 'require "rack"; app = Rack::Builder.parse_file(ARGV[0]); puts "ready"; $stdout.flush; sleep' "$a" ;;
    perl) exec perl -e 'my $app = do $ARGV[0]; die $@ || $! unless $app; $| = 1; print "ready\n"; sleep' "$a" ;;
    php) PHP_FCGI_CHILDREN=0 PHP_FCGI_MAX_REQUESTS=0 exec php-cgi -b "127.0.0.1:$PORT" ;;
    esac >"$out" 2>&1 &
    BAREPID=$!; PIDS+=("$BAREPID")
    until if [[ $1 == php ]]; then listening "$PORT"; else grep -q ready "$out"; fi; do
        alive "$BAREPID" || { cat "$out" >&2; die "bare $1 exited (output above)"; }
        ((SECONDS < deadline)) || die "bare $1 not ready within 20 s"
        sleep 0.02
    done
}
for lang in "${LANGS[@]}"; do
    next_port
    start_gw "runner-$lang" --http "127.0.0.1:$PORT" --workers 1 "$APPS/${NAME[$lang]}"
    wait_ok "$PORT" /
    # 100 GETs on one keep-alive connection (curl's URL globbing); all must be 200.
    n=$(curl -sS --max-time 30 -o /dev/null -w '%{http_code}\n' "http://127.0.0.1:$PORT/r[1-100]" | grep -c '^200$' || true)
    ((n == 100)) || { tail -n 20 "$LOG" >&2; die "$lang: $n of 100 requests answered 200"; }
    sleep 1
    runner=$(pgrep -P "$GWPID" | head -1) || die "no runner under gw $GWPID"
    r_rss=$(kb "/proc/$runner/status" VmRSS); r_pss=$(kb "/proc/$runner/smaps_rollup" Pss)
    stop_gw
    bare "$lang"; sleep 1
    b_rss=$(kb "/proc/$BAREPID/status" VmRSS); b_pss=$(kb "/proc/$BAREPID/smaps_rollup" Pss)
    stop "$BAREPID"; forget "$BAREPID"
    log "$lang runner: RSS $r_rss kB PSS ${r_pss:-?} kB; bare: RSS $b_rss kB PSS ${b_pss:-?} kB"
    pss="n/a"; if [[ -n $r_pss && -n $b_pss ]]; then pss="$(mib "$r_pss") vs $(mib "$b_pss")"; fi
    row "runner after 100 requests vs bare interpreter (VmRSS; PSS, MiB)" "$lang" \
        "$(mib "$r_rss") vs $(mib "$b_rss") → **$(awk -v a="$r_rss" -v b="$b_rss" 'BEGIN { printf "%+.1f", (a-b)/1024 }')**; PSS $pss" \
        "within 5 MiB" "$(check "$((r_rss - b_rss))" "<=" 5120)"
done

# 4. 1 GiB each way. The apps read the body in 64 KiB chunks and answer with the
# count (/up), or stream 1 GiB in 64 KiB chunks (any other path).
X=$TMP/xfer; mkdir -p "$X"
cat >"$X/xfer.py" <<'EOF'
def application(environ, start_response):
    if environ["PATH_INFO"] == "/up":
        n, inp = 0, environ["wsgi.input"]
        while b := inp.read(65536):
            n += len(b)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(n).encode()]
    start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(1 << 30))])
    chunk = b"\0" * 65536
    return (chunk for _ in range(16384))
EOF
cat >"$X/xfer.ru" <<'EOF'
CHUNK = ("\0" * 65536).freeze
run(lambda do |env|
  if env["PATH_INFO"] == "/up"
    n, buf = 0, String.new
    n += buf.bytesize while env["rack.input"].read(65536, buf)
    [200, { "content-type" => "text/plain" }, [n.to_s]]
  else
    [200, { "content-type" => "application/octet-stream", "content-length" => (1 << 30).to_s },
     Enumerator.new { |y| 16384.times { y << CHUNK } }]
  end
end)
EOF
cat >"$X/xfer.psgi" <<'EOF'
package Chunks; sub getline { $_[0]{n}-- > 0 ? $_[0]{c} : undef } sub close {}
package main;
sub {
    my $env = shift;
    if ($env->{PATH_INFO} eq '/up') {
        my ($n, $buf, $r) = (0, '');
        $n += $r while ($r = $env->{'psgi.input'}->read($buf, 65536));
        return [200, ['Content-Type' => 'text/plain'], [$n]];
    }
    [200, ['Content-Type' => 'application/octet-stream', 'Content-Length' => 1 << 30],
     bless({ n => 16384, c => "\0" x 65536 }, 'Chunks')];
};
EOF
cat >"$X/xfer.php" <<'EOF'
<?php
if (strtok($_SERVER['REQUEST_URI'], '?') === '/up') {
    $in = fopen('php://input', 'rb'); $n = 0;
    while (($b = fread($in, 65536)) !== false && $b !== '') { $n += strlen($b); }
    header('Content-Type: text/plain'); echo $n;
} else {
    header('Content-Type: application/octet-stream'); header('Content-Length: ' . (1 << 30));
    $c = str_repeat("\0", 65536);
    for ($i = 0; $i < 16384; $i++) { echo $c; }
}
EOF
# upload|download URL: prints the seconds taken, or why it failed. The upload
# has a Content-Length, not chunked (curl's default for -T -), as browsers send.
upload() {
    head -c "$BIG" /dev/zero | curl -sS --max-time "$XFER_TIMEOUT" -X POST -T - -H "Content-Length: $BIG" \
        -H 'Transfer-Encoding:' -H 'Expect:' -o "$TMP/up.body" -w '%{http_code} %{time_total} ' "$1/up" 2>&1 &&
        cat "$TMP/up.body"   # the app's byte count
}
download() {
    curl -sS --max-time "$XFER_TIMEOUT" -o /dev/null -w '%{http_code} %{time_total} %{size_download}' "$1/down" 2>&1
}
xfer() {   # upload|download URL: the body (or bytes received) must be exactly 1 GiB
    local out code secs n
    out=$($1 "$2") || { echo "failed: ${out//$'\n'/ }"; return; }
    read -r code secs n <<<"$out"
    if [[ $code == 200 && $n == "$BIG" ]]; then echo "$secs"; else echo "failed: HTTP $code, ${n:0:40} bytes"; fi
}
xfer_row() {   # LABEL LANG upload|download URL: the best of XFER_RUNS (a shared box is noisy)
    local best= r i
    for ((i = 0; i < XFER_RUNS; i++)); do
        r=$(xfer "$3" "$4"); log "$3 $2: $r"
        if [[ $r == failed* ]]; then row "$1" "$2" "$r" "≥ 500 MiB/s" "**no**"; return; fi
        if [[ -z $best ]] || awk -v r="$r" -v b="$best" 'BEGIN { exit !(r < b) }'; then best=$r; fi
    done
    r=$(awk -v b="$BIG" -v t="$best" 'BEGIN { printf "%.0f", b / 1048576 / t }')
    row "$1" "$2" "$r MiB/s ($(printf %.2f "$best") s)" "≥ 500 MiB/s" "$(check "$r" ">=" 500)"
}
for lang in $XFER_LANGS; do
    next_port; url=http://127.0.0.1:$PORT
    start_gw "xfer-$lang" --http "127.0.0.1:$PORT" --workers 2 "$X/xfer.${EXT[$lang]}"
    wait_ok "$PORT" /up
    xfer_row "1 GiB upload, app reads 64 KiB chunks (best of $XFER_RUNS)" "$lang" upload "$url"
    xfer_row "1 GiB download, app streams 64 KiB chunks (best of $XFER_RUNS)" "$lang" download "$url"
    hwm=$(kb "/proc/$GWPID/status" VmHWM); rh=0   # gw's peak, and its largest runner's for context
    for r in $(pgrep -P "$GWPID"); do r=$(kb "/proc/$r/status" VmHWM); if ((${r:-0} > rh)); then rh=$r; fi; done
    log "xfer $lang: gw VmHWM $hwm kB, largest runner VmHWM $rh kB"
    row "gw peak RSS (VmHWM) after both (largest runner's)" "$lang" "$(mib "$hwm") MiB ($(mib "$rh"))" "< 64 MiB" "$(check "$hwm" "<" 65536)"
    stop_gw
done

echo "gw footprint — $("$GW" version | head -1), $(nproc) cores, $(uname -r), $(date -u +%FT%TZ), load average at start $LOAD"
echo
echo "| measure | lang | measured | target | met |"
echo "|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
