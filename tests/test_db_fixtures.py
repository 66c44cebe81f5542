"""Shared helpers for the DB tests (fixtures are imported by the other test_db_* modules)."""

from __future__ import annotations

import datetime
import itertools
from pathlib import Path

import pytest

import mariadb_helpers
from pandaharvester.harvestercore.db import schema
from pandaharvester.harvestercore.db.engine import DBSettings, settings_from_config
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


# the MariaDB variants carry the ``mariadb`` marker (``-m "not mariadb"`` leaves them out)
ENGINES = ("sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb))


def sqlite_only(reason: str) -> pytest.MarkDecorator:
    """Run a test with the SQLite engine only (``reason``: what is SQLite-specific in it)."""
    return pytest.mark.parametrize("db_engine", ["sqlite"], indirect=True, ids=["sqlite-only"])


def mariadb_only(reason: str) -> pytest.MarkDecorator:
    """Run a test with the MariaDB engine only (``reason``: what is MariaDB-specific in it)."""
    return pytest.mark.parametrize("db_engine", [pytest.param("mariadb", marks=pytest.mark.mariadb)], indirect=True,
                                   ids=["mariadb-only"])


@pytest.fixture(params=ENGINES)
def db_engine(request) -> str:
    """The engine a DB test runs on: every DB test runs on both, unless marked ``sqlite_only`` /
    ``mariadb_only``."""
    return request.param


@pytest.fixture(scope="module")
def _module_mariadb():
    """One scratch MariaDB database per test module (made on first use, dropped at the end)."""
    made: list[str] = []

    def get() -> str:
        if not made:
            made.append(mariadb_helpers.create_database())
        return made[0]

    yield get
    if made:
        mariadb_helpers.drop_database(made[0])


def _empty_tables(schema_name: str) -> None:
    """Every row of the module's database removed (tables other than Harvester's dropped), so a
    test starts as on a new SQLite file, without paying for the DDL each time."""
    con = mariadb_helpers.admin_connection(schema_name)
    try:
        cur = con.cursor()
        cur.execute("SHOW TABLES")
        for (table,) in cur.fetchall():
            cur.execute(f"DELETE FROM `{table}`" if table in schema.TABLES else f"DROP TABLE `{table}`")
    finally:
        con.close()


@pytest.fixture()
def db_overrides(db_engine, _module_mariadb) -> dict:
    """The ``[db]`` cfg overrides of the test's engine ({} for SQLite: the home's DB file)."""
    if db_engine == "sqlite":
        return {}
    name = _module_mariadb()
    _empty_tables(name)
    return mariadb_helpers.db_overrides(name)


@pytest.fixture()
def db_home(fresh_home, db_overrides) -> Path:
    home = fresh_home({"db": db_overrides} if db_overrides else None)
    DBProxyPool.reset()
    yield home
    DBProxyPool.reset()


@pytest.fixture()
def db_settings(db_home) -> DBSettings:
    """DBSettings of the test's DB (from the cfg ``db_home`` wrote): for extra proxies/processes."""
    return settings_from_config()


@pytest.fixture()
def proxy(db_home) -> DBProxy:
    db = DBProxy()
    db.make_tables(None, None)
    yield db
    db.close()


@sqlite_only("the DB is a file below PANDA_HOME")
def test_fixture_db_is_a_file(proxy, db_home):
    assert Path(proxy.engine.path).is_file()
    assert Path(proxy.engine.path).parent == db_home


@mariadb_only("the DB is a scratch database on the server")
def test_fixture_db_is_a_scratch_mariadb_database(proxy, db_overrides):
    assert proxy.engine.name == "mysql"
    assert proxy.execute("SELECT DATABASE()").fetchone()[0] == db_overrides["schema"]
    proxy.commit()
