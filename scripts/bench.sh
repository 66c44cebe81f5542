#!/usr/bin/env bash
# The README's benchmark command: install into .venv (the test extra, whose end-to-end harness
# tests/e2e_helpers.py and emulator needs the benchmarks reuse, and the bench extra: matplotlib, py-spy),
# run every benchmark, print the table, write docs/performance.md and docs/performance.png.
# Usage: scripts/bench.sh [--quick] [--only db,cycle,idle,push,pull,slurm] [--out-dir DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${HARVESTER_VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install -q -e '.[test,bench]' >/dev/null
exec "$VENV/bin/python" bench/run_all.py "$@"
