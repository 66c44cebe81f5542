"""The README's run command: a whole Harvester flow on one machine, shown as it happens.

Starts the bundled PanDA emulator (HTTP, its own SQLite state) with a task of jobs for a push
queue and a queue depth (job type ``managed``, as the real server sends it) for a unified pull
queue served by one pseudo-queue per resource type, starts the Harvester daemon (SQLite, dummy
plugins whose workers are real local processes) as a separate process, prints the flow every few
seconds, and stops both once every job is final in PanDA and the pull workers are done.

    python -m pandaharvester.harvestertest.demo [--jobs N] [--pull-workers N] [--workdir DIR] [--slurm]

With ``--slurm`` the same flow runs on the local Slurm (``scripts/setup_slurm.sh`` starts it):
the queues are ``examples/panda_queueconfig_slurm.json`` with the batch script template
``examples/slurm_submit.sh``, only their paths set for this instance home.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from pandaharvester.harvestertest import instance
from pandaharvester.harvestertest.panda_emulator.launcher import start_emulator

HARVESTER_ID = "demo-harvester"
PUSH_QUEUE = "DEMO_PUSH"
PULL_QUEUE = "DEMO_PULL"
PULL_RESOURCE_TYPES = ("SCORE", "MCORE")  # pseudo-queues DEMO_PULL/SCORE and DEMO_PULL/MCORE
PULL_JOB_TYPE = "managed"  # the job type the real server's SET_N_WORKERS_JOBTYPE carries
FINAL_JOB_STATES = ("finished", "failed", "closed", "cancelled")
SLURM_PUSH_QUEUE = "SLURM_PUSH"
SLURM_PULL_QUEUE = "SLURM_PULL"


def set_queue_depth(emulator: Any, site: str, depths: dict[str, int], job_type: str = PULL_JOB_TYPE) -> None:
    """PanDA sets the queue depth of every resource type of ``site`` in one SET_N_WORKERS_JOBTYPE
    command (Harvester resets the slots a command does not name, so one command per resource type
    would leave only the last one), with a real job type as the real server does
    (``{"managed": {"SCORE": n, "MCORE": n}}``); each pseudo-queue ``site/RT`` takes its share."""
    for resource_type, n in depths.items():
        emulator.set_queue_depth(site, n, resource_type=resource_type, job_type=job_type, command=False)
    emulator.add_command(HARVESTER_ID, f"SET_N_WORKERS_JOBTYPE:{site}", {job_type: dict(depths)})


def queue_config(home: Path, worker_seconds: float) -> dict[str, Any]:
    """A push queue (one job per worker) and a unified pull queue (pseudo-queues per resource type)."""
    plugins = {
        "preparator": {"name": "DummyPreparator", "module": "pandaharvester.harvesterpreparator.dummy_preparator"},
        "stager": {"name": "DummyStager", "module": "pandaharvester.harvesterstager.dummy_stager"},
        "submitter": {"name": "DummySubmitter", "module": "pandaharvester.harvestersubmitter.dummy_submitter",
                      "sleepTime": worker_seconds},
        "monitor": {"name": "DummyMonitor", "module": "pandaharvester.harvestermonitor.dummy_monitor"},
        "sweeper": {"name": "DummySweeper", "module": "pandaharvester.harvestersweeper.dummy_sweeper"},
        "workerMaker": {"name": "SimpleWorkerMaker", "module": "pandaharvester.harvesterworkermaker.simple_worker_maker"},
    }
    messenger = {"name": "SharedFileMessenger", "module": "pandaharvester.harvestermessenger.shared_file_messenger",
                 "accessPoint": str(home / "workers" / "${workerID}")}
    push = {"queueStatus": "online", "prodSourceLabel": "managed", "mapType": "OneToOne",
            "nQueueLimitJob": 20, "nQueueLimitWorker": 20, "maxWorkers": 40, "messenger": messenger, **plugins}
    pull = {"queueStatus": "online", "prodSourceLabel": "managed", "mapType": "NoJob", "runMode": "slave",
            "nQueueLimitWorker": 10, "maxWorkers": 20, "messenger": messenger, **plugins}
    queues = {PUSH_QUEUE: push}
    for resource_type in PULL_RESOURCE_TYPES:
        queues[f"{PULL_QUEUE}/{resource_type}"] = dict(pull, resourceType=resource_type)
    return queues


def example_file(name: str) -> Path:
    """A file of ``examples/`` (source tree) or of the installed ``etc/panda`` data files."""
    for candidate in (instance.REPO / "examples" / name, Path(sys.prefix) / "etc" / "panda" / name):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"example file {name} not found in {instance.REPO / 'examples'} or {sys.prefix}/etc/panda")


def slurm_queue_config(home: Path, worker_seconds: float) -> dict[str, Any]:
    """``examples/panda_queueconfig_slurm.json`` with its paths pointed at this home and the dummy pilot."""
    from pandaharvester.harvestersubmitter.dummy_submitter import pilot_script_path

    queues = json.loads(example_file("panda_queueconfig_slurm.json").read_text())
    pilot = f"{sys.executable} {pilot_script_path()} --sleep {worker_seconds:g}"
    for queue in queues.values():
        if "submitter" in queue and "templateFile" in queue["submitter"]:
            queue["submitter"]["templateFile"] = str(example_file("slurm_submit.sh"))
            queue["submitter"]["templateParams"] = dict(queue["submitter"].get("templateParams", {}),
                                                        pilotCommand=pilot)
        if "messenger" in queue:
            queue["messenger"]["accessPoint"] = str(home / "workers" / "${workerID}")
    return queues


def ensure_slurm() -> None:
    """Start the local Slurm with scripts/setup_slurm.sh when ``sinfo`` cannot reach it."""
    try:
        if subprocess.run(["sinfo", "-h"], capture_output=True, timeout=30).returncode == 0:
            return
    except (OSError, subprocess.TimeoutExpired):
        pass
    setup = instance.REPO / "scripts" / "setup_slurm.sh"
    if not setup.exists():
        raise RuntimeError("Slurm is not running: start it (scripts/setup_slurm.sh start in the source tree)")
    print(f"starting the local Slurm with {setup}")
    subprocess.run([str(setup), "start"], check=True)


def cfg_overrides(base_url: str) -> dict[str, dict[str, Any]]:
    """Short intervals so the demo moves in seconds, not the production minutes."""
    fast = {"sleepTime": 1, "lockInterval": 60, "checkInterval": 1}
    overrides = instance.emulator_overrides(base_url)
    overrides.update({
        "master": {"harvester_id": HARVESTER_ID},
        "qconf": {"queueList": "ALL", "updateInterval": 5, "checkInterval": 1},
        "jobfetcher": {"nThreads": 1, "sleepTime": 1, "lookupTime": 1, "maxJobs": 50},
        "submitter": {"nThreads": 1, "sleepTime": 1, "lookupTime": 1, "queueLockInterval": 30, "lockInterval": 60,
                      "checkInterval": 1},
        "monitor": {"nThreads": 1, **fast},
        "propagator": {"nThreads": 1, "sleepTime": 1, "lockInterval": 60, "updateInterval": 1800},
        "preparator": {"nThreads": 1, **fast, "triggerInterval": 1},
        "stager": {"nThreads": 1, **fast, "triggerInterval": 1, "zipInterval": 1},
        "eventfeeder": {"nThreads": 1, "sleepTime": 1, "lockInterval": 60},
        "sweeper": {"nThreads": 1, "sleepTime": 5, "checkInterval": 1},
        "commandmanager": {"sleepTime": 1},
        "cacher": {"sleepTime": 5, "refreshInterval": 1},
        "service_monitor": {"active": False},
        "credmanager": {"sleepTime": 60},
    })
    return overrides


class Demo:
    """Runs and reports one demo (see the module docstring)."""

    def __init__(self, workdir: Path, n_jobs: int, n_pull_workers: int, worker_seconds: float, timeout: float,
                 slurm: bool = False):
        self.home = workdir.resolve()
        self.slurm = slurm
        self.push_queue, self.pull_queue = (SLURM_PUSH_QUEUE, SLURM_PULL_QUEUE) if slurm else (PUSH_QUEUE, PULL_QUEUE)
        self.n_jobs = n_jobs
        self.n_pull_workers = n_pull_workers
        self.worker_seconds = worker_seconds
        self.timeout = timeout
        self.emulator: Any = None
        self.daemon: subprocess.Popen | None = None

    def prepare(self) -> None:
        if self.home.exists():
            shutil.rmtree(self.home)
        (self.home / "logs").mkdir(parents=True)
        if self.slurm:
            ensure_slurm()
        self.emulator = start_emulator(self.home / "emulator")
        instance.write_cfg(self.home, cfg_overrides(self.emulator.base_url), harvester_id=HARVESTER_ID)
        instance.write_panda_common_cfg(self.home, "DEBUG")  # shows every cycle (a site's default is INFO)
        make_queues = slurm_queue_config if self.slurm else queue_config
        instance.write_queue_config(self.home, make_queues(self.home, self.worker_seconds))
        self.emulator.add_task(self.push_queue, self.n_jobs)
        set_queue_depth(self.emulator, self.pull_queue, {rt: self.n_pull_workers for rt in PULL_RESOURCE_TYPES})
        print(f"emulator at {self.emulator.base_url}; {self.n_jobs} jobs for {self.push_queue}, "
              f"queue depth {self.n_pull_workers} ({PULL_JOB_TYPE}) for each of "
              + ", ".join(f"{self.pull_queue}/{rt}" for rt in PULL_RESOURCE_TYPES)
              + (" (on the local Slurm)" if self.slurm else ""))

    def start_daemon(self) -> None:
        env = dict(os.environ, PANDA_HOME=str(self.home))
        command = [sys.executable, "-m", "pandaharvester.harvesterbody.master", "--foreground",
                   "--pid", str(self.home / "panda_harvester.pid")]
        with open(self.home / "logs" / "daemon.out", "wb") as out:
            self.daemon = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        print(f"harvester daemon pid {self.daemon.pid}, logs in {self.home / 'logs'}")

    def counts(self) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
        """Jobs by status in PanDA, workers by status reported by this instance, finished pull
        workers per pseudo-queue."""
        jobs: dict[str, int] = {}
        for job in self.emulator.jobs(site=self.push_queue):
            jobs[job["status"]] = jobs.get(job["status"], 0) + 1
        workers: dict[str, int] = {}
        pull_done = {f"{self.pull_queue}/{rt}": 0 for rt in PULL_RESOURCE_TYPES}
        for worker in self.emulator.workers(harvester_id=HARVESTER_ID):
            workers[worker["status"]] = workers.get(worker["status"], 0) + 1
            site = str(worker.get("computing_site", ""))
            if site in pull_done and worker["status"] == "finished":
                pull_done[site] += 1
        return jobs, workers, pull_done

    def cycle_times(self) -> str:
        """Last 'done : took X sec' per agent log."""
        found = []
        for log_file in sorted((self.home / "logs").glob("panda-*.log")):
            last = None
            with open(log_file, errors="replace") as stream:
                for line in stream:
                    match = re.search(r"took ([0-9.]+) sec", line)
                    if match and " run " in line:
                        last = match.group(1)
            if last is not None:
                found.append(f"{log_file.stem[6:]}={float(last):.2f}s")
        return " ".join(found)

    def watch(self) -> bool:
        start = time.time()
        while time.time() - start < self.timeout:
            time.sleep(3)
            if self.daemon.poll() is not None:
                print(f"the daemon exited with {self.daemon.returncode}; see {self.home / 'logs'}")
                return False
            jobs, workers, pull_done = self.counts()
            n_final = sum(jobs.get(s, 0) for s in FINAL_JOB_STATES)
            print(f"[{time.time() - start:5.1f}s] jobs {json.dumps(jobs, sort_keys=True)} "
                  f"workers {json.dumps(workers, sort_keys=True)} "
                  f"pull finished {json.dumps(pull_done, sort_keys=True)}")
            print(f"         cycles: {self.cycle_times()}")
            if n_final >= self.n_jobs and min(pull_done.values()) >= self.n_pull_workers:
                return True
        print(f"not done within {self.timeout:.0f} s")
        return False

    def stop(self) -> None:
        if self.daemon is not None and self.daemon.poll() is None:
            self.daemon.send_signal(signal.SIGTERM)
            try:
                self.daemon.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
        if self.emulator is not None:
            self.emulator.stop()

    def run(self) -> int:
        started = time.time()
        try:
            self.prepare()
            self.start_daemon()
            done = self.watch()
        finally:
            self.stop()
        print(f"demo {'completed' if done else 'FAILED'} in {time.time() - started:.1f} s; "
              f"state and logs kept in {self.home}")
        return 0 if done else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=20, help="jobs in the push queue's task (default 20)")
    parser.add_argument("--pull-workers", type=int, default=4, help="queue depth PanDA sets for the pull queue")
    parser.add_argument("--worker-seconds", type=float, default=3, help="how long each dummy worker runs")
    parser.add_argument("--workdir", type=Path, default=Path("var/demo"), help="instance home (wiped first)")
    parser.add_argument("--timeout", type=float, default=100, help="give up after this many seconds")
    parser.add_argument("--slurm", action="store_true",
                        help="run the workers as jobs of the local Slurm (examples/panda_queueconfig_slurm.json)")
    args = parser.parse_args(argv)
    return Demo(args.workdir, args.jobs, args.pull_workers, args.worker_seconds, args.timeout, args.slurm).run()


if __name__ == "__main__":
    sys.exit(main())
