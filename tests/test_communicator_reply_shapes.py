"""Reply shapes: one check per PanDA endpoint (harvestercommunicator/reply_shapes.py).

Real replies pass; every ``wrong_shape`` bend of the emulator is caught with one error naming
the endpoint and the value; through the real communicator and the real emulator a wrong shape
is a failed call (retried when idempotent, ``LOST_REPLY`` for ``acquire_*``), never an exception;
the JobFetcher and the CommandManager live through it and get everything once it is gone.
"""

from __future__ import annotations

import logging
import uuid

import pytest

from pandaharvester.harvesterbody.command_manager import CommandManager
from pandaharvester.harvesterbody.job_fetcher import JobFetcher
from pandaharvester.harvestercommunicator import http_client
from pandaharvester.harvestercommunicator.panda_communicator import PandaCommunicator
from pandaharvester.harvestercommunicator.reply_shapes import DATA_SHAPES, check_reply, endpoint_of, envelope
from pandaharvester.harvestertest.panda_emulator.faults import SHAPE_VARIANTS, shape_variants_for, wrong_shape
from pandaharvester.harvestertest.panda_emulator.launcher import start_emulator

from test_agents_helpers import agent_env, emulator_overrides, queue, sql  # noqa: F401

JOB = {"PandaID": 4000000001, "attemptNr": 1, "jobsetID": "1001", "taskID": "300", "currentPriority": 900}
# successful replies as the server sends them (the emulator's, which follow the real server)
GOOD = {
    "pilot/acquire_jobs": {"StatusCode": 0, "jobs": [JOB, dict(JOB, PandaID=4000000002)]},
    "pilot/update_jobs_bulk": [{"success": True, "message": "", "data": {"StatusCode": 0, "command": "NULL"}}],
    "job/get_status": [{"status": "running", "command": None}, {"status": "finished", "command": "tobekilled"}],
    "event/acquire_event_ranges": {"StatusCode": 0, "eventRanges": [{"eventRangeID": "1-2-3-4-5", "LFN": "f"}]},
    "event/update_event_ranges": {"StatusCode": 0, "Returns": [True, False, None]},
    "event/get_available_event_range_count": 12,
    "harvester/acquire_commands": [{"command_id": 3, "command": "KILL_WORKERS", "params": [1],
                                    "ack_requested": True}],
    "harvester/update_workers": [True, False],
    "harvester/get_worker_statistics": {"H1": {"SITE": {"managed": {"SCORE": {"running": 1}}}}},
    "harvester/get_current_worker_id": 41,
    "statistics/active_job_stats_by_site": {"SITE": {"running": 3, "sent": 1}},
    "statistics/active_job_detailed_stats_by_site": {"SITE": {"managed": {"SCORE": {"running": 3}}}},
    "metaconfig/get_resource_types": [{"resource_name": "SCORE", "mincore": 1, "maxcore": 1}],
    "creds/get_proxy": {"user_proxy": "-----BEGIN CERTIFICATE-----\nSECRETPEM\n"},
    "creds/get_token_key": {"tokenKey": "SECRETKEY"},
    "creds/get_key_pair": {"public_key": "PUB", "private_key": "SECRETPRIV"},
}
# bends that leave a reply of a valid shape: an empty answer ({} = no statistics yet; [] from
# update_workers, which the communicator refuses for not having one bool per worker sent)
STILL_VALID = {("harvester/update_workers", "missing_keys"),
               ("harvester/get_worker_statistics", "missing_keys"),
               ("statistics/active_job_stats_by_site", "missing_keys"),
               ("statistics/active_job_detailed_stats_by_site", "missing_keys")}


def ok(data):
    return {"success": True, "message": "", "data": data}


def test_every_endpoint_read_has_a_shape_and_real_replies_fit():
    assert set(GOOD) == set(DATA_SHAPES)
    for endpoint, data in GOOD.items():
        assert check_reply(endpoint, ok(data)) is None, endpoint
    # other forms the real server (or older ones) send
    assert check_reply("pilot/acquire_jobs", ok({"StatusCode": 20, "errorDialog": "no jobs"})) is None
    assert check_reply("pilot/acquire_jobs", {"success": False, "message": "No jobs in PanDA", "data": None}) is None
    assert check_reply("event/acquire_event_ranges", ok([{"eventRangeID": "1-2"}])) is None
    assert check_reply("event/acquire_event_ranges", ok({"StatusCode": 0, "eventRanges": "[]"})) is None
    assert check_reply("metaconfig/get_resource_types", ok({"ResourceTypes": [{"resource_name": "SCORE"}]})) is None
    assert check_reply("creds/get_proxy", ok("PEM")) is None
    assert check_reply("harvester/heartbeat", ok(None)) is None
    # a failed reply's data is not read: anything goes there
    assert check_reply("harvester/update_workers", {"success": False, "message": "db", "data": {"x": 1}}) is None
    # one bad item among good jobs is the job fetcher's to skip alone (docs/guarantees.md)
    assert check_reply("pilot/acquire_jobs", ok({"StatusCode": 0, "jobs": [JOB, 42, "junk"]})) is None
    assert endpoint_of("/credential/get_proxy?role=x") == "creds/get_proxy"


@pytest.mark.parametrize("variant", SHAPE_VARIANTS)
@pytest.mark.parametrize("endpoint", sorted(GOOD))
def test_every_wrong_shape_of_the_emulator_is_caught(endpoint, variant):
    if variant not in shape_variants_for(ok(GOOD[endpoint])):
        pytest.skip(f"the emulator does not bend {endpoint} replies that way")
    for pick in range(3):
        bent = wrong_shape(ok(GOOD[endpoint]), variant, pick)
        error = check_reply(endpoint, bent)
        if (endpoint, variant) in STILL_VALID:
            assert error is None
            continue
        assert error is not None, (endpoint, variant, bent)
        assert error.startswith(f"PanDA {endpoint} replied ") and ": expected " in error
        if endpoint.startswith("creds/"):
            assert "SECRET" not in error and "PEM" not in error and "not shown" in error
        else:
            assert repr(bent)[:50] in error


def test_shape_errors_name_endpoint_value_and_what_was_expected():
    error = check_reply("harvester/acquire_commands", ok(["KILL_WORKERS", "SET_N_WORKERS"]))
    assert error == ("PanDA harvester/acquire_commands replied {'success': True, 'message': '', 'data': "
                     "['KILL_WORKERS', 'SET_N_WORKERS']}: expected data: a list of commands {command_id: int, "
                     "command: str, params, ack_requested} (data[0] is a str)")
    assert check_reply("pilot/acquire_jobs", 5) == ("PanDA pilot/acquire_jobs replied 5: expected an API reply "
                                                    "{success: bool, message: str, data} (the reply is an int)")
    assert "(data.jobs is an int)" in check_reply("pilot/acquire_jobs", ok({"StatusCode": 0, "jobs": 7}))
    assert "(data has no jobs)" in check_reply("pilot/acquire_jobs", ok({"StatusCode": 0}))
    assert "(success is a str)" in check_reply("system/is_alive", {"success": "false", "message": ""})
    assert "(data[1] has no status)" in check_reply("job/get_status", ok([{"status": "a"}, {"command": None}]))
    long = check_reply("harvester/update_workers", ok(["x" * 500]))
    assert "x" * 150 in long and "x" * 300 not in long and "...: expected" in long  # the value cut at 200 chars
    assert envelope(ok([1])) == (True, "", [1]) and envelope(7)[0] is False


# ------------------------------------------------------------------ the real communicator and emulator
@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    emu = start_emulator(tmp_path_factory.mktemp("emu_shapes"), seed=5, sent_timeout=2.0)
    yield emu
    emu.stop()


@pytest.fixture()
def comm(fresh_home, emulator):
    harvester_id = f"h-{uuid.uuid4().hex[:8]}"
    fresh_home(emulator_overrides(emulator, harvester_id))
    emulator.set_faults(rate=0.0)
    yield PandaCommunicator(), harvester_id
    emulator.set_faults(rate=0.0)


def test_communicator_turns_a_wrong_shape_into_a_failed_call(comm, emulator, caplog):
    communicator, harvester_id = comm
    site = f"S_{uuid.uuid4().hex[:6]}"
    before = http_client.COUNTERS.snapshot()
    emulator.add_task(site, 2)
    emulator.add_command(harvester_id, "REPORT_WORKER_STATS:" + site)
    emulator.set_faults(rate=1.0, kinds=["wrong_shape"], seed=11)
    with caplog.at_level(logging.ERROR, logger="panda.log.communicator"):
        jobs, message = communicator.get_jobs(site, "node", "managed", "node", 2, None)
        assert jobs == [] and "LOST_REPLY pilot/acquire_jobs" in message and "PanDA pilot/acquire_jobs replied" in message
        assert communicator.get_commands(5) == []
        ok_hb, hb_message = communicator.is_alive({})
        assert not ok_hb and hb_message.startswith("PanDA harvester/heartbeat replied ") and "gave up after 2" in hb_message
        assert communicator.ack_commands([1]) is False
        stats, stats_message = communicator.get_job_stats()
        assert stats == {} and "statistics/active_job_stats_by_site" in stats_message
    injected = emulator.state()["faults"]["injected"]
    assert injected["pilot/acquire_jobs"] == {"wrong_shape": 1}  # not sent again: it may have been applied
    assert injected["harvester/acquire_commands"] == {"wrong_shape": 1}
    assert injected["harvester/heartbeat"] == {"wrong_shape": 2}  # idempotent: retried (maxRetries = 1)
    after = http_client.COUNTERS.snapshot()
    assert after["shape_errors"] - before["shape_errors"] == sum(sum(k.values()) for k in injected.values())
    assert after["lost_replies"] - before["lost_replies"] == 2 and after["retries"] - before["retries"] >= 3
    errors = [r.getMessage() for r in caplog.records]
    assert any("LOST_REPLY harvester/acquire_commands" in e and "PanDA harvester/acquire_commands replied" in e
               for e in errors)
    assert not any(r.exc_info for r in caplog.records) and not any("Traceback" in e for e in errors)
    # the faults gone, the same calls work
    emulator.set_faults(rate=0.0)
    assert communicator.is_alive({}) == (True, "")


@pytest.mark.parametrize("seed", range(4))
def test_job_fetcher_and_command_manager_live_through_wrong_shapes(agent_env, emulator, caplog, seed):  # noqa: F811
    site = f"PQ_{uuid.uuid4().hex[:8]}"
    harvester_id = f"h-{uuid.uuid4().hex[:8]}"
    _home, mapper, _proxy = agent_env(lambda h: {site: queue(h, nQueueLimitJob=10)},
                                      emulator_overrides(emulator, harvester_id))
    communicator = PandaCommunicator()
    ids = emulator.add_task(site, 4)
    emulator.add_command(harvester_id, f"SET_N_WORKERS_JOBTYPE:{site}", {"managed": {"SCORE": 3}})
    emulator.set_faults(rate=1.0, kinds=["wrong_shape"], seed=seed)
    fetcher = JobFetcher(communicator, mapper, single_mode=True)
    manager = CommandManager(communicator, mapper, single_mode=True)
    with caplog.at_level(logging.DEBUG):
        fetcher.run_one_cycle()
        manager.run_one_cycle()
    assert sql("SELECT PandaID FROM job_table") == [] and sql("SELECT command FROM command_table") == []
    tracebacks = [r.getMessage() for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]
    assert tracebacks == []
    assert not any(name in r.getMessage() for r in caplog.records
                   for name in ("AttributeError", "TypeError", "KeyError"))
    shape_lines = [r.getMessage() for r in caplog.records if "PanDA pilot/acquire_jobs replied" in r.getMessage()]
    assert shape_lines and all("LOST_REPLY" in line for line in shape_lines)
    # faults gone: the watchdog gives the dispatched jobs back, the next cycles take them
    emulator.set_faults(rate=0.0)
    import time

    deadline = time.monotonic() + 30
    while len(sql("SELECT PandaID FROM job_table")) < len(ids) and time.monotonic() < deadline:
        fetcher.run_one_cycle()
        time.sleep(0.5)
    assert sorted(r[0] for r in sql("SELECT PandaID FROM job_table")) == ids
