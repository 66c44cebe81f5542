"""Pull mode: workers/s submitted and monitored to final over 100 queues (pseudo-queues included).

100 queue-config entries: 50 plain pull queues and 25 unified pull queues with the pseudo-queues
``<queue>/SCORE`` and ``<queue>/MCORE``. PanDA (the emulator) sets a queue depth for every
queue with ``SET_N_WORKERS_JOBTYPE``; the daemon (SQLite, dummy plugins in instant mode) keeps
the queues filled. The clock runs from the daemon's start until PanDA has been told that N
workers are final (the propagator's worker reports), so each counted worker was submitted,
monitored to final and reported; or until the time budget (75 s) is over: the rate is then
measured over the budget and "workers final in the time budget" says how far it got.

    .venv/bin/python bench/pull_bench.py [--quick] [--sizes 10000,100000]
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402

SIZES = (10000, 100000)
QUICK_SIZES = (1000,)
N_PLAIN, N_UNIFIED = 50, 25
DEPTH = 200  # workers PanDA wants queued per queue (per resource type for the unified ones)


def queues(home: Path) -> dict[str, dict]:
    """The 100 queue-config entries."""
    config = {f"BENCH_PULL_{i:02d}": common.pull_queue(home, DEPTH) for i in range(N_PLAIN)}
    for i in range(N_UNIFIED):
        for resource_type in ("SCORE", "MCORE"):
            config[f"BENCH_UPULL_{i:02d}/{resource_type}"] = common.pull_queue(home, DEPTH, resource_type)
    return config


def set_depths(run) -> None:
    """PanDA asks for DEPTH queued workers in every queue."""
    harvester_id = run.harvester_id
    for i in range(N_PLAIN):
        run.emulator.set_queue_depth(f"BENCH_PULL_{i:02d}", DEPTH, harvester_id=harvester_id)
    for i in range(N_UNIFIED):
        for resource_type in ("SCORE", "MCORE"):
            run.emulator.set_queue_depth(f"BENCH_UPULL_{i:02d}", DEPTH, resource_type=resource_type,
                                         harvester_id=harvester_id)


def n_final_reported(run) -> int:
    """Workers PanDA knows as final for this instance."""
    by_status = run.emulator.state()["workers"].get(run.harvester_id, {})
    return common.n_final(by_status, common.FINAL_WORKER_STATES)


def run_one(n_workers: int, log_level: str | None = None, budget: float = common.E2E_BUDGET,
            profile: str | None = None) -> list[dict]:
    """One pull run until ``n_workers`` are final in PanDA (at most ``budget`` seconds); result rows."""
    name = "pull e2e" + (f" (log {log_level})" if log_level else "")
    with common.workdir("pull") as tmp:
        home = Path(tmp)
        cfg = common.bench_cfg(log_level)
        cfg["submitter"]["nQueues"] = 100
        run = common.make_run(home, queues(home), cfg)
        try:
            set_depths(run)
            t0 = time.monotonic()
            daemon = run.start()
            sampler = common.ProcessSampler(daemon.pid)
            profiler = common.start_profiler(daemon.pid, profile) if profile else None
            n_done, _ = common.wait_until_count(lambda: n_final_reported(run), n_workers, budget, 0.5,
                                                alive=run.assert_alive)
            elapsed = time.monotonic() - t0
            sampler.stop()
            if profiler is not None:
                common.stop_profiler(profiler)
            n_queues = len({r["computingSite"] for r in run.workers()})
        finally:
            run.close()
    if n_done == 0:
        raise RuntimeError(f"pull bench: no worker final in PanDA after {elapsed:.0f} s")
    return [
        common.row(name, n_workers, "workers/s", n_done / elapsed, "workers/s"),
        common.row(name, n_workers, "wall time", elapsed, "s"),
        common.row(name, n_workers, "workers final in the time budget", 100 * min(n_done / n_workers, 1.0), "%"),
        common.row(name, n_workers, "queues with workers", n_queues, "queues"),
        common.row(name, n_workers, "daemon CPU per 1k workers", sampler.cpu / n_done * 1000, "CPU s"),
        common.row(name, n_workers, "daemon peak RSS", sampler.peak_rss / 2**20, "MB"),
    ]


def run(quick: bool, sizes: tuple[int, ...] | None = None) -> list[dict]:
    """The pull benchmark at every size (default logging)."""
    return common.run_sizes(run_one, sizes or (QUICK_SIZES if quick else SIZES), quick)


def main() -> None:
    common.e2e_main(__doc__, run_one, SIZES, QUICK_SIZES, "worker")


if __name__ == "__main__":
    main()
