"""Row locks: never held twice (threads and processes), expiry after lockInterval, heartbeats."""

from __future__ import annotations

import dataclasses
import datetime
import multiprocessing
import os
import threading
import time

from pandaharvester.harvestercore.db.engine import DBSettings
from pandaharvester.harvestercore.db_proxy import DBProxy
from pandaharvester.harvestercore.time_utils import naive_utcnow
from test_db_fixtures import (  # noqa: F401
    _module_mariadb, ago, db_engine, db_settings, db_home, db_overrides, insert_workers, make_job, make_worker, proxy,
)

N_WORKERS = 300
N_JOBS = 300


def _populate(proxy: DBProxy) -> None:
    insert_workers(proxy, [make_worker(i, status="running", mod_ago=7200) for i in range(1, N_WORKERS + 1)])
    jobs = [make_job(10000 + i, status="running", sub_status="running", propagatorTime=ago(7200))
            for i in range(N_JOBS)]
    assert proxy.insert_jobs(jobs)


def _hammer(settings: DBSettings, tag: str, rounds: int, out: list) -> None:
    """One agent thread: take rows (check interval 0 so rows come back at once once released),
    hold them a moment, release them; record (kind, id, start, end) of each holding."""
    db = DBProxy(settings=settings)
    for _ in range(rounds):
        got = db.get_workers_to_update(15, 0, 3600, tag)
        t_w = time.time()
        workers = [w for q in got.values() for sets in q.values() for s in sets for w in s]
        jobs = db.get_jobs_to_propagate(15, 3600, 0, tag)
        t_j = time.time()
        time.sleep(0.002)
        for worker in workers:
            worker.nJobs = (worker.nJobs or 0) + 1
        # a holding is recorded from the pick's return to just before the release: strictly inside
        # the real holding period, so two recorded holdings of one row must never overlap
        t_w_end = time.time()
        assert db.update_jobs_workers(None, workers, tag)
        t_j_end = time.time()
        for job in jobs:
            job.propagatorLock = None
            job.propagatorTime = ago(3600)
            assert db.update_job(job, {"propagatorLock": tag}) == 1
        out += [("w", w.workerID, t_w, t_w_end) for w in workers] + [("j", j.PandaID, t_j, t_j_end) for j in jobs]
    db.close()


def _process_main(settings: DBSettings, tag: str, rounds: int, n_threads: int, queue) -> None:
    results: list = []
    threads = [threading.Thread(target=_hammer, args=(settings, f"{tag}-t{i}", rounds, results))
               for i in range(n_threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    queue.put(results)


def _assert_never_held_twice(records: list) -> None:
    by_row: dict = {}
    for kind, row_id, start, end in records:
        by_row.setdefault((kind, row_id), []).append((start, end))
    for key, spans in by_row.items():
        spans.sort()
        for (s1, e1), (s2, e2) in zip(spans, spans[1:]):
            assert s2 >= e1, f"{key} held twice at the same time: {(s1, e1)} and {(s2, e2)}"


def test_threads_and_processes_never_hold_a_row_twice(proxy, db_settings):
    """On SQLite, BEGIN IMMEDIATE serialises the pickers; on MariaDB, two processes x 8 threads
    meet at the rows' locks (SELECT ... FOR UPDATE SKIP LOCKED)."""
    _populate(proxy)
    settings = dataclasses.replace(db_settings, busy_timeout=60)
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_process_main, args=(settings, f"p{i}", 8, 8, queue)) for i in range(2)]
    for p in procs:
        p.start()
    records = []
    for _ in procs:
        records += queue.get(timeout=120)
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    kinds = {r[0] for r in records}
    assert kinds == {"w", "j"}, "both workers and jobs were taken"
    assert len(records) > 500
    _assert_never_held_twice(records)
    # every lock was released by its holder
    cur = proxy.execute("SELECT COUNT(*) FROM work_table WHERE lockedBy IS NOT NULL")
    assert cur.fetchone()[0] == 0
    proxy.commit()


def test_concurrent_pickers_get_disjoint_rows(proxy):
    _populate(proxy)
    results: dict[str, set] = {}

    def pick(tag: str) -> None:
        db = DBProxy()
        got = db.get_workers_to_update(50, 60, 600, tag)
        results[tag] = {w.workerID for q in got.values() for sets in q.values() for s in sets for w in s}
        db.close()

    threads = [threading.Thread(target=pick, args=(f"t{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    taken = [wid for ids in results.values() for wid in ids]
    assert len(taken) == len(set(taken)) == min(N_WORKERS, 400)


def test_concurrent_job_pickers_get_disjoint_rows(proxy):
    """Pickers whose order no index gives (preparator, stager): on MariaDB the candidates are read
    without locks and locked one batch at a time, so concurrent pickers share the rows out."""
    assert proxy.insert_jobs([make_job(5000 + i, sub_status="preparing") for i in range(N_JOBS)])
    results: dict[str, list] = {}
    start = threading.Barrier(8)

    def pick(tag: str) -> None:
        db = DBProxy()
        start.wait()
        got = db.get_jobs_in_sub_status("preparing", 50, "preparatorTime", "lockedBy", 180, 600, tag)
        results[tag] = [j.PandaID for j in got]
        db.close()

    threads = [threading.Thread(target=pick, args=(f"prep-{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    taken = [pid for ids in results.values() for pid in ids]
    assert len(taken) == len(set(taken)) == N_JOBS
    cur = proxy.execute("SELECT lockedBy, COUNT(*) FROM job_table GROUP BY lockedBy")
    assert {row[0]: row[1] for row in cur.fetchall()} == {tag: len(ids) for tag, ids in results.items() if ids}
    proxy.commit()


def test_crash_between_lock_and_update_loses_nothing(proxy):
    insert_workers(proxy, [make_worker(1, status="running"), make_worker(2, status="running")])
    got = proxy.get_workers_to_update(10, 60, 600, "monitor-dead")
    assert sum(len(s) for q in got.values() for s in q.values()) == 2
    # the "dead" monitor never updates; nobody else may take the rows while the lock is fresh
    assert proxy.get_workers_to_update(10, 60, 600, "monitor-alive") == {}
    # age the lock beyond lockInterval (as if 601 s passed)
    proxy.execute("UPDATE work_table SET modificationTime=:t", {":t": ago(601)})
    proxy.commit()
    got = proxy.get_workers_to_update(10, 60, 600, "monitor-alive")
    workers = [w for q in got.values() for s in q.values() for sets in s for w in sets]
    assert sorted(w.workerID for w in workers) == [1, 2]
    # the dead holder's late update is refused (lock lost); the new holder's is accepted
    stale = proxy.get_worker_with_id(1)
    stale.status = "finished"
    assert proxy.update_jobs_workers(None, [stale], "monitor-dead") is False
    for worker in workers:
        worker.status = "finished"
    assert proxy.update_jobs_workers(None, workers, "monitor-alive") is True
    assert proxy.get_worker_with_id(1).status == "finished"
    assert proxy.get_worker_with_id(1).lockedBy is None


def test_job_lock_expiry_and_check_interval(proxy):
    assert proxy.insert_jobs([make_job(1, sub_status="preparing")])
    first = proxy.get_jobs_in_sub_status("preparing", 10, "preparatorTime", "lockedBy", 180, 600, "prep-a")
    assert [j.PandaID for j in first] == [1]
    # locked: not eligible for another thread
    assert proxy.get_jobs_in_sub_status("preparing", 10, "preparatorTime", "lockedBy", 180, 600, "prep-b") == []
    # released but just checked: not eligible before checkInterval
    assert proxy.release_jobs([1], "prep-a")
    assert proxy.get_jobs_in_sub_status("preparing", 10, "preparatorTime", "lockedBy", 180, 600, "prep-b") == []
    proxy.execute("UPDATE job_table SET preparatorTime=:t", {":t": ago(181)})
    proxy.commit()
    assert [j.PandaID for j in proxy.get_jobs_in_sub_status("preparing", 10, "preparatorTime", "lockedBy", 180, 600,
                                                             "prep-b")] == [1]
    assert proxy.lock_job_again(1, "preparatorTime", "lockedBy", "prep-b") is True
    assert proxy.lock_job_again(1, "preparatorTime", "lockedBy", "prep-a") is False


def test_propagator_heartbeat_and_immediate_final_update(proxy):
    job = make_job(1, status="running", sub_status="running", propagatorTime=naive_utcnow())
    assert proxy.insert_jobs([job])
    # fresh propagatorTime: not due before updateInterval (1800 s)
    assert proxy.get_jobs_to_propagate(10, 600, 1800, "prop") == []
    # the heartbeat falls due after updateInterval
    proxy.execute("UPDATE job_table SET propagatorTime=:t", {":t": ago(1801)})
    proxy.commit()
    jobs = proxy.get_jobs_to_propagate(10, 600, 1800, "prop")
    assert [j.PandaID for j in jobs] == [1]
    # the propagator releases the job after sending it: next heartbeat in 1800 s
    jobs[0].propagatorLock = None
    assert proxy.update_job(jobs[0], {"propagatorLock": "prop"}) == 1
    assert proxy.get_jobs_to_propagate(10, 600, 1800, "prop") == []
    # a final state change triggers propagation at once
    job = proxy.get_job(1)
    job.status = "finished"
    job.trigger_propagation()
    assert proxy.update_job(job) == 1
    assert [j.PandaID for j in proxy.get_jobs_to_propagate(10, 600, 1800, "prop")] == [1]


def test_worker_propagation_heartbeat(proxy):
    insert_workers(proxy, [make_worker(1, status="running")])
    worker = proxy.get_worker_with_id(1)
    worker.lastUpdate = naive_utcnow()
    proxy.update_worker(worker)
    assert proxy.get_workers_to_propagate(10, 1800) == []
    worker.trigger_propagation()
    proxy.update_worker(worker)
    got = proxy.get_workers_to_propagate(10, 1800)
    assert [w.workerID for w in got] == [1]
    # taken: lastUpdate moved to now, so not again before the interval
    assert proxy.get_workers_to_propagate(10, 1800) == []
