"""update_jobs_workers: the statuses the monitor's write gives output files, zip files and events."""

from __future__ import annotations

from pandaharvester.harvestercore.db_proxy import DBProxy
from pandaharvester.harvestercore.event_spec import EventSpec
from pandaharvester.harvestercore.file_spec import FileSpec
from pandaharvester.harvestercore.job_spec import JobSpec
from test_db_fixtures import (  # noqa: F401
    _module_mariadb, db_engine, db_home, db_overrides, insert_workers, make_job, make_worker, proxy,
)

MIB = 1024 * 1024


def _locked(proxy: DBProxy, worker_ids: list[int]) -> list:
    got = proxy.get_workers_to_update(100, 60, 600, "mon")
    found = {w.workerID: w for q in got.values() for s in q.values() for ws in s for w in ws}
    return [found[i] for i in worker_ids]


def _job(proxy: DBProxy, panda_id: int, worker_ids=(1,), **attrs) -> JobSpec:
    insert_workers(proxy, [make_worker(i, status="running", mod_ago=7200) for i in worker_ids])
    assert proxy.insert_jobs([make_job(panda_id, status="running", sub_status="running", **attrs)])
    return proxy.get_job(panda_id)


def _out(job: JobSpec, lfn: str, file_type: str = "output", fsize: int = 10, **attrs) -> FileSpec:
    f = FileSpec()
    f.PandaID, f.taskID, f.lfn, f.fileType, f.fsize = job.PandaID, job.taskID, lfn, file_type, fsize
    for key, value in attrs.items():
        setattr(f, key, value)
    job.add_out_file(f)
    return f


def _write(proxy: DBProxy, job: JobSpec, worker_ids=(1,)) -> None:
    assert proxy.update_jobs_workers([job], _locked(proxy, list(worker_ids)), "mon", None)
    proxy.execute("UPDATE work_table SET modificationTime=:t", {":t": make_worker().modificationTime})
    proxy.commit()


def _files(proxy: DBProxy, panda_id: int) -> dict[str, tuple]:
    rows = proxy.execute("SELECT lfn, status, fileType, isZip, zipFileID, fileID, eventRangeID, scope FROM file_table "
                         "WHERE PandaID=:p AND fileType<>'input' ORDER BY fileID", {":p": panda_id}).fetchall()
    proxy.commit()
    return {(r[0] if r[6] is None else f"{r[0]}#{r[6]}"): tuple(r[1:]) for r in rows}


def test_new_outputs_are_defined_checkpoints_renewed_and_a_zip_points_at_itself(proxy: DBProxy) -> None:
    job = _job(proxy, 600)
    _out(job, "out.1")
    _out(job, "ckpt.1", file_type="checkpoint")
    _out(job, "own.zip", isZip=1)
    _write(proxy, job)
    files = _files(proxy, 600)
    assert files["out.1"][:2] == ("defined", "output")
    assert files["ckpt.1"][:2] == ("renewed", "checkpoint")
    assert files["own.zip"][0] == "defined" and files["own.zip"][3] == files["own.zip"][4]  # zipFileID = fileID
    assert proxy.get_job(600).hasOutFile == JobSpec.HO_hasOutput
    # a checkpoint seen again is renewed in place (its zip link cleared), nothing inserted
    proxy.execute("UPDATE file_table SET status='done', zipFileID=7 WHERE lfn='ckpt.1'")
    proxy.commit()
    job = proxy.get_job(600)
    job.reset_out_file()
    _out(job, "ckpt.1", file_type="checkpoint")
    _write(proxy, job)
    files = _files(proxy, 600)
    assert len(files) == 3 and files["ckpt.1"][0] == "renewed" and files["ckpt.1"][3] is None


def test_a_zip_seen_again_with_an_event_range_gets_a_row_pointing_at_the_zip(proxy: DBProxy) -> None:
    job = _job(proxy, 601)
    _out(job, "z.zip", isZip=1)
    _write(proxy, job)
    zip_id = _files(proxy, 601)["z.zip"][4]
    job = proxy.get_job(601)
    job.reset_out_file()
    _out(job, "z.zip", isZip=1, eventRangeID="601-1-7-1")
    _write(proxy, job)
    files = _files(proxy, 601)
    assert files["z.zip#601-1-7-1"][0] == "zipped" and files["z.zip#601-1-7-1"][3] == zip_id
    # the same range again: nothing more
    _write(proxy, job)
    assert len(_files(proxy, 601)) == 2


def _pending(proxy: DBProxy, panda_id: int, files: list[tuple]) -> None:
    """Pending outputs ``(lfn, fsize, provenanceID, workerID)`` in this order (a job's outFiles
    are a set: the monitor inserts them in no fixed order)."""
    for lfn, fsize, provenance, worker in files:
        proxy.execute("INSERT INTO file_table (PandaID, taskID, lfn, status, fileType, fsize, provenanceID, workerID, "
                      "attemptNr, todelete) VALUES (:p, 1, :l, 'pending', 'output', :s, :pr, :w, 0, 0)",
                      {":p": panda_id, ":l": lfn, ":s": fsize, ":pr": provenance, ":w": worker})
    proxy.commit()


def test_outputs_to_zip_wait_pending_then_zip_per_provenance_and_worker_at_transfer(proxy: DBProxy) -> None:
    job = _job(proxy, 602, zipPerMB=0)
    _out(job, "new.1", provenanceID="A", workerID=1)
    _write(proxy, job)
    assert _files(proxy, 602)["new.1"][0] == "pending"  # waits for the job's transfer
    _pending(proxy, 602, [("a.1", 10, "A", 1), ("a.2", 10, "A", 1), ("b.1", 10, "B", 1), ("n.1", 10, None, None)])
    job = proxy.get_job(602)
    job.reset_out_file()
    job.subStatus = "to_transfer"
    _write(proxy, job)
    files = _files(proxy, 602)
    zips = {lfn: f for lfn, f in files.items() if f[1] == "zip_output"}
    # groups ordered by (provenanceID, workerID), NULL first; a zip is named after its first member
    assert list(zips) == ["panda.n.1.zip", ("panda.new.1.zip" if files["new.1"][4] < files["a.1"][4]
                                            else "panda.a.1.zip"), "panda.b.1.zip"]
    assert all(z[0] == "zipping" and z[2] == 1 and z[6] == "panda" for z in zips.values())
    ids = [z[4] for z in zips.values()]
    for lfn, zip_id in (("n.1", ids[0]), ("new.1", ids[1]), ("a.1", ids[1]), ("a.2", ids[1]), ("b.1", ids[2])):
        assert (files[lfn][0], files[lfn][3]) == ("zipped", zip_id), lfn
    assert proxy.get_job(602).hasOutFile == JobSpec.HO_hasZipOutput


def test_zip_groups_split_at_zip_per_mb_and_wait_for_more_while_small(proxy: DBProxy) -> None:
    job = _job(proxy, 603, zipPerMB=1)
    _pending(proxy, 603, [("big.0", 600 * 1024, "A", None), ("big.1", 600 * 1024, "A", None),
                          ("big.2", 600 * 1024, "A", None), ("small.1", 100 * 1024, "B", None),
                          ("nosize.1", None, "C", None), ("huge.1", 2 * MIB, "D", None)])
    _write(proxy, job)
    files = _files(proxy, 603)
    zips = [lfn for lfn, f in files.items() if f[1] == "zip_output"]
    # 1.8 MiB of A: two zips of one file each, the third file waits (under 1 MiB, no worker ended);
    # one file over the limit makes a zip alone
    assert zips == ["panda.big.0.zip", "panda.big.1.zip", "panda.huge.1.zip"]
    assert files["big.2"][0] == "pending" and files["small.1"][0] == "pending" and files["nosize.1"][0] == "pending"
    for lfn in ("big.0", "big.1", "huge.1"):
        assert (files[lfn][0], files[lfn][3]) == ("zipped", files[f"panda.{lfn}.zip"][4])


def test_files_of_a_worker_not_active_on_the_job_are_zipped_at_once(proxy: DBProxy) -> None:
    job = _job(proxy, 604, zipPerMB=100)
    _pending(proxy, 604, [("w.1", 5, None, 1), ("w.2", 5, None, 1)])
    _write(proxy, job)
    files = _files(proxy, 604)
    assert [lfn for lfn, f in files.items() if f[1] == "zip_output"] == ["panda.w.1.zip"]
    assert files["w.1"][0] == files["w.2"][0] == "zipped"


def test_a_one_to_many_job_zips_the_files_of_its_ended_workers_only(proxy: DBProxy) -> None:
    insert_workers(proxy, [make_worker(i, status="running", mod_ago=7200, map_type="OneToMany") for i in (1, 2)])
    assert proxy.insert_jobs([make_job(606, status="running", sub_status="running", zipPerMB=100)])
    for worker_id in (1, 2):
        proxy.execute("INSERT INTO jw_table (PandaID, workerID) VALUES (606, :w)", {":w": worker_id})
    proxy.execute("UPDATE work_table SET status='finished' WHERE workerID=2")
    proxy.commit()
    _pending(proxy, 606, [("one.1", 5, None, 1), ("two.1", 5, None, 2)])
    job = proxy.get_job(606)
    assert proxy.update_jobs_workers([job], _locked(proxy, [1]), "mon", None)
    files = _files(proxy, 606)
    assert [lfn for lfn, f in files.items() if f[1] == "zip_output"] == ["panda.two.1.zip"]
    assert (files["one.1"][0], files["two.1"][0]) == ("pending", "zipped")
    assert proxy.get_job(606).nWorkers == 1


def _event(job: JobSpec, range_id: str, status: str) -> EventSpec:
    ev = EventSpec()
    ev.PandaID, ev.eventRangeID, ev.eventStatus = job.PandaID, range_id, status
    job.add_event(ev, None)
    return ev


def test_event_statuses_follow_their_output_files(proxy: DBProxy) -> None:
    job = _job(proxy, 605)
    for range_id, ev_status, sub_status in (("r.run", "running", "running"), ("r.done", "finished", "done")):
        proxy.execute("INSERT INTO event_table (eventRangeID, PandaID, eventStatus, subStatus) VALUES (:e,605,:s,:ss)",
                      {":e": range_id, ":s": ev_status, ":ss": sub_status})
    for range_id, f_status in (("r.ok", "finished"), ("r.bad", "failed"), ("r.wait", "transferring")):
        proxy.execute("INSERT INTO file_table (PandaID, lfn, status, fileType, eventRangeID, attemptNr, todelete) "
                      "VALUES (605, :l, :s, 'es_output', :e, 0, 0)", {":l": f"f.{range_id}", ":s": f_status,
                                                                       ":e": range_id})
    proxy.commit()
    job = proxy.get_job(605)
    _event(job, "r.run", "finished")  # running before, no file: finished, updated in place
    _event(job, "r.done", "failed")  # done already: left alone
    _event(job, "r.ok", "finished")
    _event(job, "r.bad", "finished")
    _event(job, "r.wait", "finished")
    _event(job, "r.new", "running")
    _event(job, "r.lost", "failed")
    _event(job, "r.out", "finished")
    _out(job, "f.r.out", file_type="es_output", eventRangeID="r.out")
    _write(proxy, job)
    rows = proxy.execute("SELECT eventRangeID, eventStatus, subStatus, fileID FROM event_table WHERE PandaID=605"
                         ).fetchall()
    proxy.commit()
    got = {}
    for range_id, ev_status, sub_status, file_id in rows:
        got.setdefault(range_id, []).append((ev_status, sub_status, file_id))
    out_id = _files(proxy, 605)["f.r.out#r.out"][4]
    assert got == {
        "r.run": [("finished", "finished", None)],
        "r.done": [("finished", "done", None)],
        "r.ok": [("finished", "finished", None)],
        "r.bad": [("failed", "failed", None)],
        "r.wait": [("finished", "transferring", None)],
        "r.new": [("running", "running", None)],
        "r.lost": [("failed", "failed", None)],
        "r.out": [("finished", "transferring", out_id)],  # its new file is only defined
    }


def test_new_outputs_of_a_write_are_inserted_together_each_spec_gets_its_id(proxy: DBProxy) -> None:
    """Two jobs' new outputs (one a zip): one insert call for the write (on MariaDB one round
    trip), each FileSpec gets the id of its own row, in the order of the job's files, the zip
    points at itself."""
    job, other = _job(proxy, 610, worker_ids=(1,)), _job(proxy, 611, worker_ids=(2,))
    specs = [_out(job, f"out.{k}") for k in range(4)] + [_out(job, "own.zip", isZip=1)]
    other_specs = [_out(other, "o.1"), _out(other, "o.2")]
    proxy.engine.capture = []
    assert proxy.update_jobs_workers([job, other], _locked(proxy, [1, 2]), "mon", None)
    statements, proxy.engine.capture = proxy.engine.capture, None
    n_inserts = sum(s.startswith("INSERT INTO file_table") for s in statements)
    assert n_inserts == (1 if proxy.engine.name == "mysql" else 7), statements
    files = {**_files(proxy, 610), **_files(proxy, 611)}
    assert [files[s.lfn][4] for s in specs + other_specs] == [s.fileID for s in specs + other_specs]
    assert len({s.fileID for s in specs + other_specs}) == 7
    assert files["own.zip"][3] == files["own.zip"][4]
    assert [s.lfn for s in sorted(specs, key=lambda s: s.fileID)] == [s.lfn for s in job.outFiles]
