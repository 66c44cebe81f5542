"""harvester-admin fifo benchmark / fifo repopulate on the home and DB of a real daemon run."""

from __future__ import annotations

import os
import pickle
import sqlite3
import subprocess
import sys

from e2e_helpers import daemon_run  # noqa: F401
from pandaharvester.harvestertest import instance

N_JOBS = 6


def _admin(home, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PANDA_HOME=str(home))
    return subprocess.run([sys.executable, "-m", "pandaharvester.harvesterscripts.harvester_admin", *args],
                          env=env, capture_output=True, text=True, timeout=300)


def test_fifo_repopulate_and_benchmark_on_a_real_run(daemon_run):  # noqa: F811
    # long pilots: the workers are still running when the daemon stops
    run = daemon_run(worker_seconds=600, only_queues=["DEMO_PUSH"])
    run.emulator.add_task("DEMO_PUSH", N_JOBS)
    run.start()
    run.wait_until(lambda: sum(w["status"] == "running" for w in run.workers("DEMO_PUSH")) == N_JOBS, 60,
                   "all workers running")
    assert run.stop() == 0
    active = {w["workerID"] for w in run.workers("DEMO_PUSH") if w["status"] == "running"}
    assert len(active) == N_JOBS

    # FIFO mode off (the run's cfg): nothing to repopulate, said so
    res = _admin(run.home, "fifo", "repopulate", "monitor")
    assert res.returncode == 0 and "monitor FIFO is not enabled" in res.stdout, res.stderr
    # now on, with chunks of 4 workers
    overrides = run.demo.cfg_overrides(run.emulator.base_url)
    overrides["monitor"].update(fifoEnable=True, fifoMaxWorkersPerChunk=4)
    instance.write_cfg(run.home, overrides, harvester_id=run.harvester_id)
    res = _admin(run.home, "fifo", "repopulate", "ALL")
    assert res.returncode == 0, res.stderr
    assert f"Repopulated monitor fifo with {N_JOBS} workers" in res.stdout
    rows = sqlite3.connect(run.home / "monitor_fifo.db").execute(
        "SELECT item, score FROM queue_table WHERE temporary = 0").fetchall()
    in_fifo = []
    for item, _score in rows:
        queue_name, chunks = pickle.loads(item)
        assert queue_name == "DEMO_PUSH" and len(chunks) <= 4
        in_fifo += [w.workerID for chunk in chunks for w in chunk]
    assert sorted(in_fifo) == sorted(active)
    # again: cleared first, not doubled
    assert _admin(run.home, "fifo", "repopulate", "monitor").returncode == 0
    assert sqlite3.connect(run.home / "monitor_fifo.db").execute("SELECT COUNT(*) FROM queue_table").fetchone()[0] \
        == len(rows)
    res = _admin(run.home, "fifo", "repopulate", "nosuchagent")
    assert res.returncode == 2 and "no agent FIFO named nosuchagent" in res.stderr

    res = _admin(run.home, "fifo", "benchmark", "-n", "40", "-t", "2")
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "FIFO plugin is: SqliteFifo" in out and "Benchmark with 40 objects by 2 threads" in out
    for line in ("Put            :", "Get            :", "Get protective :", "Clear          :"):
        assert line in out, out
    assert "fifo size 0" in out and "fifo size 40" in out
