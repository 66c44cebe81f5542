"""E2E: PanDA's KILL_WORKERS / SYNC_WORKERS_KILL commands kill running workers through the sweeper."""

from __future__ import annotations

import json
import re

from e2e_helpers import daemon_run  # noqa: F401

from pandaharvester.harvestersubmitter.dummy_submitter import pilot_is_alive

PUSH = "DEMO_PUSH"


def _record(run, worker_id: int) -> dict:
    return json.loads((run.home / "workers" / str(worker_id) / "dummy_pilot_process.json").read_text())


def test_kill_commands_kill_running_workers(daemon_run):  # noqa: F811
    run = daemon_run(only_queues=[PUSH], queue_changes={PUSH: {"submitter": {"sleepTime": 120}}},
                     cfg={"sweeper": {"sleepTime": 1, "checkInterval": 1}})
    run.emulator.add_task(PUSH, 3)
    run.start()
    run.wait_until(lambda: [w for w in run.workers(PUSH) if w["status"] == "running"].__len__() == 3, 30,
                   "3 running workers")
    ids = [w["workerID"] for w in run.workers(PUSH)]
    records = {i: _record(run, i) for i in ids}
    assert all(pilot_is_alive(r) for r in records.values())
    by_sync, by_query, survivor = ids
    # SYNC_WORKERS_KILL: params = workerIDs
    run.emulator.add_command(run.harvester_id, "SYNC_WORKERS_KILL", [by_sync])
    run.wait_until(lambda: not pilot_is_alive(records[by_sync]), 20, f"pilot of workerID={by_sync} gone")
    # KILL_WORKERS: params = a query (every running worker of the site, any CE and host)
    run.emulator.add_command(run.harvester_id, "KILL_WORKERS",
                             {"status": ["running"], "computingSite": [PUSH], "computingElement": "ALL",
                              "submissionHost": "ALL"})
    run.wait_until(lambda: not pilot_is_alive(records[by_query]), 20, f"pilot of workerID={by_query} gone")
    # the query matched every running worker of the site: the third one too (by_sync, already
    # marked, is not marked twice); the sweeper kills the two in one bulk call
    assert re.search(r"KILL_WORKERS params=.*: 2 workers marked to kill", run.log("sweeper")), run.log("sweeper")
    run.wait_until(lambda: not pilot_is_alive(records[survivor]), 10, f"pilot of workerID={survivor} gone")
    # the monitor sees each killed pilot in its own check cycle (workers are checked in phases,
    # and a final state waits one cycle for the pilot's files): wait for all three
    run.wait_until(lambda: {w["workerID"]: w["status"] for w in run.workers(PUSH)}
                   == {by_sync: "cancelled", by_query: "cancelled", survivor: "cancelled"}, 20,
                   "all three killed workers cancelled")
    # a batch system reports a removed job as removed, not as failed
    for worker_id in ids:
        assert (run.home / "workers" / str(worker_id) / "dummy_pilot_killed.json").exists()
    assert "SYNC_WORKERS_KILL" in run.log("sweeper") and "KILL_WORKERS" in run.log("sweeper")
    run.wait_panda_sees_killed(PUSH)
    assert run.stop() == 0
