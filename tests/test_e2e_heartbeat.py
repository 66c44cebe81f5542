"""E2E: job heartbeats follow [propagator] updateInterval; a final state is sent at once."""

from __future__ import annotations

import json
import time

from e2e_helpers import daemon_run  # noqa: F401

PUSH = "DEMO_PUSH"


def _watch_job(run, panda_id: int, timeout: float) -> list[tuple[float, str, int]]:
    """(time, status, n_reports) whenever n_reports or the status changes, until the job is final."""
    history: list[tuple[float, str, int]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run.assert_alive()
        job = run.emulator.jobs(panda_ids=[panda_id])[0]
        entry = (time.time(), job["status"], job["n_reports"])
        if not history or history[-1][1:] != entry[1:]:
            history.append(entry)
        if job["status"] == "finished":
            return history
        time.sleep(0.2)
    raise AssertionError(f"PandaID={panda_id} not finished within {timeout}s: {history}")


def _pilot_end(run) -> float:
    (status_file,) = list((run.home / "workers").glob("*/dummy_pilot_status.json"))
    return json.loads(status_file.read_text())["endTime"]


def _holding_time(history: list[tuple[float, str, int]]) -> float:
    return next(t for t, status, _n in history if status in ("holding", "finished"))


def test_running_job_heartbeats_every_update_interval(daemon_run):  # noqa: F811
    run = daemon_run(only_queues=[PUSH], queue_changes={PUSH: {"submitter": {"sleepTime": 11}}},
                     cfg={"propagator": {"updateInterval": 3}})
    (panda_id,) = run.emulator.add_task(PUSH, 1)
    run.start()
    history = _watch_job(run, panda_id, 45)
    running = [(t, n) for t, status, n in history if status == "running"]
    assert running, history
    # reports while the job stays running: periodic heartbeats (the state does not change)
    beats = [t for (t, n), (_t0, n0) in zip(running[1:], running[:-1]) if n > n0]
    assert len(beats) >= 2, f"expected periodic heartbeats every 3 s while running: {history}"
    gaps = [b - a for a, b in zip([running[0][0]] + beats, beats)]
    assert all(gap > 2.0 for gap in gaps[1:]), f"heartbeats faster than updateInterval: {gaps} {history}"
    assert running[-1][1] - running[0][1] <= 11 / 3 + 2, f"too many heartbeats: {history}"
    # the final state is sent right after the pilot ended
    assert _holding_time(history) - _pilot_end(run) < 6, history
    assert run.stop() == 0


def test_final_state_not_delayed_by_long_update_interval(daemon_run):  # noqa: F811
    run = daemon_run(only_queues=[PUSH], queue_changes={PUSH: {"submitter": {"sleepTime": 5}}},
                     cfg={"propagator": {"updateInterval": 60}})
    (panda_id,) = run.emulator.add_task(PUSH, 1)
    run.start()
    history = _watch_job(run, panda_id, 40)
    running = [(t, n) for t, status, n in history if status == "running"]
    assert running and running[-1][1] == running[0][1], f"no heartbeat expected within 60 s: {history}"
    delay = _holding_time(history) - _pilot_end(run)
    assert delay < 6, f"final state arrived {delay:.1f}s after the pilot ended (updateInterval=60): {history}"
    assert run.stop() == 0
