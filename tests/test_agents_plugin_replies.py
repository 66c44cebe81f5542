"""Plugin replies of the wrong shape, met by real agents: one clear ERROR line (plugin class, queue,
method, what was wrong), handled as a plugin that raised, nothing lost; the field guard's one
WARNING per bulk call; plugins of the original's older signatures called as they allow.

Submitter, worker maker, throttler and monitor here; the other agents in
``test_agents_plugin_replies_more.py``.
"""

from __future__ import annotations

import logging

import pytest

from pandaharvester.harvesterbody import agent_base
from pandaharvester.harvesterbody.monitor import Monitor
from pandaharvester.harvesterbody.submitter import Submitter
from pandaharvester.harvesterbody.worker_adjuster import WorkerAdjuster
from pandaharvester.harvestercore.plugin_base import PluginBase
from pandaharvester.harvestercore.work_spec import WorkSpec
from pandaharvester.harvestermessenger.base_messenger import BaseMessenger
from pandaharvester.harvesterworkermaker.simple_worker_maker import SimpleWorkerMaker

from test_agents_helpers import agent_env, make_job, make_worker, plugin, queue, set_job, sql  # noqa: F401
from test_agents_helpers import store_worker

Q = "REPLYQ"
HERE = __name__


def validator_lines(caplog, role: str, cls: str, method: str) -> list[str]:
    """The validator's own ERROR lines for ``cls.method`` (the text right after the logger's prefix)."""
    head = f"> queue '{Q}', {role} plugin {HERE}.{cls}.{method}: "
    return [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR and head in r.getMessage()]


def warnings_of(caplog, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and text in r.getMessage()]


# ------------------------------------------------------------------ plugins (loaded by name)
class RaisingSubmitter(PluginBase):
    def submit_workers(self, workspec_list):
        raise RuntimeError("batch system exploded")


class DictSubmitter(PluginBase):
    def submit_workers(self, workspec_list):
        return {w.workerID: (True, "") for w in workspec_list}


class ShortSubmitter(PluginBase):
    def submit_workers(self, workspec_list):
        for w in workspec_list:
            w.batchID = f"b{w.workerID}"
        return [(True, "")] * (len(workspec_list) - 1)


class YesSubmitter(PluginBase):
    def submit_workers(self, workspec_list):
        return [(True, ""), ("yes", "")] + [(True, "")] * (len(workspec_list) - 2)


class FieldSettingSubmitter(PluginBase):
    """Sets what a submitter may (batchID, nativeStatus) and what it may not (status, a job's subStatus)."""

    def submit_workers(self, workspec_list):
        for w in workspec_list:
            w.batchID = f"b{w.workerID}"
            w.nativeStatus = "PENDING"
            w.status = WorkSpec.ST_running
            for job in w.get_jobspec_list() or []:
                job.subStatus = "running"
        return [(True, "")] * len(workspec_list)


class OkMessenger(PluginBase):
    """A messenger whose feed_jobs answers ``answer`` (the shared-file messenger's other hooks are not needed)."""

    answer = "ok"

    def setup_access_points(self, workspec_list):
        return True

    def feed_jobs(self, workspec, jobspec_list):
        return type(self).answer


class DictMaker(PluginBase):
    def make_worker(self, jobspec_list, queue_config, job_type, resource_type, prod_source_label="ANY"):
        return {"nCore": 1}


class OldMaker(SimpleWorkerMaker):
    """The original's older signature (no prod_source_label); counts its calls."""

    calls = 0

    def make_worker(self, jobspec_list, queue_config, job_type, resource_type):
        type(self).calls += 1
        return SimpleWorkerMaker.make_worker(self, jobspec_list, queue_config, job_type, resource_type)


class TypeErrorMaker(SimpleWorkerMaker):
    """Takes prod_source_label, but a TypeError escapes from its own code; counts its calls."""

    calls = 0

    def make_worker(self, jobspec_list, queue_config, job_type, resource_type, prod_source_label="ANY"):
        type(self).calls += 1
        return None + 1


class StringSizeMaker(SimpleWorkerMaker):
    def get_num_jobs_per_worker(self, n_workers):
        return "4"


class OldThrottler(PluginBase):
    """The original's older signature: ``to_be_throttled(queue_config)``."""

    answer = (False, "fine")

    def to_be_throttled(self, queue_config):
        return type(self).answer


class StringThrottler(PluginBase):
    def to_be_throttled(self, queue_config, queue_config_mapper=None):
        return "no"


# ------------------------------------------------------------------ submitter
def submit_env(agent_env, n_jobs=3, **attrs):
    home, mapper, proxy = agent_env(lambda h: {Q: queue(h, nQueueLimitWorker=n_jobs, maxWorkers=10, **attrs)})
    jobs = [make_job(Q) for _ in range(n_jobs)]
    assert proxy.insert_jobs(jobs)
    return mapper, proxy, [j.PandaID for j in jobs]


def submit(mapper):
    agent = Submitter(mapper, single_mode=True)
    agent.run_one_cycle()
    return agent


def outcome(proxy, ids):
    """What a submitter cycle left: worker statuses, and each job's (status, subStatus, attempts, lockedBy)."""
    workers = sorted(r[0] for r in sql("SELECT status FROM work_table"))
    jobs = sorted((j.status, j.subStatus, j.submissionAttempts, j.lockedBy) for j in map(proxy.get_job, ids))
    return workers, jobs


@pytest.mark.parametrize("cls, problem", [
    ("DictSubmitter", "returned {"),
    ("ShortSubmitter", "returned 2 replies for 3 workers (one reply per worker, in order)"),
    ("YesSubmitter", "reply #1 (workerID="),
])
def test_submitter_wrong_reply_is_one_clear_error_and_handled_as_a_raising_plugin(agent_env, caplog, cls, problem):
    mapper, proxy, ids = submit_env(agent_env, submitter=plugin("submitter", "RaisingSubmitter", HERE))
    submit(mapper)
    as_raising = outcome(proxy, ids)
    sql("DELETE FROM work_table")
    mapper, proxy, ids = submit_env(agent_env, submitter=plugin("submitter", cls, HERE))
    caplog.set_level(logging.INFO)
    agent = submit(mapper)
    assert agent.nCycles == 1
    (line,) = validator_lines(caplog, "submitter", cls, "submit_workers")
    assert problem in line and line.endswith("; expected a list of (True|False|None, diagnostic) pairs, one per "
                                             "worker, in order")
    assert outcome(proxy, ids) == as_raising, "not handled as a plugin that raised"
    assert as_raising[0] == ["missed"] * 3
    # every worker says why, and nothing stays locked
    diags = [r[0] for r in sql("SELECT diagMessage FROM work_table")]
    assert all(f"{cls}.submit_workers: " in d for d in diags)
    assert sql("SELECT COUNT(*) FROM job_table WHERE lockedBy IS NOT NULL") == [(0,)]
    assert sql("SELECT COUNT(*) FROM pq_table WHERE lockedBy IS NOT NULL") == [(0,)]


def test_field_guard_one_warning_per_submit_call(agent_env, caplog):
    mapper, proxy, ids = submit_env(agent_env, submitter=plugin("submitter", "FieldSettingSubmitter", HERE))
    caplog.set_level(logging.INFO)
    submit(mapper)
    worker_ids = [r[0] for r in sql("SELECT workerID FROM work_table ORDER BY workerID")]
    assert len(worker_ids) == 3
    (line,) = warnings_of(caplog, "may not set")
    assert f"queue '{Q}', submitter plugin {HERE}.FieldSettingSubmitter.submit_workers set fields a submitter " \
           f"plugin may not set: " in line
    assert "status of WorkSpec " + " ".join(f"workerID={w}" for w in worker_ids) in line
    assert "subStatus of JobSpec " in line and all(f"PandaID={p}" in line for p in ids)
    assert "batchID" not in line.split("(it may set")[0] and "nativeStatus" not in line.split("(it may set")[0]
    assert sorted(r[0] for r in sql("SELECT batchID FROM work_table")) == [f"b{w}" for w in worker_ids]


def test_field_guard_is_not_even_built_when_warnings_are_off(agent_env, monkeypatch):
    mapper, proxy, ids = submit_env(agent_env, submitter=plugin("submitter", "FieldSettingSubmitter", HERE))

    def no_guard(*args, **kwargs):
        raise AssertionError("FieldGuard built although its WARNING cannot be emitted")

    monkeypatch.setattr(agent_base, "FieldGuard", no_guard)
    monkeypatch.setattr(logging.getLogger("panda.log.submitter"), "level", logging.ERROR)
    submit(mapper)
    assert sql("SELECT COUNT(*) FROM work_table WHERE batchID IS NOT NULL") == [(3,)]


def test_field_guard_silent_for_the_dummy_plugins(agent_env, caplog):
    mapper, proxy, ids = submit_env(agent_env)
    caplog.set_level(logging.INFO)
    submit(mapper)
    assert {r[0] for r in sql("SELECT status FROM work_table")} == {"submitted"}
    assert warnings_of(caplog, "may not set") == []


def test_feed_jobs_wrong_reply_leaves_the_worker_unsubmitted(agent_env, caplog):
    OkMessenger.answer = "ok"
    mapper, proxy, ids = submit_env(agent_env, n_jobs=1, maxSubmissionAttempts=3,
                                    messenger=plugin("messenger", "OkMessenger", HERE, accessPoint="/nonexistent"))
    caplog.set_level(logging.INFO)
    submit(mapper)
    (line,) = validator_lines(caplog, "messenger", "OkMessenger", "feed_jobs")
    assert "returned 'ok' (str); expected True, False or None" in line
    # as when feed_jobs raises: not submitted, failed for now, the job retried
    assert sql("SELECT status FROM work_table") == [("missed",)]
    job = proxy.get_job(ids[0])
    assert (job.status, job.subStatus, job.submissionAttempts, job.lockedBy) == ("starting", "prepared", 1, None)
    OkMessenger.answer = None  # None is no failure, as the original's submitter reads it
    sql("UPDATE pq_table SET submitTime=NULL, lockedBy=NULL")
    submit(mapper)
    assert proxy.get_job(ids[0]).subStatus == "submitted"


# ------------------------------------------------------------------ worker maker
def test_make_worker_wrong_reply_fails_the_jobs_as_a_maker_giving_none(agent_env, caplog):
    mapper, proxy, ids = submit_env(agent_env, n_jobs=2, workerMaker=plugin("workerMaker", "DictMaker", HERE))
    caplog.set_level(logging.INFO)
    submit(mapper)
    lines = validator_lines(caplog, "workermaker", "DictMaker", "make_worker")
    assert len(lines) == 2 and all("returned {'nCore': 1} (dict); expected a WorkSpec, or None" in m for m in lines)
    assert sql("SELECT COUNT(*) FROM work_table") == [(0,)]
    assert {(proxy.get_job(p).status, proxy.get_job(p).subStatus) for p in ids} == {("failed", "failed_to_make")}


def test_maker_is_called_as_its_signature_allows_once_per_worker(agent_env):
    OldMaker.calls = TypeErrorMaker.calls = 0
    mapper, proxy, ids = submit_env(agent_env, n_jobs=3, workerMaker=plugin("workerMaker", "OldMaker", HERE))
    submit(mapper)
    assert {r[0] for r in sql("SELECT status FROM work_table")} == {"submitted"}
    assert OldMaker.calls == 3
    # a TypeError of the maker's own is a failure to make the worker (as any exception), not a
    # reason to call it again without prod_source_label
    sql("DELETE FROM work_table")
    mapper, proxy, ids = submit_env(agent_env, n_jobs=2, workerMaker=plugin("workerMaker", "TypeErrorMaker", HERE))
    agent = submit(mapper)
    assert agent.nCycles == 1 and TypeErrorMaker.calls == 2
    assert {(proxy.get_job(p).status, proxy.get_job(p).subStatus) for p in ids} == {("failed", "failed_to_make")}


def test_sizing_wrong_reply_takes_no_jobs_for_the_slot(agent_env, caplog):
    mapper, proxy, ids = submit_env(agent_env, n_jobs=2, map_type="ManyToOne",
                                    workerMaker=plugin("workerMaker", "StringSizeMaker", HERE))
    caplog.set_level(logging.INFO)
    agent = submit(mapper)
    assert agent.nCycles == 1
    (line,) = validator_lines(caplog, "workermaker", "StringSizeMaker", "get_num_jobs_per_worker")
    assert "returned '4' (str); expected a non-negative int" in line
    assert sql("SELECT COUNT(*) FROM work_table") == [(0,)]
    for pid in ids:  # untouched: taken at the next cycle
        job = proxy.get_job(pid)
        assert (job.status, job.subStatus, job.lockedBy) == ("starting", "prepared", None)


def test_worker_maker_and_adjuster_use_the_submitters_resources(agent_env):
    mapper, proxy, ids = submit_env(agent_env)
    agent = Submitter(mapper, single_mode=True)
    for part in (agent.workerMaker, agent.workerAdjuster):
        assert part.agent is agent
        assert part.pluginFactory is agent.pluginFactory and part.dbProxy is agent.dbProxy


# ------------------------------------------------------------------ throttler
def adjuster_env(agent_env, cls):
    home, mapper, proxy = agent_env(lambda h: {Q: queue(h, nQueueLimitWorker=5,
                                                        throttler=plugin("throttler", cls, HERE))})
    return WorkerAdjuster(mapper)


def n_new(adjuster):
    static = {Q: {"ANY": {"ANY": {"nQueue": 0, "nReady": 0, "nRunning": 0, "nNewWorkers": 0}}}}
    return adjuster.define_num_workers(static, Q)[Q]["ANY"]["ANY"]["nNewWorkers"]


def test_throttler_of_the_older_signature_is_called_as_it_allows(agent_env):
    adjuster = adjuster_env(agent_env, "OldThrottler")
    OldThrottler.answer = (False, "fine")
    assert n_new(adjuster) == 5, "a throttler without queue_config_mapper= got no workers"
    OldThrottler.answer = (True, "too many missed")
    assert n_new(adjuster) == 0
    OldThrottler.answer = (None, "")  # falsy, as the original's adjuster reads it: not throttled
    assert n_new(adjuster) == 5


def test_throttler_wrong_reply_blocks_its_queue(agent_env, caplog):
    adjuster = adjuster_env(agent_env, "StringThrottler")
    caplog.set_level(logging.INFO)
    assert n_new(adjuster) == 0  # fail safe, as a throttler that raises
    (line,) = validator_lines(caplog, "throttler", "StringThrottler", "to_be_throttled")
    assert "returned 'no', not a (status, diagnostic) pair" in line


# ------------------------------------------------------------------ monitor
class ScriptedMonitor(PluginBase):
    """``reply(workers)`` is what check_workers returns; ``touch`` sets fields on each worker first."""

    reply = staticmethod(lambda workers: (True, [(w.status, "") for w in workers]))
    touch: dict = {}

    def check_workers(self, workspec_list):
        for w in workspec_list:
            for name, value in type(self).touch.items():
                setattr(w, name, value)
        return type(self).reply(workspec_list)


class QuietMessenger(BaseMessenger):
    """Nothing reported; post-processing done at once."""

    def post_processing(self, workspec, jobspec_list, map_type):
        return True


class ListFilesMessenger(QuietMessenger):
    """get_files_to_stage_out answers a list of names for the workers in ``odd``."""

    odd: set = set()

    def get_files_to_stage_out(self, workspec):
        return ["out.root"] if workspec.workerID in type(self).odd else {}


@pytest.fixture()
def mon_env(agent_env):
    ScriptedMonitor.reply = staticmethod(lambda workers: (True, [(w.status, "") for w in workers]))
    ScriptedMonitor.touch = {}

    def make(messenger="QuietMessenger"):
        home, mapper, proxy = agent_env(lambda h: {Q: queue(
            h, monitor=plugin("monitor", "ScriptedMonitor", HERE),
            messenger=plugin("messenger", messenger, HERE, accessPoint=str(h / "w" / "${workerID}")))})
        workers = []
        for _ in range(3):
            job = make_job(Q, sub_status="submitted", status="running")
            assert proxy.insert_jobs([job])
            set_job(proxy, job.PandaID, lockedBy="submitter")
            workers.append(store_worker(proxy, make_worker(Q, status="running"), [proxy.get_job(job.PandaID)]))
            set_job(proxy, job.PandaID, lockedBy=None)
        return mapper, workers

    return make


def monitor(mapper):
    agent = Monitor(mapper, single_mode=True)
    agent.run_one_cycle()
    return agent


def rows(workers):
    return [sql("SELECT status, checkTime, killTime FROM work_table WHERE workerID=:w", {":w": w.workerID})[0]
            for w in workers]


@pytest.mark.parametrize("reply, problem", [
    (lambda ws: [("finished", "")] * len(ws), "returned [('finished', ''), ('finished', ''), ('finished', '')], "
                                              "not a (bool, statuses) pair"),
    (lambda ws: ("finished", ""), "its first item is 'finished', not True or False"),
    (lambda ws: (True, [("finished", "")] * (len(ws) - 1)), "returned 2 replies for 3 workers"),
    (lambda ws: (True, {w.workerID: "finished" for w in ws}), "(dict), not a list of (status, diagnostic) pairs"),
    (lambda ws: (True, [("finished", "", 0)] * len(ws)), "reply #0 (workerID="),
])
def test_monitor_wrong_reply_is_one_clear_error_and_leaves_the_workers_unchecked(mon_env, caplog, reply, problem):
    mapper, workers = mon_env()
    before = rows(workers)
    ScriptedMonitor.reply = staticmethod(reply)
    caplog.set_level(logging.INFO)
    agent = monitor(mapper)
    assert agent.nCycles == 1
    (line,) = validator_lines(caplog, "monitor", "ScriptedMonitor", "check_workers")
    assert problem in line and "; expected (True, [(WorkSpec.ST_* status or None, diagnostic), ...])" in line
    assert rows(workers) == before, "a worker changed although nothing was checked"  # checked again next cycle
    diags = [sql("SELECT diagMessage FROM work_table WHERE workerID=:w", {":w": w.workerID})[0][0] for w in workers]
    assert all("ScriptedMonitor.check_workers: " in d for d in diags)


def test_monitor_unknown_status_of_one_worker_is_that_workers_problem(mon_env, caplog):
    mapper, workers = mon_env()
    odd = workers[1].workerID
    ScriptedMonitor.reply = staticmethod(lambda ws: (True, [("exploded" if w.workerID == odd else "finished", "")
                                                            for w in ws]))
    caplog.set_level(logging.INFO)
    monitor(mapper)
    (line,) = validator_lines(caplog, "monitor", "ScriptedMonitor", "check_workers")
    assert f"reply #1 (workerID={odd}): unknown status 'exploded'" in line
    statuses = [r[0] for r in rows(workers)]
    assert statuses == ["finished", "running", "finished"]
    diag = sql("SELECT diagMessage FROM work_table WHERE workerID=:w", {":w": odd})[0][0]
    assert "unknown status 'exploded'" in diag


def test_field_guard_one_warning_per_check_call(mon_env, caplog):
    mapper, workers = mon_env()
    ScriptedMonitor.touch = {"nativeStatus": "R", "status": WorkSpec.ST_failed, "batchID": "stolen"}
    caplog.set_level(logging.INFO)
    monitor(mapper)
    (line,) = warnings_of(caplog, "may not set")
    ids = " ".join(f"workerID={w.workerID}" for w in workers)
    assert f"monitor plugin {HERE}.ScriptedMonitor.check_workers set fields a monitor plugin may not set: " \
           f"batchID of WorkSpec {ids}; status of WorkSpec {ids} (it may set WorkSpec: " in line
    assert "nativeStatus of" not in line


def test_messenger_wrong_reply_leaves_only_that_worker_unchecked(mon_env, caplog):
    mapper, workers = mon_env("ListFilesMessenger")
    odd = workers[0]
    ListFilesMessenger.odd = {odd.workerID}
    before = rows([odd])
    ScriptedMonitor.reply = staticmethod(lambda ws: (True, [("finished", "") for _ in ws]))
    caplog.set_level(logging.INFO)
    monitor(mapper)
    (line,) = validator_lines(caplog, "messenger", "ListFilesMessenger", "get_files_to_stage_out")
    assert "returned ['out.root'] (list); expected a dict (None: nothing)" in line
    assert rows([odd]) == before  # as when the messenger raises: checked again next cycle
    assert [r[0] for r in rows(workers[1:])] == ["finished", "finished"]
    diag = sql("SELECT diagMessage FROM work_table WHERE workerID=:w", {":w": odd.workerID})[0][0]
    assert "messenger failed: " in diag and "ListFilesMessenger.get_files_to_stage_out: returned" in diag
