"""E2E: a worker whose report files cannot be read never ends its job as finished without outputs.

The dummy pilot writes one of its reports cut in half (``corruptFiles``). The job is held while
the file cannot be read, then failed with a diagnostic naming the file once
``[monitor] postProcessTimeout`` has passed; a file repaired within that time ends the job
finished with its outputs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from e2e_helpers import daemon_run  # noqa: F401

PUSH = "DEMO_PUSH"


def _report(job: dict) -> dict:
    report = job.get("report") or {}
    return json.loads(report) if isinstance(report, str) else report


def _run(daemon_run, corrupt: str, timeout_minutes: int):  # noqa: F811
    run = daemon_run(worker_seconds=1, only_queues=[PUSH], cfg={"monitor": {"postProcessTimeout": timeout_minutes}},
                     queue_changes={PUSH: {"submitter": {"corruptFiles": [corrupt]}}})
    panda_id = run.emulator.add_task(PUSH, 1)[0]
    run.start()
    return run, panda_id


def _final_job(run, panda_id: int, timeout: float) -> dict:
    def final() -> dict | None:
        jobs = [j for j in run.emulator.jobs(site=PUSH, with_spec=True) if j["panda_id"] == panda_id]
        return jobs[0] if jobs and jobs[0]["status"] in ("finished", "failed", "cancelled", "closed") else None

    return run.wait_until(final, timeout, f"PandaID={panda_id} final in PanDA")


@pytest.mark.parametrize("corrupt,file_name", [("eventStatusDumpJsonFile", "event_status.dump.json"),
                                               ("jobReportFile", "jobReport.json"),
                                               ("workerAttributesFile", "worker_attributes.json")])
def test_unreadable_report_fails_the_job_naming_the_file(daemon_run, corrupt, file_name):  # noqa: F811
    run, panda_id = _run(daemon_run, corrupt, 0)
    job = _final_job(run, panda_id, 60)
    report = _report(job)
    assert job["status"] == "failed", f"PandaID={panda_id} ended {job['status']} with {report}"
    assert report.get("job_status") == "failed", report
    assert file_name in report.get("pilot_error_diag", ""), report
    assert report.get("pilot_error_code"), report
    # the worker: failed, its error names the file too
    run.wait_until(lambda: [w["status"] for w in run.workers(PUSH)] == ["failed"], 30, "worker failed")
    rows = run.db_rows("SELECT errorCode, diagMessage FROM work_table")
    assert file_name in (rows[0]["diagMessage"] or ""), rows
    log = run.log("monitor")
    assert f"PandaID={panda_id}" in log and "held" in log and file_name in log, log[-3000:]
    assert run.stop() == 0


def test_report_repaired_within_the_timeout_finishes_with_outputs(daemon_run):  # noqa: F811
    run, panda_id = _run(daemon_run, "eventStatusDumpJsonFile", 5)
    worker_dir: list[Path] = []

    def held() -> bool:
        dumps = list((run.home / "workers").glob("*/event_status.dump.json*"))
        if dumps and "held" in run.log("monitor"):
            worker_dir.append(dumps[0].parent)
            return True
        return False

    run.wait_until(held, 60, "the job held on its unreadable outputs dump")
    job = [j for j in run.emulator.jobs(site=PUSH, with_spec=True) if j["panda_id"] == panda_id][0]
    assert job["status"] not in ("finished", "failed"), job["status"]
    # repair: the worker's outputs, as the pilot described them (the files are still in the access point)
    ap = worker_dir[0]
    entries = []
    for lfn in job["spec"]["outFiles"].split(","):
        path = ap / lfn
        entries.append({"path": str(path), "type": "log" if lfn == job["spec"]["logFile"] else "output",
                        "fsize": path.stat().st_size, "chksum": "00000001"})
    tmp = ap / "repair.tmp"
    tmp.write_text(json.dumps({str(panda_id): entries}))
    tmp.rename(ap / "event_status.dump.json")
    job = _final_job(run, panda_id, 60)
    report = _report(job)
    assert job["status"] == "finished", report
    outputs = report.get("job_output_report") or ""
    for lfn in job["spec"]["outFiles"].split(","):
        assert lfn in outputs, f"output {lfn} not reported in {outputs[:500]}"
    assert run.stop() == 0
