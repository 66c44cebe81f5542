#!/bin/bash
# A/B back to back on MariaDB: the push bench (10k jobs, 1 then 2 processes) on a base commit
# (exported with git archive to a temp directory, nothing checked out), then on this tree; the
# load average and the machine speed (10M `x += 1`) before, between and after.
#   bench/mariadb_ab.sh BASE_COMMIT [SIZES] [EXTRA push_bench ARGS...]
set -u
base=$1; sizes=${2:-10000}; shift; [ $# -gt 0 ] && shift
here=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-$here/.venv/bin/python}
[ -x "$python" ] || python=/work/main/.venv/bin/python
tree=$(mktemp -d /tmp/harvester_ab_XXXXXX)
trap 'rm -rf "$tree"' EXIT
(cd "$here" && git archive "$base" | tar -x -C "$tree")
speed() { "$python" -c 'import time
t = time.perf_counter(); x = 0
for i in range(10_000_000): x += 1
print(f"machine speed {time.perf_counter() - t:.2f} s")'; }
run() { local dir=$1; shift; (cd "$dir" && PYTHONPATH="$dir" timeout 600 "$python" bench/push_bench.py --engine mariadb --sizes "$sizes" \
    --processes 1,2 --budget 240 "$@"); }
date -u; uptime; speed
echo "== A $base"; run "$tree" "$@"
uptime; speed
echo "== B $(cd "$here" && git rev-parse --short HEAD)"; run "$here" "$@"
uptime; speed; date -u
