"""Shared set-up for the agent tests (test_agents_*.py): a fresh home, a real SQLite DB, a queue
config with real (dummy) plugins, and fake plugin classes loaded by the PluginFactory from here."""

from __future__ import annotations

import datetime
import itertools
from pathlib import Path
from typing import Any

import pytest

from pandaharvester.harvestercore.db_proxy_pool import DBProxyPool
from pandaharvester.harvestercore.file_spec import FileSpec
from pandaharvester.harvestercore.job_spec import JobSpec
from pandaharvester.harvestercore.queue_config_mapper import QueueConfigMapper
from pandaharvester.harvestercore.time_utils import naive_utcnow
from pandaharvester.harvestercore.work_spec import WorkSpec
from pandaharvester.harvestertest.instance import write_queue_config

HERE = "test_agents_helpers"
_ids = itertools.count(5000)


def plugin(kind: str, name: str | None = None, module: str = HERE, **kwargs: Any) -> dict[str, Any]:
    """Plugin dict: a dummy plugin of ``kind``, or (``name`` given) a fake class of this module."""
    dummies = {
        "preparator": ("pandaharvester.harvesterpreparator.dummy_preparator", "DummyPreparator"),
        "stager": ("pandaharvester.harvesterstager.dummy_stager", "DummyStager"),
        "submitter": ("pandaharvester.harvestersubmitter.dummy_submitter", "DummySubmitter"),
        "monitor": ("pandaharvester.harvestermonitor.dummy_monitor", "DummyMonitor"),
        "sweeper": ("pandaharvester.harvestersweeper.dummy_sweeper", "DummySweeper"),
        "workerMaker": ("pandaharvester.harvesterworkermaker.simple_worker_maker", "SimpleWorkerMaker"),
    }
    if name is None:
        module, cls = dummies[kind]
    else:
        cls = name
    return {"module": module, "name": cls, **kwargs}


def queue(home: Path, map_type: str = "OneToOne", **attrs: Any) -> dict[str, Any]:
    conf = {"queueStatus": "online", "prodSourceLabel": "managed", "mapType": map_type,
            "nQueueLimitJob": 20, "nQueueLimitWorker": 20, "maxWorkers": 40,
            "messenger": {"name": "SharedFileMessenger",
                          "module": "pandaharvester.harvestermessenger.shared_file_messenger",
                          "accessPoint": str(home / "workers" / "${workerID}")},
            **{k: plugin(k) for k in ("preparator", "stager", "monitor", "sweeper", "workerMaker")},
            "submitter": plugin("submitter", instantMode=True, sleepTime=0)}
    conf.update(attrs)
    return conf


FAST = {"sleepTime": 1, "lockInterval": 60, "checkInterval": 0, "triggerInterval": 0}


def base_overrides(extra: dict | None = None) -> dict:
    overrides = {
        "qconf": {"queueList": "ALL", "updateInterval": 600, "checkInterval": 1},
        "submitter": {"nQueues": 5, "lookupTime": 0, "queueLockInterval": 30, "lockInterval": 60,
                      "checkInterval": 0, "maxNewWorkers": 100, "minSubmissionInterval": 0},
        "monitor": {"maxWorkers": 100, "checkInterval": 0, "lockInterval": 60, "checkTimeout": 3600},
        "propagator": {"maxJobs": 100, "maxWorkers": 100, "lockInterval": 60, "updateInterval": 1800,
                       "nJobsInBulk": 10, "nWorkersInBulk": 10},
        "preparator": {**FAST, "maxJobsToCheck": 50, "maxJobsToTrigger": 50},
        "stager": {**FAST, "maxJobsToCheck": 50, "maxJobsToTrigger": 50, "zipInterval": 0},
        "sweeper": {"maxWorkers": 100, "checkInterval": 0, "keepFinished": 24, "keepFailed": 24,
                    "keepCancelled": 24, "keepMissed": 24},
        "jobfetcher": {"nQueues": 5, "lookupTime": 0, "maxJobs": 50},
    }
    for section, values in (extra or {}).items():
        overrides.setdefault(section, {}).update(values)
    return overrides


def emulator_overrides(emulator: Any, harvester_id: str) -> dict:
    """cfg overrides pointing the communicator at a running PanDA emulator (plain HTTP)."""
    return {"pandacon": {"server_api_url_ssl": emulator.base_url, "server_api_url": emulator.base_url,
                         "cache_api_url_ssl": emulator.base_url, "timeout": 10, "maxRetries": 1,
                         "retryBackoff": 0.01, "cert_file": "", "key_file": "", "ca_cert": "", "auth_token": ""},
            "master": {"harvester_id": harvester_id}}


@pytest.fixture()
def agent_env(fresh_home):
    """``make(queues, overrides)`` -> (home, mapper, proxy) with the DB tables made."""
    state: dict[str, Any] = {}

    def make(queues_fn, overrides: dict | None = None):
        clear_local_cache()
        DBProxyPool.reset()
        QueueConfigMapper.reset()
        home = fresh_home(base_overrides(overrides))
        queues = queues_fn(home) if callable(queues_fn) else queues_fn
        write_queue_config(home, queues)
        proxy = DBProxyPool()
        proxy.make_tables(None, None)
        mapper = QueueConfigMapper()
        mapper.load_data(force=True)
        state["home"] = home
        return home, mapper, proxy

    yield make
    clear_local_cache()
    DBProxyPool.reset()
    QueueConfigMapper.reset()


def clear_local_cache() -> None:
    """Forget the process-local copies of cache_table rows (they outlive a test's DB)."""
    from pandaharvester.harvestercore import core_utils

    global_dict = core_utils.get_global_dict()
    with global_dict:
        for key in [k for k in list(global_dict.dataMap) if str(k).startswith("cache|")]:
            del global_dict.dataMap[key]


# ------------------------------------------------------------------ specs
def ago(seconds: float) -> datetime.datetime:
    return naive_utcnow() - datetime.timedelta(seconds=seconds)


def make_job(site: str, sub_status: str = "prepared", status: str = "starting", n_in: int = 1,
             panda_id: int | None = None, **attrs: Any) -> JobSpec:
    job = JobSpec()
    job.PandaID = panda_id if panda_id is not None else next(_ids)
    job.computingSite = site
    job.status = status
    job.subStatus = sub_status
    job.taskID = 1
    job.currentPriority = 100
    job.creationTime = naive_utcnow()
    job.stateChangeTime = naive_utcnow()
    job.modificationTime = naive_utcnow()
    job.jobParams = {"PandaID": job.PandaID, "coreCount": 1, "inFiles": "", "outFiles": "log.tgz",
                     "logFile": "log.tgz", "logGUID": "guid-log", "jobsetID": 1}
    for i in range(n_in):
        file_spec = FileSpec()
        file_spec.PandaID = job.PandaID
        file_spec.lfn = f"in.{job.PandaID}.{i}"
        file_spec.fileType = "input"
        file_spec.status = "to_prepare" if sub_status == "fetched" else "ready"
        file_spec.fsize = 10
        job.add_in_file(file_spec)
    for key, value in attrs.items():
        setattr(job, key, value)
    return job


def make_worker(site: str, status: str = "running", map_type: str = "OneToOne", has_job: int = 1,
                worker_id: int | None = None, **attrs: Any) -> WorkSpec:
    worker = WorkSpec()
    worker.workerID = worker_id if worker_id is not None else next(_ids)
    worker.status = status
    worker.computingSite = site
    worker.mapType = map_type
    worker.hasJob = has_job
    worker.modificationTime = ago(3600)
    worker.creationTime = ago(3600)
    worker.submitTime = ago(3600)
    worker.checkTime = ago(600)
    worker.isNew = True
    for key, value in attrs.items():
        setattr(worker, key, value)
    return worker


def store_worker(proxy: Any, worker: WorkSpec, jobs: list[JobSpec] | None = None, **after: Any) -> WorkSpec:
    """Insert and register a worker (and bind jobs) as the submitter does; then force columns."""
    status = worker.status
    assert proxy.insert_workers([worker], "submitter")
    assert proxy.register_worker(worker, jobs or [], "submitter")
    values = {"status": status, "modificationTime": ago(3600), "lockedBy": None, **after}
    sets = ",".join(f"{k}=:{k}" for k in values)
    sql(f"UPDATE work_table SET {sets} WHERE workerID=:w",
        {**{f":{k}": v for k, v in values.items()}, ":w": worker.workerID})
    return proxy.get_worker_with_id(worker.workerID)


def set_job(proxy: Any, panda_id: int, **values: Any) -> None:
    sets = ",".join(f"{k}=:{k}" for k in values)
    sql(f"UPDATE job_table SET {sets} WHERE PandaID=:p", {**{f":{k}": v for k, v in values.items()}, ":p": panda_id})


def sql(statement: str, varmap: dict | None = None) -> list:
    """Run raw SQL on a private connection (committed); the rows for a SELECT."""
    from pandaharvester.harvestercore.db_proxy import DBProxy

    db = DBProxy()
    try:
        db.execute(statement, varmap or {})
        rows = [tuple(r) for r in db.cur.fetchall()] if statement.lstrip().upper().startswith("SELECT") else []
        db.commit()
        return rows
    finally:
        db.close()
