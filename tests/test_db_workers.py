"""Workers, worker stats/limits and PanDA queues."""

from __future__ import annotations

import types

from pandaharvester.harvestercore.work_spec import WorkSpec
from test_db_fixtures import (  # noqa: F401
    _module_mariadb, ago, db_engine, db_home, db_overrides, insert_workers, make_job, make_worker, proxy,
)


def _pq(proxy, queue="Q1", site=None, rt="ANY", jt="ANY", **attrs):
    cols = {"queueName": queue, "siteName": site or queue, "resourceType": rt, "jobType": jt,
            "uniqueName": f"{queue}:{rt}:{jt}", **attrs}
    proxy.execute(f"INSERT INTO pq_table ({','.join(cols)}) VALUES ({','.join(':' + c for c in cols)})",
                  {f":{k}": v for k, v in cols.items()})
    proxy.commit()


def test_register_worker_binds_jobs(proxy):
    _pq(proxy, nNewWorkers=2)
    job = make_job(1, sub_status="prepared")
    assert proxy.insert_jobs([job])
    chunks = proxy.get_job_chunks_for_workers("Q1", 1, 0, 1, None, False, 60, 600, "sub")
    worker = make_worker(5, status="submitted", hasJob=1)
    assert proxy.insert_workers([worker], "sub")
    assert proxy.get_worker_with_id(5).status == "pending"
    assert proxy.register_worker(worker, chunks[0], "sub")
    job = proxy.get_job(1)
    assert job.subStatus == "submitted" and job.nWorkers == 1 and job.nWorkersInTotal == 1
    assert [w.workerID for w in proxy.get_workers_with_job_id(1)] == [5]
    assert [j.PandaID for j in proxy.get_jobs_with_worker_id(5, None, with_file=True)] == [1]
    # registering a worker not inserted before counts down the queue's nNewWorkers
    cur = proxy.execute("SELECT nNewWorkers FROM pq_table")
    assert cur.fetchone()[0] == 2
    proxy.commit()
    assert proxy.register_worker(make_worker(6, status="submitted"), [], "sub")
    cur = proxy.execute("SELECT nNewWorkers FROM pq_table")
    assert cur.fetchone()[0] == 1
    proxy.commit()
    assert proxy.get_worker_with_id(5).status == "submitted"
    assert proxy.get_worker_with_id(999) is None


def test_update_worker_and_lookups(proxy):
    insert_workers(proxy, [make_worker(1, status="ready"), make_worker(2, status="running", nJobsToReFill=1),
                           make_worker(3, status="running")])
    worker = proxy.get_worker_with_id(3)
    assert proxy.update_worker(worker) is None
    worker.status = "finished"
    assert proxy.update_worker(worker, {"status": "running"}) == 1
    assert proxy.update_worker(worker, {"status": "running"}) is None
    assert sorted(w.workerID for w in proxy.get_ready_workers("Q1", 5)) == [1, 2]
    got = proxy.get_workers_from_ids([1, 2, 3])
    assert sorted(ws[0].workerID for ws in got["Q1"][None]) == [2]
    active = list(proxy.get_active_workers(10, 60))
    assert [w.workerID for w in active] == [2]
    assert proxy.lock_workers({2: {"lockedBy": "fifo", "checkTime": ago(1)}}, 600) is True
    assert proxy.lock_workers({2: {"lockedBy": "other"}}, 600) is False
    assert proxy.get_worker_with_id(2).lockedBy == "fifo"


def test_kill_marks_and_sweeper_cycle(proxy):
    insert_workers(proxy, [make_worker(i, status="submitted", computingElement="ce1", submissionHost="h1")
                           for i in range(1, 5)])
    job = make_job(1, status="running", sub_status="running")
    assert proxy.insert_jobs([job])
    proxy.execute("INSERT INTO jw_table (PandaID, workerID) VALUES (1, 1)")
    proxy.commit()
    assert proxy.mark_workers_to_kill_by_pandaid(1) == 1
    assert proxy.mark_workers_to_kill_by_workerids([2], delay_seconds=3600) == 1
    assert proxy.mark_workers_to_kill_by_query({"computingSite": ["Q1"], "computingElement": "ALL",
                                                "submissionHost": ["h1"]}) == 2
    assert proxy.mark_workers_to_kill_by_query({"computingSite": []}) == 0
    got = proxy.get_workers_to_kill(10, 180)
    assert sorted(w.workerID for w in got["Q1"][None]) == [1, 3, 4]
    assert proxy.get_workers_to_kill(10, 180) == {}
    # cleanup: final, old, jobs reported
    proxy.execute("UPDATE work_table SET status='finished', endTime=:t, modificationTime=:t, lastUpdate=NULL",
                  {":t": ago(30 * 3600)})
    proxy.execute("UPDATE job_table SET propagatorTime=NULL")
    proxy.commit()
    got = proxy.get_workers_for_cleanup(10, {"finished": 24})
    workers = {w.workerID: w for w in got["Q1"][None]}
    assert set(workers) == {1, 2, 3, 4}
    assert [j.PandaID for j in workers[1].get_jobspec_list()] == [1]
    assert proxy.get_workers_for_cleanup(10, {"finished": 24}) == {}
    assert proxy.delete_worker(1)
    assert proxy.get_worker_with_id(1) is None and proxy.get_job(1) is None


def test_feed_events_cycle(proxy):
    insert_workers(proxy, [make_worker(1, status="running", eventsRequest=WorkSpec.EV_requestEvents)])
    got = proxy.get_workers_to_feed_events(10, 600, "ef")
    assert [w.workerID for w in got["Q1"]] == [1]
    assert proxy.get_workers_to_feed_events(10, 600, "ef2") == {}
    assert proxy.lock_worker_again_to_feed_events(1, "ef") is True
    assert proxy.lock_worker_again_to_feed_events(1, "ef2") is False


def test_multiworkers_are_grouped(proxy):
    insert_workers(proxy, [make_worker(i, status="running", map_type="OneToMany") for i in (1, 2, 3)])
    assert proxy.insert_jobs([make_job(1, status="running", sub_status="running")])
    proxy.executemany("INSERT INTO jw_table (PandaID, workerID) VALUES (:p, :w)",
                      [{":p": 1, ":w": 1}, {":p": 1, ":w": 2}, {":p": 1, ":w": 3}])
    proxy.commit()
    got = proxy.get_workers_to_update(10, 60, 600, "mon")
    sets = got["Q1"][None]
    assert len(sets) == 1 and sorted(w.workerID for w in sets[0]) == [1, 2, 3]
    assert all(w.pandaid_list == [1] for w in sets[0])


def test_worker_stats_and_limits(proxy):
    _pq(proxy, maxWorkers=100, nQueueLimitWorker=10, nNewWorkers=3)
    _pq(proxy, rt="SCORE", jt="managed")
    insert_workers(proxy, [make_worker(1, status="running", nCore=8, minRamCount=2000, computingElement="ce1",
                                       jobType="managed", resourceType="SCORE"),
                           make_worker(2, status="submitted", nCore=1, minRamCount=1000, computingElement="ce1",
                                       jobType="managed", resourceType="SCORE"),
                           make_worker(3, status="missed", submitTime=ago(60))])
    stats = proxy.get_worker_stats("Q1")
    # each worker once, under its own job and resource type; every pq_table row gives its to_submit
    assert stats["managed"]["SCORE"] == {"running": 1, "submitted": 1, "finished": 0, "to_submit": None}
    assert stats["ANY"]["ANY"] == {"running": 0, "submitted": 0, "finished": 0, "to_submit": 3}
    bulk = proxy.get_worker_stats_bulk(["UPS"])
    assert bulk["Q1"]["managed"]["SCORE"]["running"] == 1
    assert bulk["UPS"] == {"managed": {"SCORE": {"running": 0, "submitted": 0, "finished": 0, "to_submit": 0}}}
    full = proxy.get_worker_stats_full(["Q1"])
    assert full["Q1"]["managed"]["SCORE"]["submitted"] == 1
    config = types.SimpleNamespace(nQueueLimitWorkerCores=50, nQueueLimitWorkerMemory=None)
    limits, wstats = proxy.get_worker_limits("Q1", config)
    assert limits["maxWorkers"] == 100 and limits["nQueueLimitWorker"] == 10
    assert limits["nQueueWorkerCores"] == 50 and limits["nQueueWorkerMemory"] is None
    assert wstats["queue"] == {"n": 1, "core": 1, "mem": 1000} and wstats["running"]["core"] == 8
    assert proxy.get_worker_limits_old("Q1")["nQueueLimitWorker"] == 10
    assert proxy.get_worker_ce_stats("Q1") == {"ce1": {"running": 1, "submitted": 1}}
    assert proxy.get_worker_ce_backend_throughput("Q1", 600) == {
        "ce1": {"submitted": 1, "running": 1, "finished": 0}}
    assert proxy.get_num_missed_workers("Q1", {"timeLimit": ago(3600), "siteName": "Q1"}) == 1


def _pseudo_queue(name: str, **limits):
    site, rt = name.split("/")
    return types.SimpleNamespace(queueName=name, siteName=site, resourceType=rt, jobType="ANY",
                                 uniqueName=f"{name}:{rt}:ANY", **limits)


class _Mapper:
    def __init__(self, *configs):
        self.queues = {c.queueName: c for c in configs}

    def get_queue(self, name):
        return self.queues.get(name)


def test_worker_limits_of_pseudo_queues(proxy):
    """A pseudo-queue SITE/RT has no catch-all row of its own site name: its own row's limits
    apply (the worker adjuster asks by queue name), counted over its own workers only."""
    score = _pseudo_queue("S/SCORE", nQueueLimitWorker=4, maxWorkers=8)
    mcore = _pseudo_queue("S/MCORE", nQueueLimitWorker=2, maxWorkers=5, nQueueLimitWorkerRatio=50,
                          nQueueLimitWorkerMin=1, nQueueLimitWorkerMax=3)
    plain = types.SimpleNamespace(queueName="P", siteName="P", maxWorkers=7, nQueueLimitWorker=6)
    mapper = _Mapper(score, mcore, plain)
    assert proxy.fill_panda_queue_table(["S/SCORE", "S/MCORE", "P"], mapper)
    insert_workers(proxy, [make_worker(i, status="running", site="S/MCORE", nCore=8) for i in range(1, 5)]
                   + [make_worker(10, status="submitted", site="S/SCORE", nCore=1, minRamCount=2000)])
    limits, stats = proxy.get_worker_limits("S/SCORE", score)
    assert (limits["maxWorkers"], limits["nQueueLimitWorker"], limits["nQueueLimitWorkerPerRT"]) == (8, 4, 4)
    assert stats == {"queue": {"n": 1, "core": 1, "mem": 2000}, "running": {"n": 0, "core": 0, "mem": 0}}
    # dynamic limit of the pseudo-queue: 4 running x 50 % = 2, one resource type, capped by 2
    limits, stats = proxy.get_worker_limits("S/MCORE", mcore)
    assert (limits["maxWorkers"], limits["nQueueLimitWorker"], limits["nQueueLimitWorkerPerRT"]) == (5, 2, 2)
    assert stats["running"] == {"n": 4, "core": 32, "mem": 0} and stats["queue"]["n"] == 0
    assert proxy.get_worker_limits_old("S/MCORE") == {"maxWorkers": 5, "nQueueLimitWorker": 2,
                                                      "nQueueLimitWorkerPerRT": 2}
    # a plain queue keeps the original's lookup (its site's catch-all row)
    assert proxy.get_worker_limits("P")[0]["nQueueLimitWorker"] == 6
    # PanDA asks for a resource type the site has no pseudo-queue for: not applied (no row is
    # added to a pseudo-queue of another resource type); each pseudo-queue keeps its own limits
    assert proxy.set_queue_limit("S", {"ANY": {"SCORE": 3, "MCORE": 1, "SCORE_HIMEM": 2}}) == {
        "ANY": {"SCORE": 3, "MCORE": 1}}
    cur = proxy.execute("SELECT COUNT(*) FROM pq_table WHERE siteName='S'")
    assert cur.fetchone()[0] == 2
    proxy.commit()
    assert proxy.get_worker_limits("S/SCORE", score)[0]["nQueueLimitWorker"] == 4
    assert proxy.get_worker_limits("S/MCORE", mcore)[0]["maxWorkers"] == 5
    # the bare site name of pseudo-queues is no queue: no limits (as the original)
    limits, _stats = proxy.get_worker_limits("S")
    assert "maxWorkers" not in limits and proxy.get_worker_limits("NOSUCH")[0].get("maxWorkers") is None


def test_queues_to_submit_and_queue_limits(proxy):
    _pq(proxy, queue="Q1", site="S1", nNewWorkers=0)
    insert_workers(proxy, [make_worker(1, status="running"), make_worker(2, status="submitted"),
                           make_worker(3, status="ready")])
    orphan = make_worker(4, status="submitted")
    assert proxy.insert_workers([orphan], "sub")
    proxy.execute("UPDATE work_table SET modificationTime=:t WHERE workerID=4", {":t": ago(3600)})
    proxy.commit()
    current, site, res_map = proxy.get_queues_to_submit(60, 600, "sub", 300)
    assert site == "S1" and res_map == {"ANY": {"ANY": "Q1"}}
    assert current == {"Q1": {"ANY": {"ANY": {"nReady": 1, "nRunning": 1, "nQueue": 1, "nNewWorkers": 0}}}}
    # the pending worker a crashed submitter left is not counted, and kept for the sweeper
    assert proxy.get_worker_with_id(4).status == "pending"
    # the site is locked: nobody else gets it; the original's 5-argument form works too
    assert proxy.get_queues_to_submit(3, 60, 600, "sub2", 300) == ({}, None, {})
    assert proxy.release_site("S1", "sub")
    ret = proxy.set_queue_limit("S1", {"managed": {"SCORE": 5}, "ANY": {"ANY": 2}})
    assert ret == {"managed": {"SCORE": 5}, "ANY": {"ANY": 2}}
    cur = proxy.execute("SELECT uniqueName, nNewWorkers FROM pq_table ORDER BY uniqueName")
    assert [tuple(r) for r in cur.fetchall()] == [("Q1:ANY:ANY", 2), ("Q1:SCORE:managed", 5)]
    proxy.commit()
    assert proxy.update_panda_queue_attribute("submitTime", ago(10), site_name="S1")
    assert proxy.purge_pq("Q1")
    cur = proxy.execute("SELECT COUNT(*) FROM work_table WHERE computingSite='Q1'")
    assert cur.fetchone()[0] == 0
    proxy.commit()


def test_fill_panda_queue_table(proxy):
    class Mapper:
        def __init__(self, queues):
            self.queues = queues

        def get_queue(self, name):
            return self.queues.get(name)

    q1 = types.SimpleNamespace(queueName="Q1", siteName="S1", maxWorkers=10, nQueueLimitWorker=3, nQueueLimitJob=4,
                               resourceType="ANY", jobType="ANY")
    q2 = types.SimpleNamespace(queueName="Q2", siteName="S2", maxWorkers=5)
    mapper = Mapper({"Q1": q1, "Q2": q2})
    assert proxy.fill_panda_queue_table(["Q1", "Q2"], mapper)
    q1.maxWorkers = 20
    assert proxy.fill_panda_queue_table(["Q1"], mapper)
    cur = proxy.execute("SELECT queueName, maxWorkers, uniqueName FROM pq_table")
    assert [tuple(r) for r in cur.fetchall()] == [("Q1", 20, "Q1:ANY:ANY")]
    proxy.commit()
    assert proxy.fill_panda_queue_table(["Q1"], mapper, refill_table=True)


def test_interrupted_submissions_are_given_to_the_sweeper_then_deleted(proxy):
    """Workers a crashed submitter left pending (recorded before the batch submission, never
    registered: their batch jobs may run) are listed for the sweeper after the submitter's
    lockInterval, and deleted with their job relations only — their jobs stay for another worker."""
    job = make_job(7, sub_status="prepared")
    assert proxy.insert_jobs([job])
    stale, fresh = make_worker(20, status="submitted", hasJob=1), make_worker(21, status="submitted")
    assert proxy.insert_workers([stale, fresh], "sub")
    registered = make_worker(22, status="submitted")
    insert_workers(proxy, [registered])
    proxy.execute("INSERT INTO jw_table (PandaID, workerID) VALUES (7, 20)")
    proxy.execute("UPDATE work_table SET modificationTime=:t WHERE workerID IN (20, 22)", {":t": ago(3600)})
    proxy.commit()
    found = proxy.get_interrupted_submissions(600, 100)
    assert {site: {cid: [w.workerID for w in ws] for cid, ws in by.items()} for site, by in found.items()} == \
        {"Q1": {None: [20]}}
    assert proxy.get_interrupted_submissions(7200, 100) == {}  # not old enough yet
    # registered meanwhile (a slow, not a crashed, submitter): not deleted
    assert proxy.delete_interrupted_submissions([20, 21, 22], 600) == 1
    assert proxy.get_worker_with_id(20) is None
    assert proxy.get_worker_with_id(21).status == "pending" and proxy.get_worker_with_id(22).status == "submitted"
    assert proxy.execute("SELECT COUNT(*) FROM jw_table WHERE workerID=20").fetchone()[0] == 0
    proxy.commit()
    assert proxy.get_job(7) is not None  # the job is kept for another worker
