"""Monitor cycle with the FIFO mode on and off over N live workers, and a FIFO backend micro-benchmark.

Cycle part (one child process per N, SQLite DB as in ``cycle_bench.py``, every worker due):

- FIFO off: ``Monitor`` cycles with ``maxWorkers = 500`` (the DB cycle: scan, lock, check,
  write; median of 5 after a warm-up), then one cycle with ``maxWorkers = N`` (all N checked);
- FIFO on (SQLite FIFO file): ``MonitorFIFO.populate`` of the N workers, then the same cycles
  taking the due workers from the FIFO (lock by id, check, write, put back), the DB cycle not due.

Micro part: ``put`` then ``get`` (and protective get + release) of one small WorkSpec per object
on each backend (SQLite file, MariaDB 127.0.0.1:3306 root, Redis 127.0.0.1:6379), one thread.

    .venv/bin/python bench/fifo_bench.py [--sizes 1000,10000,100000] [--micro-objects 2000] [--no-micro]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402
import cycle_bench  # noqa: E402

SIZES = (1000, 10000, 100000)
BATCH = 500
BENCH_DIR = Path(__file__).resolve().parent


def child(n: int, home: Path) -> dict:
    """In its own process: N live workers, the monitor cycle with FIFO off then on."""
    from pandaharvester.harvestertest import instance

    overrides = {"master": {"harvester_id": "bench-fifo"},
                 "monitor": {"maxWorkers": BATCH, "checkInterval": 60, "lockInterval": 600, "nThreads": 1,
                             "fifoEnable": False, "fifoCheckInterval": 60, "sleepTime": 600},
                 "fifo": {"database_filename": str(home / "$(TITLE)_fifo.db")},
                 "qconf": {"queueList": "ALL"}}
    (home / "logs").mkdir(parents=True, exist_ok=True)
    instance.write_cfg(home, overrides, harvester_id="bench-fifo")
    instance.write_queue_config(home, cycle_bench.queue_config(home))
    os.environ["PANDA_HOME"] = str(home)
    sys.path.insert(0, str(BENCH_DIR))

    from pandaharvester.harvesterbody import master_cli
    from pandaharvester.harvesterbody.monitor import Monitor
    from pandaharvester.harvesterconfig import harvester_config
    from pandaharvester.harvestercore.communicator_pool import CommunicatorPool
    from pandaharvester.harvestercore.db_proxy import DBProxy
    from pandaharvester.harvestercore.db_proxy_pool import DBProxyPool
    from pandaharvester.harvestercore.queue_config_mapper import QueueConfigMapper

    master_cli.configure_logging()
    master_cli.tune_gc()
    mapper = QueueConfigMapper()
    DBProxyPool().make_tables(mapper, CommunicatorPool())
    proxy = DBProxy()
    now = datetime.datetime.utcnow().replace(tzinfo=None)
    cycle_bench._insert_workers(proxy, 1, n, "running", now - datetime.timedelta(hours=2), home)
    result: dict = {}
    # FIFO off: the DB cycle; a warm-up cycle, then the median of 5 batches of 500, then a full pass
    cycle_bench._make_due(proxy)
    monitor = Monitor(mapper, single_mode=True)
    monitor.run_one_cycle()
    result["off_batch"] = _median_cycle(monitor, lambda: None, _n_cycles(n))
    harvester_config.monitor.maxWorkers = n
    cycle_bench._make_due(proxy)
    t0 = time.perf_counter()
    monitor.run_one_cycle()
    result["off_full"] = time.perf_counter() - t0
    harvester_config.monitor.maxWorkers = BATCH
    # FIFO on: populate, then the same (the DB cycle not due)
    harvester_config.monitor.fifoEnable = True
    cycle_bench._make_due(proxy)
    monitor = Monitor(mapper, single_mode=True)
    fifo = monitor.fifo_mode.fifo
    fifo.clear()
    t0 = time.perf_counter()
    populated = fifo.populate()
    result["populate"] = time.perf_counter() - t0
    result["populated"] = populated
    not_due = lambda: setattr(monitor.fifo_mode, "last_db_cycle", time.time())  # noqa: E731
    not_due()
    monitor.run_one_cycle()
    result["on_batch"] = _median_cycle(monitor, not_due, _n_cycles(n))
    checked = proxy.execute("SELECT COUNT(*) FROM work_table WHERE workParams LIKE '%lastCheckAt%'").fetchone()[0]
    proxy.commit()
    result["on_checked"] = checked
    # full pass: every worker due in the FIFO
    fifo.clear()
    cycle_bench._make_due(proxy)
    fifo.populate()
    harvester_config.monitor.maxWorkers = n
    not_due()
    t0 = time.perf_counter()
    monitor.run_one_cycle()
    result["on_full"] = time.perf_counter() - t0
    result["on_full_left_due"] = len(fifo.peekmany(maxscore=time.time(), skip_item=True))
    return result


def _n_cycles(n: int) -> int:
    """Timed batch cycles at size ``n``: up to 5, while due workers are left after the warm-up."""
    return max(1, min(5, n // BATCH - 1))


def _median_cycle(monitor, before, n_cycles: int = 5) -> float:
    """Median seconds of ``n_cycles`` monitor cycles (``before()`` ahead of each)."""
    times = []
    for _ in range(n_cycles):
        before()
        t0 = time.perf_counter()
        monitor.run_one_cycle()
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def run_size(n: int) -> dict:
    with common.workdir("fifo") as tmp:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(common.REPO), str(BENCH_DIR)]))
        proc = subprocess.run([sys.executable, __file__, "--child", str(n), "--home", tmp], env=env,
                              capture_output=True, text=True, timeout=3600)
        if proc.returncode != 0:
            raise RuntimeError(f"fifo bench child for n={n} failed:\n{proc.stderr[-3000:]}")
        return json.loads(proc.stdout.strip().splitlines()[-1])


def cycle_rows(sizes: tuple[int, ...]) -> list[dict]:
    rows = []
    for n in sizes:
        r = run_size(n)
        if r["populated"] != n or r["on_checked"] != min((1 + _n_cycles(n)) * BATCH, n) or r["on_full_left_due"]:
            raise RuntimeError(f"n={n}: populated {r['populated']}, FIFO cycles checked {r['on_checked']}, "
                               f"{r['on_full_left_due']} objects left due after the full pass")
        rows += [common.row("monitor FIFO off", n, f"DB cycle of {BATCH} (median)", r["off_batch"], "s"),
                 common.row("monitor FIFO on", n, f"FIFO cycle of {BATCH} (median)", r["on_batch"], "s"),
                 common.row("monitor FIFO off", n, "all N workers checked", r["off_full"], "s"),
                 common.row("monitor FIFO on", n, "all N workers checked", r["on_full"], "s"),
                 common.row("monitor FIFO on", n, "populate all N", r["populate"], "s")]
    return rows


def micro_child(backend: str, n_objects: int, home: Path) -> dict:
    """put/get timings of one backend (in its own process, with its own cfg)."""
    sys.path.insert(0, str(BENCH_DIR.parent / "tests"))
    from pandaharvester.harvestertest import instance

    modules = {"sqlite": ("pandaharvester.harvesterfifo.sqlite_fifo", "SqliteFifo"),
               "mysql": ("pandaharvester.harvesterfifo.mysql_fifo", "MysqlFifo"),
               "redis": ("pandaharvester.harvesterfifo.redis_fifo", "RedisFifo")}
    module, cls = modules[backend]
    fifo_cfg = {"fifoModule": module, "fifoClass": cls, "database_filename": str(home / "$(TITLE)_fifo.db"),
                "db_host": "127.0.0.1", "db_port": 3306, "db_user": "root", "db_password": "",
                "redisHost": "127.0.0.1", "redisPort": 6379}
    schema = None
    if backend == "mysql":
        import pymysql

        schema = f"hv_{uuid.uuid4().hex[:12]}"
        conn = pymysql.connect(host="127.0.0.1", user="root", password="", autocommit=True)
        conn.cursor().execute(f"CREATE DATABASE `{schema}`")
        fifo_cfg["db_schema"] = schema
    (home / "logs").mkdir(parents=True, exist_ok=True)
    instance.write_cfg(home, {"fifo": fifo_cfg}, harvester_id="bench-fifo")
    os.environ["PANDA_HOME"] = str(home)
    from pandaharvester.harvestercore.fifos import SpecialFIFOBase
    from pandaharvester.harvestercore.work_spec import WorkSpec

    fifo = type("BenchFIFO", (SpecialFIFOBase,), {"titleName": f"bench{uuid.uuid4().hex[:8]}"})()
    try:
        spec = WorkSpec()
        spec.workerID = 1
        spec.workAttributes = {"random": [1, 0.5]}
        out = {}
        t0 = time.perf_counter()
        for i in range(n_objects):
            fifo.put(spec, float(i))
        out["put"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        for _ in range(n_objects):
            fifo.get()
        out["get"] = time.perf_counter() - t0
        for i in range(n_objects):
            fifo.put(spec, float(i))
        t0 = time.perf_counter()
        for _ in range(n_objects):
            obj = fifo.get(protective=True)
            fifo.release([obj.id])
        out["get_protective"] = time.perf_counter() - t0
        fifo.clear()
        return out
    finally:
        if schema is not None:
            conn.cursor().execute(f"DROP DATABASE IF EXISTS `{schema}`")


def micro_rows(n_objects: int) -> list[dict]:
    rows = []
    for backend in ("sqlite", "mysql", "redis"):
        with common.workdir("fifo-micro") as tmp:
            env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(common.REPO), str(BENCH_DIR)]))
            proc = subprocess.run([sys.executable, __file__, "--micro-child", backend, "--objects", str(n_objects),
                                   "--home", tmp], env=env, capture_output=True, text=True, timeout=1800)
            if proc.returncode != 0:
                raise RuntimeError(f"micro bench of {backend} failed:\n{proc.stderr[-3000:]}")
            r = json.loads(proc.stdout.strip().splitlines()[-1])
        for what in ("put", "get", "get_protective"):
            label = "get protective+release" if what == "get_protective" else what
            rows.append(common.row(f"FIFO {backend}", n_objects, f"{label} per object", r[what] / n_objects * 1000,
                                   "ms"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=None, help="comma list of live-worker counts")
    parser.add_argument("--micro-objects", type=int, default=2000)
    parser.add_argument("--no-micro", action="store_true")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--micro-child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--objects", type=int, default=2000, help=argparse.SUPPRESS)
    parser.add_argument("--home", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.child, Path(args.home))))
        return
    if args.micro_child is not None:
        print(json.dumps(micro_child(args.micro_child, args.objects, Path(args.home))))
        return
    sizes = tuple(int(s) for s in args.sizes.split(",")) if args.sizes else SIZES
    rows = cycle_rows(sizes)
    if not args.no_micro:
        rows += micro_rows(args.micro_objects)
    for r in rows:
        print(f"{r['benchmark']:<18} {r['size']:>7} {r['metric']:<30} {r['value']:>10.3f} {r['unit']}")


if __name__ == "__main__":
    main()
