"""Monitor + SharedFileMessenger on real files: a job whose reports cannot be read is held, never
ended without its outputs; failed naming the file once [monitor] postProcessTimeout has passed."""

from __future__ import annotations

import json
import os

import pytest

from pandaharvester.harvesterbody.monitor import Monitor
from pandaharvester.harvestercore.pilot_errors import PilotErrors

from test_agents_helpers import (agent_env, make_job, make_worker, plugin, queue, set_job, sql,  # noqa: F401
                                 store_worker)
from test_agents_monitor import ScriptedMonitor

Q = "REPQ"
DUMP = "event_status.dump.json"
ATTRS = "worker_attributes.json"
REPORT = "jobReport.json"
UNREADABLE_SINCE = "unreadableReportsSince"  # workParams key: when the ended worker was first found so


@pytest.fixture()
def env(agent_env):
    ScriptedMonitor.answers = {}
    ScriptedMonitor.mode = "ok"

    def make(timeout_minutes: int = 0):
        home, mapper, proxy = agent_env(
            lambda h: {Q: queue(h, monitor=plugin("monitor", "ScriptedMonitor", "test_agents_monitor"))},
            {"monitor": {"postProcessTimeout": timeout_minutes}})
        return home, mapper, proxy

    return make


def worker_with_job(home, proxy):
    job = make_job(Q, sub_status="submitted", status="running")
    job.jobParams["outFiles"] = "out.root,log.tgz"
    assert proxy.insert_jobs([job])
    set_job(proxy, job.PandaID, lockedBy="submitter")
    worker = store_worker(proxy, make_worker(Q, status="running", accessPoint=str(home / "workers" / "${workerID}")),
                          [job])
    set_job(proxy, job.PandaID, lockedBy=None)
    access_point = worker.get_access_point()
    os.makedirs(access_point, exist_ok=True)
    return worker, job.PandaID, access_point


def write_reports(access_point: str, panda_id: int, corrupt: str | None = None) -> list[dict]:
    """The pilot's end-of-job reports (outputs written for real); ``corrupt``: the one cut in half."""
    entries = []
    for lfn, kind in (("out.root", "output"), ("log.tgz", "log")):
        path = os.path.join(access_point, lfn)
        with open(path, "w") as stream:
            stream.write(f"{lfn} content")
        entries.append({"path": path, "type": kind, "fsize": os.path.getsize(path), "chksum": "0000abcd"})
    reports = {DUMP: {str(panda_id): entries}, ATTRS: {"jobStatus": "finished", "nEvents": 10},
               REPORT: {"exitCode": 0}}
    for name, data in reports.items():
        text = json.dumps(data)
        with open(os.path.join(access_point, name), "w") as stream:
            stream.write(text[:len(text) // 2] if name == corrupt else text)
    return entries


def cycle(mapper):
    Monitor(mapper, single_mode=True).run_one_cycle()


def worker_state(worker_id):
    return sql("SELECT status, errorCode, errorDiag, diagMessage FROM work_table WHERE workerID=:w",
               {":w": worker_id})[0]


@pytest.mark.parametrize("corrupt", [DUMP, ATTRS, REPORT])
def test_unreadable_report_holds_the_job_then_fails_it_naming_the_file(env, corrupt):
    home, mapper, proxy = env(0)
    worker, panda_id, ap = worker_with_job(home, proxy)
    write_reports(ap, panda_id, corrupt)
    ScriptedMonitor.answers = {worker.workerID: ("finished", "")}
    cycle(mapper)
    # held: the worker is not final, the job did not end, no output recorded
    assert worker_state(worker.workerID)[0] in ("running", "idle")
    job = proxy.get_job(panda_id)
    assert job.status == "running" and not job.is_final_status()
    assert job.get_job_status_from_attributes() is None
    stored = proxy.get_worker_with_id(worker.workerID)
    assert stored.get_work_params(UNREADABLE_SINCE)[1]
    # postProcessTimeout = 0: the next check gives up
    cycle(mapper)
    status, error_code, error_diag, diag = worker_state(worker.workerID)
    assert status == "failed" and error_code == PilotErrors.STAGEOUTFAILED
    assert corrupt in diag and corrupt in error_diag
    job = proxy.get_job(panda_id)
    assert job.status == "failed", (job.status, job.subStatus)
    assert job.get_one_attribute("pilotErrorCode") == PilotErrors.STAGEOUTFAILED
    assert corrupt in job.get_one_attribute("pilotErrorDiag")


def test_report_repaired_within_the_timeout_ends_the_job_with_its_outputs(env):
    home, mapper, proxy = env(60)
    worker, panda_id, ap = worker_with_job(home, proxy)
    entries = write_reports(ap, panda_id, DUMP)
    ScriptedMonitor.answers = {worker.workerID: ("finished", "")}
    for _ in range(3):
        cycle(mapper)
        assert worker_state(worker.workerID)[0] in ("running", "idle")
        assert proxy.get_job(panda_id).status == "running"
    # the worker (or an admin) writes the dump again
    with open(os.path.join(ap, DUMP), "w") as stream:
        json.dump({str(panda_id): entries}, stream)
    for _ in range(3):
        cycle(mapper)
    assert worker_state(worker.workerID)[0] == "finished"
    job = proxy.get_job(panda_id)
    assert job.status == "finished" and job.subStatus == "to_transfer"
    files = sql("SELECT lfn, fileType FROM file_table WHERE PandaID=:p AND fileType!='input'", {":p": panda_id})
    assert sorted(files) == [("log.tgz", "log"), ("out.root", "output")]
    assert proxy.get_worker_with_id(worker.workerID).get_work_params(UNREADABLE_SINCE)[1] is None


def test_running_worker_reporting_the_job_ended_with_unreadable_outputs_does_not_end_it(env):
    home, mapper, proxy = env(0)
    worker, panda_id, ap = worker_with_job(home, proxy)
    write_reports(ap, panda_id, DUMP)
    ScriptedMonitor.answers = {worker.workerID: ("running", "")}  # the batch job is still tearing down
    for _ in range(2):
        cycle(mapper)
    assert worker_state(worker.workerID)[0] == "running"
    job = proxy.get_job(panda_id)
    assert job.status == "running" and job.get_job_status_from_attributes() is None
    assert not sql("SELECT lfn FROM file_table WHERE PandaID=:p AND fileType!='input'", {":p": panda_id})


def test_readable_reports_end_the_job_as_before(env):
    home, mapper, proxy = env(0)
    worker, panda_id, ap = worker_with_job(home, proxy)
    write_reports(ap, panda_id)
    ScriptedMonitor.answers = {worker.workerID: ("finished", "")}
    for _ in range(3):
        cycle(mapper)
    assert worker_state(worker.workerID)[0] == "finished"
    job = proxy.get_job(panda_id)
    assert job.status == "finished" and job.get_one_attribute("nEvents") == 10
