"""The preparator's and stager's chunk writes: lock_jobs_again, update_jobs_each, update_jobs_for_stage_out."""

from __future__ import annotations

import re

from pandaharvester.harvestercore.db_proxy import DBProxy
from pandaharvester.harvestercore.file_spec import FileSpec
from pandaharvester.harvestercore.job_spec import JobSpec
from test_db_fixtures import (  # noqa: F401
    _module_mariadb, db_engine, db_home, db_overrides, make_job, proxy,
)


def _locked(proxy: DBProxy, ids, sub_status="fetched", tag="prep"):
    got = proxy.get_jobs_in_sub_status(sub_status, 100, "preparatorTime", "lockedBy", 0, 600, tag)
    return {j.PandaID: j for j in got if j.PandaID in ids}


def test_lock_jobs_again_keeps_only_own_locks(proxy: DBProxy) -> None:
    assert proxy.insert_jobs([make_job(i) for i in (1, 2, 3)])
    _locked(proxy, {1, 2, 3})
    proxy.execute("UPDATE job_table SET lockedBy='other', preparatorTime=NULL WHERE PandaID=2")
    proxy.commit()
    assert proxy.lock_jobs_again([3, 2, 1, 99], "preparatorTime", "lockedBy", "prep") == [3, 1]
    assert proxy.get_job(2).preparatorTime is None and proxy.get_job(1).preparatorTime is not None
    assert proxy.lock_jobs_again([], "preparatorTime", "lockedBy", "prep") == []


def test_update_jobs_each_isolates_a_bad_job(proxy: DBProxy) -> None:
    assert proxy.insert_jobs([make_job(i) for i in (1, 2, 3)])
    jobs = _locked(proxy, {1, 2, 3})
    for job in jobs.values():
        job.subStatus = "preparing"
        job.lockedBy = None
        for f in job.inFiles:
            f.status = "preparing"
    jobs[2].nCore = "eight"  # does not fit the integer column: this job alone fails
    criteria = {"lockedBy": "prep", "subStatus": "fetched"}
    n_rows = proxy.update_jobs_each([(jobs[1], criteria, True, False), (jobs[2], criteria, True, False),
                                     (jobs[3], {"lockedBy": "someone else"}, False, False)])
    assert n_rows == [1, None, 0]
    assert [proxy.get_job(i).subStatus for i in (1, 2, 3)] == ["preparing", "fetched", "fetched"]
    assert {f.status for f in proxy.get_job(1).inFiles} == {"preparing"}
    assert {f.status for f in proxy.get_job(2).inFiles} == {"to_prepare"}  # its file write was undone too
    assert not jobs[1].has_updated_attributes() and jobs[2].has_updated_attributes()


def _stage_out_job(proxy: DBProxy, panda_id: int) -> None:
    job = make_job(panda_id, status="running", sub_status="to_transfer", hasOutFile=JobSpec.HO_hasOutput,
                   jobParams={"logFile": f"log.{panda_id}", "logGUID": "g", "outFiles": f"out.{panda_id}"})
    assert proxy.insert_jobs([job])
    f = FileSpec()
    f.PandaID, f.lfn, f.fileType, f.status, f.fsize = panda_id, f"out.{panda_id}", "output", "defined", 1
    job.add_out_file(f)
    assert proxy.insert_files([job])


def test_update_jobs_for_stage_out_lost_lock_and_bad_job(proxy: DBProxy) -> None:
    for i in (1, 2, 3):
        _stage_out_job(proxy, i)
    got = {j.PandaID: j for j in proxy.get_jobs_for_stage_out(10, 0, 600, "st", "to_transfer", JobSpec.HO_hasOutput)}
    assert sorted(got) == [1, 2, 3]
    proxy.execute("UPDATE job_table SET stagerLock='other' WHERE PandaID=3")
    proxy.commit()
    for job in got.values():
        job.all_files_triggered_to_stage_out()
    next(iter(got[2].outFiles)).fsize = "big"  # a file value that does not fit: job 2 alone fails
    statuses = proxy.update_jobs_for_stage_out([(got[1], True), (got[2], True), (got[3], True)], "st")
    assert statuses == ["transferring", None, None]
    assert [proxy.get_job(i).subStatus for i in (1, 2, 3)] == ["transferring", "to_transfer", "to_transfer"]
    assert proxy.get_job(1).hasOutFile == JobSpec.HO_hasTransfer
    assert {f.status for f in proxy.get_job(2).outFiles} == {"defined"}
    assert proxy.update_jobs_for_stage_out([], "st") == []


def test_get_jobs_for_stage_out_reads_every_job_in_a_few_queries(proxy: DBProxy) -> None:
    """Several jobs at once: per-job file limit, zip members, workers, old jobs without the
    extracted log parameters, attemptNr counted only for the files handed out."""
    from test_db_fixtures import make_worker

    for i in (1, 2):
        job = make_job(i, status="running", sub_status="to_transfer", hasOutFile=JobSpec.HO_hasZipOutput,
                       jobParams={"logFile": f"log.{i}", "logGUID": f"g{i}", "outFiles": f"z.{i}"})
        assert proxy.insert_jobs([job])
        for k in range(3):
            f = FileSpec()
            f.PandaID, f.lfn, f.fileType, f.status, f.fsize = i, f"z.{i}.{k}", "zip_output", "zipping", 1
            job.add_out_file(f)
        assert proxy.insert_files([job])
    zip_ids = [r[0] for r in proxy.execute("SELECT fileID FROM file_table WHERE PandaID=1 AND "
                                           "fileType='zip_output' ORDER BY fileID").fetchall()]
    proxy.execute("INSERT INTO file_table (PandaID, lfn, fileType, status, zipFileID) VALUES "
                  "(1, 'member.1', 'es_output', 'finished', :z)", {":z": zip_ids[0]})
    proxy.commit()
    worker = make_worker(71, status="running")
    assert proxy.insert_workers([worker], "sub")
    proxy.execute("INSERT INTO jw_table (PandaID, workerID) VALUES (1, 71)")
    proxy.commit()
    got = proxy.get_jobs_for_stage_out(10, 0, 600, "st", "none", JobSpec.HO_hasZipOutput, max_files_per_job=2)
    by_id = {j.PandaID: j for j in got}
    assert sorted(by_id) == [1, 2]
    assert all(len(j.outFiles) == 2 and {f.attemptNr for f in j.outFiles} == {1} for j in got)
    first = min(by_id[1].outFiles, key=lambda f: f.fileID)
    assert first.fileID == zip_ids[0] and {f.lfn for f in first.associatedFiles} == {"member.1"}
    assert [w.workerID for w in by_id[1].get_workspec_list()] == [71] and by_id[2].get_workspec_list() == []
    assert by_id[2].jobParamsExtForLog == {"lfn": "log.2", "guid": "g2"}
    assert sorted(r[0] for r in proxy.execute("SELECT attemptNr FROM file_table WHERE PandaID=2 "
                                              "AND fileType='zip_output'").fetchall()) == [0, 1, 1]
    proxy.commit()


def _stage_out_pass(proxy: DBProxy, first: bool) -> dict:
    """The stager's two steps for every job: files triggered (to_transfer), then transfers done
    (finished); the jobs picked (locked by "st")."""
    if first:
        got = proxy.get_jobs_for_stage_out(100, 0, 600, "st", "to_transfer", JobSpec.HO_hasOutput)
    else:
        got = proxy.get_jobs_for_stage_out(100, 0, 600, "st", "transferring", JobSpec.HO_hasTransfer)
    for job in got:
        if first:
            job.all_files_triggered_to_stage_out()
        else:
            for f in job.outFiles:
                f.status = "finished"
    return {j.PandaID: j for j in got}


def _job_state(proxy: DBProxy, panda_id: int) -> tuple:
    job = proxy.get_job(panda_id)
    report = re.sub(r'ID="[^"]*"', 'ID=""', (job.outputFilesToReport or "").replace(f"out.{panda_id}", "out.N"))
    return (job.status, job.subStatus, job.hasOutFile, job.stagerLock, job.stagerTime is None,
            job.propagatorTime is not None, report, sorted(f.status for f in job.outFiles))


def test_update_jobs_for_stage_out_in_bulk_is_the_one_by_one_outcome(proxy: DBProxy) -> None:
    """20 jobs written in a handful of statements (one by one: ~8 per job), each ending as
    update_job_for_stage_out leaves a job: transferring, then staged with its report."""
    bulk_ids, single_ids = list(range(1, 21)), list(range(101, 121))
    for i in bulk_ids + single_ids:
        _stage_out_job(proxy, i)
    for first, expected in ((True, "transferring"), (False, "staged")):
        got = _stage_out_pass(proxy, first)
        assert sorted(got) == bulk_ids + single_ids
        proxy.engine.capture = []
        assert proxy.update_jobs_for_stage_out([(got[i], False) for i in bulk_ids], "st") == [expected] * 20
        statements, proxy.engine.capture = proxy.engine.capture, []
        assert [proxy.update_job_for_stage_out(got[i], False, "st") for i in single_ids] == [expected] * 20
        one_by_one, proxy.engine.capture = proxy.engine.capture, None
        assert len(statements) <= 12 and len(one_by_one) >= 4 * 20, (statements, len(one_by_one))
        for i in bulk_ids:
            assert _job_state(proxy, i) == _job_state(proxy, i + 100)
    assert proxy.get_job(5).outputFilesToReport and proxy.get_job(5).subStatus == "staged"


def test_update_jobs_each_in_bulk_is_the_one_by_one_outcome(proxy: DBProxy) -> None:
    """Jobs with two sets of criteria: a few statements for all, each job's count as alone."""
    assert proxy.insert_jobs([make_job(i) for i in range(1, 31)])
    jobs = _locked(proxy, set(range(1, 31)))
    for job in jobs.values():
        job.subStatus = "preparing"
        for f in job.inFiles:
            f.status = "preparing"
    mine, other = {"lockedBy": "prep"}, {"lockedBy": "someone else"}
    items = [(jobs[i], mine if i % 3 else other, i % 2 == 0, False) for i in range(1, 31)]
    proxy.engine.capture = []
    n_rows = proxy.update_jobs_each(items)
    statements = proxy.engine.capture
    proxy.engine.capture = None
    assert n_rows == [1 if i % 3 else 0 for i in range(1, 31)]
    assert len(statements) <= 16, statements
    for i in range(1, 31):
        stored = proxy.get_job(i)
        assert stored.subStatus == ("preparing" if i % 3 else "fetched")
        expected = "preparing" if i % 3 and i % 2 == 0 else "to_prepare"
        assert {f.status for f in stored.inFiles} == {expected}, i
