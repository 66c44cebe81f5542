"""Shared helpers for the DB tests (fixtures are imported by the other test_db_* modules)."""

from __future__ import annotations

import datetime
import itertools
from pathlib import Path

import pytest

from pandaharvester.harvestercore.db_proxy import DBProxy
from pandaharvester.harvestercore.db_proxy_pool import DBProxyPool
from pandaharvester.harvestercore.file_spec import FileSpec
from pandaharvester.harvestercore.job_spec import JobSpec
from pandaharvester.harvestercore.time_utils import naive_utcnow
from pandaharvester.harvestercore.work_spec import WorkSpec

_ids = itertools.count(1000)


def ago(seconds: float) -> datetime.datetime:
    return naive_utcnow() - datetime.timedelta(seconds=seconds)


def make_worker(worker_id: int | None = None, status: str = "submitted", site: str = "Q1", mod_ago: float = 3600,
                map_type: str = "OneToOne", **attrs) -> WorkSpec:
    worker = WorkSpec()
    worker.workerID = worker_id if worker_id is not None else next(_ids)
    worker.status = status
    worker.computingSite = site
    worker.mapType = map_type
    worker.modificationTime = ago(mod_ago)
    worker.creationTime = ago(mod_ago)
    worker.isNew = True
    for key, value in attrs.items():
        setattr(worker, key, value)
    return worker


def make_job(panda_id: int | None = None, site: str = "Q1", status: str = "starting", sub_status: str = "fetched",
             n_in: int = 1, **attrs) -> JobSpec:
    job = JobSpec()
    job.PandaID = panda_id if panda_id is not None else next(_ids)
    job.computingSite = site
    job.status = status
    job.subStatus = sub_status
    job.taskID = 1
    job.currentPriority = 100
    job.creationTime = naive_utcnow()
    for i in range(n_in):
        file_spec = FileSpec()
        file_spec.PandaID = job.PandaID
        file_spec.lfn = f"in.{job.PandaID}.{i}"
        file_spec.fileType = "input"
        file_spec.status = "to_prepare"
        file_spec.fsize = 10
        job.add_in_file(file_spec)
    for key, value in attrs.items():
        setattr(job, key, value)
    return job


def insert_workers(proxy: DBProxy, workers: list[WorkSpec]) -> None:
    """Insert workers as the submitter does (insert_workers then register_worker)."""
    assert proxy.insert_workers(workers, "submitter")
    for worker in workers:
        status, mod = worker.status, worker.modificationTime
        assert proxy.register_worker(worker, [], "submitter")
        proxy.execute("UPDATE work_table SET status=:s, modificationTime=:m WHERE workerID=:w",
                      {":s": status, ":m": mod, ":w": worker.workerID})
        proxy.commit()


@pytest.fixture()
def db_home(fresh_home) -> Path:
    home = fresh_home()
    DBProxyPool.reset()
    yield home
    DBProxyPool.reset()


@pytest.fixture()
def proxy(db_home) -> DBProxy:
    db = DBProxy()
    db.make_tables(None, None)
    yield db
    db.close()


def test_fixture_db_is_a_file(proxy, db_home):
    assert Path(proxy.engine.path).is_file()
    assert Path(proxy.engine.path).parent == db_home
