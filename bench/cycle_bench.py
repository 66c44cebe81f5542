"""Monitor and sweeper cycle time with N live workers in the DB (the scaling curve).

For each N a child process makes an instance home (cfg from the template, SQLite DB), inserts
N live (running) workers of a pull queue and runs the real agents' cycles in-process:

- monitor, full pass: one ``Monitor`` cycle with ``[monitor] maxWorkers = N`` and every worker
  due, so the cycle locks, checks and writes back all N (the plugin says "still running"
  without looking at anything, so this is the agent and DB cost);
- monitor, one batch: one cycle with the default ``maxWorkers = 500`` and every worker due
  (the per-cycle cost should not grow with N);
- sweeper: N/10 more workers finished long ago; one ``Sweeper`` cycle with
  ``maxWorkers = N/10`` deletes them (with N live workers beside them).

Logging is configured as in the daemon (DEBUG, one file per agent).

    .venv/bin/python bench/cycle_bench.py [--quick] [--sizes 1000,10000,100000]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402

SIZES = (1000, 10000, 100000)
QUICK_SIZES = (1000, 5000)
QUEUE = "BENCH_CYCLE"
BATCH = 500
BENCH_DIR = Path(__file__).resolve().parent


def queue_config(home: Path) -> dict:
    queue = common.pull_queue(home, 10)
    queue["monitor"] = {"name": "StillRunningMonitor", "module": "bench_plugins"}
    queue["sweeper"] = {"name": "NoopSweeper", "module": "bench_plugins"}
    return {QUEUE: queue}


def _insert_workers(proxy, start: int, n: int, status: str, when: datetime.datetime, home: Path) -> None:
    from pandaharvester.harvestercore.work_spec import WorkSpec

    for first in range(start, start + n, 2000):
        batch = []
        for worker_id in range(first, min(first + 2000, start + n)):
            w = WorkSpec()
            w.workerID = worker_id
            w.computingSite = QUEUE
            w.mapType = WorkSpec.MT_NoJob
            w.hasJob = 0
            w.batchID = str(worker_id)
            w.accessPoint = str(home / "workers" / str(worker_id))
            w.submitTime = when
            w.isNew = True
            batch.append(w)
        proxy.insert_workers(batch, "bench")
    proxy.execute("UPDATE work_table SET status=:st, modificationTime=:t, endTime=:e, lastUpdate=NULL "
                  "WHERE workerID>=:a AND workerID<:b",
                  {":st": status, ":t": when, ":e": when if status == "finished" else None, ":a": start,
                   ":b": start + n})
    proxy.commit()


def _make_due(proxy) -> None:
    old = datetime.datetime.utcnow().replace(tzinfo=None) - datetime.timedelta(hours=2)
    proxy.execute("UPDATE work_table SET modificationTime=:t, lockedBy=NULL WHERE status='running'", {":t": old})
    proxy.commit()


def _profiler():
    """A running cProfile profiler when ``HARVESTER_BENCH_CPROFILE`` names an output prefix."""
    if not os.environ.get("HARVESTER_BENCH_CPROFILE"):
        return None
    import cProfile

    profiler = cProfile.Profile()
    profiler.enable()
    return profiler


def _dump(profiler, what: str) -> None:
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(f"{os.environ['HARVESTER_BENCH_CPROFILE']}.{what}.prof")


def child(n: int, home: Path) -> dict:
    """Runs in its own process: set up the DB with ``n`` live workers, time the cycles."""
    from pandaharvester.harvestertest import instance

    overrides = {"master": {"harvester_id": "bench-cycle"},
                 "monitor": {"maxWorkers": BATCH, "checkInterval": 60, "lockInterval": 600, "nThreads": 1},
                 "sweeper": {"maxWorkers": BATCH, "keepFinished": 24, "nThreads": 1},
                 "qconf": {"queueList": "ALL"}}
    (home / "logs").mkdir(parents=True, exist_ok=True)
    instance.write_cfg(home, overrides, harvester_id="bench-cycle")
    instance.write_queue_config(home, queue_config(home))
    os.environ["PANDA_HOME"] = str(home)
    sys.path.insert(0, str(BENCH_DIR))

    from pandaharvester.harvesterbody import master_cli
    from pandaharvester.harvestercore.communicator_pool import CommunicatorPool
    from pandaharvester.harvestercore.db_proxy_pool import DBProxyPool
    from pandaharvester.harvestercore.db_proxy import DBProxy
    from pandaharvester.harvestercore.queue_config_mapper import QueueConfigMapper
    from pandaharvester.harvesterconfig import harvester_config

    master_cli.configure_logging()
    master_cli.tune_gc()  # as the daemon does
    mapper = QueueConfigMapper()
    pool = DBProxyPool()
    pool.make_tables(mapper, CommunicatorPool())
    proxy = DBProxy()
    now = datetime.datetime.utcnow().replace(tzinfo=None)
    t0 = time.perf_counter()
    _insert_workers(proxy, 1, n, "running", now - datetime.timedelta(hours=2), home)
    setup_seconds = time.perf_counter() - t0

    from pandaharvester.harvesterbody.monitor import Monitor
    from pandaharvester.harvesterbody.sweeper import Sweeper

    monitor = Monitor(mapper, single_mode=True)
    result = {"setup": setup_seconds}
    # full pass: every live worker in one cycle
    harvester_config.monitor.maxWorkers = n
    _make_due(proxy)
    profiler = _profiler()
    t0, c0 = time.perf_counter(), time.process_time()
    monitor.run_one_cycle()
    result["monitor_full"] = time.perf_counter() - t0
    result["monitor_full_cpu"] = time.process_time() - c0
    _dump(profiler, "monitor")
    checked = proxy.execute("SELECT COUNT(*) FROM work_table WHERE status='running' AND modificationTime>:t",
                            {":t": now}).fetchone()[0]
    proxy.commit()
    result["monitor_full_checked"] = checked
    # one default-size batch with every worker due
    harvester_config.monitor.maxWorkers = BATCH
    _make_due(proxy)
    t0 = time.perf_counter()
    monitor.run_one_cycle()
    result["monitor_batch"] = time.perf_counter() - t0
    # sweeper: n/10 finished workers past keepFinished next to the n live ones
    n_old = max(n // 10, 1)
    _insert_workers(proxy, n + 1, n_old, "finished", now - datetime.timedelta(hours=48), home)
    harvester_config.sweeper.maxWorkers = n_old
    sweeper = Sweeper(mapper, single_mode=True)
    profiler = _profiler()
    t0 = time.perf_counter()
    sweeper.run_one_cycle()
    result["sweeper"] = time.perf_counter() - t0
    _dump(profiler, "sweeper")
    left = proxy.execute("SELECT COUNT(*) FROM work_table WHERE status='finished'").fetchone()[0]
    proxy.commit()
    result["sweeper_deleted"] = n_old - left
    result["n_old"] = n_old
    return result


def run_size(n: int) -> dict:
    """Run :func:`child` for ``n`` in a fresh process; its result dict."""
    with common.workdir("cycle") as tmp:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(common.REPO), str(BENCH_DIR)]))
        proc = subprocess.run([sys.executable, __file__, "--child", str(n), "--home", tmp], env=env,
                              capture_output=True, text=True, timeout=1800)
        if proc.returncode != 0:
            raise RuntimeError(f"cycle bench child for n={n} failed:\n{proc.stderr[-3000:]}")
        return json.loads(proc.stdout.strip().splitlines()[-1])


def run(quick: bool, sizes: tuple[int, ...] | None = None) -> list[dict]:
    """Monitor and sweeper cycles at every size."""
    rows: list[dict] = []
    for n in sizes or (QUICK_SIZES if quick else SIZES):
        r = run_size(n)
        if r["monitor_full_checked"] != n:
            raise RuntimeError(f"monitor full pass checked {r['monitor_full_checked']} of {n} workers")
        if r["sweeper_deleted"] != r["n_old"]:
            raise RuntimeError(f"sweeper deleted {r['sweeper_deleted']} of {r['n_old']} workers")
        rows += [
            common.row("monitor cycle", n, "all N workers checked", r["monitor_full"], "s"),
            common.row("monitor cycle", n, "per 1k workers", r["monitor_full"] / n * 1000, "s"),
            common.row("monitor cycle", n, "all N checked, CPU", r["monitor_full_cpu"], "s"),
            common.row("monitor cycle", n, f"one batch of {BATCH}", r["monitor_batch"], "s"),
            common.row("sweeper cycle", n, f"{r['n_old']} old workers deleted", r["sweeper"], "s"),
            common.row("sweeper cycle", n, "per 1k deleted", r["sweeper"] / r["n_old"] * 1000, "s"),
        ]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sizes", default=None, help="comma list of live-worker counts")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--home", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.child, Path(args.home))))
        return
    sizes = tuple(int(s) for s in args.sizes.split(",")) if args.sizes else None
    for r in run(args.quick, sizes):
        print(f"{r['benchmark']:<16} {r['size']:>7} {r['metric']:<28} {r['value']:>10.3f} {r['unit']}")


if __name__ == "__main__":
    main()
