"""Sweeper against the real DB with fake sweeper plugins."""

from __future__ import annotations

import pytest

from pandaharvester.harvesterbody.sweeper import Sweeper
from pandaharvester.harvestercore.command_spec import CommandSpec
from pandaharvester.harvestercore.plugin_base import PluginBase

from test_agents_helpers import agent_env, ago, make_job, make_worker, plugin, queue, sql, store_worker  # noqa: F401

Q = "SWQ"


class Recorder(PluginBase):
    """Class-level record of what the fake sweepers were asked to do."""

    killed: list = []
    bulk_calls: list = []
    swept: list = []
    fail_sweep: set = set()
    raise_kill: set = set()

    def kill_worker(self, workspec):
        if workspec.workerID in Recorder.raise_kill:
            raise RuntimeError(f"cannot kill {workspec.workerID}")
        Recorder.killed.append(workspec.workerID)
        return True, ""

    def sweep_worker(self, workspec):
        if workspec.workerID in Recorder.fail_sweep:
            return False, "files still in use"
        Recorder.swept.append(workspec.workerID)
        return True, ""


class SingleSweeper(Recorder):
    """Only kill_worker: the agent must fall back to one-by-one kills."""


class BulkSweeper(Recorder):
    def kill_workers(self, workspec_list):
        Recorder.bulk_calls.append([w.workerID for w in workspec_list])
        return [self.kill_worker(w) for w in workspec_list]


@pytest.fixture()
def sweep_env(agent_env):
    Recorder.killed, Recorder.bulk_calls, Recorder.swept = [], [], []
    Recorder.fail_sweep, Recorder.raise_kill = set(), set()

    def make(cls="BulkSweeper", keep=24):
        keeps = {k: keep for k in ("keepFinished", "keepFailed", "keepCancelled", "keepMissed", "keepPending")}
        return agent_env(lambda h: {Q: queue(h, sweeper=plugin("sweeper", cls, __name__))}, {"sweeper": keeps})

    return make


def run(mapper):
    agent = Sweeper(mapper, single_mode=True)
    agent.run_one_cycle()
    return agent


def kill_marked():
    return {r[0] for r in sql("SELECT workerID FROM work_table WHERE killTime IS NOT NULL")}


def command(name, params):
    spec = CommandSpec()
    spec.command = name
    spec.receiver = "sweeper"
    spec.params = params
    spec.command_id = abs(hash(name)) % 100000
    spec.processed = 0
    spec.ack_requested = 0
    return spec


def test_kill_commands_mark_workers_then_bulk_kill(sweep_env):
    home, mapper, proxy = sweep_env("BulkSweeper")
    w1 = store_worker(proxy, make_worker(Q, status="submitted"))
    w2 = store_worker(proxy, make_worker(Q, status="running"))
    w3 = store_worker(proxy, make_worker(Q, status="running"))
    assert proxy.store_commands([command(CommandSpec.COM_killWorkers, {"status": ["submitted"], "computingSite": [Q], "computingElement": "ALL", "submissionHost": "ALL"}),
                                 command(CommandSpec.COM_syncWorkersKill, [w2.workerID])])
    sweeper = Sweeper(mapper, single_mode=True)
    sweeper.process_kill_commands()
    assert kill_marked() == {w1.workerID, w2.workerID}
    sql("UPDATE work_table SET killTime=:t WHERE killTime IS NOT NULL", {":t": ago(60)})
    sweeper.run_one_cycle()
    assert sorted(Recorder.killed) == sorted([w1.workerID, w2.workerID])
    assert len(Recorder.bulk_calls) == 1
    assert w3.workerID not in Recorder.killed


def test_kill_fallback_one_by_one_and_raising_plugin(sweep_env):
    home, mapper, proxy = sweep_env("SingleSweeper")
    workers = [store_worker(proxy, make_worker(Q, status="running")) for _ in range(3)]
    Recorder.raise_kill = {workers[0].workerID}
    proxy.mark_workers_to_kill_by_workerids([w.workerID for w in workers])
    sql("UPDATE work_table SET killTime=:t", {":t": ago(60)})
    agent = run(mapper)
    assert agent.nCycles == 1
    assert Recorder.bulk_calls == []
    assert sorted(Recorder.killed) == sorted(w.workerID for w in workers[1:])


def test_cleanup_sweeps_and_deletes_final_workers(sweep_env):
    home, mapper, proxy = sweep_env("BulkSweeper", keep=0)
    done = store_worker(proxy, make_worker(Q, status="finished", accessPoint=str(home / "w" / "done")),
                        endTime=ago(7200), lastUpdate=None, modificationTime=ago(7200))
    (home / "w" / "done").mkdir(parents=True)
    (home / "w" / "done" / "pilot.log").write_text("x")
    stuck = store_worker(proxy, make_worker(Q, status="failed"), endTime=ago(7200), lastUpdate=None,
                         modificationTime=ago(7200))
    young = store_worker(proxy, make_worker(Q, status="running"), modificationTime=ago(7200))
    Recorder.fail_sweep = {stuck.workerID}
    run(mapper)
    left = {r[0] for r in sql("SELECT workerID FROM work_table")}
    assert done.workerID in Recorder.swept
    assert done.workerID not in left
    assert not (home / "w" / "done").exists()  # messenger clean_up removed the access point
    assert stuck.workerID in left  # sweep failed: kept for the next cycle
    assert young.workerID in left


def test_keep_hours_protect_recent_final_workers(sweep_env):
    home, mapper, proxy = sweep_env("BulkSweeper", keep=24)
    done = store_worker(proxy, make_worker(Q, status="finished"), endTime=ago(7200), lastUpdate=None,
                        modificationTime=ago(7200))
    run(mapper)
    assert Recorder.swept == []
    assert sql("SELECT COUNT(*) FROM work_table WHERE workerID=:w", {":w": done.workerID}) == [(1,)]


def test_cleanup_kills_in_one_call_deletes_in_one_go_and_logs_every_id(sweep_env, caplog):
    home, mapper, proxy = sweep_env("BulkSweeper", keep=0)
    workers = [store_worker(proxy, make_worker(Q, status="finished", accessPoint=str(home / "w" / str(i))),
                            endTime=ago(7200), lastUpdate=None, modificationTime=ago(7200)) for i in range(4)]
    job = make_job(Q, status="finished", sub_status="done")
    assert proxy.insert_jobs([job])
    sql("INSERT INTO jw_table (PandaID, workerID) VALUES (:p, :w)", {":p": job.PandaID, ":w": workers[0].workerID})
    Recorder.fail_sweep = {workers[3].workerID}
    with caplog.at_level("INFO", logger="panda.log.sweeper"):
        run(mapper)
    ids = [w.workerID for w in workers]
    assert Recorder.bulk_calls == [ids]  # the kill "in case" is one plugin call for the set
    left = {r[0] for r in sql("SELECT workerID FROM work_table")}
    assert left == {ids[3]}  # its sweep failed: kept for the next cycle
    assert sql("SELECT COUNT(*) FROM job_table WHERE PandaID=:p", {":p": job.PandaID}) == [(0,)]
    assert sql("SELECT COUNT(*) FROM jw_table") == [(0,)]
    assert " ".join(f"workerID={i}" for i in ids[:3]) in caplog.text and "swept and deleted 3 workers" in caplog.text
    assert all(f"workerID={i} batchID=" in caplog.text for i in ids)  # the kill line


def test_cleanup_keeps_swept_workers_when_the_delete_fails(sweep_env, caplog, monkeypatch):
    home, mapper, proxy = sweep_env("BulkSweeper", keep=0)
    worker = store_worker(proxy, make_worker(Q, status="finished", accessPoint=str(home / "w" / "x")),
                          endTime=ago(7200), lastUpdate=None, modificationTime=ago(7200))
    from pandaharvester.harvestercore.db import workers as workers_module

    monkeypatch.setattr(workers_module.WorkersMixin, "delete_workers", lambda self, ids: False)
    run(mapper)
    assert sql("SELECT COUNT(*) FROM work_table WHERE workerID=:w", {":w": worker.workerID}) == [(1,)]
    assert "swept workers not deleted: DB error" in caplog.text and f"cycle: workerID={worker.workerID}" in caplog.text


def test_interrupted_submission_pilot_is_killed_swept_and_deleted(agent_env):
    """A submitter that crashed between recording its workers (pending) and registering their
    batch IDs left pilots running that nobody watches: after ``[submitter] lockInterval`` the
    sweeper kills them with the queue's sweeper plugin (the real DummySweeper finds the pilot in
    the access point), sweeps the access point and deletes the rows; a recent pending worker (a
    submission in progress) and the jobs are left alone."""
    import psutil

    from pandaharvester.harvesterbatch.dummy import pilot_is_alive, read_process_record
    from pandaharvester.harvestersubmitter.dummy_submitter import DummySubmitter

    home, mapper, proxy = agent_env(lambda h: {Q: queue(h)})
    job = make_job(Q)
    assert proxy.insert_jobs([job])
    crashed = make_worker(Q, status="pending", accessPoint=str(home / "workers" / "${workerID}"))
    crashed.accessPoint = crashed.get_access_point()
    recent = make_worker(Q, status="pending")
    assert proxy.insert_workers([crashed, recent], "submitter")
    assert DummySubmitter(sleepTime=300).submit_workers([crashed]) == [(True, "")]  # then the crash
    record = read_process_record(crashed.accessPoint)
    assert pilot_is_alive(record)
    sql("UPDATE work_table SET modificationTime=:t WHERE workerID=:w", {":t": ago(3600), ":w": crashed.workerID})
    try:
        run(mapper)
        assert not pilot_is_alive(record), "the pilot of the interrupted submission still runs"
        assert not (home / "workers" / str(crashed.workerID)).exists()  # swept
        left = {r[0]: r[1] for r in sql("SELECT workerID, status FROM work_table")}
        assert crashed.workerID not in left and left[recent.workerID] == "pending"
        assert proxy.get_job(job.PandaID) is not None
    finally:
        if pilot_is_alive(record):
            psutil.Process(record["pid"]).kill()
