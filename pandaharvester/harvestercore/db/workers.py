"""Workers: read, update, delete, kill marks, counts (work_table and jw_table)."""

from __future__ import annotations

import datetime
from typing import Any, Iterable, Sequence

from .. import lifecycle
from ..log_utils import make_logger, setup_logger
from ..time_utils import naive_utcnow
from .base import SQL_WORKERS_ENDED, DBModule, db_method, in_binds

_logger = setup_logger("db_proxy")


class WorkersMixin(DBModule):
    """Worker CRUD and kill marks; lock-taking worker queries are in :mod:`worker_cycles`."""

    # ------------------------------------------------------------ helpers
    def _kill_time(self, delay_seconds: float | None) -> datetime.datetime:
        if delay_seconds is None:
            # in the past: the sweeper acts at its next cycle
            return naive_utcnow() - datetime.timedelta(hours=6)
        return naive_utcnow() + datetime.timedelta(seconds=delay_seconds)

    def _mark_kill(self, worker_ids: Iterable[int], delay_seconds: float | None) -> int:
        return self._update_in("UPDATE work_table SET killTime=:t WHERE workerID IN ({ids}) AND killTime IS NULL "
                               f"AND status NOT IN {SQL_WORKERS_ENDED}", list(worker_ids),
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
            n_rows = self._update_changes_bulk("work_table", workspec_list, "workerID")
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
                                         {":q": queue_name, ":ready": lifecycle.WORKER_READY,
                                          ":running": lifecycle.WORKER_RUNNING},
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
        varmap: dict[str, Any] = {":status": lifecycle.WORKER_MISSED}
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
        constraints = {"status": params.get("status", [lifecycle.WORKER_SUBMITTED]),
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
