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
# pip's own chatter (editable-install warnings) is kept out of the demo's output: shown only on failure
if ! pip_log=$("$VENV/bin/pip" install -q -e '.[emulator]' 2>&1); then
    printf '%s\n' "$pip_log" >&2
    echo "ERROR: installing pandaharvester into $VENV failed (pip output above)" >&2
    exit 1
fi
exec "$VENV/bin/python" -m pandaharvester.harvestertest.demo "$@"
