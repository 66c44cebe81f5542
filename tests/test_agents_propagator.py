"""JobFetcher and Propagator against the real DB and the PanDA emulator (a separate process)."""

from __future__ import annotations

import uuid

import pytest

from pandaharvester.harvesterbody.job_fetcher import JobFetcher
from pandaharvester.harvesterbody.propagator import Propagator
from pandaharvester.harvestercommunicator.panda_communicator import PandaCommunicator
from pandaharvester.harvestertest.panda_emulator.launcher import start_emulator

from test_agents_helpers import (agent_env, ago, emulator_overrides, make_job, make_worker, queue,  # noqa: F401
                                 set_job, sql, store_worker)


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    emu = start_emulator(tmp_path_factory.mktemp("emu_agents"), seed=3)
    yield emu
    emu.stop()


class CountingCommunicator(PandaCommunicator):
    """The real communicator, counting what it sends."""

    def __init__(self):
        super().__init__()
        self.sent_jobs: list[int] = []

    def update_jobs(self, jobspec_list, id=None):
        self.sent_jobs.extend(j.PandaID for j in jobspec_list)
        return super().update_jobs(jobspec_list, id)


@pytest.fixture()
def env(agent_env, emulator):
    def make(n_queue_limit_job=20):
        site = f"PQ_{uuid.uuid4().hex[:8]}"
        harvester_id = f"h-{uuid.uuid4().hex[:8]}"
        home, mapper, proxy = agent_env(lambda h: {site: queue(h, nQueueLimitJob=n_queue_limit_job)},
                                        emulator_overrides(emulator, harvester_id))
        return site, mapper, proxy, CountingCommunicator()

    return make


def fetch(mapper, comm):
    agent = JobFetcher(comm, mapper, single_mode=True)
    agent.run_one_cycle()


def propagate(mapper, comm):
    agent = Propagator(comm, mapper, single_mode=True)
    agent.run_one_cycle()
    return agent


def db_jobs():
    return sql("SELECT PandaID, status, subStatus FROM job_table ORDER BY PandaID")


# ------------------------------------------------------------------ JobFetcher
def test_fetcher_inserts_jobs_with_input_files_up_to_limit(env, emulator):
    site, mapper, proxy, comm = env(n_queue_limit_job=3)
    ids = emulator.add_task(site, 5, n_files=2)
    fetch(mapper, comm)
    rows = db_jobs()
    assert len(rows) == 3 and {r[0] for r in rows} <= set(ids)
    assert all(r[1:] == ("starting", "fetched") for r in rows)
    files = sql("SELECT PandaID, status, fileType FROM file_table")
    assert len(files) == 6 and all(f[1] == "to_prepare" and f[2] == "input" for f in files)
    sent = {j["panda_id"] if "panda_id" in j else j.get("PandaID") for j in emulator.jobs(site=site)
            if j["status"] != "activated"}
    assert len(sent) == 3
    fetch(mapper, comm)  # the queue is full (3 starting jobs): nothing more
    assert len(db_jobs()) == 3


class OneBadCommunicator:
    """get_jobs returns one malformed job among good ones."""

    def __init__(self, good):
        self.good = good

    def get_jobs(self, *args, **kwargs):
        return [{"PandaID": "not-a-number", "jobsetID": object()}] + self.good, "OK"


def test_fetcher_skips_malformed_job_keeps_the_others(env):
    site, mapper, proxy, _comm = env()
    good = []
    for i in range(2):
        job = make_job(site, sub_status="fetched")
        good.append(dict(job.jobParams, PandaID=900000 + i, taskID=1, inFiles="in.a,in.b", scopeIn="s,s",
                         fsize="1,1", checksum="ad:1,ad:2", GUID="g1,g2", prodDBlocks="d,d", dispatchDblock="d,d",
                         prodSourceLabel="managed", currentPriority=1, jobsetID=1, attemptNr=1, ddmEndPointIn="x,x"))
    fetch(mapper, OneBadCommunicator(good))
    assert {r[0] for r in db_jobs()} == {900000, 900001}


class BadItemsCommunicator(CountingCommunicator):
    """The real communicator; non-object items slipped into the real acquire_jobs reply."""

    def get_jobs(self, *args, **kwargs):
        jobs, message = super().get_jobs(*args, **kwargs)
        return jobs[:10] + [42, "junk", None, ["x"], {"jobPars": "no PandaID"}] + jobs[10:], message


class DbRefusedItemCommunicator(CountingCommunicator):
    """The real reply plus a job the DB cannot store (a dict where an integer column is)."""

    def get_jobs(self, *args, **kwargs):
        jobs, message = super().get_jobs(*args, **kwargs)
        return jobs + [dict(jobs[0], PandaID=jobs[0]["PandaID"] + 10**6, zipPerMB={"not": "a number"})], message


def test_fetcher_records_every_good_job_when_items_are_not_jobs(env, emulator, caplog):
    site, mapper, proxy, _comm = env(n_queue_limit_job=50)
    ids = emulator.add_task(site, 30)
    with caplog.at_level("ERROR", logger="panda.log.job_fetcher"):
        fetch(mapper, BadItemsCommunicator())
    assert sorted(r[0] for r in db_jobs()) == ids  # all 30 dispatched jobs recorded
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 5, errors
    assert "item 11/35 of the acquire_jobs reply (42) skipped: ValueError: a job must be a JSON object, not int" \
        in errors[0]
    assert "item 12/35 of the acquire_jobs reply ('junk')" in errors[1] and "(None)" in errors[2]
    assert "the job has no 'PandaID'" in errors[4]


def test_fetcher_stores_the_others_when_the_db_refuses_one_job(env, emulator, caplog):
    site, mapper, proxy, _comm = env(n_queue_limit_job=50)
    ids = emulator.add_task(site, 5)
    with caplog.at_level("ERROR", logger="panda.log.job_fetcher"):
        fetch(mapper, DbRefusedItemCommunicator())
    assert sorted(r[0] for r in db_jobs()) == ids
    assert f"PandaID={ids[0] + 10**6} not stored: the DB refused it" in caplog.text


def test_fetcher_stores_real_server_job_shapes(env, emulator):
    """The real server sends taskID/jobsetID/maxWalltime as strings: ids are stored as ints."""
    site, mapper, proxy, comm = env()
    (panda_id,) = emulator.add_task(site, 1)
    fetch(mapper, comm)
    job = proxy.get_job(panda_id)
    spec = emulator.jobs(panda_ids=[panda_id], with_spec=True)[0]["spec"]
    assert isinstance(spec["taskID"], str) and isinstance(spec["jobsetID"], str)
    assert job.taskID == int(spec["taskID"]) and job.jobsetID == int(spec["jobsetID"])
    assert job.jobParams["maxWalltime"] == spec["maxWalltime"]  # the pilot gets PanDA's own values
    assert sql("SELECT typeof(taskID), typeof(jobsetID) FROM job_table") == [("integer", "integer")]


# ------------------------------------------------------------------ Propagator
def fetched(env, emulator, n=2):
    site, mapper, proxy, comm = env()
    emulator.add_task(site, n)
    fetch(mapper, comm)
    ids = [r[0] for r in db_jobs()]
    assert len(ids) == n
    return site, mapper, proxy, comm, ids


def panda_status(emulator, site, pid):
    return {j.get("PandaID", j.get("panda_id")): j["status"] for j in emulator.jobs(site=site)}[pid]


def test_final_job_sent_once_then_done(env, emulator):
    site, mapper, proxy, comm, (pid, other) = fetched(env, emulator)
    set_job(proxy, pid, status="finished", subStatus="staged", propagatorTime=ago(7200),
            propagatorLock=None)
    propagate(mapper, comm)
    assert pid in comm.sent_jobs
    assert panda_status(emulator, site, pid) in ("holding", "finished")  # holding until the server finalizes
    job = proxy.get_job(pid)
    assert job.subStatus == "done" and job.propagatorTime is None and job.propagatorLock is None
    comm.sent_jobs.clear()
    propagate(mapper, comm)
    assert pid not in comm.sent_jobs


class FailingReplies(CountingCommunicator):
    def update_jobs(self, jobspec_list, id=None):
        self.sent_jobs.extend(j.PandaID for j in jobspec_list)
        return [{"StatusCode": 99, "ErrorDiag": "server busy"} for _ in jobspec_list]


def test_error_reply_leaves_job_for_retry(env, emulator):
    site, mapper, proxy, comm, (pid, _other) = fetched(env, emulator)
    set_job(proxy, pid, status="failed", subStatus="failed_to_make", propagatorTime=ago(7200))
    bad = FailingReplies()
    propagate(mapper, bad)
    assert pid in bad.sent_jobs
    job = proxy.get_job(pid)
    assert job.subStatus == "failed_to_make" and job.propagatorTime is not None
    assert job.propagatorLock is not None  # still locked: due again after lockInterval
    set_job(proxy, pid, propagatorLock=None, propagatorTime=ago(7200))
    propagate(mapper, comm)
    assert proxy.get_job(pid).subStatus == "done"
    assert panda_status(emulator, site, pid) in ("failed", "holding")  # PanDA holds pilot-failed jobs


def test_tobekilled_marks_workers_or_cancels_job(env, emulator):
    site, mapper, proxy, comm, (with_worker, without) = fetched(env, emulator)
    set_job(proxy, with_worker, lockedBy="submitter")
    worker = store_worker(proxy, make_worker(site, status="running"), [proxy.get_job(with_worker)])
    set_job(proxy, with_worker, lockedBy=None)
    for pid in (with_worker, without):
        set_job(proxy, pid, status="running", subStatus="running", propagatorTime=ago(7200), propagatorLock=None)
        emulator.kill_job(pid)
    propagate(mapper, comm)
    assert sql("SELECT killTime IS NOT NULL FROM work_table WHERE workerID=:w", {":w": worker.workerID}) == [(1,)]
    assert proxy.get_job(with_worker).status == "running"
    job = proxy.get_job(without)
    assert (job.status, job.subStatus) == ("cancelled", "killed")


def test_workers_propagated_then_disabled_when_final(env, emulator):
    site, mapper, proxy, comm = env()
    running = store_worker(proxy, make_worker(site, status="running"))
    done = store_worker(proxy, make_worker(site, status="finished"))
    sql("UPDATE work_table SET lastUpdate=:t", {":t": ago(7200)})
    propagate(mapper, comm)
    from pandaharvester.harvesterconfig import harvester_config
    reported = {w["workerID"] if "workerID" in w else w.get("worker_id"): w["status"]
                for w in emulator.workers(harvester_id=harvester_config.master.harvester_id)}
    assert reported.get(running.workerID) == "running" and reported.get(done.workerID) == "finished"
    rows = dict(sql("SELECT workerID, lastUpdate FROM work_table"))
    assert rows[done.workerID] is None  # final: never propagated again
    assert rows[running.workerID] is not None


def test_one_debug_line_per_reply_outcome_carries_every_panda_id(env, emulator, caplog):
    site, mapper, proxy, comm, (pid, other) = fetched(env, emulator)
    for job_id in (pid, other):
        set_job(proxy, job_id, status="finished", subStatus="staged", propagatorTime=ago(7200), propagatorLock=None)
    with caplog.at_level("DEBUG", logger="panda.log.propagator"), \
            caplog.at_level("DEBUG", logger="panda.log.communicator"):
        propagate(mapper, comm)
    lines = [r.getMessage() for r in caplog.records]
    reply_lines = [line for line in lines if "record_job_reply" in line and "updated status=finished" in line]
    assert len(reply_lines) == 1 and f"PandaID={pid} " in reply_lines[0] + " " and f"PandaID={other}" in reply_lines[0]
    done_lines = [line for line in lines if "update_jobs <" in line and "done with" in line]
    assert len(done_lines) == 1 and f"PandaID={pid}" in done_lines[0] and f"PandaID={other}" in done_lines[0]


def test_refused_job_logs_an_error_with_its_panda_id(env, emulator, caplog):
    site, mapper, proxy, comm, (pid, _other) = fetched(env, emulator)
    set_job(proxy, pid, status="failed", subStatus="failed_to_make", propagatorTime=ago(7200))
    with caplog.at_level("ERROR", logger="panda.log.propagator"):
        propagate(mapper, FailingReplies())
    assert any(f"<PandaID={pid}>" in r.getMessage() and "server busy" in r.getMessage() for r in caplog.records)


def test_worker_stats_of_pseudo_queues_go_to_panda_under_the_unified_queue(agent_env, emulator, monkeypatch):
    from pandaharvester.harvesterbody import panda_reports

    unified, push = f"UPQ_{uuid.uuid4().hex[:8]}", f"PQ_{uuid.uuid4().hex[:8]}"
    harvester_id = f"h-{uuid.uuid4().hex[:8]}"
    pull = {"map_type": "NoJob", "runMode": "slave"}
    home, mapper, proxy = agent_env(lambda h: {f"{unified}/SCORE": queue(h, **pull),
                                               f"{unified}/MCORE": queue(h, **pull), push: queue(h)},
                                    emulator_overrides(emulator, harvester_id))
    proxy.set_queue_limit(unified, {"managed": {"SCORE": 3, "MCORE": 2}})
    for site, rt, status in ((f"{unified}/SCORE", "SCORE", "submitted"), (f"{unified}/SCORE", "SCORE", "running"),
                             (f"{unified}/MCORE", "MCORE", "submitted"), (push, "SCORE", "running")):
        store_worker(proxy, make_worker(site, status=status, map_type="NoJob", has_job=0, jobType="managed",
                                        resourceType=rt))
    monkeypatch.setitem(panda_reports._stats_sent, "time", None)  # due now
    propagate(mapper, CountingCommunicator())
    held = {queue_name: by_id[harvester_id] for queue_name, by_id in emulator.worker_stats().items()
            if harvester_id in by_id}
    # one report for the unified queue, with both pseudo-queues' workers by job and resource type
    assert set(held) == {unified, push}, held
    assert held[unified] == {
        "ANY": {"SCORE": {"running": 0, "submitted": 0, "finished": 0, "to_submit": 0},
                "MCORE": {"running": 0, "submitted": 0, "finished": 0, "to_submit": 0}},
        "managed": {"SCORE": {"running": 1, "submitted": 1, "finished": 0, "to_submit": 3},
                    "MCORE": {"running": 0, "submitted": 1, "finished": 0, "to_submit": 2}},
    }
    assert held[push] == {"managed": {"SCORE": {"running": 1, "submitted": 0, "finished": 0, "to_submit": 0}}}


def test_reports_of_pseudo_queues_merge_by_panda_queue():
    from types import SimpleNamespace

    from pandaharvester.harvestercore.worker_stats import by_panda_queue

    configs = {"U/SCORE": SimpleNamespace(siteName="U"), "U/MCORE": SimpleNamespace(siteName="U"),
               "X/SCORE": SimpleNamespace(siteName="PANDA_X")}
    stats = {"U/SCORE": {"managed": {"SCORE": {"running": 2, "to_submit": None}}},
             "U/MCORE": {"managed": {"MCORE": {"running": 1}, "SCORE": {"running": 1, "to_submit": 4}}},
             "X/SCORE": {"ANY": {"SCORE": {"submitted": 1}}},
             "OLD/SCORE": {"ANY": {}},  # no config any more: the name before "/"
             "PLAIN": {"ANY": {}}}
    assert by_panda_queue(stats, configs.get) == {
        "U": {"managed": {"SCORE": {"running": 3, "to_submit": 4}, "MCORE": {"running": 1}}},
        "PANDA_X": {"ANY": {"SCORE": {"submitted": 1}}}, "OLD": {"ANY": {}}, "PLAIN": {"ANY": {}}}
    assert stats["U/SCORE"]["managed"]["SCORE"]["running"] == 2  # the input is not changed


class StaticJobsCommunicator:
    """get_jobs returns the given jobs."""

    def __init__(self, jobs):
        self.jobs = jobs

    def get_jobs(self, *args, **kwargs):
        return list(self.jobs), "OK"


def _job_dict(site, panda_id, in_files):
    job = make_job(site, sub_status="fetched")
    n = len(in_files)
    return dict(job.jobParams, PandaID=panda_id, taskID=1, inFiles=",".join(in_files), scopeIn=",".join(["s"] * n),
                fsize=",".join(["1"] * n), checksum=",".join(["ad:1"] * n), GUID=",".join(["g"] * n),
                prodDBlocks=",".join(["d"] * n), dispatchDblock=",".join(["d"] * n), prodSourceLabel="managed",
                currentPriority=1, jobsetID=1, attemptNr=1, ddmEndPointIn=",".join(["x"] * n),
                realDatasetsIn=",".join(["d"] * n))


def test_fetcher_input_status_follows_earlier_jobs_of_the_same_lfn(env):
    """A new input whose LFN a starting job already has (in the DB, or earlier in the same
    reply) waits for it (preparing); the DB is read once for the whole reply."""
    site, mapper, proxy, _comm = env(n_queue_limit_job=50)
    fetch(mapper, StaticJobsCommunicator([_job_dict(site, 910000, ["in.shared.1"])]))
    calls = []

    class Counting:
        def __init__(self, proxy):
            self.proxy = proxy

        def __getattr__(self, name):
            return getattr(self.proxy, name)

        def get_files_status(self, *args, **kwargs):
            calls.append(args[0])
            return self.proxy.get_files_status(*args, **kwargs)

    agent = JobFetcher(StaticJobsCommunicator([_job_dict(site, 910001, ["in.shared.1", "in.new.1"]),
                                               _job_dict(site, 910002, ["in.new.1", "in.other.1"])]),
                       mapper, single_mode=True)
    agent.dbProxy = Counting(agent.dbProxy)
    agent.run_one_cycle()
    assert calls == [{"in.shared.1": "input", "in.new.1": "input", "in.other.1": "input"}]
    status = {(r[0], r[1]): r[2] for r in sql("SELECT PandaID, lfn, status FROM file_table")}
    assert status == {(910000, "in.shared.1"): "to_prepare", (910001, "in.shared.1"): "preparing",
                      (910001, "in.new.1"): "to_prepare", (910002, "in.new.1"): "preparing",
                      (910002, "in.other.1"): "to_prepare"}
