"""E2E: PanDA applies acquire_jobs but its reply is lost; the flow still converges.

The emulator dispatches the jobs (they become ``sent``) and drops the connection or cuts the
reply. The daemon must not retry blindly (that would take a new batch), must log the lost window
for an operator, and the emulator's watchdog (like the real server's) gives the jobs back after
its sent timeout; then every job runs once, with one worker, and ends finished in PanDA.
"""

from __future__ import annotations

import re

from e2e_helpers import daemon_run  # noqa: F401

SITE = "DEMO_PUSH"
SENT_TIMEOUT = 8.0  # far above the seconds the daemon takes to report a job it did record
ACQUIRE = "pilot/acquire_jobs"


def test_lost_acquire_jobs_reply_converges(daemon_run):  # noqa: F811
    run = daemon_run(worker_seconds=1, only_queues=[SITE], emulator_kwargs={"sent_timeout": SENT_TIMEOUT})
    emu = run.emulator
    lost_ids = emu.add_task(SITE, 5)
    emu.set_faults(rate=1.0, kinds=["drop_after_commit", "truncated_json"], endpoints=[ACQUIRE], seed=3)
    run.start()
    run.wait_until(lambda: emu.state()["faults"]["injected"].get(ACQUIRE), 60, "an acquire_jobs reply lost")
    emu.set_faults(rate=0.0)
    assert all(j["status"] == "sent" for j in run.jobs(SITE)), "the lost dispatch was applied"
    later_ids = emu.add_task(SITE, 5)
    run.wait_until(lambda: all(j["status"] == "finished" for j in run.jobs(SITE)), 120,
                   "every job finished in PanDA after the watchdog gave the lost ones back")
    jobs = {j["panda_id"]: j for j in emu.jobs(site=SITE)}
    assert sorted(jobs) == sorted(lost_ids + later_ids)
    for panda_id in lost_ids:  # dispatched twice: the lost attempt, then the reassigned one
        assert jobs[panda_id]["n_sent"] >= 2 and jobs[panda_id]["attempt_nr"] >= 2, jobs[panda_id]
    for panda_id in later_ids:
        assert jobs[panda_id]["n_sent"] == 1 and jobs[panda_id]["attempt_nr"] == 1, jobs[panda_id]
    # Harvester holds each job once and ran it with exactly one worker
    rows = run.db_rows("SELECT PandaID, attemptNr FROM job_table")
    assert sorted(r["PandaID"] for r in rows) == sorted(jobs)
    assert all(r["attemptNr"] == jobs[r["PandaID"]]["attempt_nr"] for r in rows)
    links = run.db_rows("SELECT PandaID, COUNT(DISTINCT workerID) AS n FROM jw_table GROUP BY PandaID")
    assert sorted(r["PandaID"] for r in links) == sorted(jobs) and {r["n"] for r in links} == {1}
    # the lost window is logged for the operator, the request was not retried
    lines = [line for line in run.log("communicator").splitlines() if f"LOST_REPLY {ACQUIRE}" in line]
    assert lines, run.log_tail("communicator")
    assert all(f"harvester_id={run.harvester_id} site={SITE} " in line and "ERROR" in line for line in lines)
    assert all(re.search(r"window_utc=\S+Z/\S+Z", line) for line in lines)
    injected = sum(emu.state()["faults"]["injected"][ACQUIRE].values())
    assert len(lines) == injected
    assert run.stop() == 0
