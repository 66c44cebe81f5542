"""The cycle the agent base owns, against the real DB: the write batch (kill marks first, one bulk
call per kind, each queuer told its own result), the chunk skeleton, and the resources every agent
gets from the base (locked_by, cfg, queue configs, reply check)."""

from __future__ import annotations

import logging

import pytest

from pandaharvester.errors import PluginReplyError
from pandaharvester.harvesterbody.agent_base import AgentBase, Step
from pandaharvester.harvesterbody.monitor import Monitor
from pandaharvester.harvesterbody.submitter import Submitter
from pandaharvester.harvesterbody.write_batch import WriteBatch
from pandaharvester.harvestercore.db_proxy import DBProxy
from pandaharvester.harvestercore.plugin_base import PluginBase
from pandaharvester.harvestercore.work_spec import WorkSpec

from test_agents_helpers import agent_env, make_job, make_worker, plugin, queue, sql, store_worker  # noqa: F401

Q = "CYCQ"


class CountingDB:
    """The real DB proxy, counting the calls of each method (and their first argument's length)."""

    def __init__(self, inner):
        self.inner = inner
        self.calls: dict[str, list[int]] = {}

    def __getattr__(self, name):
        method = getattr(self.inner, name)

        def counted(*args, **kwargs):
            self.calls.setdefault(name, []).append(len(args[0]) if args and hasattr(args[0], "__len__") else -1)
            return method(*args, **kwargs)

        return counted


class QueueMonitor(PluginBase):
    """Every worker still submitted."""

    def check_workers(self, workspec_list):
        return True, [(WorkSpec.ST_submitted, "") for _ in workspec_list]


class RetrySubmitter(PluginBase):
    """(None, diag): a temporary failure for every worker."""

    def submit_workers(self, workspec_list):
        return [(None, "try again later") for _ in workspec_list]


def kill_time(worker_id):
    return sql("SELECT killTime FROM work_table WHERE workerID=:w", {":w": worker_id})[0][0]


@pytest.fixture()
def env(agent_env):
    return agent_env(lambda h: {Q: queue(h, nQueueLimitWorker=3, maxWorkers=3,
                                         monitor=plugin("monitor", "QueueMonitor", __name__),
                                         submitter=plugin("submitter", "RetrySubmitter", __name__),
                                         maxSubmissionAttempts=5)},
                     {"monitor": {"workerQueueTimeLimit": 60}})


# ------------------------------------------------------------------ the write batch
def test_kill_marks_are_written_before_the_write_back_that_ends_the_worker(env):
    """The DB marks only workers not final yet: queued after the write-back that cancels the
    worker, the mark must still land first."""
    _home, _mapper, proxy = env
    worker = store_worker(proxy, make_worker(Q, status="running"))
    worker.status = WorkSpec.ST_cancelled
    batch = WriteBatch()
    batch.add("update_workers_bulk", [worker])
    batch.kill_workers([worker.workerID])
    batch.flush(proxy, logging.getLogger("panda.log.agenttest"))
    assert sql("SELECT status FROM work_table WHERE workerID=:w", {":w": worker.workerID}) == [("cancelled",)]
    assert kill_time(worker.workerID) is not None
    assert len(batch) == 0


def test_writes_of_a_kind_are_one_call_and_each_queuer_gets_its_own_answer(env):
    _home, _mapper, proxy = env
    first, second, third = (store_worker(proxy, make_worker(Q, status="running")) for _ in range(3))
    counting = CountingDB(proxy)
    answers = []
    batch = WriteBatch()
    batch.kill_workers([first.workerID])
    batch.kill_workers([second.workerID, third.workerID])
    for worker, diag in ((first, "a"), (second, "b")):
        worker.diagMessage = diag
        batch.add("update_workers_bulk", [worker], on_result=lambda items, rows: answers.append((items, rows)))
    batch.flush(counting, logging.getLogger("panda.log.agenttest"))
    assert counting.calls == {"mark_workers_to_kill_by_workerids": [3], "update_workers_bulk": [2]}
    assert answers == [([first], [1]), ([second], [1])]
    assert all(kill_time(w.workerID) is not None for w in (first, second, third))


def test_a_write_that_raises_reports_nothing_written_and_the_others_are_made(env, monkeypatch, caplog):
    _home, _mapper, proxy = env
    worker = store_worker(proxy, make_worker(Q, status="running"))
    job = make_job(Q)
    assert proxy.insert_jobs([job])

    def broken(self, *args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(DBProxy, "update_jobs_bulk", broken)
    answers = []
    batch = WriteBatch()
    batch.update_jobs([job], on_result=lambda items, rows: answers.append(rows))
    batch.kill_workers([worker.workerID])
    with caplog.at_level(logging.ERROR, logger="panda.log.agenttest"):
        batch.flush(proxy, logging.getLogger("panda.log.agenttest"))
    assert answers == [None]
    assert "disk on fire" in caplog.text
    assert kill_time(worker.workerID) is not None


def test_the_monitor_marks_every_worker_it_kills_in_one_call(env):
    """Three workers queued longer than [monitor] workerQueueTimeLimit: one kill-mark call for
    all of them (it used to be one transaction per worker, in the middle of the check)."""
    home, mapper, proxy = env
    workers = [store_worker(proxy, make_worker(Q, status="submitted", accessPoint=str(home / "w" / str(n))))
               for n in range(3)]
    agent = Monitor(mapper, single_mode=True)
    agent.dbProxy = counting = CountingDB(proxy)
    agent.run_one_cycle()
    assert counting.calls["mark_workers_to_kill_by_workerids"] == [3]
    for worker in workers:
        row = sql("SELECT killTime, diagMessage FROM work_table WHERE workerID=:w", {":w": worker.workerID})[0]
        assert row[0] is not None and "worker queuing longer than 60 s" in row[1]


def test_the_submitter_stores_a_slots_submission_attempts_in_one_call(env):
    _home, mapper, proxy = env
    jobs = [make_job(Q) for _ in range(3)]
    assert proxy.insert_jobs(jobs)
    agent = Submitter(mapper, single_mode=True)
    agent.dbProxy = counting = CountingDB(proxy)
    agent.run_cycle()
    assert counting.calls.get("increment_submission_attempts") == [3]
    assert "increment_submission_attempt" not in counting.calls
    for job in jobs:
        stored = proxy.get_job(job.PandaID)
        assert stored.submissionAttempts == 1 and stored.lockedBy is None and stored.subStatus == "prepared"


# ------------------------------------------------------------------ the chunk skeleton
class ChunkAgent(AgentBase):
    cfg_section = "monitor"
    log_name = "agenttest"

    def __init__(self, worker_ids, boom_at):
        super().__init__(single_mode=True)
        self.worker_ids, self.boom_at, self.seen = worker_ids, boom_at, []

    def steps(self):
        return [Step("mark", lambda: list(self.worker_ids), self.mark, chunk_size=1,
                     release=lambda items: self.seen.append(("released", len(items))),
                     full=lambda items: len(items) >= 2)]

    def mark(self, chunk):
        self.writes.kill_workers(chunk)
        self.seen.append(chunk[0])
        if chunk[0] == self.boom_at:
            raise RuntimeError("plugin exploded")


def test_a_chunk_that_raises_keeps_its_queued_writes_and_the_next_chunk_goes_on(env, caplog):
    _home, _mapper, proxy = env
    ids = [store_worker(proxy, make_worker(Q, status="running")).workerID for _ in range(3)]
    agent = ChunkAgent(ids, boom_at=ids[1])
    with caplog.at_level(logging.ERROR, logger="panda.log.agenttest"):
        assert agent.run_cycle() is True
    assert agent.seen == ids + [("released", 3)]
    assert all(kill_time(worker_id) is not None for worker_id in ids)
    assert "plugin exploded" in caplog.text and "1 items not processed" in caplog.text


# ------------------------------------------------------------------ what the base gives every agent
def test_locked_by_cfg_and_queue_config_come_from_the_base(env):
    _home, mapper, _proxy = env
    agent = Monitor(mapper, single_mode=True)
    assert agent.locked_by == f"monitor-{agent.get_pid()}"
    assert agent.cfg("workerQueueTimeLimit") == 60
    # commented out in the template: the key table's default, unless the caller gives one
    assert Submitter(mapper, single_mode=True).cfg("activateWorkerFactor") == 1.0
    assert Submitter(mapper, single_mode=True).cfg("activateWorkerFactor", 2) == 2
    assert agent.cfg_value("master", "harvester_id")
    assert agent.queue_config(Q).queueName == Q
    assert agent.queue_config(Q, 987654, exact=True) is None  # no such config version
    assert agent.queue_config(Q, 987654).queueName == Q  # else the current config
    assert agent.db_proxy is agent.dbProxy and agent.queue_config_mapper is mapper


def test_check_reply_is_where_every_plugin_reply_is_checked(env):
    class Strict(AgentBase):
        log_name = "agenttest"

        def check_reply(self, plugin, method_name, reply, args=(), **kwargs):
            if not isinstance(reply, tuple):
                raise PluginReplyError(f"returned {reply!r}", plugin=type(plugin).__name__, method=method_name)
            return super().check_reply(plugin, method_name, reply, args, **kwargs)

    class Plugin:
        queueName = "CYCQ"

        def good(self):
            return True, ""

        def bad(self):
            return "yes"

        def trigger_stage_out(self, jobspec):
            return 1, None

    agent = Strict()
    log = agent.make_logger(agent.logger, "workerID=1", method_name="check", send_dialog=False)
    assert agent.call_plugin(log, Plugin(), "good") == (True, (True, ""))
    assert agent.call_plugin(log, Plugin(), "bad") == (False, "plugin Plugin.bad: returned 'yes'")
    # the base's check: the role's contract, the reply normalised
    assert agent.call_plugin(log, Plugin(), "trigger_stage_out", None, role="stager") == (True, (True, ""))
    assert AgentBase().call_plugin(log, Plugin(), "bad") == (True, "yes"), "no role: no contract to check"
