"""Slurm plugins on the real local Slurm: submission rate, and one monitor cycle single vs bulk.

    .venv/bin/python bench/slurm_bench.py            # 1,000 live jobs
    .venv/bin/python bench/slurm_bench.py --quick    # 100 live jobs

Submits N workers in one ``SlurmSubmitter.submit_workers`` call (each job runs ``sleep 600``,
so all N stay live: 64 running, the rest pending on the 64-CPU test node), then times one
``check_workers`` over all N with ``SlurmMonitor`` (one scontrol per worker), ``SlurmSqueueMonitor``
(one squeue per worker) and ``SlurmBulkMonitor`` (one sacct / squeue per 100 workers), then
cancels the jobs with ``SlurmSweeper.kill_workers``. Needs root and scripts/setup_slurm.sh
(started here when Slurm does not answer). ``run(quick)`` returns the figures as dicts.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TEMPLATE = """#!/bin/bash
#SBATCH --job-name=hv-bench-{workerID}
#SBATCH --cpus-per-task={nCorePerNode}
#SBATCH --time=15
#SBATCH -o /dev/null
exec sleep 600
"""


def _activate_home(home: Path) -> dict[str, str | None]:
    """A throw-away PANDA_HOME (the submitter reads harvester_id); returns the env to restore."""
    from pandaharvester.harvesterconfig import harvester_config
    from pandaharvester.harvestertest import instance

    saved = {k: os.environ.get(k) for k in ("PANDA_HOME", "HARVESTER_CONFIG_FILE", "HARVESTER_INSTANCE_CONFIG_URL")}
    instance.write_cfg(home, harvester_id="slurm-bench")
    os.environ["PANDA_HOME"] = str(home)
    os.environ.pop("HARVESTER_CONFIG_FILE", None)
    os.environ.pop("HARVESTER_INSTANCE_CONFIG_URL", None)
    harvester_config.reload()
    return saved


def _restore(saved: dict[str, str | None]) -> None:
    from pandaharvester.harvesterconfig import harvester_config

    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    harvester_config.reload()


def _workers(home: Path, n: int) -> list:
    from pandaharvester.harvestercore.work_spec import WorkSpec

    workers = []
    for i in range(1, n + 1):
        w = WorkSpec()
        w.workerID = i
        w.computingSite = "SLURM_BENCH"
        w.nCore = 1
        w.status = WorkSpec.ST_submitted
        w.accessPoint = str(home / "workers" / "${workerID}")
        workers.append(w)
    return workers


def _timed(func: Any, *args: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = func(*args)
    return time.perf_counter() - start, result


def run(quick: bool) -> list[dict]:
    """Figures as ``{"benchmark", "size", "metric", "value", "unit"}`` dicts."""
    from pandaharvester.harvestermonitor.slurm_bulk_monitor import SlurmBulkMonitor
    from pandaharvester.harvestermonitor.slurm_monitor import SlurmMonitor
    from pandaharvester.harvestermonitor.slurm_squeue_monitor import SlurmSqueueMonitor
    from pandaharvester.harvestersubmitter.slurm_submitter import SlurmSubmitter
    from pandaharvester.harvestersweeper.slurm_sweeper import SlurmSweeper
    from pandaharvester.harvestertest.demo import ensure_slurm

    ensure_slurm()
    n = 100 if quick else 1000
    results: list[dict] = []

    def add(benchmark: str, metric: str, value: float, unit: str) -> None:
        results.append({"benchmark": benchmark, "size": n, "metric": metric, "value": round(value, 4), "unit": unit})

    with tempfile.TemporaryDirectory(prefix="harvester_slurm_bench_") as directory:
        home = Path(directory)
        saved = _activate_home(home)
        workers = _workers(home, n)
        try:
            template = home / "bench.sh"
            template.write_text(TEMPLATE)
            submitter = SlurmSubmitter(queueName="SLURM_BENCH", templateFile=str(template))
            seconds, replies = _timed(submitter.submit_workers, workers)
            failed = [diag for ok, diag in replies if ok is not True]
            if failed:
                raise RuntimeError(f"{len(failed)} of {n} submissions failed, e.g. {failed[0]}")
            add("slurm_submit", "workers submitted per second (one submit_workers call)", n / seconds, "workers/s")
            monitors = [("SlurmMonitor (scontrol per worker)", SlurmMonitor()),
                        ("SlurmSqueueMonitor (squeue per worker)", SlurmSqueueMonitor()),
                        ("SlurmBulkMonitor (sacct per 100)", SlurmBulkMonitor()),
                        ("SlurmBulkMonitor (squeue per 100)", SlurmBulkMonitor(use_squeue_monitor=True))]
            for name, monitor in monitors:
                seconds, (ok, statuses) = _timed(monitor.check_workers, workers)
                unknown = sum(1 for status, _ in statuses if status not in ("submitted", "running"))
                if unknown:
                    raise RuntimeError(f"{name}: {unknown} of {n} live jobs not reported submitted/running")
                add("slurm_monitor_cycle", f"{name}: one check_workers over all live jobs", seconds, "s")
        finally:
            seconds, _ = _timed(SlurmSweeper().kill_workers, [w for w in workers if w.batchID])
            add("slurm_kill", "kill_workers (one scancel call) for all jobs", seconds, "s")
            _restore(saved)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 live jobs instead of 1,000")
    args = parser.parse_args()
    rows = run(args.quick)
    width = max(len(r["metric"]) for r in rows)
    print(f"{'benchmark':<20} {'size':>5}  {'metric':<{width}}  {'value':>10}  unit")
    for r in rows:
        print(f"{r['benchmark']:<20} {r['size']:>5}  {r['metric']:<{width}}  {r['value']:>10.3f}  {r['unit']}")


if __name__ == "__main__":
    main()
