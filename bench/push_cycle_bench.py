"""Push-mode Monitor and Propagator cycles in-process, for stable A/B comparisons.

A child process makes an instance home with a push queue (one job per worker), inserts N running
jobs (PanDA job descriptions as the emulator makes them) each bound to a running worker, then
times, ``--repeat`` times each on N new jobs and workers (best and median printed):

- monitor: one ``Monitor`` cycle over all N workers (the bench plugin says "finished"; the
  shared-file messenger looks at each worker's access point and post-processes it): lock,
  check, job look-ups, job (final, with its log file) and worker write-back;
- propagator: one ``Propagator`` cycle over the N jobs made final (``staged``, as the
  stager leaves them: their last update) against a
  communicator whose HTTP call only JSON-encodes the request and answers StatusCode 0 per job:
  lock, build the update of each job, apply the replies, write back.

CPU seconds of the process (``time.process_time``) are reported beside the wall time.

    .venv/bin/python bench/push_cycle_bench.py [--sizes 3000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402

QUEUE = "BENCH_PUSH_CYCLE"
BENCH_DIR = Path(__file__).resolve().parent


def _setup(proxy, n: int, home: Path, offset: int = 0) -> None:
    from pandaharvester.harvestercore.job_spec import JobSpec
    from pandaharvester.harvestercore.work_spec import WorkSpec
    from pandaharvester.harvestertest.panda_emulator.jobs import make_job_spec

    two_hours = datetime.datetime.utcnow().replace(tzinfo=None) - datetime.timedelta(hours=2)
    for first in range(offset + 1, offset + n + 1, 1000):
        ids = range(first, min(first + 1000, offset + n + 1))
        jobs, workers = [], []
        for i in ids:
            job = JobSpec()
            job.convert_job_json(make_job_spec(1000000 + i, 1, 1, QUEUE, {}, i))
            job.computingSite = QUEUE
            job.status, job.subStatus = "running", "running"
            job.propagatorTime = two_hours
            jobs.append(job)
            w = WorkSpec()
            w.workerID = i
            w.computingSite = QUEUE
            w.mapType = WorkSpec.MT_OneToOne
            w.hasJob = 1
            w.batchID = str(i)
            w.accessPoint = str(home / "workers" / str(i))
            os.makedirs(w.accessPoint, exist_ok=True)
            w.submitTime = two_hours
            w.isNew = True
            workers.append(w)
        proxy.insert_jobs(jobs)
        proxy.insert_workers(workers, "bench")
        for i in ids:
            proxy.execute("INSERT INTO jw_table (PandaID, workerID) VALUES (:p, :w)", {":p": 1000000 + i, ":w": i})
    proxy.execute("UPDATE work_table SET status='running', modificationTime=:t WHERE workerID>:a AND workerID<=:b",
                  {":t": two_hours, ":a": offset, ":b": offset + n})
    proxy.commit()


def _communicator():
    from pandaharvester.harvestercommunicator.panda_communicator import PandaCommunicator

    class LocalCommunicator(PandaCommunicator):
        """PanDA answers every job update with StatusCode 0 (the request is JSON-encoded as sent)."""

        def request_ssl(self, method, path, data, *args, **kwargs):
            body = json.dumps(data)
            if path == "pilot/update_jobs_bulk":
                n = len(json.loads(body)["job_list"])
                return True, {"success": True, "message": "", "data": [
                    {"success": True, "message": "", "data": {"StatusCode": 0, "command": None}} for _ in range(n)]}
            return True, {"success": True, "message": "", "data": None}

    return LocalCommunicator()


def child(n: int, home: Path, repeat: int) -> dict:
    """Runs in its own process: set up ``n`` jobs with workers, time the cycles."""
    from pandaharvester.harvestertest import instance

    overrides = {"master": {"harvester_id": "bench-push-cycle"},
                 "monitor": {"maxWorkers": n, "checkInterval": 60, "lockInterval": 600, "nThreads": 1},
                 "propagator": {"maxJobs": n, "nJobsInBulk": 500, "maxWorkers": 1000, "nWorkersInBulk": 500,
                                "lockInterval": 600, "updateInterval": 1800, "nThreads": 1},
                 "qconf": {"queueList": "ALL"}}
    (home / "logs").mkdir(parents=True, exist_ok=True)
    instance.write_cfg(home, overrides, harvester_id="bench-push-cycle")
    queue = common.push_queue(home, 10)
    queue["monitor"] = {"name": "FinishedMonitor", "module": "bench_plugins"}
    instance.write_queue_config(home, {QUEUE: queue})
    os.environ["PANDA_HOME"] = str(home)
    sys.path.insert(0, str(BENCH_DIR))

    from pandaharvester.harvesterbody import master_cli
    from pandaharvester.harvestercore.communicator_pool import CommunicatorPool
    from pandaharvester.harvestercore.db_proxy_pool import DBProxyPool
    from pandaharvester.harvestercore.db_proxy import DBProxy
    from pandaharvester.harvestercore.queue_config_mapper import QueueConfigMapper

    master_cli.configure_logging()
    master_cli.tune_gc()
    mapper = QueueConfigMapper()
    DBProxyPool().make_tables(mapper, CommunicatorPool())
    proxy = DBProxy()
    _setup(proxy, n, home)

    from pandaharvester.harvesterbody.monitor import Monitor
    from pandaharvester.harvesterbody.propagator import Propagator

    monitor = Monitor(mapper, single_mode=True)
    propagator = Propagator(_communicator(), mapper, single_mode=True)
    propagator.report_worker_stats = lambda: None  # not what is measured
    result: dict = {"monitor": [], "monitor_cpu": [], "propagator": [], "propagator_cpu": []}
    for rep in range(repeat):
        if rep:
            _setup(proxy, n, home, rep * n)
        for name, agent in (("monitor", monitor), ("propagator", propagator)):
            if name == "propagator":  # as the stager leaves them: the final report is due
                proxy.execute("UPDATE job_table SET status='finished', subStatus='staged', propagatorLock=NULL, "
                              "propagatorTime=:t WHERE subStatus<>'done'",
                              {":t": datetime.datetime.utcnow().replace(tzinfo=None) - datetime.timedelta(hours=2)})
                proxy.commit()
            t0, c0 = time.perf_counter(), time.process_time()
            agent.run_one_cycle()
            result[name].append(time.perf_counter() - t0)
            result[name + "_cpu"].append(time.process_time() - c0)
    result["checked"] = proxy.execute("SELECT COUNT(*) FROM work_table WHERE status='finished'").fetchone()[0]
    result["propagated"] = proxy.execute("SELECT COUNT(*) FROM job_table WHERE subStatus='done'").fetchone()[0]
    proxy.commit()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="3000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", type=int, default=None)
    parser.add_argument("--home", default=None)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.child, Path(args.home), args.repeat)))
        return
    for n in (int(s) for s in args.sizes.split(",")):
        with common.workdir("push_cycle") as tmp:
            env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(common.REPO), str(BENCH_DIR)]))
            proc = subprocess.run([sys.executable, __file__, "--child", str(n), "--home", tmp,
                                   "--repeat", str(args.repeat)], env=env, capture_output=True, text=True,
                                  timeout=1800)
            if proc.returncode != 0:
                raise SystemExit(f"child failed:\n{proc.stderr[-3000:]}")
            r = json.loads(proc.stdout.strip().splitlines()[-1])
        for name in ("monitor", "propagator"):
            wall, cpu = r[name], r[name + "_cpu"]
            print(f"{name:10s} n={n}: wall best {min(wall):.3f} median {statistics.median(wall):.3f} s; "
                  f"CPU best {min(cpu):.3f} median {statistics.median(cpu):.3f} s "
                  f"({min(cpu) / n * 1000:.3f} CPU s per 1k)")
        print(f"{r['checked']} of {n * args.repeat} workers finished, {r['propagated']} jobs done")


if __name__ == "__main__":
    main()
