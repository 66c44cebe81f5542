"""Crash recovery time: after a ``kill -9`` the restarted daemon releases the row locks of its
dead predecessor at start (``[master] releaseDeadLocksAtStart``) instead of leaving the rows to
sit for ``lockInterval`` (600 s by default)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from e2e_helpers import daemon_run  # noqa: F401
from figures import record

PUSH = "DEMO_PUSH"
N_JOBS = 6
LOCKED = ("SELECT (SELECT COUNT(*) FROM work_table WHERE lockedBy IS NOT NULL) "
          "+ (SELECT COUNT(*) FROM job_table WHERE lockedBy IS NOT NULL OR propagatorLock IS NOT NULL) AS n")


def _n_locked(run) -> int:
    rows = run.db_rows(LOCKED)
    return rows[0]["n"] if rows else 0


def _agents_with(lock_interval: int) -> dict:
    agents = ("monitor", "submitter", "propagator", "preparator", "stager", "eventfeeder")
    return {agent: {"lockInterval": lock_interval} for agent in agents}


def _crash_and_recover(daemon_run, monkeypatch, lock_interval: int, release: bool) -> dict:  # noqa: F811
    """Run N_JOBS push jobs, ``kill -9`` the daemon while its monitor holds worker locks, restart
    it; returns the figures of the recovery."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(Path(__file__).parent),
                                                                  os.environ.get("PYTHONPATH")) if p))
    cfg = _agents_with(lock_interval)
    cfg["master"] = {"releaseDeadLocksAtStart": release}
    run = daemon_run(only_queues=[PUSH], worker_seconds=8, cfg=cfg, queue_changes={PUSH: {
        "monitor": {"name": "SlowMonitor", "module": "lock_plugins", "holdSeconds": 3}}})
    run.emulator.add_task(PUSH, N_JOBS)
    run.start()
    run.wait_until(lambda: _n_locked(run) > 0, 60, "rows locked by the monitor", interval=0.05)
    os.kill(run.daemon.pid, signal.SIGKILL)
    run.daemon.wait(10)
    locked_at_kill = _n_locked(run)
    assert locked_at_kill > 0, "the kill landed after the monitor had released its rows"
    final_at_kill = sum(j["status"] == "finished" for j in run.jobs(PUSH))
    assert final_at_kill < N_JOBS

    restarted = time.monotonic()
    run.start()
    run.wait_until(lambda: all(j["status"] == "finished" for j in run.jobs(PUSH)),
                   300 if release else lock_interval + 120, "every job finished after the restart")
    all_final = time.monotonic() - restarted
    jobs = run.jobs(PUSH)
    assert all(j["n_sent"] == 1 for j in jobs), [(j["panda_id"], j["n_sent"]) for j in jobs]
    released = run.count_log("master", r"released \d+ row locks of dead processes")
    assert run.stop() == 0
    return {"locked_at_kill": locked_at_kill, "all_final": all_final, "released_logged": released}


def test_restart_after_kill9_releases_the_dead_locks_at_once(daemon_run, monkeypatch, full):  # noqa: F811
    """With the default lockInterval (600 s) every job is final within a minute or two of the
    restart: only the release of the dead locks at start can do that."""
    got = _crash_and_recover(daemon_run, monkeypatch, 600, release=True)
    assert got["released_logged"] == 1
    assert got["all_final"] < 300, got
    line = (f"reliability: lock_recovery lockInterval=600s locked_at_kill={got['locked_at_kill']} "
            f"restart_to_all_final={got['all_final']:.1f}s release_at_start=on")
    if full:
        # the same crash without the release, lockInterval 60 s: the rows sit until it expires
        before = _crash_and_recover(daemon_run, monkeypatch, 60, release=False)
        assert before["released_logged"] == 0
        assert before["all_final"] >= 55, before
        line += (f"; without it (lockInterval=60s): locked_at_kill={before['locked_at_kill']} "
                 f"restart_to_all_final={before['all_final']:.1f}s")
    record(line)
