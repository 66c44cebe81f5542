"""PandaCommunicator end to end against the PanDA server emulator (a real separate process).

Every communicator method is driven over HTTP, HTTPS with a client certificate and HTTPS with
a bearer token, with both transports (requests, pycurl). Fault injection shows bounded
retries and that a retried update is applied once; verbose logs never show a secret.
"""

from __future__ import annotations

import datetime
import io
import logging
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from pandaharvester.harvestercommunicator.panda_communicator import PandaCommunicator
from pandaharvester.harvestercommunicator.transport import make_transport
from pandaharvester.harvestercore.communicator_pool import CommunicatorPool
from pandaharvester.harvestercore.diag_spec import DiagSpec
from pandaharvester.harvestercore.event_spec import EventSpec
from pandaharvester.harvestercore.job_spec import JobSpec
from pandaharvester.harvestercore.work_spec import WorkSpec
from pandaharvester.harvestertest.panda_emulator.faults import FaultConfig
from pandaharvester.harvestertest.panda_emulator.launcher import start_emulator

TOKEN_A = "tokA-" + "a1b2c3d4" * 5
TOKEN_B = "tokB-" + "e5f6a7b8" * 5
TRANSPORTS = ["requests", "pycurl"]
MODES = ["http", "tls_cert", "tls_token"]


# ------------------------------------------------------------------ emulators and communicators
@pytest.fixture(scope="module")
def emu_http(tmp_path_factory):
    emu = start_emulator(tmp_path_factory.mktemp("emu_http"), seed=1)
    yield emu
    emu.stop()


@pytest.fixture(scope="module")
def emu_tls(tmp_path_factory):
    emu = start_emulator(tmp_path_factory.mktemp("emu_tls"), tls=True, tokens=[TOKEN_A, TOKEN_B], seed=2)
    yield emu
    emu.stop()


@pytest.fixture()
def make_comm(fresh_home, tmp_path):
    """``make_comm(emu, mode, transport, **pandacon)`` -> (communicator, harvester_id)."""

    def make(emu, mode: str = "http", transport: str = "requests", harvester_id: str | None = None,
             **pandacon: Any) -> tuple[PandaCommunicator, str]:
        harvester_id = harvester_id or f"h-{uuid.uuid4().hex[:10]}"
        values = {"server_api_url_ssl": emu.base_url, "cache_api_url_ssl": emu.base_url, "transport": transport,
                  "timeout": 10, "maxRetries": 3, "retryBackoff": 0.01, "auth_type": "x509",
                  "cert_file": "", "key_file": "", "auth_token": "", "ca_cert": ""}
        if mode == "tls_cert":
            values.update(cert_file=emu.client_cert, key_file=emu.client_key, ca_cert=emu.ca_cert)
        elif mode == "tls_token":
            token_file = tmp_path / "token"
            if not token_file.exists():
                token_file.write_text(TOKEN_A + "\n")
            values.update(auth_type="oidc", auth_token=f"file:{token_file}", auth_origin="atlas.production",
                          ca_cert=emu.ca_cert)
        values.update({k: str(v) for k, v in pandacon.items()})
        fresh_home({"pandacon": values, "master": {"harvester_id": harvester_id}, "propagator": {"nJobsInBulk": 2}})
        return PandaCommunicator(), harvester_id

    return make


def _emu_for(mode: str, emu_http, emu_tls):
    return emu_http if mode == "http" else emu_tls


def _jobspecs(job_dicts: list[dict], status: str = "running") -> list[JobSpec]:
    specs = []
    for job in job_dicts:
        spec = JobSpec()
        spec.convert_job_json(job)
        spec.computingSite = job.get("computingSite") or job.get("site") or "SITE"
        spec.status = status
        spec.subStatus = status
        specs.append(spec)
    return specs


def _bare_jobspec(panda_id: int, status: str = "running") -> JobSpec:
    spec = JobSpec()
    spec.PandaID, spec.computingSite, spec.attemptNr = panda_id, "SITE", 1
    spec.status = spec.subStatus = status
    return spec


def _workspec(worker_id: int, site: str, status: str = "running") -> WorkSpec:
    work = WorkSpec()
    work.workerID = worker_id
    work.batchID = f"b{worker_id}"
    work.status = status
    work.computingSite = site
    work.resourceType = "SCORE"
    work.nCore = 1
    work.submitTime = datetime.datetime(2026, 11, 25, 11, 0, 0)
    return work


def _site() -> str:
    return f"SITE_{uuid.uuid4().hex[:8]}"


def _job(emu, panda_id: int) -> dict:
    return emu.jobs(panda_ids=[panda_id])[0]


# ------------------------------------------------------------------ every method
@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("mode", MODES)
def test_every_method(emu_http, emu_tls, make_comm, tmp_path, mode, transport):
    emu = _emu_for(mode, emu_http, emu_tls)
    com, hid = make_comm(emu, mode, transport)
    site = _site()

    ok, reply = com.check_panda()
    assert ok and reply["success"] is True
    # first heartbeat of a new instance: the server's "database error" is retried once
    assert com.is_alive({"startTime": datetime.datetime(2026, 11, 25, 11, 0), "sw_version": "0.6.0"}) == (True, "")
    beat = emu.state()["heartbeats"][hid]
    assert beat["n_heartbeats"] == 1 and beat["data"]["startTime"] == "datetime/2026-11-25 11:00:00.000000"
    assert com.get_max_worker_id() == (False, "database error in the PanDA server")

    # jobs
    panda_ids = emu.add_task(site, 3)
    jobs, msg = com.get_jobs(site, "node-1", "managed", "ce-1", 2, {"resource_type": "ANY"})
    assert msg == "OK" and [j["PandaID"] for j in jobs] == panda_ids[:2]
    more, _ = com.get_jobs(site, "node-1", "managed", "ce-1", 5, None)
    assert [j["PandaID"] for j in more] == panda_ids[2:]
    assert com.get_jobs(site, "node-1", "managed", "ce-1", 5, None) == ([], "No jobs in PanDA")
    specs = _jobspecs(jobs + more)
    emu.kill_job(panda_ids[2])
    results = com.update_jobs(specs, "unit")  # nJobsInBulk=2: two chunks
    assert [r["StatusCode"] for r in results] == [0, 0, 0]
    assert [r["command"] for r in results] == ["NULL", "NULL", "tobekilled"]
    assert [_job(emu, p)["status"] for p in panda_ids] == ["running"] * 3
    checked = com.check_jobs(specs[:1] + [_jobspecs([{**jobs[0], "PandaID": 1}])[0]])
    assert checked[0]["StatusCode"] == 0 and checked[0]["status"] == "running"
    assert checked[1]["status"] is None and checked[1]["command"] is None  # unknown to PanDA
    specs[0].status = "finished"
    specs[0].subStatus = "done"
    specs[0].endTime = datetime.datetime(2026, 11, 25, 12, 0)
    specs[0].outputFilesToReport = "<POOLFILECATALOG/>"
    specs[1].status = "cancelled"
    specs[1].set_pilot_closed()
    results = com.update_jobs(specs[:2], "unit")
    assert [r["StatusCode"] for r in results] == [0, 0]
    first, second = _job(emu, panda_ids[0]), _job(emu, panda_ids[1])
    assert first["status"] in ("holding", "finished") and first["final_target"] == "finished"
    assert first["report"]["job_output_report"] == "<POOLFILECATALOG/>"
    assert first["report"]["end_time"] == "2026-11-25 12:00:00" and first["report"]["core_count"] == specs[0].nCore
    assert second["final_target"] == "failed" and second["sub_status"] == "pilot_closed"

    # workers and instance
    workers = [_workspec(11, site), _workspec(12, site, "submitted")]
    assert com.update_workers(workers) == ([True, True], "OK")
    rows = emu.workers(harvester_id=hid)
    assert sorted(r["worker_id"] for r in rows) == [11, 12]
    assert com.get_max_worker_id() == (True, 12)
    reported = {"managed": {"SCORE": {"running": 1, "submitted": 1}}}
    assert com.update_worker_stats(site, reported) == (True, "OK")
    stats, msg = com.get_worker_stats_from_panda()
    assert msg == "OK" and stats[site][hid] == reported
    diag = DiagSpec()
    diag.moduleName, diag.identifier, diag.messageLevel = "monitor", "workerID=11", "WARNING"
    diag.diagMessage, diag.creationTime = "something odd", datetime.datetime(2026, 11, 25, 11, 0)
    assert com.send_dialog_messages([diag])[0] is True
    # the form the DB proxy hands over: [creation time, host, metrics JSON]
    assert com.update_service_metrics([["2026-11-25 11:00:00.000000", "edge1", '{"cpu_pc": 3.0}']]) == (True, "OK")
    state = emu.state()
    assert state["dialogs"][hid] == 1 and state["metrics"][hid] == 1

    # commands
    command_id = emu.add_command(hid, "REPORT_WORKER_STATS:" + site)
    commands = com.get_commands(5)
    assert [c["command_id"] for c in commands] == [command_id]
    assert com.ack_commands([command_id]) is True
    assert com.get_commands(5) == []

    # statistics and metaconfig
    types, msg = com.get_resource_types()
    assert msg == "" and {t["resource_name"] for t in types} >= {"SCORE", "MCORE"}
    job_stats, msg = com.get_job_stats()
    assert msg == "OK" and site in job_stats
    detailed, msg = com.get_job_stats_new()
    assert msg == "OK" and "managed" in detailed[site]

    # credentials
    proxy, msg = com.get_proxy("production")
    assert msg == "" and proxy.startswith("-----BEGIN CERTIFICATE-----")
    key, msg = com.get_token_key("client_a")
    assert msg == "" and len(key) == 64
    pair, err = com.get_key_pair("pub_name", "priv_name")
    assert err is None and set(pair) == {"public_key", "private_key"}

    # events
    es_site = _site()
    (es_id,) = emu.add_task(es_site, 1, events=5)
    (es_job,), _ = com.get_jobs(es_site, "node-1", "managed", "ce-1", 1, None)
    (es_spec,) = _jobspecs([es_job])
    ok, ranges = com.get_event_ranges(
        {es_id: {"pandaID": es_id, "taskID": es_job["taskID"], "jobsetID": es_job["jobsetID"], "nRanges": 3}},
        False, str(tmp_path))
    assert ok and len(ranges[es_id]) == 3
    assert com.check_event_availability(es_spec) == (True, 2)
    ret = com.update_event_ranges([{"eventRanges": [{"eventRangeID": ranges[es_id][0]["eventRangeID"],
                                                      "eventStatus": "finished"}]}], com.make_logger())
    assert ret["StatusCode"] == 0 and ret["Returns"] == [True]
    # update_jobs also reports the events of an event-service job
    event = EventSpec()
    event.eventRangeID, event.eventStatus, event.subStatus = ranges[es_id][1]["eventRangeID"], "finished", "finished"
    es_spec.add_event(event, None)
    assert com.update_jobs([es_spec], "es")[0]["StatusCode"] == 0
    assert event.subStatus == "done" and emu.state()["event_ranges"]["finished"] >= 2

    # files: worker log upload and HPO checkpoints
    log_bytes = b"line one\nline two\n" * 10
    ok, msg = com.upload_file(f"{hid}.log", io.BytesIO(log_bytes), 9, 50)
    assert ok and msg.endswith(f"{hid}.log")
    task_id, point_id = 77, uuid.uuid4().hex[:6]
    checkpoint = tmp_path / "cp"
    checkpoint.write_bytes(b"checkpoint-data")
    assert com.upload_checkpoint(emu.base_url, task_id, es_id, f"{task_id}_{point_id}", str(checkpoint))
    ok, file_name = com.download_checkpoint(emu.base_url, task_id, es_id, point_id, str(tmp_path))
    assert ok and Path(file_name).read_bytes() == b"checkpoint-data"
    assert com.clear_checkpoint(emu.base_url, task_id, point_id)[0] is True
    assert com.clear_checkpoint(emu.base_url, task_id, point_id)[0] is False

    # credentials handling
    com.force_credential_renewal()
    com.renew_token()
    auth_type, cert_file, _, _, token = com.get_host_specific_auth_config(emu.base_url)
    assert auth_type == ("oidc" if mode == "tls_token" else "x509")
    assert (token == TOKEN_A) if mode == "tls_token" else (token is None)


def test_pilot_reported_attributes_reach_panda_as_api_arguments(emu_http, make_comm):
    """jobAttributes (camelCase, ints as strings) are sent as pilot/update_job arguments the server accepts."""
    logger = logging.getLogger("panda.log.communicator")
    capture = _Capture()
    logger.addHandler(capture)
    try:
        com, _ = make_comm(emu_http, "http", "requests")
        site = _site()
        (panda_id,) = emu_http.add_task(site, 1)
        jobs, _ = com.get_jobs(site, "n", "managed", "ce", 1, None)
        (spec,) = _jobspecs(jobs)
        spec.set_attributes({panda_id: {"transExitCode": 0, "pilotErrorCode": 1305, "nEvents": 100, "maxRSS": 2048,
                                        "cpuConsumptionTime": 123, "batchID": 77, "workdir": "/scratch/job"}})
        (result,) = com.update_jobs([spec], "attrs")
    finally:
        logger.removeHandler(capture)
    assert result["StatusCode"] == 0, result
    report = _job(emu_http, panda_id)["report"]
    assert {k: report[k] for k in ("trans_exit_code", "pilot_error_code", "n_events", "max_rss",
                                   "cpu_consumption_time", "batch_id")} == {
        "trans_exit_code": 0, "pilot_error_code": 1305, "n_events": 100, "max_rss": 2048,
        "cpu_consumption_time": 123, "batch_id": "77"}
    assert "workdir" not in report
    assert any("workdir" in line and "not sent to PanDA" in line for line in capture.lines)


def test_event_request_from_pilot_files(emu_http, make_comm):
    """A worker's event request (ids as strings, extra keys) is turned into valid API arguments."""
    com, _ = make_comm(emu_http, "http", "pycurl")
    site = _site()
    (panda_id,) = emu_http.add_task(site, 1, events=4)
    (job,), _ = com.get_jobs(site, "n", "managed", "ce", 1, None)
    request = {str(panda_id): {"pandaID": str(panda_id), "taskID": str(job["taskID"]),
                               "jobsetID": str(job["jobsetID"]), "nRanges": "3", "coreCount": 8}}
    ok, ranges = com.get_event_ranges(request, True, None)
    assert ok and len(ranges[str(panda_id)]) == 3


# ------------------------------------------------------------------ auth
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_token_file_reread_after_change(emu_tls, make_comm, tmp_path, transport):
    com, _ = make_comm(emu_tls, "tls_token", transport)
    token_file = tmp_path / "token"
    assert com.check_panda()[0]
    token_file.write_text("not-a-valid-token-at-all")
    ok, err = com.check_panda()
    assert not ok and "StatusCode=403" in err and "not-a-valid-token" not in err
    token_file.write_text(TOKEN_B)
    assert com.check_panda()[0]
    assert com.auth_token == TOKEN_B


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_tls_without_credentials_is_refused_once(emu_tls, make_comm, transport):
    com, _ = make_comm(emu_tls, "http", transport, ca_cert=emu_tls.ca_cert)
    ok, err = com.update_workers([_workspec(1, "X")])
    assert ok is None and "StatusCode=403" in err and "authentication failed" in err
    assert "attempts" not in err  # an auth failure is final: no retries


# ------------------------------------------------------------------ faults and idempotency
def _seed_fault_then_ok(kind: str, endpoint: str) -> int:
    """A seed where the 1st request to ``endpoint`` gets ``kind`` and the 2nd none."""
    for seed in range(1000):
        cfg = FaultConfig()
        cfg.configure({"rate": 0.5, "kinds": [kind], "endpoints": [endpoint], "seed": seed})
        if cfg.decide(endpoint) == kind and cfg.decide(endpoint) is None:
            return seed
    raise AssertionError("no seed found")


APPLIED_KINDS = ["drop_after_commit", "truncated_json", "double_body"]
NOT_APPLIED_KINDS = ["http500", "http503", "invalid_json", "drop", "timeout"]


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("kind", APPLIED_KINDS + NOT_APPLIED_KINDS)
def test_update_jobs_retried_and_applied_once(emu_http, make_comm, kind, transport):
    com, _ = make_comm(emu_http, "http", transport, timeout=1)
    site = _site()
    (panda_id,) = emu_http.add_task(site, 1)
    jobs, _ = com.get_jobs(site, "n", "managed", "ce", 1, None)
    before = _job(emu_http, panda_id)
    endpoint = "pilot/update_jobs_bulk"
    emu_http.set_faults(rate=0.5, kinds=[kind], endpoints=[endpoint], seed=_seed_fault_then_ok(kind, endpoint),
                        timeout_delay=2)
    try:
        results = com.update_jobs(_jobspecs(jobs), "faults")
        counters = emu_http.state()["faults"]
    finally:
        emu_http.set_faults(rate=0)
    assert results[0]["StatusCode"] == 0 and results[0]["command"] == "NULL"
    assert counters["calls"][endpoint] == 2 and counters["injected"][endpoint][kind] >= 1
    after = _job(emu_http, panda_id)
    assert after["status"] == "running"
    assert after["n_changes"] == before["n_changes"] + 1  # the state changed exactly once
    assert after["n_reports"] == before["n_reports"] + (2 if kind in APPLIED_KINDS else 1)


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("mode", ["tls_cert", "tls_token"])
def test_retry_after_lost_reply_over_https(emu_tls, make_comm, mode, transport):
    """drop_after_commit over TLS (the client sees an SSL EOF, not a reset): retried, applied once."""
    com, _ = make_comm(emu_tls, mode, transport)
    site = _site()
    (panda_id,) = emu_tls.add_task(site, 1)
    jobs, _ = com.get_jobs(site, "n", "managed", "ce", 1, None)
    before = _job(emu_tls, panda_id)
    endpoint = "pilot/update_jobs_bulk"
    kind = "drop_after_commit"
    injected_before = emu_tls.state()["faults"]["injected"].get(endpoint, {}).get(kind, 0)
    emu_tls.set_faults(rate=0.5, kinds=[kind], endpoints=[endpoint], seed=_seed_fault_then_ok(kind, endpoint))
    try:
        (result,) = com.update_jobs(_jobspecs(jobs), "tls-faults")
        counters = emu_tls.state()["faults"]
    finally:
        emu_tls.set_faults(rate=0)
    assert result["StatusCode"] == 0
    assert counters["calls"][endpoint] == 2 and counters["injected"][endpoint][kind] == injected_before + 1
    after = _job(emu_tls, panda_id)
    assert after["n_changes"] == before["n_changes"] + 1 and after["n_reports"] == before["n_reports"] + 2


@pytest.mark.parametrize("kind", ["drop_after_commit", "http503", "double_body"])
def test_update_workers_retried_gives_one_row(emu_http, make_comm, kind):
    com, hid = make_comm(emu_http, "http", "pycurl" if kind == "double_body" else "requests")
    endpoint = "harvester/update_workers"
    emu_http.set_faults(rate=0.5, kinds=[kind], endpoints=[endpoint], seed=_seed_fault_then_ok(kind, endpoint))
    try:
        assert com.update_workers([_workspec(5, "S")]) == ([True], "OK")
        calls = emu_http.state()["faults"]["calls"][endpoint]
    finally:
        emu_http.set_faults(rate=0)
    (row,) = emu_http.workers(harvester_id=hid)
    assert calls == 2 and row["worker_id"] == 5 and row["n_updates"] == 1


@pytest.mark.parametrize("endpoint", ["event/update_event_ranges", "harvester/add_dialogs",
                                      "harvester/update_service_metrics", "harvester/acknowledge_commands"])
def test_other_updates_retried_after_lost_reply_apply_once(emu_http, make_comm, endpoint):
    com, hid = make_comm(emu_http, "http", "requests")
    site = _site()
    (panda_id,) = emu_http.add_task(site, 1, events=2)
    (job,), _ = com.get_jobs(site, "n", "managed", "ce", 1, None)
    ok, ranges = com.get_event_ranges({panda_id: {"pandaID": panda_id, "taskID": job["taskID"],
                                                  "jobsetID": job["jobsetID"], "nRanges": 1}}, False, None)
    range_id = ranges[panda_id][0]["eventRangeID"]
    command_id = emu_http.add_command(hid, "RELOAD_CONFIG")
    assert [c["command_id"] for c in com.get_commands(5)] == [command_id]
    diag = DiagSpec()
    diag.diagID, diag.moduleName, diag.identifier, diag.messageLevel = 7, "monitor", "workerID=1", "ERROR"
    diag.diagMessage, diag.creationTime = "boom", datetime.datetime(2026, 11, 25, 11, 0)
    calls = {
        "event/update_event_ranges": lambda: com.update_event_ranges(
            [{"eventRanges": [{"eventRangeID": range_id, "eventStatus": "finished"}]}], com.make_logger()
        )["Returns"] == [True],
        "harvester/add_dialogs": lambda: com.send_dialog_messages([diag])[0],
        "harvester/update_service_metrics": lambda: com.update_service_metrics(
            [["2026-11-25 11:00:00.000000", "edge1", '{"cpu_pc": 1.0}']])[0],
        "harvester/acknowledge_commands": lambda: com.ack_commands([command_id]),
    }
    kind = "drop_after_commit"
    emu_http.set_faults(rate=0.5, kinds=[kind], endpoints=[endpoint], seed=_seed_fault_then_ok(kind, endpoint))
    try:
        assert calls[endpoint]() is True
        n_calls = emu_http.state()["faults"]["calls"][endpoint]
    finally:
        emu_http.set_faults(rate=0)
    assert n_calls == 2  # applied, reply lost, sent again
    state = emu_http.state()
    (event_row,) = [e for e in emu_http.admin("GET", "events", {"panda_id": panda_id})["data"]
                    if e["event_range_id"] == range_id]
    if endpoint == "event/update_event_ranges":
        assert event_row["status"] == "finished" and event_row["n_changes"] == 2  # sent, then finished once
    elif endpoint == "harvester/add_dialogs":
        assert state["dialogs"][hid] == 1
    elif endpoint == "harvester/update_service_metrics":
        assert state["metrics"][hid] == 1
    else:
        assert hid not in state["commands"] and com.get_commands(5) == []


def test_retries_are_bounded(emu_http, make_comm):
    com, _ = make_comm(emu_http, "http", "requests", maxRetries=2)
    endpoint = "harvester/update_workers"
    emu_http.set_faults(rate=1.0, kinds=["http500"], endpoints=[endpoint])
    try:
        ret, err = com.update_workers([_workspec(1, "S"), _workspec(2, "S")])
        calls = emu_http.state()["faults"]["calls"][endpoint]
        results = com.update_jobs([_bare_jobspec(1)] * 2, "x")
    finally:
        emu_http.set_faults(rate=0)
    assert ret is None and "StatusCode=500" in err and "after 3 attempts" in err
    assert calls == 3
    # update_jobs_bulk was not faulted: the server's own per-job answer comes through
    assert results[0]["StatusCode"] == 999 and "not found" in results[0]["ErrorDiag"]
    emu_http.set_faults(rate=1.0, kinds=["drop"], endpoints=["pilot/update_jobs_bulk"])
    try:
        results = com.update_jobs([_bare_jobspec(1)] * 3, "x")
        jobs, err = com.get_jobs("S", "n", "managed", "ce", 1, None)
    finally:
        emu_http.set_faults(rate=0)
    assert [r["StatusCode"] for r in results] == [999, 999, 999] and "gave up" in results[0]["ErrorDiag"]
    assert jobs == [] and err == "No jobs in PanDA"


def test_random_error_rate_all_calls_succeed(emu_http, make_comm):
    com, hid = make_comm(emu_http, "http", "requests", maxRetries=6, timeout=1)
    emu_http.set_faults(rate=0.3, kinds=["http500", "http503", "invalid_json", "drop", "drop_after_commit",
                                         "truncated_json", "double_body", "duplicate_apply"], seed=7)
    try:
        assert com.is_alive({"sw_version": "x"}) == (True, "")
        for i in range(15):
            assert com.update_workers([_workspec(100 + i, "S")]) == ([True], "OK")
        injected = emu_http.state()["faults"]["injected"]
    finally:
        emu_http.set_faults(rate=0)
    assert sum(sum(v.values()) for v in injected.values()) >= 3
    assert sorted(r["worker_id"] for r in emu_http.workers(harvester_id=hid)) == list(range(100, 115))


def test_application_failure_not_retried(emu_http, make_comm):
    com, hid = make_comm(emu_http, "http", "requests")
    assert com.is_alive({"sw_version": "x"}) == (True, "")
    calls = emu_http.state()["faults"]["calls"]["harvester/heartbeat"]
    ok, msg = com.is_alive({"no_such_column": 1})
    assert not ok and "database error" in msg
    # one heartbeat retry for the documented quirk, nothing more
    assert emu_http.state()["faults"]["calls"]["harvester/heartbeat"] == calls + 2


# ------------------------------------------------------------------ secrets never logged
class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_verbose_logs_hold_no_secret(emu_tls, make_comm, transport):
    logger = logging.getLogger("panda.log.communicator")
    capture = _Capture()
    logger.addHandler(capture)
    old_level = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        com, _ = make_comm(emu_tls, "tls_token", transport, verbose="True", useInspect="True")
        proxy, _ = com.get_proxy("production")
        key, _ = com.get_token_key("client_b")
        pair, _ = com.get_key_pair("pub", "priv")
        assert com.is_alive({"sw_version": "x"})[0]
        emu_tls.set_faults(rate=1.0, kinds=["http500"], endpoints=["creds/get_proxy"])
        try:
            assert com.get_proxy("production")[0] is None
        finally:
            emu_tls.set_faults(rate=0)
    finally:
        logger.removeHandler(capture)
        logger.setLevel(old_level)
    text = "\n".join(capture.lines)
    assert "URL=" in text and "attempt=1" in text  # verbose mode was on
    assert "exec=get_token_key/" in text  # useInspect names the calling method
    body = proxy.split("\n")[1]
    for secret in (TOKEN_A, body, key, pair["private_key"], pair["public_key"]):
        assert secret not in text


# ------------------------------------------------------------------ pool
class _CountingTransport:
    """Wraps a transport and records the peak number of requests in flight across instances."""

    lock = threading.Lock()
    in_flight = 0
    peak = 0

    def __init__(self) -> None:
        self.inner = make_transport("requests")
        self.name = "counting"

    def send(self, request):
        cls = type(self)
        with cls.lock:
            cls.in_flight += 1
            cls.peak = max(cls.peak, cls.in_flight)
        try:
            return self.inner.send(request)
        finally:
            with cls.lock:
                cls.in_flight -= 1

    def close(self) -> None:
        self.inner.close()


def test_pool_bounds_concurrency(emu_http, make_comm):
    make_comm(emu_http, "http", "requests")
    pool = CommunicatorPool(n_connections=2,
                            communicator_class=lambda: PandaCommunicator(transport=_CountingTransport()))
    emu_http.set_faults(rate=1.0, kinds=["delay"], endpoints=["system/is_alive"], delay=0.15)
    results: list = []
    try:
        t0 = time.monotonic()
        threads = [threading.Thread(target=lambda: results.append(pool.check_panda()[0])) for _ in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        elapsed = time.monotonic() - t0
    finally:
        emu_http.set_faults(rate=0)
    assert results == [True] * 20
    assert _CountingTransport.peak == 2
    assert elapsed >= 10 * 0.15 * 0.9  # 20 calls, 2 at a time


def test_pool_from_cfg_and_credential_renewal(fresh_home, emu_http):
    fresh_home({"communicator": {"nConnections": 3}, "pandacon": {"server_api_url_ssl": emu_http.base_url}})
    pool = CommunicatorPool()
    assert pool.nConnections == 3 and pool.pool.qsize() == 3
    assert all(isinstance(c, PandaCommunicator) for c in pool.pool.queue)
    renewed = []
    for con in pool.pool.queue:
        con.force_credential_renewal = lambda con=con: renewed.append(con)
    pool.force_credential_renewal()
    assert len(renewed) == 3
    assert pool.check_panda()[0] is True and pool.pool.qsize() == 3
    with pytest.raises(AttributeError):
        pool.no_such_method()
