"""update_jobs_workers_bulk: the monitor's write-back of many worker chunks in one transaction."""

from __future__ import annotations

import pytest

from pandaharvester.errors import DBError
from pandaharvester.harvestercore.db_proxy import DBProxy
from test_db_fixtures import (  # noqa: F401
    _module_mariadb, db_engine, db_home, db_overrides, insert_workers, make_job, make_worker, proxy,
)


def _locked_workers(proxy: DBProxy, tag: str) -> dict[int, object]:
    got = proxy.get_workers_to_update(100, 60, 600, tag)
    return {w.workerID: w for q in got.values() for s in q.values() for sets in s for w in sets}


def test_bulk_write_reports_each_chunk_and_keeps_the_lock_rules(proxy: DBProxy) -> None:
    insert_workers(proxy, [make_worker(i, status="running", mod_ago=7200) for i in (1, 2, 3)])
    workers = _locked_workers(proxy, "monitor-a")
    assert sorted(workers) == [1, 2, 3]
    # worker 3's lock was taken over by another monitor meanwhile: its chunk must be refused
    proxy.execute("UPDATE work_table SET lockedBy='monitor-b' WHERE workerID=3")
    proxy.commit()
    for worker in workers.values():
        worker.status = "finished"
    oks = proxy.update_jobs_workers_bulk([(None, [workers[1]], None), (None, [workers[2]], [[]]),
                                          (None, [workers[3]], None)], "monitor-a")
    assert oks == [True, True, False]
    assert [proxy.get_worker_with_id(i).status for i in (1, 2, 3)] == ["finished", "finished", "running"]
    assert proxy.get_worker_with_id(1).lockedBy is None and proxy.get_worker_with_id(1).endTime is not None
    assert proxy.get_worker_with_id(3).lockedBy == "monitor-b"
    # the written specs are clean again, the refused one keeps its changes for a retry
    assert not workers[1].has_updated_attributes()


def test_bulk_write_groups_rows_by_changed_columns(proxy: DBProxy) -> None:
    insert_workers(proxy, [make_worker(i, status="running", mod_ago=7200) for i in range(1, 7)])
    workers = _locked_workers(proxy, "mon")
    # worker 6 became final meanwhile (e.g. killed by an admin): refused like a lost lock
    proxy.execute("UPDATE work_table SET status='cancelled' WHERE workerID=6")
    proxy.commit()
    workers[1].status = "finished"
    workers[2].nJobs = 7
    workers[3].diagMessage = "three"
    workers[4].nJobs = 8
    workers[4].diagMessage = "four"
    workers[6].nJobs = 9
    chunks = [(None, [workers[i]], None) for i in range(1, 7)]
    assert proxy.update_jobs_workers_bulk(chunks, "mon") == [True, True, True, True, True, False]
    got = {i: proxy.get_worker_with_id(i) for i in range(1, 7)}
    assert got[1].status == "finished" and got[1].nJobs != 7
    assert got[2].nJobs == 7 and got[2].diagMessage is None
    assert got[3].diagMessage == "three" and got[3].nJobs != 7
    assert (got[4].nJobs, got[4].diagMessage) == (8, "four")
    assert got[5].lockedBy is None  # nothing else changed: the lock is still released
    assert got[6].status == "cancelled" and got[6].nJobs != 9 and got[6].lockedBy == "mon"


def test_bulk_write_of_a_worker_listed_twice_writes_it_once(proxy: DBProxy) -> None:
    insert_workers(proxy, [make_worker(1, status="running", mod_ago=7200)])
    worker = _locked_workers(proxy, "mon")[1]
    worker.nJobs = 3
    # the second copy finds the lock already released by the first write, as one by one did
    assert proxy.update_jobs_workers_bulk([(None, [worker], None), (None, [worker], None)], "mon") == [True, False]
    assert proxy.get_worker_with_id(1).nJobs == 3


def test_bulk_write_writes_jobs_and_relations(proxy: DBProxy) -> None:
    insert_workers(proxy, [make_worker(1, status="running", mod_ago=7200)])
    job = make_job(500, status="running", sub_status="running")
    assert proxy.insert_jobs([job])
    worker = _locked_workers(proxy, "mon")[1]
    job = proxy.get_job(500)
    job.nCore = 42
    assert proxy.update_jobs_workers_bulk([([job], [worker], [[500]])], "mon") == [True]
    assert proxy.get_job(500).nCore == 42
    assert [w.workerID for w in proxy.get_workers_with_job_id(500)] == [1]


def test_bulk_write_is_all_or_nothing_on_a_db_error(proxy: DBProxy) -> None:
    insert_workers(proxy, [make_worker(i, status="running", mod_ago=7200) for i in (1, 2)])
    workers = _locked_workers(proxy, "mon")
    workers[1].status = "finished"
    workers[2].status = "finished"
    workers[2].nJobs = "not a number"  # violates the column type check: the whole write must fail
    with pytest.raises(DBError, match="nJobs"):
        proxy.update_jobs_workers_bulk([(None, [workers[1]], None), (None, [workers[2]], None)], "mon")
    assert proxy.get_worker_with_id(1).status == "running"  # rolled back with the bad chunk
    assert workers[1].has_updated_attributes()  # still dirty: the next write carries the change


def test_update_workers_bulk_writes_changes_of_each_worker(proxy: DBProxy) -> None:
    insert_workers(proxy, [make_worker(i, status="running") for i in (1, 2, 3)])
    workers = [proxy.get_worker_with_id(i) for i in (1, 2, 3)]
    workers[0].status = "finished"
    workers[0].disable_propagation()
    workers[2].nJobs = 5
    assert proxy.update_workers_bulk(workers) == [1, None, 1]  # worker 2 had nothing to write
    assert proxy.get_worker_with_id(1).status == "finished" and proxy.get_worker_with_id(1).lastUpdate is None
    assert proxy.get_worker_with_id(3).nJobs == 5
    assert not any(w.has_updated_attributes() for w in workers)
    workers[1].nJobs = "bad"
    workers[0].nJobs = 9
    with pytest.raises(DBError):
        proxy.update_workers_bulk(workers[:2])
    assert proxy.get_worker_with_id(1).nJobs != 9  # rolled back together


def test_register_workers_bulk_binds_jobs_like_register_worker(proxy: DBProxy) -> None:
    jobs = [make_job(700 + i, status="starting", sub_status="prepared") for i in range(2)]
    assert proxy.insert_jobs(jobs)
    locked = proxy.get_job_chunks_for_workers("Q1", 2, 0, 1, None, False, 0, 600, "sub")
    assert [len(c) for c in locked] == [1, 1]
    workers = [make_worker(20 + i, status="submitted", hasJob=1) for i in range(2)]
    assert proxy.register_workers_bulk([(w, chunk) for w, chunk in zip(workers, locked)], "sub") == [True, True]
    for worker, chunk in zip(workers, locked):
        job = proxy.get_job(chunk[0].PandaID)
        assert job.subStatus == "submitted" and job.nWorkers == 1
        assert [w.workerID for w in proxy.get_workers_with_job_id(job.PandaID)] == [worker.workerID]
    assert proxy.get_worker_with_id(20).status == "submitted"


def test_register_workers_bulk_without_jobs_batches_the_updates(proxy: DBProxy) -> None:
    # as the submitter: pending rows first, then the outcome of the submission
    pending = [make_worker(40 + i, status="pending", map_type="NoJob", hasJob=0) for i in range(4)]
    assert proxy.insert_workers(pending, "sub")
    for i, worker in enumerate(pending):
        worker.status = "submitted" if i < 3 else "missed"
        worker.batchID = f"b{i}"
        if i == 3:
            worker.diagMessage = "no slot"
    unsaved = make_worker(50, status="submitted", map_type="NoJob", batchID="b50")  # no pending row
    assert proxy.insert_workers([make_worker(45, status="running")], "sub")
    old = proxy.get_worker_with_id(45)
    old.nJobs = 3  # an existing row (not new) with its own changes
    proxy.engine.capture = []
    try:
        assert proxy.register_workers_bulk([(w, None) for w in pending] + [(unsaved, []), (old, None)],
                                           "sub") == [True] * 6
        statements = list(proxy.engine.capture)
    finally:
        proxy.engine.capture = None
    updates = [sql for sql in statements if sql.startswith("UPDATE work_table")]
    assert len(updates) <= 3, updates  # one executemany per set of changed columns, not one per worker
    got = {i: proxy.get_worker_with_id(i) for i in (40, 41, 42, 43, 50)}
    assert [got[i].status for i in (40, 41, 42, 43, 50)] == ["submitted"] * 3 + ["missed", "submitted"]
    assert got[41].batchID == "b1" and got[43].diagMessage == "no slot" and got[50].batchID == "b50"
    assert proxy.get_worker_with_id(45).nJobs == 3
    assert not any(w.has_updated_attributes() for w in pending + [unsaved, old])
    # the same worker twice: written in the given order, the last value wins
    first, second = proxy.get_worker_with_id(41), proxy.get_worker_with_id(41)
    first.nJobs, second.nJobs = 1, 2
    assert proxy.update_workers_bulk([first, second]) == [1, 1]
    assert proxy.get_worker_with_id(41).nJobs == 2
    # a worker whose row is gone counts 0, the others of its group 1
    gone, kept = proxy.get_worker_with_id(42), proxy.get_worker_with_id(43)
    proxy.execute("DELETE FROM work_table WHERE workerID=42")
    proxy.commit()
    gone.nJobs, kept.nJobs = 7, 7
    assert proxy.update_workers_bulk([gone, kept]) == [0, 1]


def test_insert_workers_leaves_only_what_the_row_lacks_to_register(proxy: DBProxy) -> None:
    worker = make_worker(60, status="submitted", map_type="NoJob", nCore=8)
    assert proxy.insert_workers([worker], "sub")
    # the pending row has every column but these two: the UPDATE after submission writes only them
    # and what changed since
    assert worker.changedAttrs == {"status", "modificationTime"}
    worker.batchID = "b60"
    assert proxy.register_workers_bulk([(worker, None)], "sub") == [True]
    row = proxy.get_worker_with_id(60)
    assert (row.status, row.batchID, row.nCore, row.mapType) == ("submitted", "b60", 8, "NoJob")
    # a failed insert (the row exists) keeps the whole change record for the register_worker fallback
    again = make_worker(60, status="submitted", nCore=4)
    assert proxy.insert_workers([again], "sub") is False
    assert "nCore" in again.changedAttrs


def test_register_workers_bulk_is_all_or_nothing(proxy: DBProxy) -> None:
    good, bad = make_worker(30, status="submitted"), make_worker(31, status="submitted", nJobs="bad")
    with pytest.raises(DBError):
        proxy.register_workers_bulk([(good, None), (bad, None)], "sub")
    assert proxy.get_worker_with_id(30) is None


def test_update_jobs_bulk_applies_criteria_per_job(proxy: DBProxy) -> None:
    jobs = [make_job(800 + i, status="running", sub_status="running", propagatorLock="prop") for i in range(3)]
    assert proxy.insert_jobs(jobs)
    proxy.execute("UPDATE job_table SET propagatorLock='other' WHERE PandaID=802")  # lock taken over
    proxy.commit()
    loaded = [proxy.get_job(800 + i) for i in range(3)]
    for job in loaded:
        job.propagatorLock = None
        job.status = "finished"
    n_rows = proxy.update_jobs_bulk(loaded, {"propagatorLock": "prop"}, update_out_file=True)
    assert n_rows == [1, 1, 0]
    assert [proxy.get_job(800 + i).status for i in range(3)] == ["finished", "finished", "running"]
    # a final job's input files are done, as with update_job
    assert {f.status for f in proxy.get_job(800).inFiles} == {"done"}


def _job_state(proxy: DBProxy, panda_id: int) -> tuple:
    job = proxy.get_job(panda_id)
    files = sorted((f.lfn, f.status, f.todelete) for f in list(job.inFiles) + list(job.outFiles))
    return job.status, job.subStatus, job.propagatorLock, files


def test_update_jobs_bulk_writes_as_update_job_one_by_one(proxy: DBProxy) -> None:
    from pandaharvester.harvestercore.file_spec import FileSpec

    def scenario(base: int, bulk: bool) -> list:
        jobs = [make_job(base + i, status="running", sub_status="running", propagatorLock="prop") for i in range(4)]
        assert proxy.insert_jobs(jobs)
        out = FileSpec()
        out.PandaID, out.lfn, out.fileType, out.status = base + 1, f"out{base}", "output", "defined"
        assert proxy.insert_files([type("J", (), {"outFiles": [out]})()])
        loaded = [proxy.get_job(base + i) for i in range(4)]
        loaded[0].status, loaded[0].subStatus, loaded[0].propagatorLock = "finished", "done", None  # final, done
        loaded[1].propagatorLock = None
        for f in loaded[1].outFiles:
            f.status = "finished"
        # loaded[2]: nothing changed; loaded[3]: its row is gone
        proxy.execute(f"DELETE FROM job_table WHERE PandaID={base + 3}")
        proxy.commit()
        if bulk:
            n_rows = proxy.update_jobs_bulk(loaded, {"propagatorLock": "prop"}, update_out_file=True)
        else:
            n_rows = [proxy.update_job(job, {"propagatorLock": "prop"}, update_out_file=True) for job in loaded]
        states = [(i, _job_state(proxy, base + i)) for i in range(3)]
        return [n_rows, [(s[0], s[1], s[2], [(lfn.replace(str(base + i), "").replace(str(base), ""), st, td)
                                             for lfn, st, td in s[3]]) for i, s in states]]

    assert scenario(900, bulk=True) == scenario(950, bulk=False)


def test_update_jobs_bulk_same_job_twice_and_bad_value(proxy: DBProxy) -> None:
    assert proxy.insert_jobs([make_job(990, status="running", sub_status="running", propagatorLock="prop")])
    first, second = proxy.get_job(990), proxy.get_job(990)
    first.propagatorLock = None
    second.status = "finished"
    # the first copy released the lock: the second no longer matches the criteria (one by one, in order)
    assert proxy.update_jobs_bulk([first, second], {"propagatorLock": "prop"}) == [1, 0]
    bad = proxy.get_job(990)
    good = make_job(991, status="running", sub_status="running")
    assert proxy.insert_jobs([good])
    good = proxy.get_job(991)
    good.subStatus = "done"
    bad.nCore = "not a number"
    with pytest.raises(DBError):
        proxy.update_jobs_bulk([good, bad])
    assert proxy.get_job(991).subStatus == "running"  # nothing written


def test_update_jobs_workers_bulk_same_job_in_two_chunks_and_a_gone_job(proxy: DBProxy, caplog) -> None:
    from pandaharvester.harvestercore.file_spec import FileSpec

    assert proxy.insert_jobs([make_job(970, status="running", sub_status="running"),
                              make_job(971, status="running", sub_status="running")])
    workers = [make_worker(970, status="running"), make_worker(971, status="running")]
    insert_workers(proxy, workers)
    got = proxy.get_workers_to_update(10, 0, 600, "mon")
    locked = {w.workerID: w for q in got.values() for s in q.values() for ws in s for w in ws}
    copies = [proxy.get_job(970), proxy.get_job(970)]
    for copy in copies:  # the same new output file reported through two workers
        out = FileSpec()
        out.PandaID, out.lfn, out.fileType = 970, "out970", "output"
        copy.add_out_file(out)
    gone = proxy.get_job(971)
    gone.status = "finished"
    proxy.execute("DELETE FROM job_table WHERE PandaID=971")
    proxy.commit()
    with caplog.at_level("DEBUG", logger="panda.log.db_proxy"):
        oks = proxy.update_jobs_workers_bulk([([copies[0], gone], [locked[970]], None),
                                              ([copies[1]], [locked[971]], None)], "mon")
    assert oks == [True, True]
    rows = proxy.execute("SELECT lfn FROM file_table WHERE PandaID=970 AND fileType='output'").fetchall()
    proxy.commit()
    assert [r[0] for r in rows] == ["out970"]  # inserted once: the second copy saw the first's row
    text = caplog.text
    assert "inserted 1 files for PandaID=970" in text and "<PandaID=971>" in text and "not in the DB" in text


def test_update_jobs_workers_bulk_writes_job_rows_with_different_changes(proxy: DBProxy) -> None:
    assert proxy.insert_jobs([make_job(980, status="running", sub_status="running"),
                              make_job(981, status="running", sub_status="running")])
    insert_workers(proxy, [make_worker(980, status="running"), make_worker(981, status="running")])
    got = proxy.get_workers_to_update(10, 0, 600, "mon")
    locked = {w.workerID: w for q in got.values() for s in q.values() for ws in s for w in ws}
    first, second = proxy.get_job(980), proxy.get_job(981)
    first.status = "finished"
    second.nCore = 8
    assert proxy.update_jobs_workers_bulk([([first], [locked[980]], None), ([second], [locked[981]], None)],
                                          "mon") == [True, True]
    assert proxy.get_job(980).status == "finished" and proxy.get_job(980).nCore != 8
    assert proxy.get_job(981).nCore == 8 and proxy.get_job(981).status == "running"
    assert not first.has_updated_attributes() and not second.has_updated_attributes()


def _push_batch(proxy: DBProxy, base: int, bulk: bool) -> tuple[list, list, list]:
    """A submitter's push batch of 5 new workers, registered in bulk or one by one: W1 submitted,
    W2 missed (its job fails), W3 submitted on a job that has an active worker already, W4
    submitted on a job whose lock was lost meanwhile, W5 missed on a job with an active worker
    (left alone) and without a pending row. Returns job rows, worker rows and the relations,
    with the IDs as offsets from ``base``."""
    site = f"Q{base}"
    assert proxy.insert_jobs([make_job(base + i, site=site, status="starting", sub_status="prepared")
                              for i in range(1, 6)])
    insert_workers(proxy, [make_worker(base + 50, status="running", site=site)])
    for panda_id in (base + 3, base + 5):
        proxy.execute("INSERT INTO jw_table (PandaID, workerID) VALUES (:p, :w)", {":p": panda_id, ":w": base + 50})
    proxy.commit()
    chunks = proxy.get_job_chunks_for_workers(site, 5, 0, 1, None, False, 0, 600, "sub")
    assert [c[0].PandaID - base for c in chunks] == [1, 2, 3, 4, 5]
    workers = [make_worker(base + 10 + i, status="pending", site=site, hasJob=1) for i in range(1, 6)]
    assert proxy.insert_workers(workers[:4], "sub")
    proxy.execute("UPDATE job_table SET lockedBy='other' WHERE PandaID=:p", {":p": base + 4})
    # W1's relation is there already (e.g. written before a crash): not inserted twice
    proxy.execute("INSERT INTO jw_table (PandaID, workerID) VALUES (:p, :w)", {":p": base + 1, ":w": base + 11})
    proxy.commit()
    for worker, status in zip(workers, ("submitted", "missed", "submitted", "submitted", "missed")):
        worker.status = status
        worker.batchID = f"b{worker.workerID - base}"
    if bulk:
        assert proxy.register_workers_bulk(list(zip(workers, chunks)), "sub") == [True] * 5
    else:
        assert all(proxy.register_worker(w, c, "sub") for w, c in zip(workers, chunks))
    jobs = [(j.status, j.subStatus, j.nWorkers, j.nWorkersInTotal, j.lockedBy, j.jobAttributes)
            for j in (proxy.get_job(base + i) for i in range(1, 6))]
    rows = [(w.status, w.batchID and w.batchID, w.hasJob) for w in (proxy.get_worker_with_id(base + 10 + i)
                                                                    for i in range(1, 6))]
    rels = sorted((p - base, w - base) for p, w in proxy.execute(
        "SELECT PandaID, workerID FROM jw_table WHERE PandaID BETWEEN :a AND :b", {":a": base, ":b": base + 9}))
    proxy.commit()
    return jobs, rows, rels


def test_register_workers_bulk_with_jobs_matches_one_by_one(proxy: DBProxy) -> None:
    one_by_one = _push_batch(proxy, 10000, bulk=False)
    proxy.engine.capture = []
    try:
        bulk = _push_batch(proxy, 20000, bulk=True)
        statements = [s for s in proxy.engine.capture if s.startswith("UPDATE job_table") and ":PandaID_key" in s]
    finally:
        proxy.engine.capture = None
    assert bulk == one_by_one
    jobs, _rows, rels = bulk
    assert jobs[0][:3] == ("starting", "submitted", 1) and jobs[2][:3] == ("starting", "submitted", 2)
    assert jobs[1][0] == "missed" and jobs[3][1] == "prepared" and jobs[4][1] == "prepared"
    assert rels == [(1, 11), (3, 13), (3, 50), (4, 14), (5, 50)]  # W4 ran the job: related all the same
    assert len(statements) == 2, statements  # one per set of changed columns (submitted, missed), not per job


def test_register_workers_bulk_sharing_a_job_goes_one_by_one(proxy: DBProxy) -> None:
    job = make_job(900, status="starting", sub_status="prepared")
    assert proxy.insert_jobs([job])
    (chunk,) = proxy.get_job_chunks_for_workers("Q1", 1, 0, 1, None, False, 0, 600, "sub")
    workers = [make_worker(90 + i, status="pending", hasJob=1) for i in range(2)]
    assert proxy.insert_workers(workers, "sub")
    for worker in workers:
        worker.status = "submitted"
    # the same job in two new workers (OneToMany): the second sees the first as active
    assert proxy.register_workers_bulk([(workers[0], chunk), (workers[1], chunk)], "sub") == [True, True]
    got = proxy.get_job(900)
    assert got.nWorkers == 2 and got.nWorkersInTotal == 2
    assert sorted(w.workerID for w in proxy.get_workers_with_job_id(900)) == [90, 91]
