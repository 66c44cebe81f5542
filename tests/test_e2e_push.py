"""E2E: push mode (OneToOne) — every job finishes in PanDA with its outputs reported, one worker per job."""

from __future__ import annotations

import json

from e2e_helpers import daemon_run  # noqa: F401

N_JOBS = 12


def _report(job: dict) -> dict:
    report = job.get("report") or {}
    return json.loads(report) if isinstance(report, str) else report


def test_push_jobs_finish_with_outputs_one_worker_each(daemon_run):  # noqa: F811
    run = daemon_run(worker_seconds=1, only_queues=["DEMO_PUSH"])
    panda_ids = run.emulator.add_task("DEMO_PUSH", N_JOBS)
    run.start()
    run.wait_until(lambda: all(j["status"] == "finished" for j in run.jobs("DEMO_PUSH")), 60,
                   "all push jobs finished in PanDA")
    jobs = {j["panda_id"]: j for j in run.emulator.jobs(site="DEMO_PUSH", with_spec=True)}
    assert sorted(jobs) == sorted(panda_ids)
    for panda_id, job in jobs.items():
        assert job["n_sent"] == 1, f"PandaID={panda_id} dispatched {job['n_sent']} times"
        report = _report(job)
        assert report.get("job_status") == "finished", report
        outputs = report.get("job_output_report")
        assert outputs, f"PandaID={panda_id}: no job_output_report in the final update {report}"
        text = outputs if isinstance(outputs, str) else json.dumps(outputs)
        spec_out = job["spec"]["outFiles"].split(",")
        assert spec_out
        for lfn in spec_out:
            assert lfn in text, f"PandaID={panda_id}: output {lfn} not reported in {text[:300]}"
    # one worker per job, all final (in Harvester and as reported to PanDA)
    links = run.db_rows("SELECT PandaID, workerID FROM jw_table")
    by_job: dict[int, set] = {}
    for link in links:
        by_job.setdefault(link["PandaID"], set()).add(link["workerID"])
    assert set(by_job) == set(panda_ids)
    assert all(len(w) == 1 for w in by_job.values()), by_job
    worker_ids = {w for ws in by_job.values() for w in ws}
    assert len(worker_ids) == N_JOBS
    run.wait_until(lambda: all(w["status"] == "finished" for w in run.emulator.workers(harvester_id=run.harvester_id))
                   and len(run.emulator.workers(harvester_id=run.harvester_id)) == N_JOBS, 30,
                   "all workers reported finished to PanDA")
    statuses = {w["workerID"]: w["status"] for w in run.workers("DEMO_PUSH")}
    assert set(statuses) == worker_ids and set(statuses.values()) == {"finished"}, statuses
    assert run.stop() == 0
