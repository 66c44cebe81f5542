"""The Monitor in FIFO mode ([monitor] fifoEnable) and with event-based checks, against the real DB
and a real SQLite FIFO file; the DB stays the truth."""

from __future__ import annotations

import json
import time

import pytest

from pandaharvester.harvestercore.fifos import MonitorFIFO
from pandaharvester.harvestercore.plugin_base import PluginBase

from test_agents_helpers import agent_env, plugin, queue, sql  # noqa: F401
from test_agents_monitor import FakeMessenger, ScriptedMonitor, add_worker_with_job
from pandaharvester.harvesterbody.monitor import Monitor

Q = "MONQ"


class Reporter(PluginBase):
    """An event-based plugin: reports ``updates`` [(workerID, timestamp)]."""

    updates: list = []
    windows: list = []

    def report_updated_workers(self, time_window):
        type(self).windows.append(time_window)
        return list(type(self).updates)


class CountingMonitor(ScriptedMonitor):
    calls: list = []

    def check_workers(self, workspec_list):
        type(self).calls.append(sorted(w.workerID for w in workspec_list))
        return super().check_workers(workspec_list)


@pytest.fixture()
def fifo_mon(agent_env, tmp_path):
    ScriptedMonitor.answers = {}
    ScriptedMonitor.mode = "ok"
    CountingMonitor.calls = []
    FakeMessenger.files = {}
    Reporter.updates = []
    Reporter.windows = []

    def make(events: bool = False):
        monitor = {"fifoEnable": "True", "fifoCheckInterval": "120", "fifoSleepTimeMilli": "10",
                   "sleepTime": "600", "checkInterval": "300"}
        if events:
            monitor.update(eventBasedEnable="True", eventBasedCheckInterval="0", eventBasedTimeWindow="450",
                           eventBasedPlugins=json.dumps([{"module": __name__, "name": "Reporter"}]))
        overrides = {"monitor": monitor,
                     "fifo": {"fifoModule": "pandaharvester.harvesterfifo.sqlite_fifo", "fifoClass": "SqliteFifo",
                              "database_filename": str(tmp_path / "$(TITLE)_fifo.db")}}
        home, mapper, proxy = agent_env(lambda h: {Q: queue(
            h, monitor=plugin("monitor", "CountingMonitor", __name__),
            messenger=plugin("messenger", "FakeMessenger", __name__, accessPoint=str(h / "w" / "${workerID}")))},
            overrides)
        return mapper, proxy

    return make


def fifo_contents() -> dict[int, float]:
    return {w.workerID: obj.score for obj in MonitorFIFO().peekmany(decode_item=True)
            for chunk in obj.item[1] for w in chunk}


def status_of(worker_id: int) -> str:
    return sql("SELECT status FROM work_table WHERE workerID=:w", {":w": worker_id})[0][0]


def start(mapper, db_cycle: bool = False) -> Monitor:
    agent = Monitor(mapper, single_mode=True)
    agent.bootstrap()
    if not db_cycle:
        agent.fifo_mode.last_db_cycle = time.time()  # the DB cycle is not due
    return agent


def test_due_workers_come_from_the_fifo_and_go_back_with_their_next_check_time(fifo_mon):
    mapper, proxy = fifo_mon()
    (w_run, _p1), (w_fin, p_fin), (w_sub, _p3) = (add_worker_with_job(proxy, s) for s in
                                                   ("running", "running", "submitted"))
    ScriptedMonitor.answers = {w_fin.workerID: ("finished", ""), w_sub.workerID: ("running", "")}
    agent = start(mapper)
    # filled from the DB at start: every active worker, due now (scored by modificationTime)
    assert set(fifo_contents()) == {w_run.workerID, w_fin.workerID, w_sub.workerID}
    before = time.time()
    agent.run_one_cycle()
    assert CountingMonitor.calls == [sorted([w_run.workerID, w_fin.workerID, w_sub.workerID])]
    assert (status_of(w_run.workerID), status_of(w_fin.workerID), status_of(w_sub.workerID)) == \
        ("running", "finished", "running")
    assert proxy.get_job(p_fin).status == "finished"
    # the active ones are back, due after fifoCheckInterval; the finished one is gone
    contents = fifo_contents()
    assert set(contents) == {w_run.workerID, w_sub.workerID}
    assert all(before + 120 <= score <= time.time() + 120 for score in contents.values())
    assert sql("SELECT lockedBy FROM work_table WHERE workerID=:w", {":w": w_run.workerID})[0][0] is None
    # nothing is due: the next cycle checks nobody
    agent.run_one_cycle()
    assert len(CountingMonitor.calls) == 1


def test_a_worker_missing_from_the_fifo_is_checked_by_the_db_cycle_and_enqueued(fifo_mon):
    mapper, proxy = fifo_mon()
    worker, _p = add_worker_with_job(proxy, "running")
    agent = start(mapper, db_cycle=True)
    agent.fifo_mode.fifo.clear()  # lost (e.g. /dev/shm wiped)
    agent.run_one_cycle()
    assert CountingMonitor.calls == [[worker.workerID]]
    assert set(fifo_contents()) == {worker.workerID}
    ok, stamp = proxy.get_worker_with_id(worker.workerID).get_work_params("lastCheckAt")
    assert ok and stamp == pytest.approx(time.time(), abs=60)


def test_a_stale_copy_is_dropped_and_a_locked_worker_is_left_to_its_owner(fifo_mon):
    mapper, proxy = fifo_mon()
    w_a, _pa = add_worker_with_job(proxy, "running")
    w_b, _pb = add_worker_with_job(proxy, "running")
    agent = start(mapper)
    agent.run_one_cycle()  # both checked, stamped, back in the FIFO
    fifo = agent.fifo_mode.fifo
    stale = proxy.get_worker_with_id(w_a.workerID)
    stale.set_work_params({"lastCheckAt": time.time() - 1000})
    fifo.put((Q, [[stale]]), time.time() - 10)  # an old duplicate, due
    sql("UPDATE work_table SET lockedBy='another-thread', modificationTime=:t WHERE workerID=:w",
        {":t": proxy.get_worker_with_id(w_b.workerID).modificationTime, ":w": w_b.workerID})
    fifo.put((Q, [[proxy.get_worker_with_id(w_b.workerID)]]), time.time() - 10)
    CountingMonitor.calls = []
    agent.run_one_cycle()
    assert CountingMonitor.calls == []
    assert sql("SELECT lockedBy FROM work_table WHERE workerID=:w", {":w": w_b.workerID})[0][0] == "another-thread"


def test_protectively_taken_objects_come_back_after_a_crash(fifo_mon):
    mapper, proxy = fifo_mon()
    worker, _p = add_worker_with_job(proxy, "running")
    agent = start(mapper)
    taken = agent.fifo_mode.fifo.get(protective=True)  # a thread died holding it
    assert taken is not None and agent.fifo_mode.fifo.size() == 0
    again = start(mapper)
    assert again.fifo_mode.fifo.size() == 1
    again.run_one_cycle()
    assert CountingMonitor.calls == [[worker.workerID]]


def test_a_reported_worker_is_checked_in_the_next_cycle_before_its_check_interval(fifo_mon):
    mapper, proxy = fifo_mon(events=True)
    w_a, p_a = add_worker_with_job(proxy, "running")
    w_b, _pb = add_worker_with_job(proxy, "running")
    agent = start(mapper)
    agent.run_one_cycle()  # both checked; next FIFO check in 120 s
    assert CountingMonitor.calls == [sorted([w_a.workerID, w_b.workerID])]
    CountingMonitor.calls = []
    ScriptedMonitor.answers = {w_a.workerID: ("finished", "")}
    Reporter.updates = [(w_a.workerID, time.time())]
    agent.run_one_cycle()
    assert CountingMonitor.calls == [[w_a.workerID]]
    assert Reporter.windows and Reporter.windows[-1] == 450
    assert status_of(w_a.workerID) == "finished" and proxy.get_job(p_a).status == "finished"
    assert status_of(w_b.workerID) == "running"
    # the same update does not trigger again; a newer one would
    CountingMonitor.calls = []
    agent.run_one_cycle()
    assert CountingMonitor.calls == []


def test_fifo_mode_off_keeps_the_db_cycle_only(fifo_mon, agent_env):
    mapper, proxy = fifo_mon()
    from pandaharvester.harvesterconfig import harvester_config

    harvester_config.monitor.fifoEnable = False
    try:
        agent = Monitor(mapper, single_mode=True)
        assert agent.fifo_mode is None and [s.name for s in agent.steps()] == ["check"]
    finally:
        harvester_config.monitor.fifoEnable = True


def test_a_bad_fifo_backend_stops_the_start_with_one_line(tmp_path):
    from test_master import make_home
    from test_master_config import run_single

    home = make_home(tmp_path, {"monitor": {"fifoEnable": True},
                                "fifo": {"fifoModule": "pandaharvester.harvesterfifo.redis_fifo",
                                         "fifoClass": "RedisFifo", "redisPort": 1}})
    res = run_single(home)
    assert res.returncode == 78, res.stderr
    assert "[fifo] redisHost = '127.0.0.1', redisPort = 1: cannot reach Redis for the monitor FIFO" in res.stderr
    assert len([line for line in res.stderr.splitlines() if "redisPort" in line]) == 1
