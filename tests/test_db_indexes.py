"""Every query an agent runs per cycle uses an index: no full SCAN of work/job/file tables."""

from __future__ import annotations

import re

from pandaharvester.harvestercore.job_spec import JobSpec
from test_db_fixtures import ago, db_home, insert_workers, make_job, make_worker, proxy  # noqa: F401

BIG_TABLES = ("work_table", "job_table", "file_table")


def _plan(proxy, sql: str) -> list[str]:
    names = set(re.findall(r"(?<!:):([A-Za-z_]\w*)", sql))
    binds = {f":{n}": None for n in names}
    if "?" in sql:
        return []
    return proxy.engine.explain(proxy.cur, sql, binds)


def _full_scans(proxy, statements: list[str]) -> list[tuple[str, str]]:
    bad = []
    for sql in dict.fromkeys(statements):
        if not re.match(r"\s*(SELECT|UPDATE|DELETE)", sql, re.I):
            continue
        for line in _plan(proxy, sql):
            for table in BIG_TABLES:
                # "SCAN work_table" alone is a full scan; "SCAN t USING (COVERING) INDEX" is not
                if re.search(rf"\bSCAN {table}\b(?!.*USING)", line) or re.search(rf"\bSCAN \w+\b$", line) and \
                        re.search(rf"\b{table} AS\b", line):
                    bad.append((sql, line))
    return bad


def test_per_cycle_queries_use_indexes(proxy):
    insert_workers(proxy, [make_worker(i, status="running") for i in range(1, 50)])
    jobs = [make_job(100 + i, status="running", sub_status="running", propagatorTime=ago(7200)) for i in range(50)]
    jobs += [make_job(300 + i, sub_status="prepared") for i in range(10)]
    assert proxy.insert_jobs(jobs)
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
    finally:
        proxy.engine.capture = None
    assert len(captured) > 30
    bad = _full_scans(proxy, captured)
    proxy.commit()
    assert not bad, "full table scans:\n" + "\n".join(f"{line}  <- {sql}" for sql, line in bad)


def test_scan_detector_catches_a_full_scan(proxy):
    bad = _full_scans(proxy, ["SELECT workerID FROM work_table WHERE batchID=:b"])
    proxy.commit()
    assert bad
