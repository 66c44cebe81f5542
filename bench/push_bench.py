"""End to end, push mode: the emulator holds N jobs; the daemon runs until every job is final.

The daemon (SQLite, dummy plugins in instant mode, one push queue with one job per worker) is
started after the jobs are in the emulator; the clock runs from its start to the moment the
emulator has every job in a final state, or the time budget (75 s) is over: the rates are then
measured over the budget and "jobs final in the time budget" says how far it got. Reports
jobs/s, workers/s, CPU seconds of the daemon per 1k jobs (and of the emulator, for reference)
and the daemon's peak RSS.

    .venv/bin/python bench/push_bench.py [--quick] [--sizes 1000,10000]
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402

QUEUE = "BENCH_PUSH"
SIZES = (1000, 10000, 50000)
QUICK_SIZES = (500,)


def run_one(n_jobs: int, log_level: str | None = None, budget: float = common.E2E_BUDGET,
            profile: str | None = None) -> list[dict]:
    """One push run of ``n_jobs`` (at most ``budget`` seconds); result rows."""
    name = "push e2e" + (f" (log {log_level})" if log_level else "")
    with common.workdir("push") as tmp:
        home = Path(tmp)
        run = common.make_run(home, {QUEUE: common.push_queue(home, 2000)}, common.bench_cfg(log_level))
        try:
            run.emulator.add_task(QUEUE, n_jobs)
            emulator_cpu0 = common.cpu_seconds(run.emulator.proc.pid)
            t0 = time.monotonic()
            daemon = run.start()
            sampler = common.ProcessSampler(daemon.pid)
            profiler = common.start_profiler(daemon.pid, profile) if profile else None
            n_done, _ = common.wait_until_count(lambda: common.n_final(common.emulator_job_counts(run, QUEUE)),
                                                n_jobs, budget, 0.25, alive=run.assert_alive)
            elapsed = time.monotonic() - t0
            sampler.stop()
            if profiler is not None:
                common.stop_profiler(profiler)
            emulator_cpu = common.cpu_seconds(run.emulator.proc.pid) - emulator_cpu0
            n_workers = run.db_rows("SELECT COUNT(*) AS n FROM work_table")[0]["n"]
            counts = common.emulator_job_counts(run, QUEUE)
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
    ]


def run(quick: bool, sizes: tuple[int, ...] | None = None) -> list[dict]:
    """The push benchmark at every size (default logging)."""
    return common.run_sizes(run_one, sizes or (QUICK_SIZES if quick else SIZES), quick)


def main() -> None:
    common.e2e_main(__doc__, run_one, SIZES, QUICK_SIZES, "job")


if __name__ == "__main__":
    main()
