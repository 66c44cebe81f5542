"""Throughput of the Harvester DB layer (rows/s), and the monitor's per-cycle query.

    .venv/bin/python bench/db_bench.py            # 10k and 100k workers/jobs; query at 1k/10k/100k
    .venv/bin/python bench/db_bench.py --quick    # 1k and 10k; query at 1k/10k
    .venv/bin/python bench/db_bench.py --quick --engine mariadb --driver pymysql --driver mysqldb --driver mariadb

SQLite runs on a throw-away DB file in a temporary directory (no cfg needed); MariaDB on
throw-away databases ``hv_bench_<hex>`` of the server given by --host/--port/--user/--password-file
(default: the test account of scripts/setup_mariadb.sh), one run per --driver (the connector:
PyMySQL, mysqlclient, MariaDB Connector/Python). Prints one line per measurement; see docs/db.md
for figures measured on the development machine.
"""

from __future__ import annotations

import argparse
import datetime
import logging
import os
import secrets
import sys
import tempfile
import time
from dataclasses import dataclass, field

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from pandaharvester.harvestercore.db.engine import DBSettings  # noqa: E402
from pandaharvester.harvestercore.db import schema  # noqa: E402
from pandaharvester.harvestercore.db_proxy import DBProxy  # noqa: E402
from pandaharvester.harvestercore.file_spec import FileSpec  # noqa: E402
from pandaharvester.harvestercore.job_spec import JobSpec  # noqa: E402
from pandaharvester.harvestercore.time_utils import naive_utcnow  # noqa: E402
from pandaharvester.harvestercore.work_spec import WorkSpec  # noqa: E402

BATCH = 500


@dataclass
class Target:
    """Where the bench runs: SQLite files, or scratch databases on a MariaDB server."""

    engine: str = "sqlite"
    driver: str = ""
    host: str = "127.0.0.1"
    port: int = 3306
    user: str = "harvester_test"
    password_file: str = "/etc/panda/harvester_test_mariadb.pw"
    made: list[str] = field(default_factory=list)

    def admin(self):  # type: ignore[no-untyped-def]
        import pymysql

        password = DBSettings(password_file=self.password_file).get_password() if self.password_file else ""
        return pymysql.connect(host=self.host, port=self.port, user=self.user, password=password, autocommit=True)

    def settings(self, directory: str, name: str) -> DBSettings:
        if self.engine == "sqlite":
            return DBSettings(database_filename=os.path.join(directory, name), busy_timeout=60)
        schema_name = f"hv_bench_{secrets.token_hex(4)}"
        con = self.admin()
        con.cursor().execute(f"CREATE DATABASE {schema_name}")
        con.close()
        self.made.append(schema_name)
        return DBSettings(engine="mariadb", host=self.host, port=self.port, user=self.user,
                          password_file=self.password_file, schema=schema_name, busy_timeout=60, driver=self.driver)

    def drop(self) -> None:
        if self.made:
            con = self.admin()
            for schema_name in self.made:
                con.cursor().execute(f"DROP DATABASE IF EXISTS {schema_name}")
            con.close()
            self.made.clear()


TARGET = Target()


def fresh_proxy(directory: str, name: str) -> DBProxy:
    proxy = DBProxy(settings=TARGET.settings(directory, name))
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
    where = TARGET.engine + (f"/{TARGET.driver or 'pymysql'}" if TARGET.engine != "sqlite" else "")
    RESULTS.append({"benchmark": "db micro", "engine": where, "size": n, "metric": operation, "value": value,
                    "unit": unit})


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


def run(quick: bool, target: Target | None = None, drivers: tuple[str, ...] = ("",)) -> list[dict]:
    """Every measurement of main() as result rows (the runner's interface); MariaDB: once per driver."""
    global TARGET
    RESULTS.clear()
    TARGET = target or Target()
    sizes = [1000, 10000] if quick else [10000, 100000]
    query_sizes = [1000, 10000] if quick else [1000, 10000, 100000]
    for driver in (drivers if TARGET.engine != "sqlite" else ("",)):
        TARGET.driver = driver
        if TARGET.engine != "sqlite":
            print(f"--- {TARGET.engine} at {TARGET.host}:{TARGET.port}, connector {driver or 'pymysql'}")
        try:
            with tempfile.TemporaryDirectory(prefix="harvester_db_bench_") as directory:
                for n in sizes:
                    bench_workers(directory, n)
                    bench_jobs(directory, n)
                for n in query_sizes:
                    bench_query(directory, n)
        finally:
            TARGET.drop()
    return list(RESULTS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (1k, 10k)")
    parser.add_argument("--quiet-log", action="store_true", help="log at INFO instead of DEBUG")
    parser.add_argument("--engine", choices=("sqlite", "mariadb"), default="sqlite")
    parser.add_argument("--driver", action="append", choices=("pymysql", "mysqldb", "mariadb"),
                        help="MariaDB connector (repeat to compare; default pymysql)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3306)
    parser.add_argument("--user", default="harvester_test")
    parser.add_argument("--password-file", default="/etc/panda/harvester_test_mariadb.pw",
                        help="file with the password on its first line, mode 0600 ('' for none)")
    args = parser.parse_args()
    if args.quiet_log:
        logging.getLogger("panda.log.db_proxy").setLevel(logging.INFO)
    target = Target(engine=args.engine, host=args.host, port=args.port, user=args.user,
                    password_file=args.password_file)
    run(args.quick, target, tuple(args.driver or ["pymysql"]))


if __name__ == "__main__":
    main()
