"""E2E: pull mode — PanDA's queue depth (SET_N_WORKERS_JOBTYPE) drives the workers per pseudo-queue.

What the WorkerAdjuster limits (worker_adjuster.py, rule 2 and 3): in ``runMode == "slave"`` the
number PanDA sets is the wanted number of QUEUED workers, and ``nQueue`` counts the workers in
``submitted``/``pending``/``idle`` (db/queues.py ``get_queues_to_submit``); running workers are
not queued, so with pilots that start at once the adjuster keeps topping up until maxWorkers.
To make "queued" observable, the pilots here run under ``e2e_helpers.QueuedMonitor``: a batch
system that never starts them, so every live pilot stays ``submitted``. The number of live
(non-final) workers per pseudo-queue must then settle exactly at min(depth, nQueueLimitWorker,
maxWorkers) and follow a raised depth.
"""

from __future__ import annotations

import time

from e2e_helpers import daemon_run  # noqa: F401

PULL = "DEMO_PULL"
FINAL = ("finished", "failed", "cancelled", "missed")
LIMIT = 4  # nQueueLimitWorker of each pseudo-queue


def _live(run) -> dict[str, int]:
    counts = {f"{PULL}/SCORE": 0, f"{PULL}/MCORE": 0}
    for w in run.workers(PULL):
        if w["status"] not in FINAL:
            counts[w["computingSite"]] = counts.get(w["computingSite"], 0) + 1
    return counts


def _settles(run, expected: dict[str, int], timeout: float = 30, hold: float = 4) -> None:
    seen = []
    try:
        run.wait_until(lambda: seen.append(_live(run)) or seen[-1] == expected, timeout,
                       f"live pull workers == {expected}")
    except AssertionError as exc:
        raise AssertionError(f"last live counts {seen[-1:]}: {exc}") from None
    time.sleep(hold)  # several submitter cycles: the count must stay there, not overshoot
    assert _live(run) == expected
    statuses = {w["status"] for w in run.workers(PULL) if w["status"] not in FINAL}
    assert statuses <= {"submitted", "pending"}, statuses


def _set_depth(run, score: int, mcore: int) -> None:
    # one SET_N_WORKERS_JOBTYPE for the whole site, as PanDA sends it (see demo.set_queue_depth)
    run.demo.set_queue_depth(run.emulator, PULL, {"SCORE": score, "MCORE": mcore})


CHANGES = {"submitter": {"sleepTime": 300}, "nQueueLimitWorker": LIMIT, "maxWorkers": 8,
           "monitor": {"name": "QueuedMonitor", "module": "e2e_helpers"}}


def _pull_run(daemon_run):
    return daemon_run(only_queues=[f"{PULL}/SCORE", f"{PULL}/MCORE"],
                      queue_changes={f"{PULL}/SCORE": CHANGES, f"{PULL}/MCORE": CHANGES})


def _panda_stats(run) -> dict:
    """What PanDA holds for this instance, per PanDA queue: {queue: {jobType: {resourceType: {status: n}}}}."""
    return {queue: by_instance[run.harvester_id] for queue, by_instance in run.emulator.worker_stats().items()
            if run.harvester_id in by_instance}


def test_pull_workers_follow_queue_depth(daemon_run):  # noqa: F811
    run = _pull_run(daemon_run)
    _set_depth(run, 2, 1)
    run.start()
    _settles(run, {f"{PULL}/SCORE": 2, f"{PULL}/MCORE": 1})
    # PanDA's command carries the real job type; each pseudo-queue took its own share, as workers
    # of that job type and of its own resource type
    assert "{'managed': {'SCORE': 2, 'MCORE': 1}}" in run.log("submitter")
    live = {(w["computingSite"], w["resourceType"]) for w in run.workers(PULL) if w["status"] not in FINAL}
    assert live == {(f"{PULL}/SCORE", "SCORE"), (f"{PULL}/MCORE", "MCORE")}
    job_types = {r["jobType"] for r in run.db_rows("SELECT jobType FROM work_table WHERE status='submitted'")}
    assert job_types == {"managed"}
    _set_depth(run, 3, 3)  # raise both: the queued workers follow
    _settles(run, {f"{PULL}/SCORE": 3, f"{PULL}/MCORE": 3})
    # PanDA asks for the statistics of the unified queue: it gets them under that name, broken
    # down by job type and resource type (never under the pseudo-queue names)
    run.emulator.add_command(run.harvester_id, f"REPORT_WORKER_STATS:{PULL}", None, ack_requested=False)

    def reported():
        managed = _panda_stats(run).get(PULL, {}).get("managed", {})
        return {rt: counts.get("submitted") for rt, counts in managed.items()} == {"SCORE": 3, "MCORE": 3}

    run.wait_until(reported, 20, f"PanDA holds the worker statistics of {PULL} by job and resource type")
    stats = _panda_stats(run)
    assert set(stats) == {PULL}, stats
    assert stats[PULL]["managed"]["SCORE"]["to_submit"] == 3 and stats[PULL]["managed"]["MCORE"]["to_submit"] == 3
    assert run.stop() == 0


def test_pull_depth_capped_by_nqueuelimitworker(daemon_run):  # noqa: F811
    run = _pull_run(daemon_run)
    _set_depth(run, 1, 6)
    run.start()
    _settles(run, {f"{PULL}/SCORE": 1, f"{PULL}/MCORE": LIMIT}, timeout=12, hold=3)
    assert run.stop() == 0
