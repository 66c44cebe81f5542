"""Shared pieces of the benchmarks: result rows, process sampling, the bench instance.

Every benchmark module exposes ``run(quick: bool) -> list[dict]`` returning rows made by
:func:`row`. End-to-end benchmarks run the PanDA emulator and the Harvester daemon as real
processes through ``tests/e2e_helpers.DaemonRun`` (the same harness the end-to-end tests use),
with the dummy plugins in their instant mode (the worker is done inside ``submit_workers``,
no process is spawned) and the cfg tuned for throughput by :func:`bench_cfg`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import psutil

REPO = Path(__file__).resolve().parents[1]
for _path in (str(REPO), str(REPO / "tests")):
    if _path not in sys.path:
        sys.path.insert(0, _path)

FINAL_JOB_STATES = ("finished", "failed", "closed", "cancelled")
FINAL_WORKER_STATES = ("finished", "failed", "cancelled", "missed")


def row(benchmark: str, size: Any, metric: str, value: float, unit: str) -> dict:
    """One result: ``{"benchmark", "size", "metric", "value", "unit"}``."""
    return {"benchmark": benchmark, "size": size, "metric": metric, "value": value, "unit": unit}


@contextlib.contextmanager
def workdir(prefix: str) -> Iterator[str]:
    """A throw-away instance home for one benchmark, removed afterwards.

    ``HARVESTER_BENCH_TMP`` chooses its parent (default: the system temp dir); ``HARVESTER_BENCH_KEEP=1``
    keeps it, with its logs. The workers' access points (``<home>/workers``, written by the dummy
    pilot and the messenger: about 15 small files per push job) go to :func:`worker_dir_parent`
    through a symlink, so that the figures measure Harvester rather than this machine's disk.
    """
    home = tempfile.mkdtemp(prefix=f"harvester_bench_{prefix}_", dir=os.environ.get("HARVESTER_BENCH_TMP"))
    workers = None
    parent = worker_dir_parent()
    if parent is not None:
        workers = tempfile.mkdtemp(prefix=f"harvester_bench_{prefix}_workers_", dir=parent)
        os.symlink(workers, os.path.join(home, "workers"))
    try:
        yield home
    finally:
        if os.environ.get("HARVESTER_BENCH_KEEP"):
            print(f"keeping {home}" + (f" (access points in {workers})" if workers else ""), file=sys.stderr)
        else:
            shutil.rmtree(home, ignore_errors=True)
            if workers is not None:
                shutil.rmtree(workers, ignore_errors=True)


def worker_dir_parent() -> str | None:
    """Where access points go: ``HARVESTER_BENCH_WORKER_DIR`` ("" = inside the home), else /dev/shm
    when it is a writable tmpfs with 4 GB free, else inside the home (None)."""
    chosen = os.environ.get("HARVESTER_BENCH_WORKER_DIR")
    if chosen is not None:
        return chosen or None
    shm = "/dev/shm"
    try:
        stat = os.statvfs(shm)
    except OSError:
        return None
    return shm if os.access(shm, os.W_OK) and stat.f_bavail * stat.f_frsize > 4 * 2**30 else None


# ---------------------------------------------------------------------------- process figures
class ProcessSampler:
    """Samples a process's RSS and CPU time in a thread until :meth:`stop`.

    ``peak_rss`` prefers the kernel's high-water mark (``VmHWM``), read at every sample, so a
    short peak between two samples is not missed.
    """

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self.process = psutil.Process(pid)
        self.interval = interval
        self.peak_rss = 0
        self.last_rss = 0
        self.cpu = 0.0
        self.user = self.system = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="ProcessSampler", daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        try:
            with self.process.oneshot():
                rss = self.process.memory_info().rss
                times = self.process.cpu_times()
            self.last_rss = rss
            self.peak_rss = max(self.peak_rss, rss, vm_hwm(self.process.pid))
            self.cpu = times.user + times.system + times.children_user + times.children_system
            self.user, self.system = times.user, times.system
        except (psutil.NoSuchProcess, psutil.AccessDenied, ProcessLookupError):
            self._stop.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def stop(self) -> None:
        """Take a last sample and stop the thread."""
        if not self._stop.is_set():
            self._sample()
        self._stop.set()
        self._thread.join(5)


def vm_hwm(pid: int) -> int:
    """Peak resident set size of ``pid`` in bytes (``VmHWM`` of /proc), 0 if unknown."""
    try:
        with open(f"/proc/{pid}/status") as stream:
            for line in stream:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` so far (0 if gone)."""
    try:
        t = psutil.Process(pid).cpu_times()
        return t.user + t.system
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return 0.0


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.25,
             alive: Callable[[], None] | None = None) -> Any:
    """Poll ``predicate`` until truthy (returned); TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if alive is not None:
            alive()
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise TimeoutError(f"benchmark timed out after {timeout:.0f} s waiting for {what} (last {last!r})")


def wait_until_count(count: Callable[[], int], target: int, budget: float, interval: float,
                     alive: Callable[[], None] | None = None) -> tuple[int, float]:
    """Poll ``count()`` until it reaches ``target`` or ``budget`` seconds pass: (last count, seconds).

    The time budget keeps the whole bench within its 10 minutes when a size is too big for the
    current speed: the rate is then measured over the budget and the row says how far it got.
    """
    t0 = time.monotonic()
    n = 0
    while True:
        if alive is not None:
            alive()
        n = count()
        elapsed = time.monotonic() - t0
        if n >= target or elapsed >= budget:
            return n, elapsed
        time.sleep(interval)


# ---------------------------------------------------------------------------- bench instance
PLUGINS: dict[str, dict[str, Any]] = {
    "preparator": {"name": "DummyPreparator", "module": "pandaharvester.harvesterpreparator.dummy_preparator"},
    "stager": {"name": "DummyStager", "module": "pandaharvester.harvesterstager.dummy_stager"},
    "submitter": {"name": "DummySubmitter", "module": "pandaharvester.harvestersubmitter.dummy_submitter",
                  "instantMode": True, "uploadLogs": False},
    "monitor": {"name": "DummyMonitor", "module": "pandaharvester.harvestermonitor.dummy_monitor"},
    "sweeper": {"name": "DummySweeper", "module": "pandaharvester.harvestersweeper.dummy_sweeper"},
    "workerMaker": {"name": "SimpleWorkerMaker", "module": "pandaharvester.harvesterworkermaker.simple_worker_maker"},
}


def messenger(home: Path) -> dict[str, Any]:
    """The shared-file messenger with one access point per worker under ``home/workers``."""
    return {"name": "SharedFileMessenger", "module": "pandaharvester.harvestermessenger.shared_file_messenger",
            "accessPoint": str(home / "workers" / "${workerID}")}


def push_queue(home: Path, limit: int) -> dict[str, Any]:
    """A push queue (one job per worker) whose workers are done at once."""
    return {"queueStatus": "online", "prodSourceLabel": "managed", "mapType": "OneToOne",
            "nQueueLimitJob": limit, "nQueueLimitWorker": limit, "maxWorkers": 2 * limit,
            "messenger": messenger(home), **PLUGINS}


def pull_queue(home: Path, limit: int, resource_type: str | None = None) -> dict[str, Any]:
    """A pull queue (workers without jobs, PanDA sets the depth) whose workers are done at once."""
    queue = {"queueStatus": "online", "prodSourceLabel": "managed", "mapType": "NoJob", "runMode": "slave",
             "nQueueLimitWorker": limit, "maxWorkers": 2 * limit, "messenger": messenger(home), **PLUGINS}
    if resource_type:
        queue["resourceType"] = resource_type
    return queue


def bench_cfg(log_level: str | None = None) -> dict[str, dict[str, Any]]:
    """cfg overrides of the bench instance: big batches, short sleeps (on top of the demo's)."""
    cfg: dict[str, dict[str, Any]] = {
        "qconf": {"updateInterval": 600, "checkInterval": 5},
        "jobfetcher": {"nThreads": 1, "nQueues": 20, "maxJobs": 1000, "lookupTime": 1, "sleepTime": 1},
        "submitter": {"nThreads": 1, "nQueues": 20, "lookupTime": 1, "sleepTime": 1, "maxNewWorkers": 1000,
                      "checkInterval": 1},
        "monitor": {"nThreads": 1, "maxWorkers": 1000, "checkInterval": 1, "sleepTime": 1},
        "propagator": {"nThreads": 1, "maxJobs": 1000, "nJobsInBulk": 500, "maxWorkers": 1000,
                       "nWorkersInBulk": 500, "sleepTime": 1},
        "preparator": {"nThreads": 1, "maxJobsToCheck": 1000, "maxJobsToTrigger": 1000, "sleepTime": 1},
        "stager": {"nThreads": 1, "maxJobsToCheck": 1000, "maxJobsToTrigger": 1000, "maxJobsToZip": 1000,
                   "sleepTime": 1},
        "sweeper": {"nThreads": 1, "sleepTime": 30, "maxWorkers": 1000},
        "eventfeeder": {"nThreads": 1, "sleepTime": 5},
    }
    if log_level:
        cfg["log_level"] = {name: log_level for name in LOGGER_NAMES}
    return cfg


# loggers of the agents, DB and plugins on the hot path (for the quiet-logging variant)
LOGGER_NAMES = ("db_proxy", "job_fetcher", "submitter", "worker_adjuster", "worker_maker", "monitor", "propagator",
                "preparator", "stager", "sweeper", "event_feeder", "communicator", "panda_communicator",
                "dummy_submitter", "dummy_monitor", "dummy_sweeper", "dummy_preparator", "dummy_stager",
                "shared_file_messenger", "simple_worker_maker", "command_manager", "cacher", "master")


def make_run(home: Path, queues: dict[str, Any], cfg: dict[str, dict[str, Any]]) -> Any:
    """A ``DaemonRun`` (emulator started, daemon not yet) for the bench instance."""
    from e2e_helpers import DaemonRun

    run = DaemonRun(home, queues=queues, cfg=cfg)
    run.start_emulator()
    return run


def emulator_job_counts(run: Any, site: str | None = None) -> dict[str, int]:
    """Jobs by status in the emulator (all sites, or one)."""
    jobs = run.emulator.state()["jobs"]
    if site is not None:
        return dict(jobs.get(site, {}))
    total: dict[str, int] = {}
    for by_status in jobs.values():
        for status, n in by_status.items():
            total[status] = total.get(status, 0) + n
    return total


def n_final(counts: dict[str, int], states: tuple[str, ...] = FINAL_JOB_STATES) -> int:
    """How many of ``counts`` are in one of ``states``."""
    return sum(n for status, n in counts.items() if status in states)


# ---------------------------------------------------------------------------- profiling
def start_profiler(pid: int, output: str, rate: int = 50) -> Any:
    """Sample ``pid`` with py-spy (collapsed stacks) into ``output``; needs py-spy."""
    import shutil
    import subprocess

    exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    # only the thread holding the GIL (Python work); HARVESTER_BENCH_PROFILE_ALL=1: every thread,
    # waiting ones too (to see threads blocked on the DB write lock)
    which = ["--idle"] if os.environ.get("HARVESTER_BENCH_PROFILE_ALL") else ["--gil"]
    return subprocess.Popen([exe, "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw", *which,
                             "--output", output, "--nonblocking"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_profiler(proc: Any) -> None:
    """Stop py-spy (SIGINT makes it write its output)."""
    import signal

    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(30)
    except Exception:
        proc.kill()


# ---------------------------------------------------------------------------- end-to-end drivers
E2E_BUDGET = 75.0  # seconds per size at most (see wait_until_count)
E2E_QUICK_BUDGET = 45.0


def run_sizes(run_one: Callable[..., list[dict]], sizes: tuple[int, ...], quick: bool) -> list[dict]:
    """``run_one(n, budget=...)`` for every size, rows concatenated."""
    rows: list[dict] = []
    for n in sizes:
        rows += run_one(n, budget=E2E_QUICK_BUDGET if quick else E2E_BUDGET)
    return rows


def e2e_main(doc: str, run_one: Callable[..., list[dict]], sizes: tuple[int, ...], quick_sizes: tuple[int, ...],
             what: str) -> None:
    """Command line of an end-to-end benchmark: --quick, --sizes, --log-level, --profile."""
    import argparse

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sizes", default=None, help=f"comma list of {what} counts")
    parser.add_argument("--log-level", default=None, help="e.g. INFO for the hot-path loggers")
    parser.add_argument("--profile", default=None, help="py-spy raw profile of the daemon to this file")
    args = parser.parse_args()
    chosen = tuple(int(s) for s in args.sizes.split(",")) if args.sizes else (quick_sizes if args.quick else sizes)
    for n in chosen:
        budget = E2E_QUICK_BUDGET if args.quick else E2E_BUDGET
        for r in run_one(n, args.log_level, budget=budget, profile=args.profile):
            print(f"{r['benchmark']:<24} {r['size']:>7} {r['metric']:<32} {r['value']:>10.2f} {r['unit']}")
