"""E2E: push and pull with the monitor FIFO ([monitor] fifoEnable): every job and every worker
finishes although the monitor's DB cycle runs only once (at start, before any worker exists):
the submitter puts new workers in the FIFO, the monitor checks them from there."""

from __future__ import annotations

import sqlite3

from e2e_helpers import daemon_run  # noqa: F401
from pandaharvester.harvestertest import demo

N_JOBS = 10
FIFO_CFG = {"monitor": {"fifoEnable": True, "fifoSleepTimeMilli": 200, "fifoCheckInterval": 1, "sleepTime": 3600}}
FINAL = {"finished", "failed", "cancelled", "missed"}


def test_push_jobs_finish_with_the_monitor_fifo(daemon_run):  # noqa: F811
    run = daemon_run(worker_seconds=1, only_queues=["DEMO_PUSH"], cfg=FIFO_CFG)
    panda_ids = run.emulator.add_task("DEMO_PUSH", N_JOBS)
    run.start()
    run.wait_until(lambda: all(j["status"] == "finished" for j in run.jobs("DEMO_PUSH"))
                   and len(run.jobs("DEMO_PUSH")) == N_JOBS, 90, "all push jobs finished in PanDA")
    assert sorted(j["panda_id"] for j in run.emulator.jobs(site="DEMO_PUSH")) == sorted(panda_ids)
    run.wait_until(lambda: {w["status"] for w in run.workers("DEMO_PUSH")} == {"finished"}
                   and len(run.workers("DEMO_PUSH")) == N_JOBS, 30, "all workers finished")
    assert run.stop() == 0
    # the checks came from the FIFO: every worker was stamped when it was put back
    rows = run.db_rows("SELECT workerID, workParams FROM work_table")
    assert rows and all("lastCheckAt" in (r["workParams"] or "") for r in rows), rows
    fifo_db = run.home / "monitor_fifo.db"
    assert fifo_db.exists()
    left = sqlite3.connect(fifo_db).execute("SELECT COUNT(*) FROM queue_table").fetchone()[0]
    assert left == 0  # finished workers are not put back



def test_pull_workers_finish_with_the_monitor_fifo(daemon_run):  # noqa: F811
    pseudo = [f"{demo.PULL_QUEUE}/{rt}" for rt in demo.PULL_RESOURCE_TYPES]
    run = daemon_run(worker_seconds=1, cfg=FIFO_CFG, only_queues=pseudo)
    run.start_emulator()
    demo.set_queue_depth(run.emulator, demo.PULL_QUEUE, {rt: 2 for rt in demo.PULL_RESOURCE_TYPES})
    run.start()

    def finished_per_queue() -> dict[str, int]:
        counts = dict.fromkeys(pseudo, 0)
        for w in run.workers(demo.PULL_QUEUE):
            if w["status"] == "finished":
                counts[w["computingSite"]] = counts.get(w["computingSite"], 0) + 1
        return counts

    run.wait_until(lambda: min(finished_per_queue().values()) >= 3, 90, "3 pull workers finished per pseudo-queue")
    # PanDA wants no more: every live worker ends, checked from the FIFO
    demo.set_queue_depth(run.emulator, demo.PULL_QUEUE, {rt: 0 for rt in demo.PULL_RESOURCE_TYPES})
    run.wait_until(lambda: all(w["status"] in FINAL for w in run.workers(demo.PULL_QUEUE)), 60,
                   "every pull worker final")
    assert run.stop() == 0
    statuses = {w["status"] for w in run.workers(demo.PULL_QUEUE)}
    assert statuses == {"finished"}, statuses
