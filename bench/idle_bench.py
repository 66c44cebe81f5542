"""Idle daemon: 100 queues configured, nothing to do; RSS, CPU, and start-up to first cycle.

The daemon runs with the cfg template's own agent settings (``nThreads``, ``sleepTime``) and 100
queues (50 push, 50 pull) against the emulator, which has no job and asks for no worker.
Start-up to first cycle is the time from the process start to the moment every threaded agent
(JobFetcher, Propagator, Monitor, Preparator, Submitter, Stager, EventFeeder, Sweeper) has logged
the end of its first cycle (and, second figure, every one of its 3 threads has: the DEBUG line
``done : took``, so these agents log at DEBUG here); RSS and CPU are measured over a window once
it is settled.

    .venv/bin/python bench/idle_bench.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402

N_QUEUES = 100
AGENT_LOGS = ("job_fetcher", "propagator", "monitor", "preparator", "submitter", "stager", "event_feeder", "sweeper")
FIRST_CYCLE = re.compile(r"^(\S+ \S+) .* run <id=(\S+)> done")
N_THREADS = 3  # the template's nThreads of each agent above
# the template's values (the demo settings the harness starts from are sped up for tests)
TEMPLATE_AGENTS = {
    "jobfetcher": {"nThreads": 3, "sleepTime": 60, "lookupTime": 60, "maxJobs": 500},
    "propagator": {"nThreads": 3, "sleepTime": 60},
    "monitor": {"nThreads": 3, "sleepTime": 600, "checkInterval": 300},
    "preparator": {"nThreads": 3, "sleepTime": 60, "checkInterval": 180, "triggerInterval": 180},
    "submitter": {"nThreads": 3, "sleepTime": 60, "lookupTime": 60, "checkInterval": 60},
    "stager": {"nThreads": 3, "sleepTime": 60, "checkInterval": 180, "triggerInterval": 180},
    "eventfeeder": {"nThreads": 3, "sleepTime": 60},
    "sweeper": {"nThreads": 3, "sleepTime": 60, "checkInterval": 180},
    "cacher": {"sleepTime": 60, "refreshInterval": 10},
    "commandmanager": {"sleepTime": 5},
    "credmanager": {"sleepTime": 1800},
    "qconf": {"updateInterval": 600, "checkInterval": 5},
    "log_level": {agent: "DEBUG" for agent in AGENT_LOGS},  # the end of each cycle is a DEBUG line
}


def queues(home: Path) -> dict[str, dict]:
    config = {f"IDLE_PUSH_{i:02d}": common.push_queue(home, 20) for i in range(N_QUEUES // 2)}
    config.update({f"IDLE_PULL_{i:02d}": common.pull_queue(home, 20) for i in range(N_QUEUES // 2)})
    return config


def first_cycle_times(logs: Path) -> dict[str, dict[str, float]]:
    """{agent: {thread id: epoch seconds of its first completed cycle}} from the agents' logs."""
    import datetime

    found: dict[str, dict[str, float]] = {}
    for agent in AGENT_LOGS:
        path = logs / f"panda-{agent}.log"
        if not path.exists():
            continue
        with open(path, errors="replace") as stream:
            for line in stream:
                match = FIRST_CYCLE.match(line)
                if match and match.group(2) not in found.get(agent, {}):
                    # the log's asctime is local time: a naive datetime's timestamp() reads it so
                    stamp = datetime.datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
                    found.setdefault(agent, {})[match.group(2)] = stamp
    return found


def _all_started(logs: Path) -> dict[str, dict[str, float]] | None:
    found = first_cycle_times(logs)
    complete = len(found) == len(AGENT_LOGS) and all(len(t) >= N_THREADS for t in found.values())
    return found if complete else None


def run(quick: bool, window: float | None = None) -> list[dict]:
    """Start an idle daemon, time its first cycles, then sample it over ``window`` seconds."""
    window = window if window is not None else (5.0 if quick else 30.0)
    with common.workdir("idle") as tmp:
        home = Path(tmp)
        run_ = common.make_run(home, queues(home), TEMPLATE_AGENTS)
        try:
            started = time.time()
            daemon = run_.start()
            firsts = common.wait_for(lambda: _all_started(home / "logs"), 120,
                                     "the first cycle of every agent thread", interval=0.1, alive=run_.assert_alive)
            startup = max(min(t.values()) for t in firsts.values()) - started
            startup_all = max(max(t.values()) for t in firsts.values()) - started
            time.sleep(2.0)  # let the start-up work (queue config, cacher, heartbeat) settle
            sampler = common.ProcessSampler(daemon.pid)
            cpu0 = common.cpu_seconds(daemon.pid)
            t0 = time.monotonic()
            time.sleep(window)
            cpu = common.cpu_seconds(daemon.pid) - cpu0
            elapsed = time.monotonic() - t0
            sampler.stop()
            n_threads = len(common.psutil.Process(daemon.pid).threads())
        finally:
            run_.close()
    return [
        common.row("idle daemon", N_QUEUES, "start-up to first cycle", startup, "s"),
        common.row("idle daemon", N_QUEUES, "start-up to first cycle of every thread", startup_all, "s"),
        common.row("idle daemon", N_QUEUES, "RSS", sampler.last_rss / 2**20, "MB"),
        common.row("idle daemon", N_QUEUES, "peak RSS", sampler.peak_rss / 2**20, "MB"),
        common.row("idle daemon", N_QUEUES, "CPU", 100 * cpu / elapsed, "% of a core"),
        common.row("idle daemon", N_QUEUES, "threads", n_threads, "threads"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--window", type=float, default=None, help="seconds of idle sampling")
    args = parser.parse_args()
    for r in run(args.quick, args.window):
        print(f"{r['benchmark']:<12} {r['size']:>5} {r['metric']:<26} {r['value']:>10.2f} {r['unit']}")


if __name__ == "__main__":
    main()
