"""Workers: read, update, delete, kill marks, counts (work_table and jw_table)."""

from __future__ import annotations

import datetime
from typing import Any, Iterable, Sequence

from .. import core_utils
from ..log_utils import make_logger, setup_logger
from ..time_utils import naive_utcnow
from . import schema
from .base import DBModule, chunks, db_method, dynamic_plugin_change, in_binds

_logger = setup_logger("db_proxy")

ACTIVE = ("submitted", "running", "idle")
FINAL_FOR_KILL = ("finished", "failed", "cancelled")


class WorkersMixin(DBModule):
    """Worker CRUD and kill marks; lock-taking worker queries are in :mod:`worker_cycles`."""

    # ------------------------------------------------------------ helpers
    def _update_worker_changes_bulk(self, workspec_list: Sequence[Any], cond: str = "",
                                    extra: dict[str, Any] | None = None) -> list[int | None]:
        """``_update_changes`` by workerID for several workers inside the caller's transaction: one
        executemany per set of changed columns instead of one UPDATE each. ``cond`` (SQL, ANDed to
        the workerID test) and its ``extra`` binds narrow the rows written. Per worker: rows updated,
        None when nothing changed. The same worker twice keeps the one-by-one order."""
        work_cls = schema.spec_class("work_table")
        where = f"workerID=:w_key AND {cond}" if cond else "workerID=:w_key"
        extra = extra or {}
        if len({w.workerID for w in workspec_list}) != len(workspec_list):
            return [self._update_changes("work_table", w, where, {":w_key": w.workerID, **extra},
                                         skip=("workerID",)) for w in workspec_list]
        result: list[int | None] = [None] * len(workspec_list)
        groups: dict[tuple[str, ...], list[tuple[int, dict[str, Any]]]] = {}
        for index, workspec in enumerate(workspec_list):
            varmap = workspec.values_map(only_changed=True)
            varmap.pop(":workerID", None)
            if not varmap:
                continue
            schema.check_map("work_table", work_cls, varmap)
            columns = tuple(varmap)
            varmap[":w_key"] = workspec.workerID
            varmap.update(extra)
            groups.setdefault(columns, []).append((index, varmap))
        for keys, members in groups.items():
            sql = f"UPDATE work_table SET {','.join(f'{k[1:]}={k}' for k in keys)} WHERE {where}"
            if self._many(sql, [varmap for _i, varmap in members]) == len(members):
                for index, _varmap in members:
                    result[index] = 1
            else:  # some rows are gone: count them one by one (the same values again, so idempotent)
                for index, varmap in members:
                    result[index] = max(self._exec(sql, varmap).rowcount, 0)
        return result

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
                            "AND w.status IN ('submitted','running','idle')", list(worker_ids))
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
        cur = self._con.cursor()
        cur.row_factory = None
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

    def _kill_time(self, delay_seconds: float | None) -> datetime.datetime:
        if delay_seconds is None:
            # in the past: the sweeper acts at its next cycle
            return naive_utcnow() - datetime.timedelta(hours=6)
        return naive_utcnow() + datetime.timedelta(seconds=delay_seconds)

    def _mark_kill(self, worker_ids: Iterable[int], delay_seconds: float | None) -> int:
        return self._update_in("UPDATE work_table SET killTime=:t WHERE workerID IN ({ids}) AND killTime IS NULL "
                               "AND status NOT IN ('finished','failed','cancelled')", list(worker_ids),
                               {":t": self._kill_time(delay_seconds)})

    # ------------------------------------------------------------ update / read
    @db_method(None)
    def update_worker(self, workspec: Any, criteria: dict[str, Any] | None = None) -> int | None:
        """Write the changed attributes of a worker; rows updated, None when nothing changed."""
        tmp_log = make_logger(_logger, f"workerID={workspec.workerID}", method_name="update_worker")
        where_map: dict[str, Any] = {":workerID_key": workspec.workerID}
        where = "workerID=:workerID_key" + self._criteria("work_table", criteria, where_map)
        with self._tx():
            n_row = self._update_changes("work_table", workspec, where, where_map, skip=("workerID",))
        if n_row is None:
            tmp_log.debug("skip since no updated attributes")
            return None
        workspec.reset_changed_list()
        tmp_log.debug(f"done with {n_row}")
        return n_row

    @db_method(list)
    def update_workers_bulk(self, workspec_list: Sequence[Any]) -> list[int | None]:
        """:meth:`update_worker` (by workerID) for several workers in one transaction; one entry per
        worker (rows updated, None when nothing changed; [] after a DB error: nothing written)."""
        with self._tx():
            n_rows = self._update_worker_changes_bulk(workspec_list)
        for workspec in workspec_list:
            workspec.reset_changed_list()
        make_logger(_logger, method_name="update_workers_bulk").debug(
            f"updated {sum(1 for n in n_rows if n)} of {len(n_rows)} workers")
        return n_rows

    @db_method(list)
    def get_ready_workers(self, queue_name: str, n_ready: int) -> list[Any]:
        """Workers of the queue ready for jobs (ready, or running and wanting refills)."""
        with self._tx(write=False):
            workers = self._select_specs("work_table", "computingSite=:q AND (status=:ready OR (status=:running "
                                         "AND nJobsToReFill IS NOT NULL AND nJobsToReFill>0))",
                                         {":q": queue_name, ":ready": "ready", ":running": "running"},
                                         suffix=f"ORDER BY modificationTime LIMIT {int(n_ready)}")
            counts = dict(self._ids_in("SELECT workerID, COUNT(*) FROM jw_table WHERE workerID IN ({ids}) "
                                       "GROUP BY workerID", [w.workerID for w in workers]))
        for worker in workers:
            if counts.get(worker.workerID, 0) > 0:
                worker.nJobs = counts[worker.workerID]
        return workers

    @db_method(None)
    def get_worker_with_id(self, worker_id: int) -> Any:
        """WorkSpec or None."""
        with self._tx(write=False):
            workers = self._select_specs("work_table", "workerID=:w", {":w": worker_id})
        return workers[0] if workers else None

    @db_method(list)
    def get_workers_with_job_id(self, panda_id: int, use_commit: bool = True) -> list[Any]:
        """Slim WorkSpecs of the workers of a job, by workerID."""
        with self._tx(write=False):
            ids = [r[0] for r in self._exec("SELECT workerID FROM jw_table WHERE PandaID=:p ORDER BY workerID",
                                            {":p": panda_id}).fetchall()]
            workers = self._select_specs_in("work_table", "workerID", ids, slim=True)
        return sorted(workers, key=lambda w: w.workerID)

    @db_method(dict)
    def get_workers_from_ids(self, ids: Sequence[int]) -> dict[str, dict[Any, list[list[Any]]]]:
        """Active workers among ``ids`` grouped like get_workers_to_update (no lock taken)."""
        with self._tx(write=False):
            rows = self._ids_in("SELECT workerID, configID, mapType FROM work_table WHERE workerID IN ({ids}) "
                                "AND status IN ('submitted','running','idle')", [int(i) for i in ids])
            return self._group_workers([tuple(r) for r in rows], None)

    @db_method(list)
    def get_active_workers(self, n_workers: int, seconds_ago: float = 0) -> list[Any]:
        """Active workers not modified for ``seconds_ago`` s, with their jobs (monitor FIFO refill)."""
        limit = naive_utcnow() - datetime.timedelta(seconds=seconds_ago)
        with self._tx(write=False):
            workers = self._select_specs("work_table", "status IN ('submitted','running','idle') AND "
                                         "modificationTime<:t", {":t": limit},
                                         suffix=f"ORDER BY modificationTime, computingSite LIMIT {int(n_workers)}")
            pandaids = self._pandaid_lists([w.workerID for w in workers])
            jobs = {j.PandaID: j for j in self._select_specs_in(
                "job_table", "PandaID", sorted({p for ps in pandaids.values() for p in ps}))}
        for worker in workers:
            worker.pandaid_list = [p for p in pandaids.get(worker.workerID, []) if p in jobs]
            worker.set_jobspec_list([jobs[p] for p in worker.pandaid_list])
        return workers

    @db_method(False)
    def delete_worker(self, worker_id: int) -> bool:
        """Delete a worker with its jobs, their files/events and the relations."""
        with self._tx():
            ids = [r[0] for r in self._exec("SELECT PandaID FROM jw_table WHERE workerID=:w", {":w": worker_id}).fetchall()]
            for table in ("job_table", "file_table", "event_table", "jw_table"):
                self._update_in(f"DELETE FROM {table} WHERE PandaID IN ({{ids}})", ids)
            self._exec("DELETE FROM jw_table WHERE workerID=:w", {":w": worker_id})
            self._exec("DELETE FROM work_table WHERE workerID=:w", {":w": worker_id})
        return True

    @db_method(False)
    def delete_workers(self, worker_ids: Sequence[int]) -> bool:
        """:meth:`delete_worker` for several workers in one transaction (all or nothing)."""
        worker_ids = [int(w) for w in worker_ids]
        if not worker_ids:
            return True
        with self._tx():
            ids = sorted({r[0] for r in self._ids_in("SELECT PandaID FROM jw_table WHERE workerID IN ({ids})",
                                                     worker_ids)})
            for table in ("job_table", "file_table", "event_table", "jw_table"):
                self._update_in(f"DELETE FROM {table} WHERE PandaID IN ({{ids}})", ids)
            self._update_in("DELETE FROM jw_table WHERE workerID IN ({ids})", worker_ids)
            self._update_in("DELETE FROM work_table WHERE workerID IN ({ids})", worker_ids)
        return True

    @db_method(0)
    def get_num_missed_workers(self, queue_name: str, criteria: dict[str, Any]) -> int:
        """Missed workers matching criteria (timeLimit → submitTime after it; siteName; computingSite;
        computingElement)."""
        varmap: dict[str, Any] = {":status": "missed"}
        sql = "SELECT COUNT(*) FROM work_table wt, pq_table pq WHERE wt.computingSite=pq.queueName AND wt.status=:status"
        for attr, val in (criteria or {}).items():
            if attr == "timeLimit":
                sql += " AND wt.submitTime>:timeLimit"
                varmap[":timeLimit"] = val
            elif attr == "siteName":
                sql += " AND pq.siteName=:siteName"
                varmap[":siteName"] = val
            elif attr in ("computingSite", "computingElement"):
                sql += f" AND wt.{attr}=:{attr}"
                varmap[f":{attr}"] = val
        # one pq row per (queue, resource type, job type): count each worker once
        sql = sql.replace("SELECT COUNT(*)", "SELECT COUNT(DISTINCT wt.workerID)")
        with self._tx(write=False):
            (n,) = self._exec(sql, varmap).fetchone()
        return n

    # ------------------------------------------------------------ kill marks
    @db_method(None)
    def mark_workers_to_kill_by_pandaid(self, panda_id: int, delay_seconds: float | None = None) -> int | None:
        with self._tx():
            ids = [r[0] for r in self._exec("SELECT workerID FROM jw_table WHERE PandaID=:p", {":p": panda_id}).fetchall()]
            n = self._mark_kill(ids, delay_seconds)
        make_logger(_logger, f"PandaID={panda_id}", method_name="mark_workers_to_kill_by_pandaid").debug(
            f"set killTime to {n} workers")
        return n

    @db_method(None)
    def mark_workers_to_kill_by_workerids(self, worker_ids: Sequence[int], delay_seconds: float | None = None
                                          ) -> int | None:
        with self._tx():
            return self._mark_kill(list(worker_ids), delay_seconds)

    @db_method(None)
    def mark_workers_to_kill_by_query(self, params: dict[str, Any], delay_seconds: float | None = None) -> int | None:
        """Kill workers matching ``{status, computingSite, computingElement, submissionHost}`` lists
        (``"ALL"`` = any); a missing/empty constraint matches nothing (returns 0)."""
        tmp_log = make_logger(_logger, method_name="mark_workers_to_kill_by_query")
        constraints = {"status": params.get("status", ["submitted"]),
                       "computingSite": params.get("computingSite", []),
                       "computingElement": params.get("computingElement", []),
                       "submissionHost": params.get("submissionHost", [])}
        varmap: dict[str, Any] = {}
        terms = []
        for attr, values in constraints.items():
            if values == "ALL":
                continue
            if not values:
                tmp_log.debug(f"{attr} constraint is not specified in the query. Skipped")
                return 0
            terms.append(f"{attr} IN ({in_binds('p_' + attr + '_', list(values), varmap)})")
        where = " AND ".join(terms) or "1=1"
        with self._tx():
            ids = [r[0] for r in self._exec(f"SELECT workerID FROM work_table WHERE {where}", varmap).fetchall()]
            n = self._mark_kill(ids, delay_seconds)
        tmp_log.debug(f"set killTime to {n} workers")
        return n
