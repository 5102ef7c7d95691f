#!/usr/bin/env bash
# gw beside the servers users would otherwise pick, with the team's
# yardstick: builds gw, then runs ../shared/bench/run.sh with it.
set -euo pipefail
cd "$(dirname "$0")/.."
go build -o gw ./cmd/gw
args=""
[ "$(id -u)" = 0 ] && args="--allow-root"   # gw refuses root runners unless told
# The anchors run Debian's interpreters (uWSGI's plugins link Debian's
# libpython, gunicorn is #!/usr/bin/python3); gw must resolve python3 to the
# same one, not a pyenv or venv earlier in PATH.
exec env PATH="/usr/bin:$PATH" GW=./gw GW_ARGS="${GW_ARGS:-$args}" BENCH_WORK="${BENCH_WORK:-/tmp/gw-bench}" ../shared/bench/run.sh "$@"
