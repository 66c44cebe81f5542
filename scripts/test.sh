#!/usr/bin/env bash
# Install what the tests need (venv, Python packages, system services) and run the whole suite.
# Usage: scripts/test.sh [pytest args...]   e.g. scripts/test.sh -k config -x
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${HARVESTER_VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install -q --upgrade pip >/dev/null
"$VENV/bin/pip" install -q -e '.[test]'
# services the suite talks to (each script is idempotent and starts only what is down)
for setup in scripts/setup_*.sh; do
    [ -x "$setup" ] && "$setup"
done
set +e
"$VENV/bin/python" -m pytest -p no:cacheprovider "$@"
rc=$?
set -e
# pytest's 5 means it collected no test: that is a failure here, never a pass
if [ "$rc" -eq 5 ]; then
    echo "no test was run" >&2
    exit 1
fi
exit "$rc"
