"""Test side of the local Slurm (started by scripts/setup_slurm.sh): fixtures, workers, waits.

The ``slurm`` fixture makes sure the daemons answer, starting them with the setup script when
they do not; when that fails the test FAILS (the setup is supposed to make Slurm available).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from e2e_helpers import REPO, wait_until

SETUP = REPO / "scripts" / "setup_slurm.sh"
STATE = Path(os.environ.get("SLURM_LOCAL_STATE", "/var/spool/slurm-local"))
FINAL = ("finished", "failed", "cancelled", "missed")


def slurm_answers() -> bool:
    try:
        return subprocess.run(["sinfo", "-h"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def start_slurm() -> str:
    """``scripts/setup_slurm.sh start`` (starts only what is down); its messages. pytest.fail on error."""
    proc = subprocess.run([str(SETUP), "start"], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0 or not slurm_answers():
        pytest.fail(f"the local Slurm could not be started by {SETUP} (rc={proc.returncode}):\n"
                    f"{proc.stdout}\n{proc.stderr}", pytrace=False)
    return proc.stdout + proc.stderr


def stop_slurmctld(timeout: float = 30) -> None:
    """SIGTERM slurmctld (by its pid file) and wait until it is gone."""
    pid = int((STATE / "slurmctld.pid").read_text().strip())
    os.kill(pid, signal.SIGTERM)
    wait_until(lambda: not Path(f"/proc/{pid}").exists(), timeout, 0.1, "slurmctld to exit")


@pytest.fixture(scope="session")
def slurm() -> Path:
    """The local Slurm is up (started here if the test setup has not)."""
    if not slurm_answers():
        start_slurm()
    return STATE


# ---------------------------------------------------------------------------- plugin-level helpers
PILOT = REPO / "pandaharvester" / "harvestertest" / "dummy_pilot.py"

TEMPLATE = """#!/bin/bash
#SBATCH --job-name=hv-test-{workerID}
#SBATCH --nodes={nNode}
#SBATCH --ntasks-per-node=1
#SBATCH --cpus-per-task={nCorePerNode}
#SBATCH --mem-per-cpu={requestRamPerCore}M
#SBATCH --time={requestWalltimeMinute}
#SBATCH -o {accessPoint}/out-%j.txt
echo "worker={workerID} harvester={harvesterID} site={computingSite} cores={nCoreTotal} nodes={nNode} \\
ram={requestRam} wall={requestWalltimeMinute} pandaIDs={pandaIDs} host={submissionHost} tmp={tmpDir} ${{SLURM_JOB_ID}}"
{command}
"""


def write_template(path: Path, command: str) -> Path:
    """A batch script template running ``command`` (its braces doubled where needed)."""
    path.write_text(TEMPLATE.replace("{command}", command))
    return path


def pilot_command(seconds: float) -> str:
    return f"exec {sys.executable} {PILOT} --access-point {{accessPoint}} --sleep {seconds:g}"


def make_workspec(home: Path, worker_id: int, n_core: int = 1, ram: int = 100, walltime: int = 600,
                  site: str = "SLURM_TEST") -> Any:
    """A submitted-to-be WorkSpec with its own access point under ``home``."""
    from pandaharvester.harvestercore.work_spec import WorkSpec

    workspec = WorkSpec()
    workspec.workerID = worker_id
    workspec.computingSite = site
    workspec.nCore = n_core
    workspec.minRamCount = ram
    workspec.maxWalltime = walltime
    workspec.mapType = WorkSpec.MT_NoJob
    workspec.status = WorkSpec.ST_submitted
    workspec.accessPoint = str(home / "workers" / "${workerID}")
    return workspec


def submitter(template: Path, **attrs: Any) -> Any:
    from pandaharvester.harvestersubmitter.slurm_submitter import SlurmSubmitter

    return SlurmSubmitter(queueName="SLURM_TEST", templateFile=str(template), **attrs)


def wait_statuses(monitor: Any, workspecs: list, done: Callable[[list], bool], timeout: float,
                  what: str) -> list:
    """Call ``monitor.check_workers`` until ``done(results)``; the last results."""
    seen: list = []

    def check() -> bool:
        ok, results = monitor.check_workers(workspecs)
        assert ok is True
        seen[:] = results
        return done(results)

    try:
        wait_until(check, timeout, 0.5, what)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last results {seen}") from None
    return seen


def all_final(results: list) -> bool:
    return all(status in FINAL for status, _diag in results)


def wait_running(workspecs: list, timeout: float = 30) -> None:
    from pandaharvester.harvestermonitor.slurm_monitor import SlurmMonitor

    wait_statuses(SlurmMonitor(), workspecs, lambda r: all(s == "running" for s, _ in r), timeout, "jobs running")


def elapsed(start: float) -> float:
    return time.monotonic() - start


@pytest.fixture(scope="session")
def slurm_walltime_worker(slurm: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, float]:
    """A worker whose pilot outlives its 1-minute walltime, submitted when the first Slurm test starts.

    Slurm kills it only after 60-90 s (time limits count in minutes and slurmctld checks them
    every 30 s), so it is submitted early and ``test_worker_over_walltime_is_timeout`` (run last)
    checks it, instead of the suite waiting for it. Returns (WorkSpec, submission time).
    """
    home = tmp_path_factory.mktemp("walltime")
    template = write_template(home / "walltime.sh", pilot_command(600))
    workspec = make_workspec(home, 1, walltime=60)
    [(ok, diag)] = submitter(template).submit_workers([workspec])
    assert ok is True, diag
    return workspec, time.monotonic()
