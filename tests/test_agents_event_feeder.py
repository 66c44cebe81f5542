"""EventFeeder against the real DB, the shared-file messenger and the PanDA emulator (a separate process)."""

from __future__ import annotations

import json
import uuid

import pytest

from pandaharvester.harvesterbody.event_feeder import EventFeeder
from pandaharvester.harvestercommunicator.panda_communicator import PandaCommunicator
from pandaharvester.harvestercore.work_spec import WorkSpec
from pandaharvester.harvestermessenger.shared_file_messenger import SharedFileMessenger
from pandaharvester.harvestertest.panda_emulator.launcher import start_emulator

from test_agents_helpers import agent_env, emulator_overrides, make_job, make_worker, plugin, queue, sql  # noqa: F401
from test_agents_helpers import store_worker


class BrokenFeedMessenger(SharedFileMessenger):
    """The shared-file messenger whose ``feed_events`` raises."""

    def feed_events(self, workspec, events_dict):
        raise OSError("access point not writable")


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    emu = start_emulator(tmp_path_factory.mktemp("emu_feeder"), seed=5)
    yield emu
    emu.stop()


@pytest.fixture()
def feeder_env(agent_env, emulator):
    def make(messenger_name=None):
        site = f"ESQ_{uuid.uuid4().hex[:8]}"
        attrs = {}
        if messenger_name is not None:
            attrs["messenger"] = plugin("messenger", messenger_name, __name__)
        home, mapper, proxy = agent_env(lambda h: {site: queue(h, **attrs)},
                                        dict(emulator_overrides(emulator, f"h-{uuid.uuid4().hex[:8]}"),
                                             eventfeeder={"maxWorkers": 10, "lockInterval": 600}))
        if messenger_name is not None:  # the access point needs the home: set it once it exists
            mapper.get_queue(site).messenger["accessPoint"] = str(home / "workers" / "${workerID}")
        (panda_id,) = emulator.add_task(site, 1, events=8)
        job = make_job(site, sub_status="submitted", status="running", panda_id=panda_id, taskID=1)
        assert proxy.insert_jobs([job])
        worker = make_worker(site, status="running", accessPoint=str(home / "workers" / "${workerID}"),
                             eventsRequest=WorkSpec.EV_requestEvents)
        worker.eventsRequestParams = {panda_id: {"pandaID": panda_id, "taskID": 1, "jobsetID": 1, "nRanges": 3}}
        worker = store_worker(proxy, worker, [proxy.get_job(panda_id)])
        (home / "workers" / str(worker.workerID)).mkdir(parents=True)  # as the submitter's messenger made it
        return home, mapper, proxy, worker, panda_id

    return make


def feed(mapper):
    agent = EventFeeder(PandaCommunicator(), mapper, single_mode=True)
    agent.run_one_cycle()
    return agent


def feeder_columns(worker_id):
    return sql("SELECT eventsRequest, eventsRequestParams, eventFeedLock FROM work_table WHERE workerID=:w",
               {":w": worker_id})[0]


def test_event_ranges_from_panda_are_fed_to_the_worker(feeder_env):
    home, mapper, proxy, worker, panda_id = feeder_env()
    feed(mapper)
    ranges_file = home / "workers" / str(worker.workerID) / "JobsEventRanges.json"  # [payload_interaction]
    fed = json.loads(ranges_file.read_text())
    assert list(fed) == [str(panda_id)]
    assert len(fed[str(panda_id)]) == 3  # nRanges the worker asked for
    assert all(str(panda_id) in r["eventRangeID"] and r["LFN"] for r in fed[str(panda_id)])
    events_request, params, lock = feeder_columns(worker.workerID)
    assert events_request == WorkSpec.EV_useEvents and lock is None
    assert params in (None, "null")
    # nothing asked any more: the next cycle feeds nothing
    ranges_file.unlink()
    feed(mapper)
    assert not ranges_file.exists()


def test_raising_messenger_keeps_the_request_for_a_retry(feeder_env, caplog):
    home, mapper, proxy, worker, panda_id = feeder_env("BrokenFeedMessenger")
    caplog.set_level("ERROR", logger="panda.log.event_feeder")
    agent = feed(mapper)
    assert agent.nCycles == 1
    events_request, params, lock = feeder_columns(worker.workerID)
    assert events_request == WorkSpec.EV_requestEvents and lock is not None  # retried after lockInterval
    assert "BrokenFeedMessenger.feed_events raised OSError: access point not writable" in caplog.text
