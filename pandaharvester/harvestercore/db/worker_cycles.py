"""The worker queries agents run every cycle (monitor, propagator, event feeder, sweeper).

Same pattern as :mod:`job_cycles`: pick eligible ids and lock them in one write transaction.
"""

from __future__ import annotations

import datetime
from typing import Any, Sequence

from .. import core_utils
from ..log_utils import make_logger, setup_logger
from ..time_utils import naive_utcnow
from . import schema
from .base import DBModule, db_method, dynamic_plugin_change

_logger = setup_logger("db_proxy")


class WorkerCyclesMixin(DBModule):
    """get_workers_to_update, get_workers_to_propagate, get_workers_to_feed_events,
    lock_worker_again_to_feed_events, lock_workers, get_workers_to_kill, get_workers_for_cleanup."""

    @db_method(dict)
    def get_workers_to_update(self, max_workers: int, check_interval: float, lock_interval: float,
                              locked_by: str) -> dict[str, dict[Any, list[list[Any]]]]:
        """Active workers not checked for ``check_interval`` s (or whose lock is older than
        ``lock_interval`` s), locked for ``locked_by``: {queue: {configID: [[WorkSpec, ...], ...]}}."""
        now = naive_utcnow()
        varmap = {":lockTimeLimit": now - datetime.timedelta(seconds=lock_interval),
                  ":checkTimeLimit": now - datetime.timedelta(seconds=check_interval)}
        varmap[":maxLimit"] = max(varmap[":lockTimeLimit"], varmap[":checkTimeLimit"])
        cond = ("status IN ('submitted','running','idle') AND modificationTime<:maxLimit AND "
                "((modificationTime<:lockTimeLimit AND lockedBy IS NOT NULL) OR "
                "(modificationTime<:checkTimeLimit AND lockedBy IS NULL))")
        with self._tx():
            rows = self._exec(f"SELECT workerID, configID, mapType FROM work_table WHERE {cond} "
                              f"ORDER BY modificationTime LIMIT {int(max_workers)}", varmap).fetchall()
            locked = self._lock_worker_sets([tuple(r) for r in rows], locked_by)
            del rows
        # the specs are built once the locks are committed
        result = self._build_worker_sets(locked, locked_by)
        n = sum(len(g) for q in result.values() for g in q.values())
        make_logger(_logger, f"thr={locked_by}", method_name="get_workers_to_update").debug(f"got {n} worker sets")
        return result

    @db_method(list)
    def get_workers_to_propagate(self, max_workers: int, check_interval: float) -> list[Any]:
        """Workers whose lastUpdate is older than ``check_interval`` s; lastUpdate becomes now
        (``trigger_propagation`` moves it 24 h back, ``disable_propagation`` sets it NULL)."""
        now = naive_utcnow()
        varmap = {":limit": now - datetime.timedelta(seconds=check_interval)}
        cond = "lastUpdate IS NOT NULL AND lastUpdate<:limit"
        with self._tx():
            ids = [r[0] for r in self._exec(f"SELECT workerID FROM work_table WHERE {cond} ORDER BY lastUpdate "
                                            f"LIMIT {int(max_workers)}", varmap).fetchall()]
            self._update_in(f"UPDATE work_table SET lastUpdate=:now WHERE workerID IN ({{ids}}) AND {cond}", ids,
                            dict(varmap, **{":now": now}))
            workers = self._select_specs_in("work_table", "workerID", ids)
            pandaids = self._pandaid_lists(ids)
        order = {wid: i for i, wid in enumerate(ids)}
        workers.sort(key=lambda w: order[w.workerID])
        for worker in workers:
            worker.pandaid_list = pandaids.get(worker.workerID, [])
        make_logger(_logger, method_name="get_workers_to_propagate").debug(f"got {len(workers)} workers")
        return workers

    @db_method(dict)
    def get_workers_to_feed_events(self, max_workers: int, lock_interval: float, locked_by: str
                                   ) -> dict[str, list[Any]]:
        """Workers requesting events, locked with eventFeedTime/eventFeedLock: {queue: [WorkSpec]}."""
        work_cls = schema.spec_class("work_table")
        now = naive_utcnow()
        varmap = {":ev": work_cls.EV_requestEvents, ":limit": now - datetime.timedelta(seconds=lock_interval)}
        cond = ("eventsRequest=:ev AND status IN ('running','submitted') AND "
                "(eventFeedTime IS NULL OR eventFeedTime<:limit)")
        with self._tx():
            ids = [r[0] for r in self._exec(f"SELECT workerID FROM work_table WHERE {cond} ORDER BY eventFeedTime "
                                            f"LIMIT {int(max_workers)}", varmap).fetchall()]
            self._update_in(f"UPDATE work_table SET eventFeedTime=:now,eventFeedLock=:lockedBy "
                            f"WHERE workerID IN ({{ids}}) AND {cond}", ids,
                            dict(varmap, **{":now": now, ":lockedBy": locked_by}))
            workers = self._select_specs_in("work_table", "workerID", ids)
        result: dict[str, list[Any]] = {}
        for worker in sorted(workers, key=lambda w: ids.index(w.workerID)):
            result.setdefault(worker.computingSite, []).append(worker)
        return result

    @db_method(False)
    def lock_worker_again_to_feed_events(self, worker_id: int, locked_by: str) -> bool:
        """Refresh eventFeedTime if the worker is still locked by ``locked_by``."""
        with self._tx():
            row = self._exec("SELECT eventFeedLock FROM work_table WHERE workerID=:w", {":w": worker_id}).fetchone()
            if row is None or row[0] != locked_by:
                return False
            self._exec("UPDATE work_table SET eventFeedTime=:now WHERE workerID=:w",
                       {":now": naive_utcnow(), ":w": worker_id})
        return True

    @db_method(False)
    def lock_workers(self, worker_id_list: dict[int, dict[str, Any]], lock_interval: float) -> bool:
        """Lock workers given as {workerID: {"lockedBy": owner, other attrs...}} (FIFO monitor);
        False when any of them is locked by another or already final."""
        work_cls = schema.spec_class("work_table")
        now = naive_utcnow()
        ok = True
        with self._tx():
            for worker_id, attrs in worker_id_list.items():
                attrs = dict(attrs)
                varmap: dict[str, Any] = {":w": worker_id, ":now": now, ":lockedBy": attrs.get("lockedBy"),
                                          ":limit": now - datetime.timedelta(seconds=lock_interval)}
                if attrs.get("lockedBy") is None:
                    attrs.pop("lockedBy", None)
                schema.check_column_names("work_table", work_cls, attrs)
                sets = "modificationTime=:now"
                for key, value in attrs.items():
                    sets += f",{key}=:{key}"
                    varmap[f":{key}"] = value
                schema.check_map("work_table", work_cls, {k: v for k, v in varmap.items()
                                                          if k[1:] in attrs})
                n = self._exec(f"UPDATE work_table SET {sets} WHERE workerID=:w AND (lockedBy IS NULL OR "
                               f"(modificationTime<:limit AND lockedBy IS NOT NULL)) "
                               f"AND status NOT IN ('cancelled','finished','failed','missed')", varmap).rowcount
                if n == 0:
                    ok = False
        return ok

    @db_method(dict)
    def get_workers_to_kill(self, max_workers: int, check_interval: float) -> dict[str, dict[Any, list[Any]]]:
        """Workers whose killTime passed: {queue: {configID: [WorkSpec]}}. Killed-and-final workers
        get killTime cleared; the others get killTime=now (tried again after ``check_interval``)."""
        now = naive_utcnow()
        varmap = {":limit": now - datetime.timedelta(seconds=check_interval)}
        cond = "killTime IS NOT NULL AND killTime<:limit"
        dynamic = dynamic_plugin_change()
        with self._tx():
            rows = self._exec(f"SELECT workerID, status, configID FROM work_table WHERE {cond} ORDER BY killTime "
                              f"LIMIT {int(max_workers)}", varmap).fetchall()
            done = [r[0] for r in rows if r[1] in ("cancelled", "failed", "finished")]
            todo = [r[0] for r in rows if r[1] not in ("cancelled", "failed", "finished")]
            self._update_in(f"UPDATE work_table SET killTime=NULL WHERE workerID IN ({{ids}}) AND {cond}", done, varmap)
            self._update_in(f"UPDATE work_table SET killTime=:now WHERE workerID IN ({{ids}}) AND {cond}", todo,
                            dict(varmap, **{":now": now}))
            workers = {w.workerID: w for w in self._select_specs_in("work_table", "workerID", todo)}
        result: dict[str, dict[Any, list[Any]]] = {}
        for worker_id, _status, config_id in rows:
            worker = workers.get(worker_id)
            if worker is None:
                continue
            result.setdefault(worker.computingSite, {}).setdefault(config_id if dynamic else None, []).append(worker)
        return result

    @db_method(dict)
    def get_workers_for_cleanup(self, max_workers: int, status_timeout_map: dict[str, float]
                                ) -> dict[str, dict[Any, list[Any]]]:
        """Final workers older than their status' timeout (hours) and not modified for 1 h, whose jobs
        are all reported: {queue: {configID: [WorkSpec with jobspec_list (files to delete)]}}."""
        now = naive_utcnow()
        mod_limit = now - datetime.timedelta(minutes=60)
        varmap: dict[str, Any] = {":modLimit": mod_limit}
        terms = []
        for i, (status, hours) in enumerate(status_timeout_map.items()):
            varmap[f":st{i}"] = status
            varmap[f":tl{i}"] = now - datetime.timedelta(hours=hours)
            terms.append(f"(status=:st{i} AND endTime<=:tl{i})")
        if not terms:
            return {}
        statuses = ",".join(f":st{i}" for i in range(len(terms)))
        cond = f"status IN ({statuses}) AND lastUpdate IS NULL AND ({' OR '.join(terms)}) AND modificationTime<:modLimit"
        dynamic = dynamic_plugin_change()
        result: dict[str, dict[Any, list[Any]]] = {}
        with self._tx():
            rows = self._exec(f"SELECT workerID, configID FROM work_table WHERE {cond} ORDER BY modificationTime "
                              f"LIMIT {int(max_workers)}", varmap).fetchall()
            ids = [r[0] for r in rows]
            self._update_in(f"UPDATE work_table SET modificationTime=:now WHERE workerID IN ({{ids}}) AND {cond}", ids,
                            dict(varmap, **{":now": now}))
            active = {r[0] for r in self._ids_in("SELECT DISTINCT r.workerID FROM jw_table r, job_table j "
                                                 "WHERE r.workerID IN ({ids}) AND j.PandaID=r.PandaID "
                                                 "AND j.propagatorTime IS NOT NULL", ids)}
            clean_ids = [wid for wid in ids if wid not in active]
            workers = {w.workerID: w for w in self._select_specs_in("work_table", "workerID", clean_ids)}
            pandaids = self._pandaid_lists(clean_ids)
            all_pids = sorted({p for ps in pandaids.values() for p in ps})
            jobs = {j.PandaID: j for j in self._select_specs_in("job_table", "PandaID", all_pids)}
            files_by_job: dict[int, list[Any]] = {}
            for file_spec in self._select_specs_in("file_table", "PandaID", all_pids):
                files_by_job.setdefault(file_spec.PandaID, []).append(file_spec)
            # input LFNs still wanted by some other file row (todelete=0) are kept
            in_lfns = sorted({f.lfn for fs in files_by_job.values() for f in fs
                              if f.fileType in ("input", "aux_input") and f.lfn is not None})
            keep = {r[0] for r in self._ids_in("SELECT lfn FROM file_table WHERE lfn IN ({ids}) AND todelete=0", in_lfns)}
            for worker_id, config_id in rows:
                worker = workers.get(worker_id)
                if worker is None:
                    continue
                checked: set[str] = set()
                job_list = []
                for pid in pandaids.get(worker_id, []):
                    job = jobs.get(pid)
                    if job is None:
                        continue
                    for file_spec in files_by_job.get(pid, []):
                        if file_spec.lfn in checked:
                            continue
                        checked.add(file_spec.lfn)
                        if file_spec.lfn not in keep:
                            job.add_file(file_spec)
                    job_list.append(job)
                worker.set_jobspec_list(job_list)
                result.setdefault(worker.computingSite, {}).setdefault(config_id if dynamic else None, []).append(worker)
        return result

    # provided by WorkersMixin
    _group_workers: Any
    _lock_worker_sets: Any
    _build_worker_sets: Any
    _pandaid_lists: Any
