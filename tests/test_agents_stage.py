"""Preparator and Stager against the real DB, with the dummy plugins and scripted fakes."""

from __future__ import annotations

import pytest

from pandaharvester.harvesterbody.preparator import Preparator
from pandaharvester.harvesterbody.stager import Stager
from pandaharvester.harvestercore.file_spec import FileSpec
from pandaharvester.harvestercore.job_spec import JobSpec
from pandaharvester.harvestercore.plugin_base import PluginBase

from test_agents_helpers import agent_env, make_job, plugin, queue, set_job, sql  # noqa: F401

Q = "STQ"


class Scripted(PluginBase):
    """Answers ``answers[method]`` (a (status, diag) tuple, or an exception to raise)."""

    answers: dict = {}
    boom: set = set()  # PandaIDs whose every plugin call raises

    def _answer(self, method, jobspec):
        if jobspec.PandaID in Scripted.boom:
            raise RuntimeError(f"boom for {jobspec.PandaID}")
        answer = Scripted.answers.get(method, (True, ""))
        if isinstance(answer, Exception):
            raise answer
        if method == "check_stage_out_status" and answer[0] is True:
            for f in jobspec.get_output_file_specs(skip_done=True):
                f.status = "finished"
        return answer

    def trigger_preparation(self, jobspec):
        return self._answer("trigger_preparation", jobspec)

    def check_stage_in_status(self, jobspec):
        return self._answer("check_stage_in_status", jobspec)

    def resolve_input_paths(self, jobspec):
        return self._answer("resolve_input_paths", jobspec)

    def trigger_stage_out(self, jobspec):
        return self._answer("trigger_stage_out", jobspec)

    def check_stage_out_status(self, jobspec):
        return self._answer("check_stage_out_status", jobspec)


@pytest.fixture()
def stage_env(agent_env):
    Scripted.answers = {}
    Scripted.boom = set()

    def make(fake=False):
        extra = {"preparator": plugin("preparator", "Scripted", __name__),
                 "stager": plugin("stager", "Scripted", __name__)} if fake else {}
        # stager: a job answered None keeps its lock (as in the original) and is due again after
        # lockInterval; 0 here so that the next cycle sees it again
        return agent_env(lambda h: {Q: queue(h, **extra)}, {"stager": {"lockInterval": 0}})

    return make


def job_state(pid):
    return sql("SELECT status, subStatus FROM job_table WHERE PandaID=:p", {":p": pid})[0]


def file_states(pid, file_type="input"):
    return sorted(r[0] for r in sql("SELECT status FROM file_table WHERE PandaID=:p AND fileType=:t",
                                    {":p": pid, ":t": file_type}))


def prepare(mapper):
    agent = Preparator(None, mapper, single_mode=True)
    agent.run_one_cycle()
    return agent


def fetched_job(proxy):
    job = make_job(Q, sub_status="fetched", n_in=2)
    assert proxy.insert_jobs([job])
    return job.PandaID


# ------------------------------------------------------------------ Preparator
def test_preparator_dummy_fetched_to_prepared(stage_env):
    home, mapper, proxy = stage_env()
    pid = fetched_job(proxy)
    prepare(mapper)  # trigger (then check in the same cycle is not due: checked first)
    assert job_state(pid) == ("starting", "preparing")
    prepare(mapper)
    assert job_state(pid) == ("starting", "prepared")
    assert file_states(pid) == ["ready", "ready"]
    assert sql("SELECT lockedBy FROM job_table WHERE PandaID=:p", {":p": pid}) == [(None,)]


def test_preparator_trigger_false_fails_job(stage_env):
    home, mapper, proxy = stage_env(fake=True)
    Scripted.answers = {"trigger_preparation": (False, "no replica")}
    pid = fetched_job(proxy)
    prepare(mapper)
    assert job_state(pid) == ("failed", "failed_to_prepare")
    job = proxy.get_job(pid)
    assert "no replica" in job.get_one_attribute("pilotErrorDiag")
    assert job.propagatorTime is not None


def test_preparator_none_retries_and_raise_is_contained(stage_env):
    home, mapper, proxy = stage_env(fake=True)
    Scripted.answers = {"trigger_preparation": (None, "busy")}
    pid = fetched_job(proxy)
    prepare(mapper)
    assert job_state(pid) == ("starting", "fetched")
    assert sql("SELECT lockedBy FROM job_table WHERE PandaID=:p", {":p": pid}) == [(None,)]
    Scripted.answers = {"trigger_preparation": RuntimeError("boom")}
    agent = prepare(mapper)
    assert agent.nCycles == 1 and job_state(pid) == ("starting", "fetched")
    Scripted.answers = {}
    prepare(mapper)
    assert job_state(pid) == ("starting", "preparing")


def test_preparator_check_false_and_none(stage_env):
    home, mapper, proxy = stage_env(fake=True)
    pid = fetched_job(proxy)
    prepare(mapper)
    assert job_state(pid)[1] == "preparing"
    Scripted.answers = {"check_stage_in_status": (None, "still copying")}
    prepare(mapper)
    assert job_state(pid) == ("starting", "preparing")
    Scripted.answers = {"check_stage_in_status": (False, "checksum mismatch")}
    prepare(mapper)
    assert job_state(pid) == ("failed", "failed_to_prepare")


# ------------------------------------------------------------------ Stager
def job_to_stage_out(proxy, n_out=2):
    job = make_job(Q, sub_status="to_transfer", status="finished", n_in=0)
    job.hasOutFile = JobSpec.HO_hasOutput
    for i in range(n_out):
        f = FileSpec()
        f.PandaID = job.PandaID
        f.lfn = f"out.{job.PandaID}.{i}"
        f.fileType = "output" if i else "log"
        f.status = "defined"
        f.fsize = 1
        f.path = f"/tmp/{f.lfn}"
        job.add_out_file(f)
    assert proxy.insert_jobs([job]) and proxy.insert_files([job])
    assert file_states(job.PandaID, "output") == ["defined"]
    return job.PandaID


def stage(mapper):
    agent = Stager(mapper, single_mode=True)
    agent.run_one_cycle()
    return agent


def test_stager_dummy_to_transfer_transferring_staged(stage_env):
    home, mapper, proxy = stage_env()
    pid = job_to_stage_out(proxy)
    stage(mapper)
    assert job_state(pid) == ("finished", "transferring")
    assert file_states(pid, "output") == ["transferring"]
    stage(mapper)
    assert job_state(pid) == ("finished", "staged")
    assert file_states(pid, "output") == ["finished"] and file_states(pid, "log") == ["finished"]
    assert proxy.get_job(pid).propagatorTime is not None


def test_stager_trigger_false_fails_job(stage_env):
    home, mapper, proxy = stage_env(fake=True)
    pid = job_to_stage_out(proxy)
    Scripted.answers = {"trigger_stage_out": (False, "endpoint down")}
    stage(mapper)
    assert file_states(pid, "output") == ["failed"]
    # the job is not left in to_transfer for ever: it moves on and, once checked, fails
    assert job_state(pid)[1] in ("transferring", "failed_to_stage_out")
    stage(mapper)
    assert job_state(pid) == ("failed", "failed_to_stage_out")


def test_stager_check_none_then_false(stage_env):
    home, mapper, proxy = stage_env(fake=True)
    pid = job_to_stage_out(proxy)
    Scripted.answers = {"check_stage_out_status": (None, "copying")}
    stage(mapper)
    assert job_state(pid) == ("finished", "transferring")
    stage(mapper)
    assert job_state(pid) == ("finished", "transferring")
    Scripted.answers = {"check_stage_out_status": (False, "lost file")}
    stage(mapper)
    assert job_state(pid) == ("failed", "failed_to_stage_out")
    assert "lost file" in proxy.get_job(pid).get_one_attribute("pilotErrorDiag")


def test_stager_none_on_trigger_keeps_job_to_transfer(stage_env):
    home, mapper, proxy = stage_env(fake=True)
    pid = job_to_stage_out(proxy)
    Scripted.answers = {"trigger_stage_out": (None, "later")}
    stage(mapper)
    assert job_state(pid) == ("finished", "to_transfer")
    assert file_states(pid, "output") == ["defined"]
    Scripted.answers = {}
    stage(mapper)
    assert job_state(pid) == ("finished", "transferring")


# ------------------------------------------------------------------ chunks
def test_chunk_with_a_raising_job_and_a_lost_lock(stage_env, monkeypatch):
    """Jobs go through in chunks; a plugin raising for one job, or a job whose lock another
    thread took meanwhile, leaves that job alone and the rest of its chunk moves on."""
    from pandaharvester.harvesterbody import stage_batch

    monkeypatch.setattr(stage_batch, "CHUNK_SIZE", 2)
    home, mapper, proxy = stage_env(fake=True)
    pids = [fetched_job(proxy) for _ in range(5)]
    Scripted.boom = {pids[1]}
    from pandaharvester.harvestercore.db_proxy import DBProxy

    real_relock = DBProxy.lock_jobs_again

    def steal_then_relock(self, panda_ids, *args):
        if pids[3] in panda_ids:  # another preparator took this job between pick and re-lock
            sql("UPDATE job_table SET lockedBy='preparator-other' WHERE PandaID=:p", {":p": pids[3]})
        return real_relock(self, panda_ids, *args)

    monkeypatch.setattr(DBProxy, "lock_jobs_again", steal_then_relock)
    prepare(mapper)
    states = [job_state(p)[1] for p in pids]
    assert states == ["preparing", "fetched", "preparing", "fetched", "preparing"]
    assert sql("SELECT lockedBy FROM job_table WHERE PandaID=:p", {":p": pids[3]}) == [("preparator-other",)]


def test_stager_chunk_with_a_raising_job(stage_env):
    home, mapper, proxy = stage_env(fake=True)
    pids = [job_to_stage_out(proxy) for _ in range(3)]
    Scripted.boom = {pids[0]}
    stage(mapper)
    assert [job_state(p)[1] for p in pids] == ["to_transfer", "transferring", "transferring"]


def test_outcomes_one_line_per_message_with_every_id():
    from pandaharvester.harvesterbody.stage_batch import Outcomes

    lines = []

    class Log:
        def info(self, msg):
            lines.append(("info", msg))

        def debug(self, msg):
            lines.append(("debug", msg))

    out = Outcomes()
    for pid in (11, 12, 13):
        out.add("info", "inputs ready", pid)
    out.add("debug", "trigger later: busy", 14)
    out.flush(Log())
    assert lines == [("info", "inputs ready: PandaID=11 PandaID=12 PandaID=13"), ("debug", "trigger later: busy: PandaID=14")]
    out.flush(Log())
    assert len(lines) == 2


def test_stager_chunk_stops_at_half_the_lock_interval(stage_env, monkeypatch):
    """lockInterval 0 here: after each job the chunk's re-lock is too old, so every further job
    is re-locked on its own before its plugin call; all of them still move on in the cycle."""
    from pandaharvester.harvestercore.db_proxy import DBProxy

    home, mapper, proxy = stage_env(fake=True)
    pids = [job_to_stage_out(proxy) for _ in range(3)]
    calls = []
    real_relock = DBProxy.lock_jobs_again

    def counting_relock(self, panda_ids, *args):
        calls.append(list(panda_ids))
        return real_relock(self, panda_ids, *args)

    monkeypatch.setattr(DBProxy, "lock_jobs_again", counting_relock)
    stage(mapper)
    assert [job_state(p)[1] for p in pids] == ["transferring"] * 3
    assert calls[:3] == [pids, pids[1:], pids[2:]]


def test_process_in_chunks_hands_back_and_always_progresses():
    """The base's batch skeleton: the items a chunk hands back lead the next chunk, and one item
    is always dropped when a chunk hands back everything (so the loop ends)."""
    from pandaharvester.harvesterbody.agent_base import AgentBase

    agent = AgentBase(single_mode=True)
    seen = []

    def first_only(chunk):
        seen.append(list(chunk))
        return chunk[1:]

    agent.process_in_chunks([1, 2, 3], first_only, size=2)
    assert seen == [[1, 2], [2, 3], [3]]
    seen.clear()
    agent.process_in_chunks([1, 2], lambda chunk: seen.append(list(chunk)) or chunk)  # hands back everything
    assert seen == [[1, 2], [2]]


def test_stager_zip_step_takes_its_settings_from_zipper_before_stager(fresh_home):
    """As in the original: [zipper] sets the zip step when it has the key, else [stager] does."""
    fresh_home({"zipper": {"maxJobsToZip": 7, "zipInterval": 11, "lockInterval": 13, "maxFilesPerJobToZip": 2},
                "stager": {"maxJobsToZip": 100, "zipInterval": 180, "lockInterval": 600, "maxJobsToCheck": 5}})
    stager = Stager(None, single_mode=True)
    calls = []

    class Recorder:
        def get_jobs_for_stage_out(self, max_jobs, interval, lock_interval, locked_by, sub_status, flag, bad_flags,
                                   max_files_per_job=None):
            calls.append((flag, max_jobs, interval, lock_interval, max_files_per_job))
            return []

    stager.dbProxy = Recorder()
    stager.run_cycle()
    steps = {flag: rest for flag, *rest in calls}
    assert steps[JobSpec.HO_hasZipOutput] == [7, 11, 13, 2]
    assert steps[JobSpec.HO_hasTransfer] == [5, 180, 600, None]  # check step: [stager] only
    from pandaharvester.harvesterzipper.base_zipper import n_threads_for_zip

    fresh_home({"zipper": {"nThreadsForZip": 3}, "stager": {"nThreadsForZip": 9}})
    assert n_threads_for_zip() == 3
