"""E2E: SIGTERM stops the daemon cleanly mid-flow; a restart carries on without duplicates."""

from __future__ import annotations

import time

from e2e_helpers import daemon_run  # noqa: F401

PUSH = "DEMO_PUSH"
N_JOBS = 8


def test_sigterm_mid_flow_then_restart_finishes_every_job_once(daemon_run):  # noqa: F811
    run = daemon_run(only_queues=[PUSH], queue_changes={PUSH: {"submitter": {"sleepTime": 3},
                                                               "nQueueLimitJob": 4, "nQueueLimitWorker": 4}})
    panda_ids = run.emulator.add_task(PUSH, N_JOBS)
    run.start()
    run.wait_until(lambda: any(w["status"] == "running" for w in run.workers(PUSH)), 30, "a running worker")
    assert run.pid_file.exists()
    statuses_before = [j["status"] for j in run.jobs(PUSH)]
    assert statuses_before.count("finished") < N_JOBS, "stopped too late: nothing left mid-flow"
    started = time.monotonic()
    code = run.stop(timeout=15)
    took = time.monotonic() - started
    assert code == 0, f"exit code {code}:\n{run.log_tail()}"
    assert took < 8, f"SIGTERM took {took:.1f}s"
    assert not run.pid_file.exists(), "pid file left behind"

    run.start()
    run.wait_until(lambda: all(j["status"] == "finished" for j in run.jobs(PUSH)), 60, "all jobs finished after restart")
    jobs = run.jobs(PUSH)
    assert sorted(j["panda_id"] for j in jobs) == sorted(panda_ids)
    assert all(j["n_sent"] == 1 for j in jobs), [(j["panda_id"], j["n_sent"]) for j in jobs]
    links = run.db_rows("SELECT PandaID, workerID FROM jw_table")
    workers_per_job: dict[int, set] = {}
    for link in links:
        workers_per_job.setdefault(link["PandaID"], set()).add(link["workerID"])
    assert {p: len(w) for p, w in workers_per_job.items()} == {p: 1 for p in panda_ids}
    assert len(run.workers(PUSH)) == N_JOBS, run.workers(PUSH)
    run.wait_until(lambda: sorted(w["status"] for w in run.emulator.workers(harvester_id=run.harvester_id))
                   == ["finished"] * N_JOBS, 20, "PanDA sees one finished worker per job")
    assert run.stop() == 0
    assert not run.pid_file.exists()
