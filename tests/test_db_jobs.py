"""Jobs and files: insert/read/update, sub-status and stage-out cycles, chunks, clean-up, file groups."""

from __future__ import annotations

from pandaharvester.harvestercore.file_spec import FileSpec
from pandaharvester.harvestercore.job_spec import JobSpec
from pandaharvester.harvestercore.event_spec import EventSpec
from test_db_fixtures import (  # noqa: F401
    _module_mariadb, ago, db_engine, db_home, db_overrides, insert_workers, make_job, make_worker, proxy,
)


def _out_file(job, lfn, status="defined", file_type="output"):
    f = FileSpec()
    f.PandaID = job.PandaID
    f.lfn = lfn
    f.fileType = file_type
    f.status = status
    f.fsize = 1
    return f


def test_insert_get_update_jobs(proxy):
    jobs = [make_job(1, n_in=2), make_job(2)]
    assert proxy.insert_jobs(jobs)
    job = proxy.get_job(1)
    assert job.subStatus == "fetched" and len(job.inFiles) == 2
    assert {j.PandaID for j in proxy.get_jobs()} == {1, 2}
    assert proxy.get_job(999) is None
    # re-inserting replaces the job and its files
    assert proxy.insert_jobs([make_job(1, n_in=1)])
    assert len(proxy.get_job(1).inFiles) == 1
    job = proxy.get_job(1)
    job.subStatus = "preparing"
    job.jobParams = {"a": [1, 2]}
    assert proxy.update_job(job) == 1
    assert proxy.get_job(1).jobParams == {"a": [1, 2]}
    # criteria not met: nothing updated
    job.subStatus = "prepared"
    assert proxy.update_job(job, {"lockedBy": "someone"}) == 0
    assert proxy.get_job(1).subStatus == "preparing"
    # final status marks input files done; subStatus done marks files to delete
    job = proxy.get_job(1)
    job.status = "finished"
    job.subStatus = "done"
    assert proxy.update_job(job) == 1
    files = proxy.get_job(1).inFiles
    assert {f.status for f in files} == {"done"} and {f.todelete for f in files} == {1}
    # update_in_file writes changed input files
    job = proxy.get_job(2)
    for f in job.inFiles:
        f.status = "ready"
    assert proxy.update_job(job, update_in_file=True) == 1
    assert {f.status for f in proxy.get_job(2).inFiles} == {"ready"}
    assert proxy.increment_submission_attempt(2, 3)
    assert proxy.get_job(2).submissionAttempts == 3
    # the bulk form: each job its own number, in one transaction
    assert proxy.increment_submission_attempts([(1, 4), (2, 5)])
    assert (proxy.get_job(1).submissionAttempts, proxy.get_job(2).submissionAttempts) == (4, 5)


def test_insert_files_and_file_status_and_groups(proxy):
    job = make_job(1, status="starting")
    job.add_out_file(_out_file(job, "out.1"))
    assert proxy.insert_jobs([job])
    assert proxy.insert_files([job])
    job = proxy.get_job(1)
    assert {f.lfn for f in job.outFiles} == {"out.1"}
    status = proxy.get_file_status("in.1.0", "input", None, "starting")
    assert status == {"to_prepare": {"cnt": 1, "path": {None}}}
    assert proxy.get_file_status("in.1.0", "input", "EP", "starting") == {}
    # many LFNs in one call: the same answers, LFNs found nowhere (or of another type) left out
    assert proxy.get_files_status({"in.1.0": "input", "out.1": "output", "nowhere": "input"}, None, "starting") == {
        "in.1.0": status, "out.1": proxy.get_file_status("out.1", "output", None, "starting")}
    assert proxy.get_files_status({"in.1.0": "aux_input"}, None, "starting") == {}
    assert proxy.get_files_status({"in.1.0": "input"}, "EP", "starting") == {}
    # change_file_status only when the job is locked by the caller
    f = next(iter(job.inFiles))
    assert proxy.change_file_status(1, [(f.fileID, f.lfn, "ready")], "nobody")
    assert next(iter(proxy.get_job(1).inFiles)).status == "to_prepare"
    proxy.execute("UPDATE job_table SET lockedBy='me'")
    proxy.commit()
    assert proxy.change_file_status(1, [(f.fileID, f.lfn, "ready")], "me")
    assert next(iter(proxy.get_job(1).inFiles)).status == "ready"
    # transfer groups
    assert proxy.set_file_group([f], "g1", "transferring")
    assert proxy.get_group_for_file(f.lfn, "input", None)["groupID"] == "g1"
    assert [x.lfn for x in proxy.get_files_with_group_id("g1")] == [f.lfn]
    assert proxy.update_file_group_status("g1", "done")
    assert proxy.get_file_group_status("g1") == {"done"}
    job = proxy.get_job(1)
    for x in job.inFiles:
        x.groupID = None
    assert proxy.refresh_file_group_info(job)
    assert next(iter(job.inFiles)).groupID == "g1"
    assert proxy.get_all_active_input_files() == {"in.1.0"}


def test_get_jobs_in_sub_status_counts_processing_and_filters_files(proxy):
    jobs = [make_job(i, sub_status="preparing", n_in=3) for i in range(1, 4)]
    assert proxy.insert_jobs(jobs)
    job = proxy.get_job(1)
    first = sorted(job.inFiles, key=lambda f: f.lfn)[0]
    first.status = "ready"
    proxy.update_job(job, update_in_file=True)
    got = proxy.get_jobs_in_sub_status("preparing", 10, "preparatorTime", "lockedBy", 180, 600, "prep",
                                       max_files_per_job=5, ng_file_status_list=["ready"])
    assert {j.PandaID for j in got} == {1, 2, 3}
    by_id = {j.PandaID: j for j in got}
    assert len(by_id[1].inFiles) == 2 and all(j.lockedBy == "prep" for j in got)
    # with new_sub_status: jobs already being processed count against max_jobs
    assert proxy.insert_jobs([make_job(10, sub_status="fetched"), make_job(11, sub_status="fetched")])
    assert proxy.get_jobs_in_sub_status("fetched", 3, "preparatorTime", "lockedBy", 0, 600, "prep2", "preparing") == []
    got = proxy.get_jobs_in_sub_status("fetched", 5, "preparatorTime", "lockedBy", 0, 600, "prep2", "preparing")
    assert {j.PandaID for j in got} == {10, 11}


def test_stage_out_cycle(proxy):
    job = make_job(1, status="running", sub_status="to_transfer", hasOutFile=JobSpec.HO_hasOutput,
                   jobParams={"logFile": "log.a", "logGUID": "guid-1", "outFiles": "out.a,log.a"})
    assert proxy.insert_jobs([job])
    job.add_out_file(_out_file(job, "out.a"))
    job.add_out_file(_out_file(job, "log.a", file_type="log"))
    assert proxy.insert_files([job])
    got = proxy.get_jobs_for_stage_out(10, 0, 600, "st", "to_transfer", JobSpec.HO_hasOutput,
                                       [JobSpec.HO_hasZipOutput])
    assert [j.PandaID for j in got] == [1]
    job = got[0]
    assert {f.attemptNr for f in job.outFiles} == {1} and job.stagerLock == "st"
    # locked: another stager gets nothing
    assert proxy.get_jobs_for_stage_out(10, 0, 600, "st2", "to_transfer", JobSpec.HO_hasOutput) == []
    for f in job.outFiles:
        f.status = "transferring"
    assert proxy.update_job_for_stage_out(job, False, "st") == "transferring"
    assert proxy.get_job(1).hasOutFile == JobSpec.HO_hasTransfer
    got = proxy.get_jobs_for_stage_out(10, 0, 600, "st", "transferring", JobSpec.HO_hasTransfer)
    job = got[0]
    for f in job.outFiles:
        f.status = "finished"
    assert proxy.update_job_for_stage_out(job, True, "st") == "staged"
    job = proxy.get_job(1)
    assert job.hasOutFile == JobSpec.HO_noOutput and job.propagatorTime is not None
    assert job.outputFilesToReport
    # a stager that lost its lock is told so
    assert proxy.update_job_for_stage_out(job, True, "other") is None


def test_job_chunks_for_workers(proxy):
    jobs = [make_job(i, sub_status="prepared", currentPriority=100 + i) for i in range(1, 6)]
    assert proxy.insert_jobs(jobs)
    chunks = proxy.get_job_chunks_for_workers("Q1", 2, 0, 2, None, False, 60, 600, "sub")
    assert len(chunks) == 2 and all(len(c) == 2 for c in chunks)
    # highest priority first; the jobs are locked for the submitter
    assert chunks[0][0].PandaID == 5
    taken = {j.PandaID for c in chunks for j in c}
    cur = proxy.execute("SELECT PandaID FROM job_table WHERE lockedBy='sub'")
    assert {r[0] for r in cur.fetchall()} == taken
    proxy.commit()
    # the rest is available to another submitter thread, not the taken ones
    rest = proxy.get_job_chunks_for_workers("Q1", 5, 0, 1, None, False, 60, 600, "sub2")
    assert {j.PandaID for c in rest for j in c} == {1, 2, 3, 4, 5} - taken
    assert proxy.release_jobs(sorted(taken), "sub")
    # one job for several workers (OneToMany)
    assert proxy.insert_jobs([make_job(50, site="Q2", sub_status="prepared")])
    chunks = proxy.get_job_chunks_for_workers("Q2", 3, 0, None, 3, False, 60, 600, "sub", max_workers_per_job_in_total=5)
    assert len(chunks) == 3 and chunks[0][0] is chunks[2][0]
    assert chunks[0][0].nWorkersLimit == 3


def test_propagate_with_events_and_checkpoints(proxy):
    job = make_job(1, status="running", sub_status="running", propagatorTime=ago(4000))
    assert proxy.insert_jobs([job])
    job = proxy.get_job(1)
    for i, status in enumerate(("finished", "running")):
        ev = EventSpec()
        ev.PandaID = 1
        ev.eventRangeID = f"r{i}"
        ev.eventStatus = status
        job.events.add(ev)
    job.add_out_file(_out_file(job, "ckpt", status="x", file_type="checkpoint"))
    worker = make_worker(1, status="running")
    insert_workers(proxy, [worker])
    got = proxy.get_workers_to_update(10, 0, 600, "mon")
    workers = [w for q in got.values() for s in q.values() for ws in s for w in ws]
    assert proxy.update_jobs_workers([job], workers, "mon", [[1]])
    got = proxy.get_jobs_to_propagate(10, 600, 1800, "prop")
    assert [e.eventRangeID for e in got[0].events] == ["r0"]
    assert [f.lfn for f in got[0].outFiles] == ["ckpt"]
    assert [j.PandaID for j in proxy.get_jobs_with_worker_id(1, None)] == [1]


def test_delete_old_and_orphaned_jobs_and_stats(proxy):
    old = make_job(1, status="finished", sub_status="done", modificationTime=ago(3 * 3600))
    young = make_job(2, status="running", sub_status="running", resourceType="MCORE", nCore=8)
    assert proxy.insert_jobs([old, young])
    stats = proxy.get_job_stats_full()
    assert stats["Q1"]["MCORE"]["jobs"]["running"] == 1 and stats["Q1"]["MCORE"]["cores"]["running"] == 8
    assert proxy.get_job_stats_full(["Q9"]) == {}
    assert proxy.delete_old_jobs(2)
    assert proxy.get_job(1) is None and proxy.get_job(2) is not None
    proxy.execute("DELETE FROM job_table WHERE PandaID=2")
    proxy.commit()
    assert proxy.delete_orphaned_job_info()
    cur = proxy.execute("SELECT COUNT(*) FROM file_table")
    assert cur.fetchone()[0] == 0
    proxy.commit()
    assert proxy.insert_jobs([make_job(3, nWorkers=1, nWorkersLimit=2)])
    assert proxy.disable_multi_workers(3) == 1
    assert proxy.get_job(3).moreWorkers == 0


def test_num_jobs_to_fetch(proxy):
    proxy.execute("INSERT INTO pq_table (queueName, uniqueName, siteName, resourceType, jobType, nQueueLimitJob) "
                  "VALUES ('Q1','Q1:ANY:ANY','Q1','ANY','ANY',5)")
    proxy.commit()
    assert proxy.insert_jobs([make_job(1, status="starting")])
    assert proxy.get_num_jobs_to_fetch(3, 60) == {"Q1": 4}
    # looked at just now: not again before the interval
    assert proxy.get_num_jobs_to_fetch(3, 60) == {}


def test_get_jobs_with_worker_ids_matches_one_call_per_worker(proxy):
    jobs = [make_job(1, status="running", sub_status="running"), make_job(2, status="running", sub_status="submitted"),
            make_job(3, status="finished", sub_status="done")]
    assert proxy.insert_jobs(jobs)
    for panda_id, worker_id in ((1, 10), (3, 10), (1, 11), (2, 11)):
        proxy.execute("INSERT INTO jw_table (PandaID, workerID) VALUES (:p, :w)", {":p": panda_id, ":w": worker_id})
    proxy.commit()
    for kwargs in ({}, {"only_running": True}, {"slim": True, "only_running": True}, {"with_file": True}):
        bulk = proxy.get_jobs_with_worker_ids([10, 11, 12, 10], **kwargs)
        assert sorted(bulk) == [10, 11, 12]
        for worker_id in (10, 11, 12):
            one = proxy.get_jobs_with_worker_id(worker_id, None, **kwargs)
            assert sorted(j.PandaID for j in bulk[worker_id]) == sorted(j.PandaID for j in one)
            for got in bulk[worker_id]:
                ref = next(j for j in one if j.PandaID == got.PandaID)
                assert got.lockedBy is None and got.subStatus == ref.subStatus
                assert sorted(f.lfn for f in got.inFiles) == sorted(f.lfn for f in ref.inFiles)
    shared = proxy.get_jobs_with_worker_ids([10, 11])
    job_of_10 = next(j for j in shared[10] if j.PandaID == 1)
    job_of_11 = next(j for j in shared[11] if j.PandaID == 1)
    assert job_of_10 is not job_of_11  # each worker its own spec, as with one call each
    assert proxy.get_jobs_with_worker_ids([]) == {}


def test_get_jobs_with_worker_ids_slim_fills_the_log_info_of_old_jobs(proxy):
    job = make_job(5, status="running", sub_status="running")
    job.jobParams = {"logFile": "log.5.tgz", "logGUID": "g-5", "outFiles": "log.5.tgz", "scopeOut": "",
                     "scopeLog": "s", "realDatasets": "d", "ddmEndPointOut": "e"}
    assert proxy.insert_jobs([job])
    proxy.execute("INSERT INTO jw_table (PandaID, workerID) VALUES (5, 50)")
    for value in ("NULL", "'null'"):  # an old job: no extracted parameters (SQL NULL or JSON null)
        proxy.execute(f"UPDATE job_table SET jobParamsExtForLog={value}, jobParamsExtForOutput=NULL WHERE PandaID=5")
        proxy.commit()
        (bulk,) = proxy.get_jobs_with_worker_ids([50], slim=True)[50]
        (one,) = proxy.get_jobs_with_worker_id(50, None, slim=True)
        assert bulk.jobParamsExtForLog == one.jobParamsExtForLog == {"lfn": "log.5.tgz", "guid": "g-5"}
