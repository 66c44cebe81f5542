"""The communicator against the emulator answering as the real PanDA server does (issue 11).

GET list arguments go as repeated keys (check_jobs), the real reply shapes (bare resource-type
list, get_status entries with a null command, string taskID/jobsetID) are taken, and calls that
hand something out (acquire_jobs, acquire_commands, acquire_event_ranges) are never retried
blindly after their reply was lost: the lost window is logged for an operator instead.
"""
# ruff: noqa: F811  (fixtures imported from test_communicator_emulator are redefined as arguments)

from __future__ import annotations

import contextlib
import re

import pytest

from pandaharvester.harvestercore.resource_type_mapper import ResourceTypeMapper

from test_communicator_emulator import (TRANSPORTS, _job, _jobspecs, _seed_fault_then_ok, _site,  # noqa: F401
                                        emu_http, make_comm)

ACQUIRE = "pilot/acquire_jobs"
WINDOW = r"window_utc=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


@contextlib.contextmanager
def faulted(emu, endpoint: str, **settings):
    """Faults on ``endpoint`` inside the block; then ``box["calls"]`` is the requests it got."""
    box: dict = {}
    emu.set_faults(endpoints=[endpoint], **settings)
    try:
        yield box
    finally:
        box["calls"] = emu.state()["faults"]["calls"].get(endpoint, 0)
        emu.set_faults(rate=0)


# ------------------------------------------------------------------ item 1: check_jobs
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_check_jobs_gets_status_and_kill_command(emu_http, make_comm, transport):
    """job/get_status takes job_ids as repeated keys; a tobekilled set by PanDA comes back."""
    com, _ = make_comm(emu_http, "http", transport)  # nJobsInBulk=2: three ids make two calls
    site = _site()
    ids = emu_http.add_task(site, 3)
    jobs, _ = com.get_jobs(site, "n", "managed", "ce", 3, None)
    specs = _jobspecs(jobs)
    assert [r["StatusCode"] for r in com.update_jobs(specs[:1], "x")] == [0]
    emu_http.kill_job(ids[2])
    checked = com.check_jobs(specs)
    assert [(r["StatusCode"], r["status"], r["command"]) for r in checked] == [
        (0, "running", None), (0, "sent", None), (0, "sent", "tobekilled")]
    assert all(r["ErrorDiag"] == "OK" for r in checked)


# ------------------------------------------------------------------ item 3: real reply shapes
def test_real_reply_shapes_are_taken(emu_http, make_comm):
    com, _ = make_comm(emu_http)
    types, message = com.get_resource_types()
    assert message == "" and isinstance(types, list)
    mapper = ResourceTypeMapper(id="fidelity-rt", cache_reader=lambda key: type("C", (), {"data": types})())
    mapper.load_data(force=True)
    assert mapper.from_cache and mapper.is_single_core_resource_type("SCORE")
    site = _site()
    (panda_id,) = emu_http.add_task(site, 1)
    (job,), _ = com.get_jobs(site, "n", "managed", "ce", 1, None)
    assert isinstance(job["taskID"], str) and "reqID" in job
    (spec,) = _jobspecs([job])
    assert spec.taskID == int(job["taskID"]) and spec.jobsetID == int(job["jobsetID"])
    # the event calls send the ids as the ints the API declares
    ok, ranges = com.get_event_ranges({panda_id: {"pandaID": panda_id, "taskID": job["taskID"],
                                                  "jobsetID": job["jobsetID"], "nRanges": 1}}, False, None)
    assert ok and ranges == {panda_id: []}  # no event ranges for this job, but the call was accepted
    assert com.check_event_availability(spec) == (True, 0)


# ------------------------------------------------------------------ item 10: lost replies
@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("kind", ["drop_after_commit", "truncated_json", "double_body", "http500"])
def test_acquire_jobs_not_retried_after_its_reply_was_lost(emu_http, make_comm, caplog, kind, transport):
    com, hid = make_comm(emu_http, "http", transport)
    site = _site()
    ids = emu_http.add_task(site, 3)
    with faulted(emu_http, ACQUIRE, rate=1.0, kinds=[kind]) as seen, \
            caplog.at_level("ERROR", logger="panda.log.communicator"):
        jobs, message = com.get_jobs(site, "node-1", "managed", "ce", 3, None)
    assert jobs == [] and seen["calls"] == 1  # one request: a second one would get a new batch
    if kind != "http500":  # the emulator applies these before the reply is lost
        assert [_job(emu_http, i)["status"] for i in ids] == ["sent"] * 3
    (line,) = [r.getMessage() for r in caplog.records if "LOST_REPLY" in r.getMessage()]
    assert f"LOST_REPLY {ACQUIRE} harvester_id={hid} site={site} n_jobs=3 " in line
    assert re.search(WINDOW, line) and "no idempotency key" in line and "reassign" in line
    assert message.startswith("LOST_REPLY")


@pytest.mark.parametrize("kind", ["http503", "invalid_json"])
def test_acquire_jobs_retried_when_the_server_did_not_process_it(emu_http, make_comm, caplog, kind):
    """503 means not processed: retried and the jobs arrive. An unreadable body may follow a
    dispatch: not retried, even though this emulator fault happens not to apply it."""
    com, _ = make_comm(emu_http)
    site = _site()
    ids = emu_http.add_task(site, 2)
    with faulted(emu_http, ACQUIRE, rate=0.5, kinds=[kind], seed=_seed_fault_then_ok(kind, ACQUIRE)) as seen, \
            caplog.at_level("ERROR", logger="panda.log.communicator"):
        jobs, message = com.get_jobs(site, "node-1", "managed", "ce", 2, None)
    calls = seen["calls"]
    if kind == "http503":
        assert calls == 2 and message == "OK" and [j["PandaID"] for j in jobs] == ids
        assert "LOST_REPLY" not in caplog.text
    else:
        assert calls == 1 and jobs == [] and "LOST_REPLY" in caplog.text


def test_acquire_jobs_retried_while_the_server_cannot_be_reached(fresh_home, make_comm, emu_http, caplog):
    """Connection refused: the request never left, so it is retried (bounded) and nothing is lost."""
    com, _ = make_comm(emu_http, maxRetries=2)
    url = emu_http.base_url
    emu_http.stop()
    try:
        with caplog.at_level("WARNING", logger="panda.log.communicator"):
            jobs, message = com.get_jobs(_site(), "n", "managed", "ce", 1, None)
    finally:
        emu_http.start()
    assert emu_http.base_url == url
    assert jobs == [] and "gave up after 3 attempts" in message and "LOST_REPLY" not in caplog.text
    assert caplog.text.count("retrying in") == 2


def test_acquire_commands_not_retried_after_its_reply_was_lost(emu_http, make_comm, caplog):
    com, hid = make_comm(emu_http)
    emu_http.add_command(hid, "RELOAD_CONFIG")
    endpoint = "harvester/acquire_commands"
    with faulted(emu_http, endpoint, rate=1.0, kinds=["drop_after_commit"]) as seen, \
            caplog.at_level("ERROR", logger="panda.log.communicator"):
        assert com.get_commands(5) == []
    assert seen["calls"] == 1
    assert f"LOST_REPLY {endpoint} harvester_id={hid} n_commands=5 " in caplog.text
    assert emu_http.state()["commands"][hid] == {"sent": 1}  # handed out once, as PanDA did


def test_acquire_event_ranges_not_retried_after_its_reply_was_lost(emu_http, make_comm, caplog):
    com, hid = make_comm(emu_http)
    site = _site()
    (panda_id,) = emu_http.add_task(site, 1, events=4)
    (job,), _ = com.get_jobs(site, "n", "managed", "ce", 1, None)
    endpoint = "event/acquire_event_ranges"
    request = {panda_id: {"pandaID": panda_id, "taskID": job["taskID"], "jobsetID": job["jobsetID"], "nRanges": 2}}
    with faulted(emu_http, endpoint, rate=1.0, kinds=["truncated_json"]) as seen, \
            caplog.at_level("ERROR", logger="panda.log.communicator"):
        ok, ranges = com.get_event_ranges(request, False, None)
    assert not ok and ranges == {} and seen["calls"] == 1
    assert f"LOST_REPLY {endpoint} harvester_id={hid} PandaID={panda_id} n_ranges=2 " in caplog.text
