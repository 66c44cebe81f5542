#!/usr/bin/env bash
# The README's run command: install into .venv, then run the whole flow on the embedded default
# (PanDA emulator + Harvester daemon on SQLite with the dummy plugins) and show what happens.
# Usage: scripts/demo.sh [--jobs N] [--pull-workers N] [--worker-seconds S] [--workdir DIR] [--slurm]
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${HARVESTER_VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install -q -e . >/dev/null
exec "$VENV/bin/python" -m pandaharvester.harvestertest.demo "$@"
