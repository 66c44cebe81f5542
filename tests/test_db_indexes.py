"""Every query an agent runs per cycle uses an index: no full SCAN of work/job/file tables."""

from __future__ import annotations

import re

from pandaharvester.harvestercore.event_spec import EventSpec
from pandaharvester.harvestercore.file_spec import FileSpec
from pandaharvester.harvestercore.job_spec import JobSpec
from test_db_fixtures import (  # noqa: F401
    _module_mariadb, ago, db_engine, db_home, db_overrides, insert_workers, make_job, make_worker, proxy,
)

BIG_TABLES = ("work_table", "job_table", "file_table")


def _plan(proxy, sql: str) -> list[str]:
    names = set(re.findall(r"(?<!:):([A-Za-z_]\w*)", sql))
    # MariaDB: a NULL bind makes "Impossible WHERE" plans (no table read at all); a datetime-like
    # string fits every column type without stopping an index from being used
    value = "2000-01-01 00:00:00" if proxy.engine.name == "mysql" else None
    binds = {f":{n}": value for n in names}
    if "?" in sql:
        return []
    return proxy.engine.explain(proxy.cur, sql, binds)


_KEYWORDS = {"WHERE", "SET", "GROUP", "ORDER", "LIMIT", "ON", "USING", "JOIN", "INNER", "LEFT", "VALUES"}


def _names_of(sql: str, table: str) -> set[str]:
    """The table's name and its aliases in ``sql`` (``FROM work_table wt``, ``, job_table j``)."""
    names = {table}
    for alias in re.findall(rf"\b{table}\s+(?:AS\s+)?([A-Za-z_]\w*)", sql, re.I):
        if alias.upper() not in _KEYWORDS:
            names.add(alias)
    return names


def _full_scans(proxy, statements: list[str]) -> list[tuple[str, str]]:
    """(statement, plan line) for every full scan of a big table, aliases included. An
    AUTOMATIC index is a full scan too: SQLite builds it from a scan for that one statement.
    MariaDB: a table read with ``type=ALL`` and no usable index (``possible_keys`` NULL); with one,
    the optimizer may still scan the test's small tables, which says nothing of large ones."""
    if proxy.engine.name == "mysql":
        return _full_scans_mariadb(proxy, statements)
    bad = []
    for sql in dict.fromkeys(statements):
        if not re.match(r"\s*(SELECT|UPDATE|DELETE)", sql, re.I):
            continue
        names = {name: table for table in BIG_TABLES for name in _names_of(sql, table)}
        for line in _plan(proxy, sql):
            match = re.match(r"\s*(SCAN|SEARCH)\s+(\w+)", line)
            if match is None or match.group(2) not in names:
                continue
            if "AUTOMATIC" in line or (match.group(1) == "SCAN" and "INDEX" not in line):
                bad.append((sql, line))
    return bad


def _full_scans_mariadb(proxy, statements: list[str]) -> list[tuple[str, str]]:
    bad = []
    for sql in dict.fromkeys(statements):
        if not re.match(r"\s*(SELECT|UPDATE|DELETE)", sql, re.I):
            continue
        names = {name: table for table in BIG_TABLES for name in _names_of(sql, table)}
        for line in _plan(proxy, sql):
            match = re.match(r"table=(\S+) type=(\S+) possible_keys=(\S+)", line)
            if match and match.group(1) in names and match.group(2) == "ALL" and match.group(3) == "None":
                bad.append((sql, line))
    return bad


def test_per_cycle_queries_use_indexes(proxy, caplog):
    insert_workers(proxy, [make_worker(i, status="running") for i in range(1, 50)])
    jobs = [make_job(100 + i, status="running", sub_status="running", propagatorTime=ago(7200)) for i in range(50)]
    jobs += [make_job(300 + i, sub_status="prepared") for i in range(10)]
    assert proxy.insert_jobs(jobs)
    proxy.execute("INSERT INTO pq_table (queueName, siteName, resourceType, jobType, uniqueName, nQueueLimitJob) "
                  "VALUES ('Q1', 'Q1', 'ANY', 'ANY', 'Q1:ANY:ANY', 10)")
    proxy.executemany("INSERT INTO jw_table (PandaID, workerID) VALUES (:p, :w)",
                      [{":p": 100 + i, ":w": i} for i in range(1, 50)])
    proxy.commit()
    proxy.engine.capture = captured = []
    try:
        proxy.get_workers_to_update(100, 60, 600, "m")
        proxy.get_jobs_to_propagate(100, 600, 1800, "p")
        proxy.get_workers_to_propagate(100, 1800)
        proxy.get_workers_to_kill(100, 180)
        proxy.get_jobs_in_sub_status("preparing", 100, "preparatorTime", "lockedBy", 180, 600, "prep", "triggered",
                                     ng_file_status_list=["ready"])
        proxy.get_jobs_for_stage_out(100, 180, 600, "st", "transferring", JobSpec.HO_hasTransfer)
        proxy.get_jobs_for_stage_out(100, 180, 600, "st", "to_transfer", JobSpec.HO_hasOutput,
                                     [JobSpec.HO_hasZipOutput])
        proxy.get_job_chunks_for_workers("Q1", 5, 0, 1, None, False, 60, 600, "sub")
        proxy.get_workers_to_feed_events(100, 600, "ef")
        proxy.get_workers_for_cleanup(100, {"finished": 24, "failed": 72, "cancelled": 72, "missed": 24})
        proxy.get_queues_to_submit(60, 600, "sub", 300)
        proxy.get_num_jobs_to_fetch(5, 60)
        proxy.get_jobs_with_worker_id(1, "m", with_file=True)
        proxy.get_active_workers(100, 60)
        proxy.get_worker_limits("Q1")
        proxy.mark_workers_to_kill_by_workerids([1, 2])
        proxy.get_file_status("in.100.0", "input", None, "starting")
        proxy.get_files_status({"in.100.0": "input", "in.101.0": "input"}, None, "starting")
        # the writers and look-ups agents call for every row they took
        got = proxy.get_workers_to_update(100, 0, 0, "m2")
        workers = [w for q in got.values() for sets in q.values() for s in sets for w in s]
        for worker in workers:
            worker.status = "running"
            worker.nJobs = 1
        taken = proxy.get_jobs_with_worker_id(1, "m2")
        # a job that zips its outputs and has events: the file, zip and event writes of the monitor
        taken[0].zipPerMB, taken[0].subStatus = 0, "to_transfer"
        out = FileSpec()
        out.PandaID, out.lfn, out.fileType, out.fsize, out.eventRangeID = taken[0].PandaID, "o.1", "es_output", 5, "r1"
        taken[0].add_out_file(out)
        event = EventSpec()
        event.PandaID, event.eventRangeID, event.eventStatus = taken[0].PandaID, "r1", "finished"
        taken[0].add_event(event, None)
        proxy.update_jobs_workers(taken, workers, "m2", [[100]] * len(workers))
        new = make_worker(900, status="submitted")
        proxy.insert_workers([new], "sub")
        proxy.register_worker(new, [proxy.get_job(300)], "sub")
        job = proxy.get_job(101)
        job.subStatus = "to_transfer"
        proxy.update_job(job, {"propagatorLock": None}, update_in_file=True, update_out_file=True)
        proxy.update_job_for_stage_out(job, True, "st")
        proxy.update_worker(proxy.get_worker_with_id(2), {"lockedBy": "m2"})
        proxy.get_ready_workers("Q1", 10)
        proxy.get_workers_from_ids([1, 2, 3])
        proxy.get_workers_with_job_id(100)
        proxy.lock_workers({3: {"lockedBy": "fifo"}}, 600)
        proxy.release_jobs([100, 101], "m2")
        proxy.lock_job_again(100, "preparatorTime", "lockedBy", "prep")
        proxy.change_file_status(100, [(1, "in.100.0", "ready")], "prep")
        proxy.get_group_for_file("in.100.0", "input", None)
        proxy.refresh_file_group_info(job)
        proxy.get_files_with_group_id("g1")
        proxy.get_worker_stats("Q1")
        proxy.get_worker_stats_bulk(None)
        proxy.get_worker_ce_stats("Q1")
        proxy.get_worker_ce_backend_throughput("Q1", 3600)
        proxy.get_num_missed_workers("Q1", {"timeLimit": ago(3600)})
        proxy.set_queue_limit("Q1", {"ANY": {"SCORE": 2}})
        proxy.mark_workers_to_kill_by_pandaid(100)
        proxy.get_commands_for_receiver("propagator", "REPORT%")
        proxy.get_dialog_messages_to_send(10, 60)
        proxy.delete_old_jobs(48)
    finally:
        proxy.engine.capture = None
    assert len(captured) > 60
    assert any("provenanceID" in sql for sql in captured) and any("event_table" in sql for sql in captured)
    # every call above ran (an error would return the neutral value and hide its statements)
    assert not [r for r in caplog.records if r.levelname == "ERROR"], caplog.text
    bad = _full_scans(proxy, captured)
    proxy.commit()
    assert not bad, "full table scans:\n" + "\n".join(f"{line}  <- {sql}" for sql, line in bad)


def test_scan_detector_catches_a_full_scan(proxy):
    statements = ["SELECT workerID FROM work_table WHERE batchID=:b",
                  # aliased tables are printed by their alias in the plan
                  "SELECT COUNT(*) FROM work_table wt, pq_table pq WHERE wt.nodeID=pq.queueName",
                  "SELECT w.workerID FROM file_table f, work_table w WHERE f.lfn=:l AND w.batchID=f.path"]
    bad = _full_scans(proxy, statements)
    proxy.commit()
    assert [sql for sql, _line in bad] == statements
    assert not _full_scans(proxy, ["SELECT workerID FROM work_table wt WHERE wt.status=:s"])
    proxy.commit()
