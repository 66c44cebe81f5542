"""The worker queries agents run every cycle (monitor, propagator, event feeder, sweeper).

Same pattern as :mod:`job_cycles`: pick eligible ids and lock them in one write transaction.
The monitor's workers come in sets (a worker with the workers sharing its jobs), found and
locked by :meth:`WorkerCyclesMixin._lock_worker_sets`.
"""

from __future__ import annotations

import datetime
from typing import Any, Sequence

from .. import lifecycle
from ..log_utils import make_logger, setup_logger
from ..spec_base import decode_blob
from ..time_utils import naive_utcnow
from . import schema
from .base import (SQL_WORKERS_ACTIVE, SQL_WORKERS_EVENT_FEEDABLE, SQL_WORKERS_FINAL, DBModule,
                   chunks, db_method, dynamic_plugin_change, in_binds)

_logger = setup_logger("db_proxy")


class WorkerCyclesMixin(DBModule):
    """get_workers_to_update, get_workers_to_propagate, get_workers_to_feed_events,
    lock_worker_again_to_feed_events, lock_workers, get_workers_to_kill, get_workers_for_cleanup, and the
    monitor's unlocked reads get_workers_from_ids and get_active_workers (FIFO)."""

    # ------------------------------------------------------------ worker sets
    def _pandaid_lists(self, worker_ids: Sequence[int]) -> dict[int, list[int]]:
        result: dict[int, list[int]] = {}
        for wid, pid in self._ids_in("SELECT workerID, PandaID FROM jw_table WHERE workerID IN ({ids}) "
                                     "ORDER BY PandaID", list(worker_ids)):
            result.setdefault(wid, []).append(pid)
        return result

    def _related_workers(self, worker_ids: Sequence[int]) -> dict[int, set[int]]:
        """workerID -> active workers sharing a job with it (MultiWorkers sets)."""
        result: dict[int, set[int]] = {}
        rows = self._ids_in("SELECT s.workerID, t.workerID FROM jw_table s, jw_table t, work_table w "
                            "WHERE s.workerID IN ({ids}) AND t.PandaID=s.PandaID AND w.workerID=t.workerID "
                            "AND w.status IN " + SQL_WORKERS_ACTIVE, list(worker_ids))
        for src, dst in rows:
            result.setdefault(src, set()).add(dst)
        return result

    def _group_workers(self, candidates: Sequence[tuple[int, Any, Any]], locked_by: str | None,
                       lock_cond: str | None = None, lock_map: dict[str, Any] | None = None
                       ) -> dict[str, dict[Any, list[list[Any]]]]:
        """{queue: {configID: [[WorkSpec, ...], ...]}}: each candidate with the workers sharing its jobs.

        With ``locked_by`` the sets are locked (modificationTime=now, lockedBy); for OneToMany only the
        set's smallest workerID takes the set, the others just get modificationTime refreshed.
        (:meth:`_lock_worker_sets` inside the transaction, then :meth:`_build_worker_sets`.)
        """
        return self._build_worker_sets(self._lock_worker_sets(candidates, locked_by), locked_by)

    def _lock_worker_sets(self, candidates: Sequence[Sequence[Any]], locked_by: str | None) -> tuple[Any, ...]:
        """The DB part of :meth:`_group_workers`: find and lock the sets, read their rows as plain
        tuples. Returns what :meth:`_build_worker_sets` needs; the WorkSpecs are built there, after
        the caller's transaction has committed (the rows are locked for the caller by then), so
        that the write lock is not held while Python decodes rows."""
        work_cls = schema.spec_class("work_table")
        now = naive_utcnow()
        dynamic = dynamic_plugin_change()
        related = self._related_workers([c[0] for c in candidates])
        checked: set[int] = set()
        groups: list[tuple[int, Any, list[int]]] = []
        touch: list[int] = []
        for worker_id, config_id, map_type in candidates:
            if worker_id in checked:
                continue
            scan = related.get(worker_id)
            if scan is None:
                scan_ids = [worker_id]
            else:
                scan = set(scan)
                scan.add(worker_id)
                if map_type == work_cls.MT_MultiWorkers and worker_id != min(scan):
                    touch.append(worker_id)
                    continue
                scan_ids = sorted(scan)
            checked.update(scan_ids)
            groups.append((worker_id, config_id if dynamic else None, scan_ids))
        all_ids = [wid for _, _, scan in groups for wid in scan]
        if locked_by is not None:
            self._update_in("UPDATE work_table SET modificationTime=:now WHERE workerID IN ({ids})", touch,
                            {":now": now})
            self._update_in("UPDATE work_table SET modificationTime=:now,lockedBy=:lockedBy WHERE workerID IN ({ids})",
                            all_ids, {":now": now, ":lockedBy": locked_by})
        rows = self._plain_rows_in(f"SELECT {work_cls.column_names()} FROM work_table WHERE workerID IN ({{ids}})",
                                   all_ids)
        return groups, rows, self._pandaid_lists(all_ids)

    def _plain_rows_in(self, sql_template: str, values: Sequence[Any]) -> list[tuple]:
        """Rows of ``sql_template.format(ids=...)`` over chunks of ``values`` as plain tuples (no
        ``sqlite3.Row`` objects: fewer objects for the GC when thousands of rows are read)."""
        cur = self._engine.plain_cursor(self._con)
        try:
            rows: list[tuple] = []
            for batch in chunks(list(values)):
                vm: dict[str, Any] = {}
                keys = in_binds("in_", batch, vm)
                rows += self._engine.execute(cur, sql_template.format(ids=keys), vm).fetchall()
            return rows
        finally:
            cur.close()

    def _build_worker_sets(self, locked: tuple[Any, ...], locked_by: str | None
                           ) -> dict[str, dict[Any, list[list[Any]]]]:
        """WorkSpecs for the sets found by :meth:`_lock_worker_sets`, grouped by queue and configID."""
        groups, rows, pandaids = locked
        work_cls = schema.spec_class("work_table")
        make = work_cls.from_values
        specs = {}
        for row in rows:
            spec = make(row)
            specs[spec.workerID] = spec
        result: dict[str, dict[Any, list[list[Any]]]] = {}
        for worker_id, config_id, scan in groups:
            workers = []
            for wid in scan:
                spec = specs.get(wid)
                if spec is None:
                    continue
                d = spec.__dict__
                pandaid_list = pandaids.get(wid)
                if pandaid_list:
                    d["pandaid_list"] = pandaid_list
                    spec.nJobs = len(pandaid_list)
                else:
                    d["pandaid_list"] = []
                if locked_by is not None:
                    d["lockedBy"] = locked_by  # as stored by the lock: not a change to write back
                workers.append(spec)
            if not workers or worker_id not in specs:
                continue
            queue = specs[worker_id].computingSite
            result.setdefault(queue, {}).setdefault(config_id, []).append(workers)
        return result

    # ------------------------------------------------------------ monitor
    @db_method(dict)
    def get_workers_to_update(self, max_workers: int, check_interval: float, lock_interval: float,
                              locked_by: str) -> dict[str, dict[Any, list[list[Any]]]]:
        """Active workers not checked for ``check_interval`` s (or whose lock is older than
        ``lock_interval`` s), locked for ``locked_by``: {queue: {configID: [[WorkSpec, ...], ...]}}."""
        now = naive_utcnow()
        varmap = {":lockTimeLimit": now - datetime.timedelta(seconds=lock_interval),
                  ":checkTimeLimit": now - datetime.timedelta(seconds=check_interval)}
        varmap[":maxLimit"] = max(varmap[":lockTimeLimit"], varmap[":checkTimeLimit"])
        due = ("modificationTime<:maxLimit AND ((modificationTime<:lockTimeLimit AND lockedBy IS NOT NULL) OR "
               "(modificationTime<:checkTimeLimit AND lockedBy IS NULL))")
        with self._tx():
            if self._for_update():
                rows = self._due_workers_by_status(due, varmap, int(max_workers))
            else:
                rows = self._exec(f"SELECT workerID, configID, mapType FROM work_table WHERE status IN "
                                  f"{SQL_WORKERS_ACTIVE} AND {due} ORDER BY modificationTime "
                                  f"LIMIT {int(max_workers)}", varmap).fetchall()
            locked = self._lock_worker_sets([tuple(r) for r in rows], locked_by)
            del rows
        # the specs are built once the locks are committed
        result = self._build_worker_sets(locked, locked_by)
        n = sum(len(g) for q in result.values() for g in q.values())
        make_logger(_logger, f"thr={locked_by}", method_name="get_workers_to_update").debug(f"got {n} worker sets")
        return result

    def _due_workers_by_status(self, due: str, varmap: dict[str, Any], limit: int) -> list[tuple]:
        """The monitor's pick with row locks (MariaDB): candidates read without locks, one query
        per active status so that the (status, modificationTime) index gives the order (over
        ``status IN (...)`` the server would sort every due worker), merged oldest first, then
        locked by primary key (:meth:`_lock_rows`); more candidates when others took too many."""
        cond = f"status IN {SQL_WORKERS_ACTIVE} AND {due}"
        taken: list[tuple] = []
        tried: set[Any] = set()
        for factor in (2, 8):
            window = int(limit * factor)
            candidates: list[tuple] = []
            for status in lifecycle.WORKER_ACTIVE:
                candidates += [tuple(r) for r in self._exec(
                    f"SELECT workerID, modificationTime FROM work_table WHERE status=:pickStatus AND {due} "
                    f"ORDER BY modificationTime LIMIT {window}", dict(varmap, **{":pickStatus": status})).fetchall()]
            candidates.sort(key=lambda r: r[1])
            fresh = [r[0] for r in candidates[:window] if r[0] not in tried]
            tried.update(fresh)
            taken += self._lock_rows("work_table", "workerID, configID, mapType", "workerID", cond, fresh, varmap,
                                     limit - len(taken))
            if len(taken) >= limit or len(candidates) < window:
                break
        return taken

    @db_method(dict)
    def get_workers_to_update_by_ids(self, worker_ids: Sequence[int], lock_interval: float, locked_by: str,
                                     stamps: dict[int, float] | None = None) -> dict[str, dict[Any, list[list[Any]]]]:
        """:meth:`get_workers_to_update` for the workers ``worker_ids`` (the monitor FIFO's): those
        still active and not locked by another thread (or locked longer than ``lock_interval``
        s), locked for ``locked_by``. With ``stamps`` ({workerID: the FIFO copy's workParams
        lastCheckAt}) a worker whose stored lastCheckAt is newer is left out: a newer copy of it
        is in the FIFO."""
        now = naive_utcnow()
        varmap = {":lockTimeLimit": now - datetime.timedelta(seconds=lock_interval)}
        cond = f"status IN {SQL_WORKERS_ACTIVE} AND (lockedBy IS NULL OR modificationTime<:lockTimeLimit)"
        ids = sorted({int(i) for i in worker_ids})
        with self._tx():
            if self._for_update():  # row locks: a worker another process is taking is skipped
                rows = self._lock_rows("work_table", "workerID, configID, mapType, workParams", "workerID", cond,
                                       ids, varmap, len(ids))
            else:
                rows = self._ids_in(f"SELECT workerID, configID, mapType, workParams FROM work_table WHERE "
                                    f"workerID IN ({{ids}}) AND {cond}", ids, varmap)
            if stamps is not None:
                rows = [r for r in rows if not _newer_copy_exists(r[3], stamps.get(r[0]))]
            locked = self._lock_worker_sets([tuple(r[:3]) for r in rows], locked_by)
        return self._build_worker_sets(locked, locked_by)

    @db_method(dict)
    def get_workers_from_ids(self, ids: Sequence[int]) -> dict[str, dict[Any, list[list[Any]]]]:
        """Active workers among ``ids`` grouped like get_workers_to_update (no lock taken)."""
        with self._tx(write=False):
            rows = self._ids_in("SELECT workerID, configID, mapType FROM work_table WHERE workerID IN ({ids}) "
                                f"AND status IN {SQL_WORKERS_ACTIVE}", [int(i) for i in ids])
            return self._group_workers([tuple(r) for r in rows], None)

    @db_method(list)
    def get_active_workers(self, n_workers: int, seconds_ago: float = 0) -> list[Any]:
        """Active workers not modified for ``seconds_ago`` s, with their jobs (monitor FIFO refill)."""
        limit = naive_utcnow() - datetime.timedelta(seconds=seconds_ago)
        with self._tx(write=False):
            workers = self._select_specs("work_table", f"status IN {SQL_WORKERS_ACTIVE} AND "
                                         "modificationTime<:t", {":t": limit},
                                         suffix=f"ORDER BY modificationTime, computingSite LIMIT {int(n_workers)}")
            pandaids = self._pandaid_lists([w.workerID for w in workers])
            jobs = {j.PandaID: j for j in self._select_specs_in(
                "job_table", "PandaID", sorted({p for ps in pandaids.values() for p in ps}))}
        for worker in workers:
            worker.pandaid_list = [p for p in pandaids.get(worker.workerID, []) if p in jobs]
            worker.set_jobspec_list([jobs[p] for p in worker.pandaid_list])
        return workers


    @db_method(list)
    def get_workers_to_propagate(self, max_workers: int, check_interval: float) -> list[Any]:
        """Workers whose lastUpdate is older than ``check_interval`` s; lastUpdate becomes now
        (``trigger_propagation`` moves it 24 h back, ``disable_propagation`` sets it NULL)."""
        now = naive_utcnow()
        varmap = {":limit": now - datetime.timedelta(seconds=check_interval)}
        cond = "lastUpdate IS NOT NULL AND lastUpdate<:limit"
        with self._tx():
            ids = self._pick_ids("work_table", "workerID", cond, "ORDER BY lastUpdate", varmap, int(max_workers))
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
        cond = (f"eventsRequest=:ev AND status IN {SQL_WORKERS_EVENT_FEEDABLE} AND "
                "(eventFeedTime IS NULL OR eventFeedTime<:limit)")
        with self._tx():
            ids = self._pick_ids("work_table", "workerID", cond, "ORDER BY eventFeedTime", varmap, int(max_workers))
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
                               f"AND status NOT IN {SQL_WORKERS_FINAL}", varmap).rowcount
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
            rows = self._pick_rows("work_table", "workerID, status, configID", "workerID", cond, "ORDER BY killTime",
                                   varmap, int(max_workers))
            done = [r[0] for r in rows if r[1] in lifecycle.WORKER_ENDED]
            todo = [r[0] for r in rows if r[1] not in lifecycle.WORKER_ENDED]
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
    def get_interrupted_submissions(self, lock_interval: float, max_workers: int) -> dict[str, dict[Any, list[Any]]]:
        """Workers still ``pending`` ``lock_interval`` seconds after the submitter recorded them
        (before the batch submission) — a submitter that crashed between the two: their batch jobs
        may run, unknown to harvester. {queue: {configID: [WorkSpec]}}, for the sweeper to kill and
        sweep them (then :meth:`delete_interrupted_submissions`)."""
        now = naive_utcnow()
        varmap = {":pending": lifecycle.WORKER_PENDING, ":limit": now - datetime.timedelta(seconds=lock_interval)}
        dynamic = dynamic_plugin_change()
        rows = self._exec(f"SELECT workerID FROM work_table WHERE status=:pending AND modificationTime<:limit "
                          f"ORDER BY workerID LIMIT {int(max_workers)}", varmap).fetchall()
        result: dict[str, dict[Any, list[Any]]] = {}
        for worker in self._select_specs_in("work_table", "workerID", [r[0] for r in rows]):
            result.setdefault(worker.computingSite, {}).setdefault(worker.configID if dynamic else None,
                                                                   []).append(worker)
        return result

    @db_method(0)
    def delete_interrupted_submissions(self, worker_ids: Sequence[int], lock_interval: float) -> int:
        """Delete the workers of :meth:`get_interrupted_submissions` (their rows and job relations;
        not their jobs, which another worker takes) that are still pending and old; the number deleted."""
        now = naive_utcnow()
        varmap = {":pending": lifecycle.WORKER_PENDING, ":limit": now - datetime.timedelta(seconds=lock_interval)}
        worker_ids = [int(w) for w in worker_ids]
        if not worker_ids:
            return 0
        with self._tx():
            stale = [r[0] for r in self._ids_in("SELECT workerID FROM work_table WHERE workerID IN ({ids}) AND "
                                                "status=:pending AND modificationTime<:limit", worker_ids, varmap)]
            self._update_in("DELETE FROM jw_table WHERE workerID IN ({ids})", stale)
            self._update_in("DELETE FROM work_table WHERE workerID IN ({ids})", stale)
        return len(stale)

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
            rows = self._pick_rows("work_table", "workerID, configID", "workerID", cond, "ORDER BY modificationTime",
                                   varmap, int(max_workers))
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
                              if f.fileType in lifecycle.INPUT_TYPES and f.lfn is not None})
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


def _newer_copy_exists(work_params: Any, copy_stamp: float | None) -> bool:
    """Whether the stored workParams' lastCheckAt is newer than the FIFO copy's ``copy_stamp``."""
    if copy_stamp is None or work_params is None:
        return False
    params = decode_blob(work_params)
    stored = params.get("lastCheckAt") if isinstance(params, dict) else None
    try:
        return stored is not None and float(stored) > float(copy_stamp)
    except (TypeError, ValueError):
        return False
