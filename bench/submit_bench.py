"""Submitter cycles in-process, pull or push mode: CPU time per submitted worker (an A/B bench for the hot path).

A child process makes an instance home (cfg from the template, SQLite DB, access points on
/dev/shm as the end-to-end benches), with 10 queues (dummy submitter in instant mode,
shared-file messenger); then it runs ``--rounds`` rounds: every queue gets one real
``Submitter`` cycle (each submits ``--depth`` workers), and between rounds the workers are
marked finished in the DB (what the monitor would do) so that the queues need filling again.
Pull (default): NoJob queues whose depth PanDA set to ``--depth``. ``--push``: OneToOne queues;
before each round ``--depth`` jobs per queue, made from the emulator's job descriptions as the
JobFetcher makes them, are put in the DB as the preparator leaves them (``prepared``), so each
cycle binds one job per worker and the instant pilot runs it. No PanDA is involved. Prints the
seconds per 1k submitted workers (wall and process CPU); ``HARVESTER_BENCH_CPROFILE=file``
writes a cProfile of the rounds.

    .venv/bin/python bench/submit_bench.py [--push] [--depth 500] [--rounds 4]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402

N_QUEUES = 10
BENCH_DIR = Path(__file__).resolve().parent


def make_jobs(queue_names: list[str], depth: int, first_id: int) -> list:
    """``depth`` prepared JobSpecs per queue, as the JobFetcher and the preparator leave them."""
    from pandaharvester.harvesterbody.job_fetcher import JobFetcher
    from pandaharvester.harvestertest.panda_emulator.jobs import make_job_spec

    fetcher = JobFetcher.__new__(JobFetcher)  # only make_job_spec: no communicator, no DB look-up
    fetcher._input_file = lambda job_spec, lfn, attrs, qc, states: _ready_file(job_spec, lfn, attrs)
    specs = []
    panda_id = first_id
    for queue_name in queue_names:
        queue_config = MAPPER[0].get_queue(queue_name)
        for _ in range(depth):
            job = make_job_spec(panda_id, 1000 + panda_id // 1000, panda_id, queue_name, {}, 0)
            spec = fetcher.make_job_spec(job, queue_name, queue_config, None, {})
            spec.subStatus = "prepared"
            specs.append(spec)
            panda_id += 1
    return specs


def _ready_file(job_spec, lfn: str, attrs: dict):
    from pandaharvester.harvestercore.file_spec import FileSpec

    file_spec = FileSpec()
    file_spec.PandaID = job_spec.PandaID
    file_spec.taskID = job_spec.taskID
    file_spec.lfn = lfn
    file_spec.scope = attrs.get("scope")
    file_spec.fileType = "input"
    file_spec.status = "ready"
    return file_spec


MAPPER: list = []


def child(home: Path, depth: int, rounds: int, push: bool = False) -> dict:
    """Runs in its own process: set up the instance, time the submitter rounds."""
    from pandaharvester.harvestertest import instance

    make_queue = (lambda: common.push_queue(home, depth)) if push else (lambda: common.pull_queue(home, depth))
    queues = {f"BENCH_SUB_{i:02d}": make_queue() for i in range(N_QUEUES)}
    overrides = {"master": {"harvester_id": "bench-submit"}, "qconf": {"queueList": "ALL"},
                 "submitter": {"nThreads": 1, "maxNewWorkers": 10 * depth, "lookupTime": 0, "checkInterval": 1}}
    (home / "logs").mkdir(parents=True, exist_ok=True)
    instance.write_cfg(home, overrides, harvester_id="bench-submit")
    instance.write_queue_config(home, queues)
    os.environ["PANDA_HOME"] = str(home)

    from pandaharvester.harvesterbody import master_cli
    from pandaharvester.harvestercore.communicator_pool import CommunicatorPool
    from pandaharvester.harvestercore.db_proxy import DBProxy
    from pandaharvester.harvestercore.db_proxy_pool import DBProxyPool
    from pandaharvester.harvestercore.queue_config_mapper import QueueConfigMapper

    master_cli.configure_logging()
    mapper = QueueConfigMapper()
    MAPPER.append(mapper)
    DBProxyPool().make_tables(mapper, CommunicatorPool())
    proxy = DBProxy()

    from pandaharvester.harvesterbody.submitter import Submitter

    submitter = Submitter(mapper, single_mode=True)
    profiler = None
    if os.environ.get("HARVESTER_BENCH_CPROFILE"):
        import cProfile

        profiler = cProfile.Profile()
    wall = cpu = 0.0
    for index in range(rounds):
        proxy.execute("UPDATE work_table SET status='finished' WHERE status<>'finished'")
        proxy.execute("UPDATE pq_table SET submitTime=NULL, lockedBy=NULL, nNewWorkers=:n", {":n": depth})
        proxy.commit()
        if push:
            proxy.insert_jobs(make_jobs(list(queues), depth, 1 + index * N_QUEUES * depth))
        if profiler is not None:
            profiler.enable()
        t0, c0 = time.perf_counter(), time.process_time()
        for _q in range(N_QUEUES):
            submitter.run_one_cycle()
        wall += time.perf_counter() - t0
        cpu += time.process_time() - c0
        if profiler is not None:
            profiler.disable()
    (n_workers,) = proxy.execute("SELECT COUNT(*) FROM work_table").fetchone()
    proxy.commit()
    (n_bound,) = proxy.execute("SELECT COUNT(*) FROM job_table WHERE subStatus='submitted'").fetchone()
    proxy.commit()
    if profiler is not None:
        profiler.dump_stats(os.environ["HARVESTER_BENCH_CPROFILE"])
    return {"workers": n_workers, "jobs": n_bound, "wall": wall, "cpu": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--push", action="store_true", help="push queues (one prepared job per worker)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(child(Path(args.child), args.depth, args.rounds, args.push)))
        return
    with common.workdir("submit") as tmp:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(common.REPO), str(BENCH_DIR)]))
        proc = subprocess.run([sys.executable, __file__, "--child", tmp, "--depth", str(args.depth),
                               "--rounds", str(args.rounds)] + (["--push"] if args.push else []), env=env, capture_output=True, text=True, timeout=1800)
        if proc.returncode != 0:
            raise SystemExit(f"submit bench child failed:\n{proc.stderr[-3000:]}")
        r = json.loads(proc.stdout.strip().splitlines()[-1])
    expected = N_QUEUES * args.depth * args.rounds
    if r["workers"] != expected or (args.push and r["jobs"] != expected):
        print(f"warning: {r['workers']} workers submitted ({r['jobs']} jobs bound), expected {expected}",
              file=sys.stderr)
    per_k = 1000 / max(r["workers"], 1)
    print(f"submitter cycles {'push' if args.push else 'pull'}  {r['workers']:>7} workers  wall {r['wall'] * per_k:6.3f} s/1k  "
          f"CPU {r['cpu'] * per_k:6.3f} s/1k  ({r['workers'] / r['wall']:.0f} workers/s)")


if __name__ == "__main__":
    main()
