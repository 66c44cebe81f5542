"""Slurm submitter, monitors and sweeper against the real local daemons (scripts/setup_slurm.sh)."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from slurm_helpers import (
    SETUP,
    all_final,
    elapsed,
    make_workspec,
    pilot_command,
    submitter,
    wait_running,
    wait_statuses,
    write_template,
)

from pandaharvester.harvestermonitor.slurm_bulk_monitor import SlurmBulkMonitor
from pandaharvester.harvestermonitor.slurm_monitor import SlurmMonitor
from pandaharvester.harvestermonitor.slurm_squeue_monitor import SlurmSqueueMonitor
from pandaharvester.harvestersubmitter.slurm_utils import SlurmClient
from pandaharvester.harvestersweeper.slurm_sweeper import SlurmSweeper

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm", "slurm_walltime_worker")]

MONITORS = {
    "scontrol": SlurmMonitor,
    "squeue": SlurmSqueueMonitor,
    "bulk-sacct": SlurmBulkMonitor,
    "bulk-squeue": lambda: SlurmBulkMonitor(use_squeue_monitor=True),
}


def test_batch_with_one_rejected_worker(tmp_path):
    """sbatch rejects the worker asking for more memory than the node has: only it fails, with sbatch's error."""
    template = write_template(tmp_path / "t.sh", pilot_command(1))
    workers = [make_workspec(tmp_path, i, n_core=2 if i == 2 else 1) for i in (1, 2, 3)]
    workers[1].minRamCount = 10_000_000  # MB
    plugin = submitter(template, nCore=0, sbatchOptions=["--comment=harvester-test"])
    results = plugin.submit_workers(workers)
    assert [ok for ok, _ in results] == [True, False, True], results
    assert "sbatch failed" in results[1][1] and "Requested node configuration is not available" in results[1][1]
    assert workers[1].batchID is None and workers[0].batchID and workers[2].batchID
    ok_workers = [workers[0], workers[2]]
    # the script went to the access point, with the placeholders filled in
    script = tmp_path / "workers" / "1" / "slurm_submit_1.sh"
    text = script.read_text()
    assert "--cpus-per-task=1" in text and "worker=1 harvester=test-harvester site=SLURM_TEST" in text
    assert "${SLURM_JOB_ID}" in text and f"--access-point {tmp_path}/workers/1" in text
    assert os.access(script, os.X_OK)
    results = wait_statuses(SlurmMonitor(), ok_workers, all_final, 60, "accepted workers final")
    assert [s for s, _ in results] == ["finished", "finished"], results
    for workspec in ok_workers:
        out = tmp_path / "workers" / str(workspec.workerID) / f"out-{workspec.batchID}.txt"
        assert workspec.workAttributes["stdOut"] == f"file://{out}"
        assert f"worker={workspec.workerID}" in out.read_text() and workspec.batchID in out.read_text()
        assert "dummy_pilot: end status=finished" in out.read_text()
        assert (workspec.nativeStatus, workspec.nativeExitCode, workspec.nodeID) == ("COMPLETED", 0, "localhost")
    shown = SlurmClient().show_job(workers[0].batchID)
    assert shown.state == "COMPLETED"


def test_queue_options_reach_sbatch_and_bad_ones_fail_clearly(tmp_path):
    template = write_template(tmp_path / "t.sh", "exit 0")
    good = make_workspec(tmp_path, 1)
    [(ok, diag)] = submitter(template, partition="debug", qos="normal", sbatchOptions="--comment=from-qconf",
                             nCore=3).submit_workers([good])
    assert ok is True, diag
    assert good.nCore == 3  # the queue config's nCore wins over the worker's
    line = os.popen(f"scontrol show job -o {good.batchID}").read()
    assert "Partition=debug" in line and "QOS=normal" in line and "Comment=from-qconf" in line and "NumCPUs=3" in line
    bad = [make_workspec(tmp_path, i) for i in (2, 3)]
    results = submitter(template, partition="nosuchpartition").submit_workers(bad)
    assert [ok for ok, _ in results] == [False, False]
    assert all("invalid partition" in diag.lower() for _, diag in results), results


@pytest.mark.parametrize("monitor_name", sorted(MONITORS))
def test_failing_batch_script_is_failed_with_its_exit_code(tmp_path, monitor_name):
    template = write_template(tmp_path / "t.sh", "echo failing >&2; exit 3")
    workspec = make_workspec(tmp_path, 1)
    [(ok, diag)] = submitter(template).submit_workers([workspec])
    assert ok is True, diag
    [(status, diag)] = wait_statuses(MONITORS[monitor_name](), [workspec], all_final, 60, "failed job final")
    assert status == "failed" and f"Slurm job {workspec.batchID} FAILED" in diag and "ExitCode=3:0" in diag
    assert workspec.nativeExitCode == 3 and workspec.nativeStatus == "FAILED"


def test_kill_and_sweep_are_idempotent(tmp_path):
    template = write_template(tmp_path / "t.sh", pilot_command(300))
    workers = [make_workspec(tmp_path, i) for i in (1, 2)]
    assert [ok for ok, _ in submitter(template).submit_workers(workers)] == [True, True]
    wait_running(workers)
    sweeper = SlurmSweeper()
    assert sweeper.kill_workers(workers) == [(True, ""), (True, "")]
    results = wait_statuses(SlurmBulkMonitor(use_squeue_monitor=True), workers, all_final, 30, "cancelled")
    assert [s for s, _ in results] == ["cancelled", "cancelled"] and "CANCELLED" in results[0][1]
    # killing again, and killing a job Slurm never had, are successes
    assert sweeper.kill_worker(workers[0]) == (True, "")
    ghost = make_workspec(tmp_path, 9)
    ghost.batchID = "987654321"
    assert sweeper.kill_workers([ghost, workers[1]]) == [(True, ""), (True, "")]
    access_point = tmp_path / "workers" / "1"
    assert access_point.is_dir()
    assert sweeper.sweep_worker(workers[0]) == (True, "") and not access_point.exists()
    assert sweeper.sweep_worker(workers[0]) == (True, "")


def test_job_slurm_never_knew_is_failed_by_the_rule(tmp_path):
    ghost = make_workspec(tmp_path, 1)
    ghost.batchID = "987654321"
    for name, cls in MONITORS.items():
        [(status, diag)] = cls().check_workers([ghost])[1]
        assert status == "failed" and "unknown to slurmctld and to accounting" in diag, (name, diag)
    nobatch = make_workspec(tmp_path, 2)
    assert SlurmMonitor().check_workers([nobatch])[1] == [
        ("failed", "the worker has no batchID: it never reached Slurm")]


def test_squeue_monitor_postmortem_file_wins(tmp_path):
    workspec = make_workspec(tmp_path, 1)
    workspec.batchID = "987654321"
    (tmp_path / "workers" / "1").mkdir(parents=True)
    (tmp_path / "workers" / "1" / "FINISHED").write_text('{"worker_status": "finished"}')
    assert SlurmSqueueMonitor().check_workers([workspec]) == (True, [("finished", "")])


def test_jinja_submitter_runs_on_slurm(tmp_path):
    from pandaharvester.harvestersubmitter.slurm_submitter_jinja import SlurmSubmitterJinja

    template = tmp_path / "t.j2"
    template.write_text("#!/bin/bash\n#SBATCH -o {{ accessPoint }}/out.txt\n#SBATCH -c {{ nCorePerNode }}\n"
                        "echo worker {{ workspec.workerID }} nodes=$SLURM_JOB_NUM_NODES\n")
    workspec = make_workspec(tmp_path, 4, n_core=2)
    [(ok, diag)] = SlurmSubmitterJinja(templateFile=str(template)).submit_workers([workspec])
    assert ok is True, diag
    [(status, _)] = wait_statuses(SlurmMonitor(), [workspec], all_final, 60, "jinja job final")
    assert status == "finished"
    assert (tmp_path / "workers" / "4" / "out.txt").read_text() == "worker 4 nodes=1\n"
    assert workspec.workAttributes["stdOut"] == f"file://{tmp_path}/workers/4/out.txt"


def test_setup_script_is_idempotent():
    again = subprocess.run([str(SETUP), "start"], capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "Slurm is up" in again.stderr and "starting" not in again.stderr, again.stderr
    status = subprocess.run([str(SETUP), "status"], capture_output=True, text=True, timeout=60)
    assert status.returncode == 0, status.stdout
    for daemon in ("mariadb", "munged", "slurmdbd", "slurmctld", "slurmd"):
        assert f"{daemon}: up" in status.stdout
    assert f"{os.environ.get('SLURM_LOCAL_CPUS', 64)} CPUs" in status.stdout
    assert oct(os.stat("/etc/slurm/slurmdbd.conf").st_mode & 0o777) == "0o600"


def test_worker_over_walltime_is_timeout(slurm_walltime_worker):
    """Last in the module: the walltime worker was submitted when the first Slurm test started."""
    workspec, submitted = slurm_walltime_worker
    start = time.monotonic()
    [(status, diag)] = wait_statuses(SlurmMonitor(), [workspec], all_final, 200, "walltime worker final")
    assert status == "failed" and "TIMEOUT" in diag and "walltime" in diag, diag
    assert workspec.nativeStatus == "TIMEOUT"
    print(f"TIMEOUT seen {elapsed(submitted):.0f} s after submission (waited {elapsed(start):.0f} s here)")
