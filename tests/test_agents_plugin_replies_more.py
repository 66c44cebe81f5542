"""Plugin replies of the wrong shape met by the sweeper, preparator, stager, job fetcher (extractor),
credential manager and event feeder: one clear ERROR line naming plugin class, queue, method and
problem, handled as that agent handles a plugin that raised, nothing lost (retried as then)."""

from __future__ import annotations

import logging

import pytest

from pandaharvester.harvesterbody.cred_manager import CredManager
from pandaharvester.harvesterbody.event_feeder import EventFeeder
from pandaharvester.harvesterbody.job_fetcher import JobFetcher
from pandaharvester.harvesterbody.sweeper import Sweeper
from pandaharvester.harvestercore.plugin_base import PluginBase
from pandaharvester.harvestercore.work_spec import WorkSpec
from pandaharvester.harvestermessenger.shared_file_messenger import SharedFileMessenger

import test_agents_stage as staging
from test_agents_helpers import agent_env, ago, make_job, make_worker, plugin, queue, sql, store_worker  # noqa: F401
from test_agents_stage import Scripted, stage_env  # noqa: F401

Q = "REPLYQ2"
HERE = __name__


def validator_line(caplog, queue_name: str, role: str, module: str, cls: str, method: str) -> str:
    """The one ERROR line of the validator for ``cls.method`` (the text right after the logger's prefix)."""
    head = f"> queue '{queue_name}', {role} plugin {module}.{cls}.{method}: "
    (line,) = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR and head in r.getMessage()]
    return line


# ------------------------------------------------------------------ sweeper
class DictKiller(PluginBase):
    """kill_workers answers a dict; sweep_worker answers a bare string."""

    def kill_workers(self, workspec_list):
        return {w.workerID: (True, "") for w in workspec_list}

    def sweep_worker(self, workspec):
        return "done"


@pytest.fixture()
def sweep_env(agent_env):
    keeps = {k: 0 for k in ("keepFinished", "keepFailed", "keepCancelled", "keepMissed", "keepPending")}
    return agent_env(lambda h: {Q: queue(h, sweeper=plugin("sweeper", "DictKiller", HERE))}, {"sweeper": keeps})


def sweep(mapper):
    agent = Sweeper(mapper, single_mode=True)
    agent.run_one_cycle()
    return agent


def test_sweeper_kill_wrong_reply_keeps_the_kill_marks(sweep_env, caplog):
    home, mapper, proxy = sweep_env
    workers = [store_worker(proxy, make_worker(Q, status="running")) for _ in range(2)]
    proxy.mark_workers_to_kill_by_workerids([w.workerID for w in workers])
    sql("UPDATE work_table SET killTime=:t", {":t": ago(60)})
    caplog.set_level(logging.INFO)
    agent = sweep(mapper)
    assert agent.nCycles == 1
    line = validator_line(caplog, Q, "sweeper", HERE, "DictKiller", "kill_workers")
    assert "(dict), not a list of (status, diagnostic) pairs; expected a list of (True|False, diagnostic)" in line
    assert any("kill failed" in r.getMessage() and all(f"workerID={w.workerID}" in r.getMessage() for w in workers)
               for r in caplog.records if r.levelno == logging.ERROR)
    # as after a kill that raised: still marked, killed again at the next turn
    assert sql("SELECT COUNT(*) FROM work_table WHERE killTime IS NOT NULL") == [(2,)]


def test_sweeper_sweep_wrong_reply_keeps_the_worker_for_the_next_cycle(sweep_env, caplog):
    home, mapper, proxy = sweep_env
    done = store_worker(proxy, make_worker(Q, status="finished"), endTime=ago(7200), lastUpdate=None,
                        modificationTime=ago(7200))
    caplog.set_level(logging.INFO)
    sweep(mapper)
    line = validator_line(caplog, Q, "sweeper", HERE, "DictKiller", "sweep_worker")
    assert "returned 'done', not a (status, diagnostic) pair; expected a (True|False, diagnostic) pair" in line
    assert sql("SELECT COUNT(*) FROM work_table WHERE workerID=:w", {":w": done.workerID}) == [(1,)]


# ------------------------------------------------------------------ preparator and stager
def test_preparator_wrong_reply_retries_the_job(stage_env, caplog):
    home, mapper, proxy = stage_env(fake=True)
    pid = staging.fetched_job(proxy)
    staging.prepare(mapper)
    assert staging.job_state(pid) == ("starting", "preparing")
    Scripted.answers = {"check_stage_in_status": "done"}
    caplog.set_level(logging.INFO)
    agent = staging.prepare(mapper)
    assert agent.nCycles == 1
    line = validator_line(caplog, staging.Q, "preparator", "test_agents_stage", "Scripted", "check_stage_in_status")
    assert "returned 'done', not a (status, diagnostic) pair" in line
    # as a plugin that raised: not failed, checked again
    assert staging.job_state(pid) == ("starting", "preparing")
    assert sql("SELECT lockedBy FROM job_table WHERE PandaID=:p", {":p": pid}) == [(None,)]
    Scripted.answers = {}
    staging.prepare(mapper)
    assert staging.job_state(pid) == ("starting", "prepared")


def test_stager_wrong_reply_retries_the_job(stage_env, caplog):
    home, mapper, proxy = stage_env(fake=True)
    pid = staging.job_to_stage_out(proxy)
    Scripted.answers = {"trigger_stage_out": (True, "", "extra")}
    caplog.set_level(logging.INFO)
    staging.stage(mapper)
    line = validator_line(caplog, staging.Q, "stager", "test_agents_stage", "Scripted", "trigger_stage_out")
    assert "returned (True, '', 'extra'), not a (status, diagnostic) pair" in line
    assert staging.job_state(pid) == ("finished", "to_transfer")
    assert staging.file_states(pid, "output") == ["defined"]
    Scripted.answers = {}
    staging.stage(mapper)
    assert staging.job_state(pid) == ("finished", "transferring")


# ------------------------------------------------------------------ job fetcher (extractor)
class ListExtractor(PluginBase):
    """get_aux_inputs answers a list of URLs instead of {lfn: attributes}."""

    def get_aux_inputs(self, jobspec):
        return ["http://cvmfs/aux.tgz"]


class StaticCommunicator:
    """PanDA's get_jobs reply: ``jobs`` (job dicts as the server sends them)."""

    def __init__(self, jobs):
        self.jobs = jobs

    def get_jobs(self, *args, **kwargs):
        return self.jobs, "OK"


def test_extractor_wrong_reply_skips_that_job_only(agent_env, caplog):
    home, mapper, proxy = agent_env(lambda h: {Q: queue(h, extractor=plugin("extractor", "ListExtractor", HERE))},
                                    {"master": {"harvester_id": "h-replies"}})
    job = make_job(Q, sub_status="fetched")
    reply = [dict(job.jobParams, PandaID=910000, taskID=1, inFiles="in.a", scopeIn="s", fsize="1",
                  checksum="ad:1", GUID="g1", prodDBlocks="d", dispatchDblock="d", prodSourceLabel="managed",
                  currentPriority=1, jobsetID=1, attemptNr=1, ddmEndPointIn="x")]
    caplog.set_level(logging.INFO)
    agent = JobFetcher(StaticCommunicator(reply), mapper, single_mode=True)
    agent.fetch_jobs(Q, 1)
    (line,) = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert line.startswith(f"fetch_jobs <queueName={Q}> PandaID=910000 (item 1/1 of the acquire_jobs reply) "
                           f"skipped: PluginReplyError: queue '{Q}', extractor plugin {HERE}.ListExtractor."
                           f"get_aux_inputs: returned ['http://cvmfs/aux.tgz'] (list), not a dict; expected a dict")
    assert sql("SELECT COUNT(*) FROM job_table") == [(0,)]  # as when the extractor raises: PanDA reassigns it


# ------------------------------------------------------------------ credential manager
class WordyCredManager(PluginBase):
    """check_credential answers a word; counts the renewals."""

    renewed = 0

    def check_credential(self):
        return "expired"

    def renew_credential(self):
        type(self).renewed += 1
        return True, ""


def test_cred_manager_wrong_reply_is_a_failed_check(agent_env, caplog):
    home, mapper, proxy = agent_env(lambda h: {Q: queue(h)})
    WordyCredManager.renewed = 0
    manager = CredManager(mapper, single_mode=True)
    manager.exe_cores = [WordyCredManager(setup_name="prod")]
    manager.queue_exe_cores = []
    caplog.set_level(logging.INFO)
    manager.execute()
    head = f"> credmanager plugin {HERE}.WordyCredManager.check_credential: returned 'expired' (str); expected "
    assert [r.getMessage() for r in caplog.records if head in r.getMessage()], "no validator line"
    assert any("check failed : credmanager plugin" in r.getMessage() for r in caplog.records)
    assert WordyCredManager.renewed == 0  # as when the check raises: not renewed on a misread answer


# ------------------------------------------------------------------ event feeder
class WordyFeedMessenger(SharedFileMessenger):
    """feed_events answers a word."""

    def feed_events(self, workspec, events_dict):
        return "fed"


class EventsCommunicator:
    def get_event_ranges(self, params, scattered, base_dir):
        return True, {panda_id: [{"eventRangeID": f"{panda_id}-1", "LFN": "EVNT.root"}] for panda_id in params}


def test_event_feeder_wrong_reply_keeps_the_request_for_a_retry(agent_env, caplog):
    home, mapper, proxy = agent_env(lambda h: {Q: queue(h, messenger=plugin(
        "messenger", "WordyFeedMessenger", HERE, accessPoint=str(h / "w" / "${workerID}")))},
        {"eventfeeder": {"maxWorkers": 10, "lockInterval": 600}})
    job = make_job(Q, sub_status="submitted", status="running")
    assert proxy.insert_jobs([job])
    worker = make_worker(Q, status="running", eventsRequest=WorkSpec.EV_requestEvents)
    worker.eventsRequestParams = {job.PandaID: {"pandaID": job.PandaID, "nRanges": 1}}
    worker = store_worker(proxy, worker, [proxy.get_job(job.PandaID)])
    caplog.set_level(logging.INFO)
    agent = EventFeeder(EventsCommunicator(), mapper, single_mode=True)
    agent.run_one_cycle()
    line = validator_line(caplog, Q, "messenger", HERE, "WordyFeedMessenger", "feed_events")
    assert "returned 'fed' (str); expected True, False or None" in line
    events_request, lock = sql("SELECT eventsRequest, eventFeedLock FROM work_table WHERE workerID=:w",
                               {":w": worker.workerID})[0]
    assert events_request == WorkSpec.EV_requestEvents and lock is not None  # retried after lockInterval
