"""End to end, push mode: the emulator holds N jobs; the daemon runs until every job is final.

The daemon (SQLite, dummy plugins in instant mode, one push queue with one job per worker) is
started after the jobs are in the emulator; the clock runs from its start to the moment the
emulator has every job in a final state, or the time budget (75 s) is over: the rates are then
measured over the budget and "jobs final in the time budget" says how far it got. Reports
jobs/s, workers/s, CPU seconds of the daemon per 1k jobs (and of the emulator, for reference)
and the daemon's peak RSS.

``--queues N`` spreads the jobs over N push queues (a queue's submission is one process's at a
time: the submitter locks the queue). With ``--processes 1,2`` each size runs once per process count, back to back (``[master]
nProcesses``: the master and its worker processes are measured together, CPU and RSS summed over
the process tree), and a "speed-up" row gives each count's jobs/s over the first one's.
``--engine mariadb`` runs the instance on the MariaDB server at 127.0.0.1:3306 (root, empty
password; a database of its own, dropped after) through the ``[db]`` cfg overrides of
:func:`engine_cfg` (sqlite, the default: the instance's own file).

    .venv/bin/python bench/push_bench.py [--quick] [--sizes 1000,10000] [--processes 1,2] [--engine sqlite]
                                         [--queues 4]
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import psutil

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402

QUEUE = "BENCH_PUSH"
SIZES = (1000, 10000, 50000)
QUICK_SIZES = (500,)


class TreeSampler:
    """CPU seconds and RSS of a process and all its descendants, sampled in a thread until :meth:`stop`."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self.root = psutil.Process(pid)
        self.interval = interval
        self.peak_rss = 0
        self.cpu = self.user = self.system = 0.0
        self._seen: dict[int, tuple[float, float]] = {}  # descendant pid -> last (user, system)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="TreeSampler", daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        try:
            processes = [self.root] + self.root.children(recursive=True)
        except psutil.NoSuchProcess:
            self._stop.set()
            return
        rss = 0
        for process in processes:
            try:
                with process.oneshot():
                    times = process.cpu_times()
                    rss += process.memory_info().rss
                self._seen[process.pid] = (times.user, times.system)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        self.peak_rss = max(self.peak_rss, rss)
        self.user = sum(u for u, _s in self._seen.values())
        self.system = sum(s for _u, s in self._seen.values())
        self.cpu = self.user + self.system

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def stop(self) -> None:
        if not self._stop.is_set():
            self._sample()
        self._stop.set()
        self._thread.join(5)


def server_cpu() -> float:
    """CPU seconds of the local MariaDB server process so far (other sessions' use included; 0
    when it cannot be read)."""
    for proc in psutil.process_iter(["name"]):
        if proc.info["name"] in ("mariadbd", "mysqld"):
            try:
                times = proc.cpu_times()
                return times.user + times.system
            except psutil.Error:
                return 0.0
    return 0.0


@contextlib.contextmanager
def engine_cfg(engine: str, use_mysqldb: bool = False) -> Iterator[dict[str, dict[str, Any]]]:
    """The ``[db]`` cfg overrides of one bench run on ``engine`` (a MariaDB database made and
    dropped; ``use_mysqldb``: through mysqlclient, ``[db] useMySQLdb = True``)."""
    if engine == "sqlite":
        yield {"db": {"engine": "sqlite"}}
        return
    if engine not in ("mariadb", "mysql"):
        raise SystemExit(f"push bench: --engine {engine!r}: use sqlite or mariadb")
    import pymysql

    schema = f"hv_bench_{uuid.uuid4().hex[:8]}"
    connection = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", autocommit=True)
    try:
        connection.cursor().execute(f"CREATE DATABASE {schema}")
        yield {"db": {"engine": engine, "host": "127.0.0.1", "port": 3306, "user": "root", "password": "",
                      "schema": schema, "useMySQLdb": use_mysqldb}}
    finally:
        connection.cursor().execute(f"DROP DATABASE IF EXISTS {schema}")
        connection.close()


def run_one(n_jobs: int, log_level: str | None = None, budget: float = common.E2E_BUDGET,
            profile: str | None = None, processes: int = 1, engine: str = "sqlite", queues: int = 1,
            use_mysqldb: bool = False) -> list[dict]:
    """One push run of ``n_jobs`` (at most ``budget`` seconds) with ``processes`` processes, the
    jobs spread over ``queues`` push queues; result rows."""
    name = "push e2e" + (f" (log {log_level})" if log_level else "")
    if processes != 1 or engine != "sqlite" or queues != 1:
        name += f" {processes}p {engine}" + (f" {queues}q" if queues != 1 else "") + (" mysqldb" if use_mysqldb else "")
    names = [QUEUE] if queues == 1 else [f"{QUEUE}_{k}" for k in range(queues)]
    with common.workdir("push") as tmp, engine_cfg(engine, use_mysqldb) as db_cfg:
        home = Path(tmp)
        cfg = common.bench_cfg(log_level)
        cfg.update(db_cfg)
        cfg.setdefault("master", {})["nProcesses"] = processes
        run = common.make_run(home, {queue: common.push_queue(home, 2000) for queue in names}, cfg)
        try:
            for k, queue in enumerate(names):
                run.emulator.add_task(queue, n_jobs // queues + (1 if k < n_jobs % queues else 0))
            emulator_cpu0 = common.cpu_seconds(run.emulator.proc.pid)
            server_cpu0 = server_cpu() if engine != "sqlite" else 0.0
            t0 = time.monotonic()
            daemon = run.start()
            sampler = TreeSampler(daemon.pid)
            profiler = common.start_profiler(daemon.pid, profile) if profile else None
            n_done, _ = common.wait_until_count(lambda: common.n_final(common.emulator_job_counts(run)),
                                                n_jobs, budget, 0.25, alive=run.assert_alive)
            elapsed = time.monotonic() - t0
            sampler.stop()
            if profiler is not None:
                common.stop_profiler(profiler)
            emulator_cpu = common.cpu_seconds(run.emulator.proc.pid) - emulator_cpu0
            db_cpu = server_cpu() - server_cpu0 if engine != "sqlite" else 0.0
            n_workers = sum(run.emulator.state()["workers"].get(run.harvester_id, {}).values())
            counts = common.emulator_job_counts(run)
        finally:
            run.close()
    bad = {s: n for s, n in counts.items() if s in common.FINAL_JOB_STATES and s != "finished"}
    if bad:
        raise RuntimeError(f"push bench: jobs ended badly in the emulator: {counts}")
    if n_done == 0:
        raise RuntimeError(f"push bench: no job final after {elapsed:.0f} s; emulator has {counts}")
    return [
        common.row(name, n_jobs, "jobs/s", n_done / elapsed, "jobs/s"),
        common.row(name, n_jobs, "workers/s", n_workers / elapsed, "workers/s"),
        common.row(name, n_jobs, "wall time", elapsed, "s"),
        common.row(name, n_jobs, "jobs final in the time budget", 100 * n_done / n_jobs, "%"),
        common.row(name, n_jobs, "daemon CPU per 1k jobs", sampler.cpu / n_done * 1000, "CPU s"),
        common.row(name, n_jobs, "daemon user/system CPU", sampler.user / max(sampler.system, 1e-9), "ratio"),
        common.row(name, n_jobs, "emulator CPU per 1k jobs", emulator_cpu / n_done * 1000, "CPU s"),
        common.row(name, n_jobs, "daemon peak RSS", sampler.peak_rss / 2**20, "MB"),
    ] + ([common.row(name, n_jobs, "DB server CPU per 1k jobs", db_cpu / n_done * 1000, "CPU s"),
          common.row(name, n_jobs, "cores used (daemon + DB server)", (sampler.cpu + db_cpu) / elapsed, "cores")]
         if engine != "sqlite" else [])


def run(quick: bool, sizes: tuple[int, ...] | None = None) -> list[dict]:
    """The push benchmark at every size (default logging)."""
    return common.run_sizes(run_one, sizes or (QUICK_SIZES if quick else SIZES), quick)


@contextlib.contextmanager
def flush_log_at_trx_commit(value: int | None) -> Iterator[None]:
    """The MariaDB server's ``innodb_flush_log_at_trx_commit`` set to ``value`` (a site's server
    setting, for a tuning row only) and set back to what it was afterwards, whatever happens."""
    if value is None:
        yield
        return
    import pymysql

    con = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", autocommit=True)
    cur = con.cursor()
    cur.execute("SELECT @@GLOBAL.innodb_flush_log_at_trx_commit")
    (saved,) = cur.fetchone()
    try:
        cur.execute(f"SET GLOBAL innodb_flush_log_at_trx_commit = {int(value)}")
        yield
    finally:
        cur.execute(f"SET GLOBAL innodb_flush_log_at_trx_commit = {int(saved)}")
        con.close()


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sizes", default=None, help="comma list of job counts")
    parser.add_argument("--log-level", default=None, help="e.g. INFO for the hot-path loggers")
    parser.add_argument("--profile", default=None, help="py-spy raw profile of the daemon to this file")
    parser.add_argument("--processes", default="1", help="comma list of [master] nProcesses, run back to back")
    parser.add_argument("--engine", default="sqlite", help="sqlite (default) or mariadb")
    parser.add_argument("--mysqldb", action="store_true",
                        help="MariaDB through mysqlclient ([db] useMySQLdb = True) instead of PyMySQL")
    parser.add_argument("--flush-log-at-trx-commit", type=int, default=None,
                        help="MariaDB only: run with the server's innodb_flush_log_at_trx_commit at this value "
                             "(restored after; a site's tuning, not the default figures)")
    parser.add_argument("--queues", type=int, default=1, help="push queues the jobs are spread over (default 1)")
    parser.add_argument("--budget", type=float, default=None,
                        help=f"seconds a run may take (default {common.E2E_BUDGET:g}; slower set-ups such as one "
                             f"process on MariaDB need more to finish 10k jobs)")
    args = parser.parse_args()
    sizes = tuple(int(s) for s in args.sizes.split(",")) if args.sizes else (QUICK_SIZES if args.quick else SIZES)
    counts = [int(p) for p in args.processes.split(",")]
    budget = args.budget or (common.E2E_QUICK_BUDGET if args.quick else common.E2E_BUDGET)
    with flush_log_at_trx_commit(args.flush_log_at_trx_commit):
        run_sizes_and_counts(args, sizes, counts, budget)


def run_sizes_and_counts(args: Any, sizes: tuple[int, ...], counts: list[int], budget: float) -> None:
    """Each size with each process count, back to back, then the speed-up rows."""
    for n in sizes:
        rates: dict[int, float] = {}
        for processes in counts:
            for r in run_one(n, args.log_level, budget=budget, profile=args.profile, processes=processes,
                             engine=args.engine, queues=args.queues, use_mysqldb=args.mysqldb):
                print(f"{r['benchmark']:<24} {r['size']:>7} {r['metric']:<32} {r['value']:>10.2f} {r['unit']}",
                      flush=True)
                if r["metric"] == "jobs/s":
                    rates[processes] = r["value"]
        if len(rates) > 1:
            base = rates[counts[0]]
            for processes in counts[1:]:
                print(f"{'push e2e speed-up':<24} {n:>7} {f'{processes}p over {counts[0]}p ({args.engine})':<32} "
                      f"{rates[processes] / base:>10.2f} x", flush=True)


if __name__ == "__main__":
    main()
