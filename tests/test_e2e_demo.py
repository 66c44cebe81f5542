"""E2E: the README's run command, ``scripts/demo.sh``, on a fresh venv (as on a fresh machine).

It must install the package, run the emulator and the daemon, show the flow (jobs, workers,
pull workers per pseudo-queue, cycle times) until everything is done, stop both, and print
nothing but its own output: pip's chatter stays out of stderr.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_demo_script_runs_the_whole_flow_on_a_fresh_venv(tmp_path):
    env = dict(os.environ, HARVESTER_VENV=str(tmp_path / "venv"))
    env.pop("PYTHONPATH", None)
    workdir = tmp_path / "demo"
    started = time.monotonic()
    res = subprocess.run([str(REPO / "scripts" / "demo.sh"), "--jobs", "4", "--pull-workers", "1",
                          "--worker-seconds", "1", "--workdir", str(workdir)],
                         env=env, capture_output=True, text=True, timeout=240)
    took = time.monotonic() - started
    assert res.returncode == 0, f"stdout:\n{res.stdout}\nstderr:\n{res.stderr}"
    assert res.stderr == "", f"the demo printed on stderr:\n{res.stderr}"
    assert took < 120, f"the README's run command took {took:.0f} s (install included)"
    out = res.stdout
    assert re.search(r"demo completed in [0-9.]+ s", out), out
    assert "DEMO_PULL/SCORE" in out and "DEMO_PULL/MCORE" in out, out
    last = [line for line in out.splitlines() if line.startswith("[")][-1]
    assert '"finished": 4' in last.split("workers")[0], last  # the 4 push jobs, finished in PanDA
    pull = re.search(r'pull finished \{"DEMO_PULL/MCORE": (\d+), "DEMO_PULL/SCORE": (\d+)\}', last)
    assert pull and min(int(n) for n in pull.groups()) >= 1, last  # pilots ran in each pseudo-queue
    assert re.search(r"cycles: .*submitter=[0-9.]+s", out), out
    # both processes stopped, state and one log file per agent kept
    assert not (workdir / "panda_harvester.pid").exists()
    logs = {p.name for p in (workdir / "logs").glob("panda-*.log")}
    assert {"panda-submitter.log", "panda-monitor.log", "panda-propagator.log", "panda-sweeper.log"} <= logs
