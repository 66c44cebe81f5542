"""Throughput of the Harvester DB layer on SQLite (rows/s), and the monitor's per-cycle query.

    .venv/bin/python bench/db_bench.py            # 10k and 100k workers/jobs; query at 1k/10k/100k
    .venv/bin/python bench/db_bench.py --quick    # 1k and 10k; query at 1k/10k

Runs on a throw-away DB file in a temporary directory (no cfg needed). Prints one line per
measurement; see docs/db.md for figures measured on the development machine.
"""

from __future__ import annotations

import argparse
import datetime
import logging
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from pandaharvester.harvestercore.db.engine import DBSettings  # noqa: E402
from pandaharvester.harvestercore.db import schema  # noqa: E402
from pandaharvester.harvestercore.db_proxy import DBProxy  # noqa: E402
from pandaharvester.harvestercore.file_spec import FileSpec  # noqa: E402
from pandaharvester.harvestercore.job_spec import JobSpec  # noqa: E402
from pandaharvester.harvestercore.time_utils import naive_utcnow  # noqa: E402
from pandaharvester.harvestercore.work_spec import WorkSpec  # noqa: E402

BATCH = 500


def fresh_proxy(directory: str, name: str) -> DBProxy:
    settings = DBSettings(database_filename=os.path.join(directory, name), busy_timeout=60)
    proxy = DBProxy(settings=settings)
    for table in schema.TABLES:
        proxy.make_table(schema.spec_class(table), table)
    return proxy


def make_workers(n: int, start: int = 1) -> list[WorkSpec]:
    old = naive_utcnow() - datetime.timedelta(hours=1)
    workers = []
    for i in range(start, start + n):
        w = WorkSpec()
        w.workerID = i
        w.status = "running"
        w.computingSite = f"Q{i % 10}"
        w.mapType = "OneToOne"
        w.batchID = str(i)
        w.modificationTime = old
        w.isNew = True
        workers.append(w)
    return workers


def make_jobs(n: int, start: int = 1) -> list[JobSpec]:
    old = naive_utcnow() - datetime.timedelta(hours=1)
    jobs = []
    for i in range(start, start + n):
        j = JobSpec()
        j.PandaID = i
        j.computingSite = f"Q{i % 10}"
        j.status = "running"
        j.subStatus = "running"
        j.propagatorTime = old
        j.jobParams = {"PandaID": i, "jobName": f"job.{i}", "outFiles": f"out.{i}", "logFile": f"log.{i}"}
        f = FileSpec()
        f.PandaID = i
        f.lfn = f"in.{i}"
        f.fileType = "input"
        f.status = "ready"
        j.add_in_file(f)
        jobs.append(j)
    return jobs


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:>10.0f} rows/s ({seconds:.2f} s)"


# rows for run(): (operation, size, rows/s or ms); filled by the bench_* functions as they print
RESULTS: list[dict] = []


def record(operation: str, n: int, value: float, unit: str = "rows/s") -> None:
    RESULTS.append({"benchmark": "db micro", "size": n, "metric": operation, "value": value, "unit": unit})


def bench_workers(directory: str, n: int) -> None:
    proxy = fresh_proxy(directory, f"workers_{n}.db")
    workers = make_workers(n)
    t0 = time.perf_counter()
    for i in range(0, n, BATCH):
        proxy.insert_workers(workers[i:i + BATCH], "bench")
    t1 = time.perf_counter()
    print(f"workers n={n:>6} insert  {rate(n, t1 - t0)}")
    record("insert workers", n, n / (t1 - t0))
    # insert_workers stores them as pending (before submission): make them live and due
    locked: list[WorkSpec] = []
    proxy.execute("UPDATE work_table SET status='running', modificationTime=:t",
                  {":t": naive_utcnow() - datetime.timedelta(hours=1)})
    proxy.commit()
    t0 = time.perf_counter()
    while True:
        got = proxy.get_workers_to_update(BATCH, 60, 600, "monitor-bench")
        batch = [w for q in got.values() for sets in q.values() for s in sets for w in s]
        if not batch:
            break
        locked += batch
    t1 = time.perf_counter()
    print(f"workers n={n:>6} lock    {rate(len(locked), t1 - t0)}")
    record("lock workers", n, len(locked) / (t1 - t0))
    t0 = time.perf_counter()
    for i in range(0, len(locked), BATCH):
        chunk = locked[i:i + BATCH]
        for w in chunk:
            w.status = "finished"
        proxy.update_jobs_workers(None, chunk, "monitor-bench")
    t1 = time.perf_counter()
    print(f"workers n={n:>6} update  {rate(len(locked), t1 - t0)}")
    record("update workers", n, len(locked) / (t1 - t0))
    proxy.close()


def bench_jobs(directory: str, n: int) -> None:
    proxy = fresh_proxy(directory, f"jobs_{n}.db")
    jobs = make_jobs(n)
    t0 = time.perf_counter()
    for i in range(0, n, BATCH):
        proxy.insert_jobs(jobs[i:i + BATCH])
    t1 = time.perf_counter()
    print(f"jobs    n={n:>6} insert  {rate(n, t1 - t0)}  (each with one input file)")
    record("insert jobs (+1 file each)", n, n / (t1 - t0))
    locked: list[JobSpec] = []
    t0 = time.perf_counter()
    while True:
        batch = proxy.get_jobs_to_propagate(BATCH, 600, 1800, "propagator-bench")
        if not batch:
            break
        locked += batch
    t1 = time.perf_counter()
    print(f"jobs    n={n:>6} lock    {rate(len(locked), t1 - t0)}")
    record("lock jobs", n, len(locked) / (t1 - t0))
    t0 = time.perf_counter()
    for job in locked:
        job.propagatorLock = None
        job.subStatus = "done"
        proxy.update_job(job, {"propagatorLock": "propagator-bench"})
    t1 = time.perf_counter()
    print(f"jobs    n={n:>6} update  {rate(len(locked), t1 - t0)}  (update_job one by one, as the API is)")
    record("update jobs (one by one)", n, len(locked) / (t1 - t0))
    proxy.close()


def bench_query(directory: str, n: int) -> None:
    proxy = fresh_proxy(directory, f"query_{n}.db")
    workers = make_workers(n)
    for i in range(0, n, 2000):
        proxy.insert_workers(workers[i:i + 2000], "bench")
    # live workers, all checked recently except 500 due now
    proxy.execute("UPDATE work_table SET status='running', modificationTime=:t", {":t": naive_utcnow()})
    proxy.execute("UPDATE work_table SET modificationTime=:t WHERE workerID<=500",
                  {":t": naive_utcnow() - datetime.timedelta(hours=1)})
    proxy.commit()
    t0 = time.perf_counter()
    got = proxy.get_workers_to_update(500, 300, 600, "monitor-bench")
    t1 = time.perf_counter()
    n_got = sum(len(s) for q in got.values() for sets in q.values() for s in sets)
    print(f"monitor get_workers_to_update(500) with {n:>6} live workers: {(t1 - t0) * 1000:7.1f} ms "
          f"(got {n_got})")
    record("monitor query (500 due)", n, (t1 - t0) * 1000, "ms")
    t0 = time.perf_counter()
    got = proxy.get_workers_to_update(500, 300, 600, "monitor-bench-2")
    t1 = time.perf_counter()
    print(f"monitor get_workers_to_update(500) with {n:>6} live workers, none due: {(t1 - t0) * 1000:7.1f} ms")
    record("monitor query (none due)", n, (t1 - t0) * 1000, "ms")
    proxy.close()


def run(quick: bool) -> list[dict]:
    """Every measurement of main() as result rows (the runner's interface)."""
    RESULTS.clear()
    sizes = [1000, 10000] if quick else [10000, 100000]
    query_sizes = [1000, 10000] if quick else [1000, 10000, 100000]
    with tempfile.TemporaryDirectory(prefix="harvester_db_bench_") as directory:
        for n in sizes:
            bench_workers(directory, n)
            bench_jobs(directory, n)
        for n in query_sizes:
            bench_query(directory, n)
    return list(RESULTS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (1k, 10k)")
    parser.add_argument("--quiet-log", action="store_true", help="log at INFO instead of DEBUG")
    args = parser.parse_args()
    if args.quiet_log:
        logging.getLogger("panda.log.db_proxy").setLevel(logging.INFO)
    run(args.quick)


if __name__ == "__main__":
    main()
