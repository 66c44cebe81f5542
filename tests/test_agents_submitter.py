"""Submitter + WorkerMaker against the real DB and real/fake plugins."""

from __future__ import annotations

import json

import pytest

from pandaharvester.harvesterbody.submitter import Submitter
from pandaharvester.harvestercore.plugin_base import PluginBase
from pandaharvester.harvestermessenger.shared_file_messenger import SharedFileMessenger

from test_agents_helpers import agent_env, make_job, plugin, queue, sql  # noqa: F401

Q = "SUBQ"


# ------------------------------------------------------------------ fake plugins (loaded by name)
class PartlyFailingSubmitter(PluginBase):
    """(False, diag) for workers at odd positions, (True, "") for the others."""

    def submit_workers(self, workspec_list):
        out = []
        for i, w in enumerate(workspec_list):
            w.batchID = f"b{w.workerID}"
            out.append((False, f"no slot for {w.workerID}") if i % 2 else (True, ""))
        return out


class RetrySubmitter(PluginBase):
    """(None, diag): a temporary failure for every worker."""

    def submit_workers(self, workspec_list):
        return [(None, "try again later") for _ in workspec_list]


class RaisingSubmitter(PluginBase):
    def submit_workers(self, workspec_list):
        raise RuntimeError("batch system exploded")


class NoneMaker(PluginBase):
    def make_worker(self, jobspec_list, queue_config, job_type, resource_type):
        return None

    def get_num_jobs_per_worker(self, n):
        return 1


class PickyMessenger(SharedFileMessenger):
    """The shared-file messenger, but ``feed_jobs`` raises for every second worker it is given."""

    calls = 0

    def feed_jobs(self, workspec, jobspec_list):
        type(self).calls += 1
        if type(self).calls % 2 == 0:
            raise OSError(f"disk full writing the job of workerID={workspec.workerID}")
        return SharedFileMessenger.feed_jobs(self, workspec, jobspec_list)


def insert_jobs(proxy, n):
    jobs = [make_job(Q) for _ in range(n)]
    assert proxy.insert_jobs(jobs)
    return [j.PandaID for j in jobs]


def jobs_by_id(proxy, ids):
    return {i: proxy.get_job(i) for i in ids}


def workers(status=None):
    rows = sql("SELECT workerID, status, diagMessage, computingSite, hasJob FROM work_table ORDER BY workerID")
    return [r for r in rows if status is None or r[1] == status]


def run(mapper):
    agent = Submitter(mapper, single_mode=True)
    agent.run_cycle()
    return agent


def test_one_to_one_binds_one_job_per_worker(agent_env):
    home, mapper, proxy = agent_env(lambda h: {Q: queue(h, nQueueLimitWorker=3, maxWorkers=10)})
    ids = insert_jobs(proxy, 5)
    run(mapper)
    rows = workers()
    assert len(rows) == 3 and all(r[1] == "submitted" and r[4] == 1 for r in rows)
    links = sql("SELECT PandaID, workerID FROM jw_table")
    assert len(links) == 3 and len({p for p, _ in links}) == 3 and len({w for _, w in links}) == 3
    bound = {p for p, _ in links}
    for pid, job in jobs_by_id(proxy, ids).items():
        assert job.subStatus == ("submitted" if pid in bound else "prepared"), (pid, job.subStatus)
        assert job.lockedBy is None


def test_false_from_plugin_misses_those_workers_and_fails_their_jobs(agent_env):
    home, mapper, proxy = agent_env(lambda h: {Q: queue(h, nQueueLimitWorker=4, submitter=plugin("submitter", "PartlyFailingSubmitter", __name__), maxSubmissionAttempts=3)})
    ids = insert_jobs(proxy, 4)
    run(mapper)
    rows = workers()
    missed = [r for r in rows if r[1] == "missed"]
    assert len(rows) == 4 and len(missed) == 2
    assert all(r[2] == f"no slot for {r[0]}" for r in missed)
    missed_ids = {r[0] for r in missed}
    links = dict(sql("SELECT PandaID, workerID FROM jw_table"))
    jobs = jobs_by_id(proxy, ids)
    # (False, diag) is a permanent failure: the jobs end at once (status missed, final, reported to
    # PanDA as failed), whatever maxSubmissionAttempts says
    failed = [p for p, j in jobs.items() if j.status == "missed"]
    assert len(failed) == 2
    assert all(jobs[p].is_final_status() and jobs[p].propagatorTime is not None for p in failed)
    ok_ids = {r[0] for r in rows} - missed_ids
    assert all(links.get(p) in ok_ids for p in ids if p not in failed)
    assert all(jobs[p].status == "starting" and jobs[p].subStatus == "submitted" for p in ids if p not in failed)


def test_none_from_plugin_retries_job_until_attempts_exhausted(agent_env):
    home, mapper, proxy = agent_env(lambda h: {Q: queue(h, nQueueLimitWorker=1, maxWorkers=1, submitter=plugin("submitter", "RetrySubmitter", __name__), maxSubmissionAttempts=2)})
    (pid,) = insert_jobs(proxy, 1)
    run(mapper)
    job = proxy.get_job(pid)
    assert job.submissionAttempts == 1
    assert job.status == "starting" and job.subStatus == "prepared" and job.lockedBy is None
    assert [r[1] for r in workers()] == ["missed"]
    assert workers()[0][2] == "try again later"
    sql("UPDATE pq_table SET submitTime=NULL, lockedBy=NULL")
    run(mapper)
    job = proxy.get_job(pid)
    assert len(workers()) == 2, "the job was not picked again"
    assert job.submissionAttempts == 2
    assert job.status == "missed" and job.is_final_status()


def test_raising_plugin_misses_whole_batch_and_agent_survives(agent_env):
    home, mapper, proxy = agent_env(lambda h: {Q: queue(h, nQueueLimitWorker=3, submitter=plugin("submitter", "RaisingSubmitter", __name__))})
    insert_jobs(proxy, 3)
    agent = Submitter(mapper, single_mode=True)
    agent.run_one_cycle()  # the base-class wrapper: must not raise either
    rows = workers()
    assert len(rows) == 3 and {r[1] for r in rows} == {"missed"}
    assert all("RuntimeError: batch system exploded" in r[2] for r in rows)
    assert agent.nCycles == 1
    # the site lock was released
    assert sql("SELECT COUNT(*) FROM pq_table WHERE lockedBy IS NOT NULL") == [(0,)]


def test_maker_returning_none_fails_jobs(agent_env):
    home, mapper, proxy = agent_env(lambda h: {Q: queue(h, nQueueLimitWorker=2, workerMaker=plugin("workerMaker", "NoneMaker", __name__))})
    ids = insert_jobs(proxy, 2)
    run(mapper)
    assert workers() == []
    for job in jobs_by_id(proxy, ids).values():
        assert (job.status, job.subStatus) == ("failed", "failed_to_make")
        assert job.lockedBy is None


def test_no_worker_ids_releases_jobs_for_the_next_cycle(agent_env, monkeypatch, caplog):
    from pandaharvester.harvestercore.db_proxy import DBProxy

    home, mapper, proxy = agent_env(lambda h: {Q: queue(h, nQueueLimitWorker=2)})
    ids = insert_jobs(proxy, 2)
    monkeypatch.setattr(DBProxy, "get_next_seq_numbers", lambda self, name, n: [])  # as after a DB error
    run(mapper)
    assert workers() == []
    assert "no workerIDs for 2 new workers" in caplog.text
    for job in jobs_by_id(proxy, ids).values():  # not failed, not left locked
        assert (job.status, job.subStatus, job.lockedBy) == ("starting", "prepared", None)
    monkeypatch.undo()
    sql("UPDATE pq_table SET submitTime=NULL, lockedBy=NULL")
    run(mapper)
    assert [r[1] for r in workers()] == ["submitted", "submitted"]


def test_worker_ids_are_consecutive_per_slot(agent_env, caplog):
    home, mapper, proxy = agent_env(lambda h: {Q: queue(h, map_type="NoJob", nQueueLimitWorker=5, maxWorkers=5)})
    caplog.set_level("DEBUG")
    run(mapper)
    ids = [r[0] for r in workers()]
    assert len(ids) == 5 and ids == list(range(ids[0], ids[0] + 5))
    # one line per batch, yet every workerID can be grepped, in the maker's and the submitter's lines
    made = [r.getMessage() for r in caplog.records if "new workers" in r.getMessage()]
    submitted = [r.getMessage() for r in caplog.records if "submitted 5 workers registered=True" in r.getMessage()]
    assert len(made) == 1 and len(submitted) == 1
    assert all(f"workerID={i} " in made[0] + " " and f"workerID={i} " in submitted[0] for i in ids)


def test_push_batch_lines_name_every_worker_and_job(agent_env, caplog):
    home, mapper, proxy = agent_env(lambda h: {Q: queue(h, nQueueLimitWorker=3, maxWorkers=10)})
    insert_jobs(proxy, 3)
    caplog.set_level("DEBUG")
    run(mapper)
    pairs = sql("SELECT PandaID, workerID FROM jw_table")
    assert len(pairs) == 3
    lines = [r.getMessage() for r in caplog.records]
    for start in ("new workers", "jobs fed to 3 workers", "workers with jobs", "submitted 3 workers registered=True"):
        (line,) = [m for m in lines if start in m]
        for panda_id, worker_id in pairs:  # each worker with its own jobs
            assert f"workerID={worker_id} " in line and f"PandaID={panda_id}" in line, (start, line)
            entry = line[line.index(f"workerID={worker_id} "):].split(",")[0]
            assert f"PandaID={panda_id}" in entry, (start, line)
    # no per-job lines left on the submission path
    assert not [m for m in lines if "feeding PandaID" in m or m.endswith(": 1 jobs") or "jobs fed=" in m]


def test_nojob_makes_empty_workers(agent_env):
    home, mapper, proxy = agent_env(lambda h: {Q: queue(h, map_type="NoJob", nQueueLimitWorker=2, maxWorkers=5)})
    ids = insert_jobs(proxy, 2)  # jobs in the DB are not for a pull queue's workers
    run(mapper)
    rows = workers()
    assert len(rows) == 2 and all(r[1] == "submitted" and r[4] == 0 for r in rows)
    assert sql("SELECT COUNT(*) FROM jw_table") == [(0,)]
    assert all(j.subStatus == "prepared" for j in jobs_by_id(proxy, ids).values())


def submit_mapped(agent_env, map_type: str, n_jobs: int, n_workers: int, **maker_attrs):
    """One submitter cycle on a queue of ``map_type`` with ``n_workers`` allowed; checks they were
    all submitted with jobs. Returns (home, proxy, PandaIDs)."""
    maker = plugin("workerMaker", **maker_attrs)
    home, mapper, proxy = agent_env(lambda h: {Q: queue(h, map_type=map_type, nQueueLimitWorker=n_workers,
                                                        maxWorkers=10, workerMaker=maker)})
    ids = insert_jobs(proxy, n_jobs)
    run(mapper)
    rows = workers()
    assert len(rows) == n_workers and all(r[1] == "submitted" and r[4] == 1 for r in rows), rows
    return home, proxy, ids


def test_many_to_one_puts_n_jobs_in_each_worker(agent_env):
    home, proxy, ids = submit_mapped(agent_env, "ManyToOne", n_jobs=7, n_workers=2, nJobsPerWorker=3)
    by_worker: dict = {}
    for panda_id, worker_id in sql("SELECT PandaID, workerID FROM jw_table"):
        by_worker.setdefault(worker_id, set()).add(panda_id)
    assert sorted(len(p) for p in by_worker.values()) == [3, 3], by_worker
    bound = set().union(*by_worker.values())
    assert all(j.subStatus == ("submitted" if p in bound else "prepared") for p, j in jobs_by_id(proxy, ids).items())
    # the messenger wrote one job description per PandaID, in a sub-directory of the worker's access point
    for worker_id, panda_ids in by_worker.items():
        for panda_id in panda_ids:
            spec_file = home / "workers" / str(worker_id) / str(panda_id) / "HPCJobs.json"  # [payload_interaction]
            assert list(json.loads(spec_file.read_text())) == [str(panda_id)]


def test_one_to_many_spreads_one_job_over_n_workers(agent_env):
    home, proxy, ids = submit_mapped(agent_env, "OneToMany", n_jobs=2, n_workers=3, nWorkersPerJob=3)
    links = sql("SELECT PandaID, workerID FROM jw_table")
    assert len({p for p, _ in links}) == 1 and len({w for _, w in links}) == 3, links
    (panda_id,) = {p for p, _ in links}
    job = proxy.get_job(panda_id)
    assert job.subStatus == "submitted" and job.lockedBy is None
    other = (set(ids) - {panda_id}).pop()
    assert proxy.get_job(other).subStatus == "prepared"


def test_worker_whose_jobs_cannot_be_fed_is_not_submitted(agent_env):
    PickyMessenger.calls = 0
    messenger = plugin("messenger", "PickyMessenger", __name__)
    home, mapper, proxy = agent_env(lambda h: {Q: queue(h, nQueueLimitWorker=2, maxSubmissionAttempts=3,
                                                        messenger=dict(messenger,
                                                                       accessPoint=str(h / "workers" / "${workerID}")))})
    ids = insert_jobs(proxy, 2)
    agent = Submitter(mapper, single_mode=True)
    agent.run_one_cycle()
    assert agent.nCycles == 1
    rows = {r[0]: r for r in workers()}
    assert sorted(r[1] for r in rows.values()) == ["missed", "submitted"]
    (missed,) = [r for r in rows.values() if r[1] == "missed"]
    assert "jobs not fed to the worker" in missed[2] and "OSError: disk full" in missed[2]
    # the worker that got no job description was never started; its job is retried later
    assert not (home / "workers" / str(missed[0]) / "dummy_pilot_process.json").exists()
    (submitted,) = [r[0] for r in rows.values() if r[1] == "submitted"]
    links = dict(sql("SELECT PandaID, workerID FROM jw_table"))
    jobs = jobs_by_id(proxy, ids)
    (retried,) = [p for p in ids if links.get(p) != submitted]
    job = jobs[retried]
    assert (job.status, job.subStatus, job.submissionAttempts, job.lockedBy) == ("starting", "prepared", 1, None)
