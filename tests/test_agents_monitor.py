"""Monitor + WorkerChecker against the real DB, with fake monitor plugins and a fake messenger."""

from __future__ import annotations

import pytest

from pandaharvester.harvesterbody.monitor import Monitor
from pandaharvester.harvestercore.plugin_base import PluginBase
from pandaharvester.harvestermessenger.base_messenger import BaseMessenger

from test_agents_helpers import agent_env, make_job, make_worker, plugin, queue, sql, store_worker  # noqa: F401

Q = "MONQ"


class ScriptedMonitor(PluginBase):
    """Answers ``answers[workerID]``; ``mode`` = "ok" | "short" | "raise" | "notok"."""

    answers: dict = {}
    mode = "ok"

    def check_workers(self, workspec_list):
        cls = type(self)
        if cls.mode == "raise":
            raise RuntimeError("batch system unreachable")
        if cls.mode == "short":
            return True, [("running", "")] * (len(workspec_list) - 1)
        if cls.mode == "notok":
            return False, "cannot talk to the scheduler"
        return True, [cls.answers.get(w.workerID, (w.status, "")) for w in workspec_list]


class FakeMessenger(BaseMessenger):
    """Reports ``files[workerID]`` as outputs to stage out; post-processing always done;
    ``get_files_to_stage_out`` raises for the workerIDs in ``broken``."""

    files: dict = {}
    broken: set = set()

    def get_files_to_stage_out(self, workspec):
        if workspec.workerID in type(self).broken:
            raise OSError(f"access point of workerID={workspec.workerID} unreadable")
        return type(self).files.get(workspec.workerID, {})

    def post_processing(self, workspec, jobspec_list, map_type):
        return True

    def feed_jobs(self, workspec, jobspec_list):
        return True


@pytest.fixture()
def mon(agent_env):
    ScriptedMonitor.answers = {}
    ScriptedMonitor.mode = "ok"
    FakeMessenger.files = {}
    FakeMessenger.broken = set()

    def make(overrides=None):
        home, mapper, proxy = agent_env(lambda h: {Q: queue(
            h, monitor=plugin("monitor", "ScriptedMonitor", __name__),
            messenger=plugin("messenger", "FakeMessenger", __name__, accessPoint=str(h / "w" / "${workerID}")))},
            overrides)
        return mapper, proxy

    return make


def add_worker_with_job(proxy, status="running"):
    job = make_job(Q, sub_status="submitted", status="running" if status == "running" else "starting")
    assert proxy.insert_jobs([job])
    job = proxy.get_job(job.PandaID)
    job.lockedBy = "submitter"
    from test_agents_helpers import set_job
    set_job(proxy, job.PandaID, lockedBy="submitter")
    worker = store_worker(proxy, make_worker(Q, status=status), [job])
    set_job(proxy, job.PandaID, lockedBy=None)
    return worker, job.PandaID


def worker_row(worker_id):
    return sql("SELECT status, diagMessage, checkTime, killTime FROM work_table WHERE workerID=:w",
               {":w": worker_id})[0]


def run(mapper):
    agent = Monitor(mapper, single_mode=True)
    agent.run_one_cycle()
    return agent


def test_status_transitions_and_job_status(mon):
    mapper, proxy = mon()
    w_sub, p_sub = add_worker_with_job(proxy, "submitted")
    w_fin, p_fin = add_worker_with_job(proxy, "running")
    w_fail, p_fail = add_worker_with_job(proxy, "running")
    ScriptedMonitor.answers = {w_sub.workerID: ("running", ""), w_fin.workerID: ("finished", ""),
                               w_fail.workerID: ("failed", "payload crashed")}
    run(mapper)
    assert worker_row(w_sub.workerID)[0] == "running"
    assert worker_row(w_fin.workerID)[0] == "finished"
    assert worker_row(w_fail.workerID)[:2] == ("failed", "payload crashed")
    assert proxy.get_job(p_sub).status == "running"
    assert proxy.get_job(p_fin).status == "finished"
    failed = proxy.get_job(p_fail)
    assert failed.status == "failed"
    assert failed.has_attribute("pilotErrorCode")  # the worker's error is carried to the job


@pytest.mark.parametrize("mode", ["short", "raise", "notok"])
def test_bad_plugin_reply_leaves_workers_unchecked(mon, mode):
    mapper, proxy = mon()
    w1, p1 = add_worker_with_job(proxy, "submitted")
    w2, _ = add_worker_with_job(proxy, "running")
    before = {w.workerID: worker_row(w.workerID) for w in (w1, w2)}
    ScriptedMonitor.mode = mode
    agent = run(mapper)
    assert agent.nCycles == 1
    for worker_id, row in before.items():
        now = worker_row(worker_id)
        assert now[0] == row[0], "status changed on a failed check"
        assert now[2] == row[2], "checkTime moved although nothing was checked"
        assert now[3] is None
    assert proxy.get_job(p1).status == "starting"


def test_unknown_status_is_kept_with_diag(mon):
    mapper, proxy = mon()
    worker, _ = add_worker_with_job(proxy, "running")
    ScriptedMonitor.answers = {worker.workerID: ("exploded", "")}
    run(mapper)
    status, diag, _check, _kill = worker_row(worker.workerID)
    assert status == "running"
    assert "unknown status 'exploded'" in diag


def test_consecutive_failures_beyond_check_timeout_cancel_and_kill(mon):
    mapper, proxy = mon({"monitor": {"checkTimeout": 60}})
    worker, _ = add_worker_with_job(proxy, "running")  # checkTime an hour ago
    ScriptedMonitor.mode = "raise"
    run(mapper)
    status, diag, _check, kill_time = worker_row(worker.workerID)
    assert status == "cancelled"
    assert "consecutive worker check failures" in diag
    assert kill_time is not None


def test_final_status_held_while_files_reported(mon):
    mapper, proxy = mon()
    worker, pid = add_worker_with_job(proxy, "running")
    ScriptedMonitor.answers = {worker.workerID: ("finished", "")}
    FakeMessenger.files = {worker.workerID: {pid: {"out.root": [{"path": "/tmp/out.root", "type": "output",
                                                                  "fsize": 1, "chksum": "ad:1"}]}}}
    run(mapper)
    assert worker_row(worker.workerID)[0] == "running"
    job = proxy.get_job(pid)
    assert job.status == "running"
    assert sql("SELECT COUNT(*) FROM file_table WHERE PandaID=:p AND lfn='out.root'", {":p": pid}) == [(1,)]
    FakeMessenger.files = {}
    sql("UPDATE work_table SET modificationTime=:t, lockedBy=NULL", {":t": worker.modificationTime})
    run(mapper)
    assert worker_row(worker.workerID)[0] == "finished"


def test_raising_messenger_leaves_only_that_worker_unchecked(mon):
    mapper, proxy = mon({"monitor": {"checkTimeout": 3600 * 24}})
    broken, p_broken = add_worker_with_job(proxy, "running")
    fine, p_fine = add_worker_with_job(proxy, "running")
    ScriptedMonitor.answers = {broken.workerID: ("finished", ""), fine.workerID: ("finished", "")}
    FakeMessenger.broken = {broken.workerID}
    before = worker_row(broken.workerID)
    agent = run(mapper)
    assert agent.nCycles == 1
    assert worker_row(fine.workerID)[0] == "finished" and proxy.get_job(p_fine).status == "finished"
    status, diag, check_time, kill_time = worker_row(broken.workerID)
    assert status == "running" and check_time == before[2] and kill_time is None
    assert "FakeMessenger.get_files_to_stage_out raised OSError" in diag
    assert proxy.get_job(p_broken).status == "running"
    assert sql("SELECT lockedBy FROM work_table WHERE workerID=:w", {":w": broken.workerID}) == [(None,)]
    # the messenger recovers: the worker's final state is taken on the next cycle
    FakeMessenger.broken = set()
    run(mapper)
    assert worker_row(broken.workerID)[0] == "finished"


def test_messenger_failing_beyond_check_timeout_cancels_and_kills(mon):
    mapper, proxy = mon({"monitor": {"checkTimeout": 60}})
    worker, _ = add_worker_with_job(proxy, "running")  # checkTime an hour ago
    FakeMessenger.broken = {worker.workerID}
    run(mapper)
    status, diag, _check, kill_time = worker_row(worker.workerID)
    assert status == "cancelled" and kill_time is not None
    assert "consecutive worker check failures" in diag and "messenger failed" in diag


def test_one_debug_line_per_outcome_carries_every_worker_id(mon, caplog):
    mapper, proxy = mon()
    running = [add_worker_with_job(proxy, "running")[0] for _ in range(3)]
    failed, _ = add_worker_with_job(proxy, "running")
    ScriptedMonitor.answers = {failed.workerID: ("failed", "payload crashed")}
    with caplog.at_level("DEBUG", logger="panda.log.monitor"):
        run(mapper)
    lines = [r.getMessage() for r in caplog.records if "write_back" in r.getMessage() and " -> " in r.getMessage()]
    assert len(lines) == 2, lines
    same = [line for line in lines if "running -> running" in line]
    assert len(same) == 1 and " ".join(f"workerID={w.workerID}" for w in running) in same[0]
    assert "for 3 workers" in same[0]
    crashed = [line for line in lines if "running -> failed" in line]
    assert len(crashed) == 1 and crashed[0].endswith(f": workerID={failed.workerID}") and "payload crashed" in crashed[0]


class RecordingMessenger(FakeMessenger):
    """Records the PandaIDs post_processing was given, per workerID."""

    seen: dict = {}

    def post_processing(self, workspec, jobspec_list, map_type):
        type(self).seen[workspec.workerID] = sorted(j.PandaID for j in jobspec_list)
        return True


def test_post_processing_gets_the_workers_jobs_and_nothing_for_a_jobless_worker(agent_env):
    RecordingMessenger.seen = {}
    ScriptedMonitor.mode = "ok"
    home, mapper, proxy = agent_env(lambda h: {Q: queue(
        h, monitor=plugin("monitor", "ScriptedMonitor", __name__),
        messenger=plugin("messenger", "RecordingMessenger", __name__, accessPoint=str(h / "w" / "${workerID}")))})
    with_job, panda_id = add_worker_with_job(proxy, "running")
    jobless = store_worker(proxy, make_worker(Q, status="running"), [])
    ScriptedMonitor.answers = {with_job.workerID: ("finished", ""), jobless.workerID: ("finished", "")}
    run(mapper)
    assert RecordingMessenger.seen == {with_job.workerID: [panda_id], jobless.workerID: []}
    assert worker_row(jobless.workerID)[0] == "finished"


class _CountingProxy:
    """The agent's DB proxy, counting job look-ups; ``bulk_fails`` makes the bulk one give {}."""

    def __init__(self, inner, bulk_fails=False):
        self.inner, self.bulk_fails, self.single, self.bulk = inner, bulk_fails, 0, 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def get_jobs_with_worker_id(self, *args, **kwargs):
        self.single += 1
        return self.inner.get_jobs_with_worker_id(*args, **kwargs)

    def get_jobs_with_worker_ids(self, *args, **kwargs):
        self.bulk += 1
        return {} if self.bulk_fails else self.inner.get_jobs_with_worker_ids(*args, **kwargs)


@pytest.mark.parametrize("bulk_fails", [False, True])
def test_write_back_reads_the_jobs_of_all_chunks_at_once_or_falls_back(mon, bulk_fails):
    mapper, proxy = mon()
    pairs = [add_worker_with_job(proxy, "running") for _ in range(3)]
    ScriptedMonitor.answers = {w.workerID: ("finished", "") for w, _ in pairs}
    agent = Monitor(mapper, single_mode=True)
    agent.dbProxy = counting = _CountingProxy(agent.dbProxy, bulk_fails)
    agent.run_one_cycle()
    assert all(proxy.get_job(pid).status == "finished" for _w, pid in pairs)
    assert all(worker_row(w.workerID)[0] == "finished" for w, _ in pairs)
    # one bulk read for the post-processing of the finished workers, one for the write-back; a
    # read per worker for each only when the bulk one failed
    assert counting.bulk == 2
    assert counting.single == (6 if bulk_fails else 0)
