"""E2E on the real local Slurm: the daemon's agents drive the Slurm plugins of
examples/panda_queueconfig_slurm.json (with examples/slurm_submit.sh; the batch jobs run the
dummy pilot, which exchanges files with Harvester through the shared-file messenger)."""

from __future__ import annotations

import subprocess

import pytest

from e2e_helpers import daemon_run  # noqa: F401
from slurm_helpers import start_slurm, stop_slurmctld

from pandaharvester.harvestersubmitter.slurm_utils import SlurmClient

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm", "slurm_walltime_worker")]

PUSH, PULL = "SLURM_PUSH", "SLURM_PULL"
TEMPLATE = "SLURM_PULL_TEMPLATE"
N = 50


def slurm_run(daemon_run, seconds: float, queues: list[str], **kwargs):  # noqa: F811
    from pandaharvester.harvestertest.demo import slurm_queue_config

    return daemon_run(worker_seconds=seconds, queue_maker=slurm_queue_config, only_queues=queues, **kwargs)


@pytest.fixture()
def cancel_leftovers():
    """scancel the batch jobs of the runs registered here when the test ends."""
    runs = []
    yield runs.append
    for run in runs:
        SlurmClient().cancel([w["batchID"] for w in run.workers() if w["batchID"]])


def slurm_states(batch_ids: list[str]) -> dict[str, str]:
    return {i: r.state for i, r in SlurmClient().squeue(batch_ids).items()}


def test_push_and_pull_50_workers_each_finish(daemon_run, cancel_leftovers):  # noqa: F811
    run = slurm_run(daemon_run, 2, [PUSH, TEMPLATE, f"{PULL}/SCORE"])
    cancel_leftovers(run)
    panda_ids = run.emulator.add_task(PUSH, N)
    run.emulator.set_queue_depth(PULL, N, resource_type="SCORE", harvester_id=run.harvester_id)
    run.start()

    def pull_finished() -> list[dict]:
        return [w for w in run.workers(PULL) if w["status"] == "finished"]

    run.wait_until(lambda: all(j["status"] == "finished" for j in run.jobs(PUSH)) and len(pull_finished()) >= N,
                   150, f"{N} push jobs finished in PanDA and {N} pull workers finished")
    assert sorted(j["panda_id"] for j in run.jobs(PUSH)) == sorted(panda_ids)
    push = run.db_rows("SELECT workerID, status, batchID, nativeStatus, nativeExitCode, nodeID FROM work_table "
                       "WHERE computingSite = ?", (PUSH,))
    assert len(push) == N and {(w["status"], w["nativeStatus"], w["nativeExitCode"]) for w in push} == {
        ("finished", "COMPLETED", 0)}, push[:3]
    assert {w["nodeID"] for w in push} == {"localhost"}
    # every push job's output came back from the batch job through the messenger
    outputs = run.db_rows("SELECT PandaID, lfn FROM file_table WHERE fileType = 'output'")
    assert {o["PandaID"] for o in outputs} == set(panda_ids)
    # Slurm agrees (the single monitor asked scontrol, the bulk one sacct)
    assert set(slurm_states([w["batchID"] for w in push]).values()) == {"COMPLETED"}
    pull_ids = [w["batchID"] for w in pull_finished()]
    assert set(slurm_states(pull_ids).values()) == {"COMPLETED"} and len(set(pull_ids)) == len(pull_ids)
    assert "Traceback" not in run.log("monitor") + run.log("submitter")
    assert run.stop() == 0


def test_panda_kill_command_cancels_slurm_jobs(daemon_run, cancel_leftovers):  # noqa: F811
    run = slurm_run(daemon_run, 300, [PUSH], cfg={"sweeper": {"sleepTime": 1, "checkInterval": 1}})
    cancel_leftovers(run)
    run.emulator.add_task(PUSH, 3)
    run.start()
    run.wait_until(lambda: [w["status"] for w in run.workers(PUSH)] == ["running"] * 3, 40, "3 running workers")
    ids = [w["workerID"] for w in run.workers(PUSH)]
    run.emulator.add_command(run.harvester_id, "SYNC_WORKERS_KILL", [ids[0]])
    run.wait_until(lambda: run.workers(PUSH)[0]["status"] == "cancelled", 30, f"workerID={ids[0]} cancelled")
    assert [w["status"] for w in run.workers(PUSH)][1:] == ["running", "running"]
    run.emulator.add_command(run.harvester_id, "KILL_WORKERS",
                             {"status": ["running"], "computingSite": [PUSH], "computingElement": "ALL",
                              "submissionHost": "ALL"})
    run.wait_until(lambda: {w["status"] for w in run.workers(PUSH)} == {"cancelled"}, 30, "all workers cancelled")
    batch_ids = [w["batchID"] for w in run.workers(PUSH)]
    assert set(slurm_states(batch_ids).values()) == {"CANCELLED"}
    assert "SYNC_WORKERS_KILL" in run.log("sweeper") and "KILL_WORKERS" in run.log("sweeper")
    run.wait_panda_sees_killed(PUSH)
    assert run.stop() == 0


def test_slurmctld_outage_loses_nothing(daemon_run, cancel_leftovers):  # noqa: F811
    """slurmctld stops while workers run: the monitor reports the error and retries, the submitter
    retries new workers, and once slurmctld is back every job and worker ends as if nothing happened."""
    bulk_squeue = {"name": "SlurmBulkMonitor", "module": "pandaharvester.harvestermonitor.slurm_bulk_monitor",
                   "use_squeue_monitor": True}
    run = slurm_run(daemon_run, 12, [PUSH], queue_changes={PUSH: {"monitor": bulk_squeue,
                                                                   "maxSubmissionAttempts": 20}})
    cancel_leftovers(run)
    first = run.emulator.add_task(PUSH, 4)
    run.start()
    run.wait_until(lambda: [w["status"] for w in run.workers(PUSH)] == ["running"] * 4, 40, "4 running workers")
    try:
        stop_slurmctld()
        later = run.emulator.add_task(PUSH, 2)  # their submission hits the outage
        run.wait_until(lambda: run.count_log("monitor", "Unable to contact slurm controller") >= 2, 60,
                       "the monitor to report the outage twice")
        run.wait_until(lambda: "Unable to contact slurm controller" in run.log("submitter"), 60,
                       "the submitter to meet the outage")
        statuses = {w["workerID"]: w["status"] for w in run.workers(PUSH)}
        assert all(statuses[w] == "running" for w in sorted(statuses)[:4]), statuses  # unchanged, not failed
    finally:
        restarted = start_slurm()
    assert "starting slurmctld" in restarted and "starting slurmd\n" not in restarted, restarted  # only what was down
    run.wait_until(lambda: {j["status"] for j in run.jobs(PUSH)} == {"finished"} and len(run.jobs(PUSH)) == 6, 120,
                   "all 6 jobs finished in PanDA after the outage")
    assert sorted(j["panda_id"] for j in run.jobs(PUSH)) == sorted(first + later)
    workers = run.workers(PUSH)
    assert [w["status"] for w in workers[:4]] == ["finished"] * 4, workers
    # workers whose sbatch met the outage were given up (missed) and their jobs got new workers
    assert {w["status"] for w in workers[4:]} <= {"missed", "finished"}
    assert sum(w["status"] == "finished" for w in workers) == 6, workers
    assert run.stop() == 0
    subprocess.run(["sinfo"], check=True, capture_output=True)
