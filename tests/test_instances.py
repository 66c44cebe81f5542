"""Three instances (three daemon processes, each its own ``harvester_id``) on one MariaDB database,
serving the same PanDA queues of one PanDA (the emulator).

Counted from the emulator's state and from each instance's tables: no job lost, none fetched
twice, each job in the tables of the instance PanDA gave it to and of no other, one worker per
job, worker IDs unique across the instances; each instance submits its share of the queue depth
PanDA gives it, and when one stops, its share goes to the others at PanDA's next depth; a fourth
instance pointed at the tables of another is refused at start.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import mariadb_helpers
from e2e_helpers import DaemonRun

pytestmark = pytest.mark.mariadb

PUSH = "DEMO_PUSH"
PULL = "DEMO_PULL"
FINAL = ("finished", "failed", "cancelled", "missed")
N_JOBS = 150
IDS = ("site-inst-1", "site-inst-2", "site-inst-3")
# pilots of the pull queue stay queued (QueuedMonitor) so that the live count is what was submitted
PULL_CHANGES = {"submitter": {"sleepTime": 300}, "nQueueLimitWorker": 6, "maxWorkers": 8,
                "monitor": {"name": "QueuedMonitor", "module": "e2e_helpers"}}


def _prefix(harvester_id: str) -> str:
    return "I" + harvester_id.rsplit("-", 1)[1] + "_"


@pytest.fixture()
def instances(tmp_path: Path):
    """Three DaemonRuns (not started) on one scratch MariaDB database and one emulator."""
    with mariadb_helpers.mariadb_database() as overrides:
        runs: list[DaemonRun] = []
        try:
            for harvester_id in IDS:
                run = DaemonRun(tmp_path / harvester_id, harvester_id=harvester_id,
                                only_queues=[PUSH, f"{PULL}/SCORE", f"{PULL}/MCORE"],
                                queue_changes={f"{PULL}/SCORE": PULL_CHANGES, f"{PULL}/MCORE": PULL_CHANGES},
                                cfg={"db": dict(overrides, tablePrefix=_prefix(harvester_id)),
                                     "jobfetcher": {"maxJobs": 5},
                                     "commandmanager": {"heartbeatInterval": 1}})
                if runs:
                    run.use_emulator(runs[0].emulator)
                else:
                    run.start_emulator()
                runs.append(run)
            yield runs, overrides
        finally:
            for run in reversed(runs):  # the first run's emulator goes last
                run.close()


def _rows(overrides: dict, sql: str) -> list[dict]:
    return mariadb_helpers.rows(overrides["schema"], sql)


def _live_pull(overrides: dict, harvester_id: str) -> dict[str, int]:
    counts = {f"{PULL}/SCORE": 0, f"{PULL}/MCORE": 0}
    for w in _rows(overrides, f"SELECT status, computingSite FROM {_prefix(harvester_id)}work_table"):
        if str(w["computingSite"]).startswith(PULL) and w["status"] not in FINAL:
            counts[w["computingSite"]] += 1
    return counts


def _wait_live(runs, overrides, expected: dict[str, dict[str, int]], timeout: float = 40) -> None:
    seen: list = []

    def check() -> bool:
        seen.append({hid: _live_pull(overrides, hid) for hid in expected})
        return seen[-1] == expected

    try:
        runs[0].wait_until(check, timeout, f"live pull workers per instance == {expected}")
    except AssertionError as exc:
        raise AssertionError(f"last live counts {seen[-1:]}: {exc}") from None
    time.sleep(3)  # several submitter cycles: no instance overshoots its share
    assert {hid: _live_pull(overrides, hid) for hid in expected} == expected


def test_three_instances_share_the_queues_without_losing_or_duplicating(instances):
    runs, overrides = instances
    emulator = runs[0].emulator
    panda_ids = emulator.add_task(PUSH, N_JOBS)
    for run in runs:
        run.start()
    runs[0].wait_until(lambda: all(j["status"] == "finished" for j in emulator.jobs(site=PUSH)), 180,
                       "all push jobs finished in PanDA")
    for run in runs:
        run.assert_alive()

    # ---- push: 0 lost, 0 fetched twice, each job in one instance's tables, one worker each
    jobs = emulator.jobs(site=PUSH)
    assert sorted(j["panda_id"] for j in jobs) == sorted(panda_ids)
    assert {j["panda_id"]: j["n_sent"] for j in jobs if j["n_sent"] != 1} == {}
    given = {hid: {j["panda_id"] for j in jobs if j["harvester_id"] == hid} for hid in IDS}
    assert set().union(*given.values()) == set(panda_ids)
    assert all(given.values()), {hid: len(ids) for hid, ids in given.items()}  # each took a share
    worker_of: dict[int, set] = {}
    worker_ids: list[int] = []
    for hid in IDS:
        prefix = _prefix(hid)
        held = [r["PandaID"] for r in _rows(overrides, f"SELECT PandaID FROM {prefix}job_table")]
        assert sorted(held) == sorted(given[hid]), f"{hid} holds jobs PanDA did not give it"
        for link in _rows(overrides, f"SELECT jw.PandaID, jw.workerID FROM {prefix}jw_table jw JOIN "
                                     f"{prefix}work_table w ON w.workerID = jw.workerID "
                                     f"WHERE w.computingSite = '{PUSH}'"):
            worker_of.setdefault(link["PandaID"], set()).add((hid, link["workerID"]))
        worker_ids += [r["workerID"] for r in _rows(overrides, f"SELECT workerID FROM {prefix}work_table")]
    assert set(worker_of) == set(panda_ids)
    assert {k: v for k, v in worker_of.items() if len(v) != 1} == {}
    assert len(worker_ids) == len(set(worker_ids)), "a workerID used by two instances"
    # PanDA holds each worker under the instance that submitted it, once
    panda_workers = [(w["harvester_id"], w["worker_id"]) for w in emulator.workers(site=PUSH)]
    assert sorted(panda_workers) == sorted(w for ws in worker_of.values() for w in ws)

    # ---- pull: each live instance gets its share of the depth and submits it, no more
    runs[0].wait_until(lambda: all(emulator.state()["heartbeats"].get(hid, {}).get("n_heartbeats", 0) >= 1
                                   for hid in IDS), 30, "the three instances heard by PanDA")
    emulator.set_queue_depth(PULL, 3, resource_type="MCORE", command=False)
    reply = emulator.set_queue_depth(PULL, 6, resource_type="SCORE")
    assert reply["notified"] == list(IDS)
    _wait_live(runs, overrides, {hid: {f"{PULL}/SCORE": 2, f"{PULL}/MCORE": 1} for hid in IDS})

    # one instance stops; once PanDA no longer hears it, the next depth is shared by the other two
    assert runs[2].stop() == 0
    emulator.settings(instance_timeout=3.0)
    time.sleep(4)
    reply = emulator.set_queue_depth(PULL, 10, resource_type="SCORE")
    assert reply["notified"] == list(IDS[:2])
    assert reply["shares"] == {IDS[0]: {"managed": {"SCORE": 5, "MCORE": 2}},
                               IDS[1]: {"managed": {"SCORE": 5, "MCORE": 1}}}
    _wait_live(runs, overrides, {IDS[0]: {f"{PULL}/SCORE": 5, f"{PULL}/MCORE": 2},
                                 IDS[1]: {f"{PULL}/SCORE": 5, f"{PULL}/MCORE": 1}})
    assert _live_pull(overrides, IDS[2]) == {f"{PULL}/SCORE": 2, f"{PULL}/MCORE": 1}  # the stopped one's stay

    # the registry: each prefix owned by its instance
    owners = {r["tablePrefix"]: r["harvesterID"] for r in _rows(overrides, "SELECT * FROM instance_table")}
    assert owners == {_prefix(hid): hid for hid in IDS}
    for run in runs[:2]:
        assert run.stop() == 0


def test_an_instance_pointed_at_the_tables_of_another_is_refused(instances, tmp_path):
    runs, overrides = instances
    runs[0].start()
    runs[0].wait_until(lambda: _rows(overrides, "SELECT 1 FROM instance_table"), 60, "the first instance registered")
    intruder = DaemonRun(tmp_path / "intruder", harvester_id="site-inst-9", only_queues=[PUSH],
                         cfg={"db": dict(overrides, tablePrefix=_prefix(IDS[0]))})
    intruder.use_emulator(runs[0].emulator)
    try:
        intruder.start()
        assert intruder.daemon.wait(60) != 0
        out = intruder.log_tail("daemon", 20000)
        assert "belong to instance site-inst-1" in out and "not to harvester_id site-inst-9" in out, out[-3000:]
        runs[0].assert_alive()
        assert _rows(overrides, "SELECT harvesterID FROM instance_table") == [{"harvesterID": IDS[0]}]
    finally:
        intruder.close()
    assert runs[0].stop() == 0
