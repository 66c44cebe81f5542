"""The job queries agents run every cycle: pick eligible jobs and lock them in one transaction.

Pattern (the heart of the data layer): inside one write transaction (``BEGIN IMMEDIATE`` on
SQLite, so no other thread or process can write in between) select the eligible ids in the
agent's order with ``LIMIT``, set the lock columns (owner + time) on exactly those rows with one
``UPDATE ... IN (...)``, read them back, commit. A row is eligible again when unlocked and its
time column is older than the agent's check interval, or when its lock is older than the lock
interval, so a crash between lock and update loses nothing.
"""

from __future__ import annotations

import datetime
import math
from typing import Any, Iterable, Sequence

from .. import core_utils, lifecycle
from ..log_utils import dump_error_message, ids_text, make_logger, setup_logger
from ..time_utils import naive_utcnow
from . import schema
from .base import (SQL_EVENTS_TO_REPORT, SQL_INPUT_TYPES, SQL_JOBS_STARTING_OR_RUNNING, DBModule, db_method, in_binds,
                   sql_list)

_logger = setup_logger("db_proxy")

MAX_EVENTS_PER_PROPAGATION = 10000
# the files a stager step never works on
_NOT_STAGED_OUT = f"fileType NOT IN {sql_list(lifecycle.INPUT_TYPES + (lifecycle.TYPE_CHECKPOINT,))}"


def _lock_condition(time_col: str, lock_col: str, with_lock: bool, without_lock: bool) -> str:
    """Eligibility on (time column, lock column); ``:lockTimeLimit``/``:updateTimeLimit`` binds."""
    terms = [f"{time_col} IS NULL"]
    if with_lock:
        terms.append(f"({time_col}<:lockTimeLimit AND {lock_col} IS NOT NULL)")
    if without_lock:
        terms.append(f"({time_col}<:updateTimeLimit AND {lock_col} IS NULL)")
    return "(" + " OR ".join(terms) + ")"


def _jobs_in_order(job_cls: Any, rows: Sequence[Any], ids: Sequence[Any], slim: bool = False
                   ) -> tuple[list[Any], dict[Any, Any]]:
    """The JobSpecs of ``rows`` in the order of ``ids`` (as they were picked), and by PandaID."""
    order = {pid: i for i, pid in enumerate(ids)}
    jobs = sorted((job_cls.from_values(tuple(row), slim=slim) for row in rows), key=lambda j: order[j.PandaID])
    return jobs, {job.PandaID: job for job in jobs}


def _first_per_job(rows: Sequence[Any], pid_idx: int, limit: int | None) -> list[Any]:
    """``rows`` keeping the first ``limit`` of each PandaID (column ``pid_idx``); all without a limit."""
    if not limit:
        return list(rows)
    taken: dict[Any, int] = {}
    kept = []
    for row in rows:
        taken[row[pid_idx]] = n = taken.get(row[pid_idx], 0) + 1
        if n <= limit:
            kept.append(row)
    return kept


class JobCyclesMixin(DBModule):
    """get_jobs_to_propagate, get_jobs_in_sub_status, get_jobs_for_stage_out, update_job_for_stage_out,
    get_job_chunks_for_workers, get_num_jobs_to_fetch."""

    def _lock_ids(self, table: str, id_col: str, ids: Sequence[Any], sets: str, cond: str,
                  varmap: dict[str, Any]) -> None:
        self._update_in(f"UPDATE {table} SET {sets} WHERE {id_col} IN ({{ids}}) AND {cond}", list(ids), varmap)

    # ------------------------------------------------------------ job fetcher
    @db_method(dict)
    def get_num_jobs_to_fetch(self, n_queues: int, interval: float, queue_config_mapper: Any = None) -> dict[str, int]:
        """{queueName: number of jobs to fetch} for up to ``n_queues`` queues not looked at within
        ``interval`` s; those queues get jobFetchTime=now (so other threads skip them)."""
        now = naive_utcnow()
        limit = now - datetime.timedelta(seconds=interval)
        result: dict[str, int] = {}
        # ask the queue config mapper BEFORE taking the write lock: it may reload and write to
        # the DB through another connection, which would wait on this transaction forever
        known: set[str] | None = None
        if queue_config_mapper is not None:
            with self._tx(write=False):
                names = {row[0] for row in self._exec("SELECT DISTINCT queueName FROM pq_table").fetchall()}
            known = {name for name in names if queue_config_mapper.has_queue(name)}
        with self._tx():
            rows = self._exec("SELECT queueName,nQueueLimitJob,nQueueLimitJobRatio,nQueueLimitJobMax,nQueueLimitJobMin "
                              "FROM pq_table WHERE jobFetchTime IS NULL OR jobFetchTime<:limit "
                              f"ORDER BY jobFetchTime, resourceType{self._for_update()}", {":limit": limit}).fetchall()
            seen: set[str] = set()
            for queue_name, n_limit, ratio, n_max, n_min in rows:
                if queue_name in seen:
                    continue
                if known is not None and queue_name not in known:
                    continue
                seen.add(queue_name)
                self._exec("UPDATE pq_table SET jobFetchTime=:now WHERE queueName=:q", {":now": now, ":q": queue_name})
                counts = dict(self._exec("SELECT status, COUNT(*) FROM job_table WHERE computingSite=:q "
                                         f"AND status IN {SQL_JOBS_STARTING_OR_RUNNING} GROUP BY status",
                                         {":q": queue_name}).fetchall())
                n_queue = counts.get(lifecycle.JOB_STARTING, 0)
                if ratio is not None and ratio > 0:
                    n_limit = int(counts.get(lifecycle.JOB_RUNNING, 0) * ratio / 100)
                    n_limit = max(n_limit, 1 if n_min is None else n_min)
                    if n_max is not None:
                        n_limit = min(n_limit, n_max)
                if n_limit is not None and n_queue < n_limit:
                    result[queue_name] = n_limit - n_queue
                if len(seen) >= n_queues:
                    break
        make_logger(_logger, method_name="get_num_jobs_to_fetch").debug(f"got {result}")
        return result

    def get_num_jobs_to_fetch_old(self, n_queues: int, interval: float) -> dict[str, int]:
        """The original's older signature of :meth:`get_num_jobs_to_fetch` (no queue config mapper)."""
        return self.get_num_jobs_to_fetch(n_queues, interval)

    # ------------------------------------------------------------ propagator
    @db_method(list)
    def get_jobs_to_propagate(self, max_jobs: int, lock_interval: float, update_interval: float,
                              locked_by: str) -> list[Any]:
        """Jobs whose status must be sent to PanDA (with their final events and checkpoint files).

        Eligible: propagatorTime set, and unlocked for ``update_interval`` s (heartbeat) or locked
        for more than ``lock_interval`` s. ``trigger_propagation`` moves propagatorTime back so
        the job goes out at the next cycle."""
        now = naive_utcnow()
        varmap = {":lockTimeLimit": now - datetime.timedelta(seconds=lock_interval),
                  ":updateTimeLimit": now - datetime.timedelta(seconds=update_interval)}
        varmap[":maxLimit"] = max(varmap[":lockTimeLimit"], varmap[":updateTimeLimit"])
        cond = ("propagatorTime IS NOT NULL AND propagatorTime<:maxLimit AND "
                "((propagatorTime<:lockTimeLimit AND propagatorLock IS NOT NULL) OR "
                "(propagatorTime<:updateTimeLimit AND propagatorLock IS NULL))")
        with self._tx():
            ids = self._pick_ids("job_table", "PandaID", cond, "ORDER BY propagatorTime", varmap, int(max_jobs))
            # avoid one bulk update carrying too many events
            n_events = dict(self._ids_in("SELECT PandaID, COUNT(*) FROM event_table WHERE PandaID IN ({ids}) "
                                         f"AND subStatus IN {SQL_EVENTS_TO_REPORT} GROUP BY PandaID", ids))
            kept, total = [], 0
            for pid in ids:
                if total > MAX_EVENTS_PER_PROPAGATION:
                    break
                kept.append(pid)
                total += n_events.get(pid, 0)
            self._lock_ids("job_table", "PandaID", kept, "propagatorTime=:now,propagatorLock=:lockedBy", cond,
                           dict(varmap, **{":now": now, ":lockedBy": locked_by}))
            # raw rows only inside the transaction; the specs are built after the commit
            job_cls, file_cls = schema.spec_class("job_table"), schema.spec_class("file_table")
            job_rows = self._ids_in(f"SELECT {job_cls.column_names()} FROM job_table WHERE PandaID IN ({{ids}})", kept)
            file_rows = self._ids_in(f"SELECT {file_cls.column_names()} FROM file_table WHERE PandaID IN ({{ids}}) "
                                     "AND fileType=:ckpt AND status=:renewed", kept,
                                     {":ckpt": lifecycle.TYPE_CHECKPOINT, ":renewed": lifecycle.FILE_RENEWED})
            events = self._final_events(kept)
        jobs, by_id = _jobs_in_order(job_cls, job_rows, kept)
        for event, zip_spec in events:
            by_id[event.PandaID].add_event(event, zip_spec)
        for row in file_rows:
            file_spec = file_cls.from_values(tuple(row))
            by_id[file_spec.PandaID].add_out_file(file_spec)
        for job in jobs:
            job.propagatorLock = locked_by
        make_logger(_logger, f"thr={locked_by}", method_name="get_jobs_to_propagate").debug(f"got {len(jobs)} jobs")
        return jobs

    def _final_events(self, panda_ids: Sequence[Any]) -> list[tuple[Any, Any]]:
        """``[(EventSpec, zip FileSpec or None)]`` of the jobs' finished/failed events (an event
        whose file row is gone is left out)."""
        if not panda_ids:
            return []
        events = self._select_specs_in("event_table", "PandaID", list(panda_ids),
                                       f"AND subStatus IN {SQL_EVENTS_TO_REPORT}")
        file_ids = {e.fileID for e in events if e.fileID is not None}
        zip_of = dict(self._ids_in("SELECT fileID, zipFileID FROM file_table WHERE fileID IN ({ids})", list(file_ids)))
        zip_ids = {z for z in zip_of.values() if z is not None}
        zip_files = {f.fileID: f for f in self._select_specs_in("file_table", "fileID", list(zip_ids))}
        result = []
        for event in events:
            zip_spec = None
            if event.fileID is not None:
                if event.fileID not in zip_of:
                    continue
                zip_id = zip_of[event.fileID]
                if zip_id is not None:
                    zip_spec = zip_files.get(zip_id)
            result.append((event, zip_spec))
        return result

    # ------------------------------------------------------------ preparator and friends
    @db_method(list)
    def get_jobs_in_sub_status(self, sub_status: str, max_jobs: int, time_column: str | None = None,
                               lock_column: str | None = None, interval_without_lock: float | None = None,
                               interval_with_lock: float | None = None, locked_by: str | None = None,
                               new_sub_status: str | None = None, max_files_per_job: int | None = None,
                               ng_file_status_list: Sequence[str] | None = None) -> list[Any]:
        """Jobs in ``sub_status`` eligible by (time_column, lock_column), locked by ``locked_by``,
        with their input (or aux-input) files not in ``ng_file_status_list``."""
        job_cls = schema.spec_class("job_table")
        file_cls = schema.spec_class("file_table")
        schema.check_column_names("job_table", job_cls, [c for c in (time_column, lock_column) if c])
        if locked_by is not None and (time_column is None or lock_column is None):
            raise ValueError("get_jobs_in_sub_status: locking needs time_column and lock_column")
        now = naive_utcnow()
        varmap: dict[str, Any] = {":subStatus": sub_status}
        if interval_with_lock is not None:
            varmap[":lockTimeLimit"] = now - datetime.timedelta(seconds=interval_with_lock)
        if interval_without_lock is not None:
            varmap[":updateTimeLimit"] = now - datetime.timedelta(seconds=interval_without_lock)
        cond = "subStatus=:subStatus"
        if time_column is not None:
            cond += " AND " + _lock_condition(time_column, lock_column or "lockedBy", interval_with_lock is not None,
                                              interval_without_lock is not None)
        tmp_log = make_logger(_logger, None if locked_by is None else f"id={locked_by}",
                              method_name="get_jobs_in_sub_status")
        with self._tx(write=locked_by is not None):
            if max_jobs > 0 and new_sub_status is not None:
                cvm = {":subStatus": sub_status, ":newSubStatus": new_sub_status}
                busy = f"({lock_column} IS NOT NULL AND subStatus=:subStatus"
                if time_column is not None and interval_with_lock is not None:
                    busy += f" AND {time_column} IS NOT NULL AND {time_column}>:lockTimeLimit"
                    cvm[":lockTimeLimit"] = varmap[":lockTimeLimit"]
                busy += ") OR subStatus=:newSubStatus"
                (n_processing,) = self._exec(f"SELECT COUNT(*) FROM job_table WHERE {busy}", cvm).fetchone()
                if n_processing >= max_jobs:
                    tmp_log.debug(f"enough jobs {n_processing} are being processed in {new_sub_status} state")
                    return []
                max_jobs -= n_processing
            order = f"ORDER BY {time_column}" if time_column else ""
            if locked_by is not None:
                ids = self._pick_ids("job_table", "PandaID", cond, order, varmap, int(max_jobs))
            else:
                ids = [r[0] for r in self._exec(f"SELECT PandaID FROM job_table WHERE {cond} {order} "
                                                f"LIMIT {int(max_jobs)}", varmap).fetchall()]
            if locked_by is not None:
                self._lock_ids("job_table", "PandaID", ids, f"{time_column}=:now,{lock_column}=:lockedBy", cond,
                               dict(varmap, **{":now": now, ":lockedBy": locked_by}))
            # raw rows only inside the transaction; the specs are built after the commit
            job_rows = self._ids_in(f"SELECT {job_cls.column_names()} FROM job_table WHERE PandaID IN ({{ids}})", ids)
            aux_idx = job_cls.column_list().index("auxInput")
            input_aux = (None, job_cls.AUX_hasAuxInput, job_cls.AUX_allTriggered)
            file_rows = []
            for file_type in lifecycle.INPUT_TYPES:
                type_ids = [row[0] for row in job_rows
                            if (row[aux_idx] in input_aux) == (file_type == lifecycle.TYPE_INPUT)]
                fvm: dict[str, Any] = {":type": file_type}
                where = "fileType=:type"
                if ng_file_status_list:
                    where += f" AND status NOT IN ({in_binds('ng', list(ng_file_status_list), fvm)})"
                file_rows += self._ids_in(f"SELECT {file_cls.column_names()} FROM file_table WHERE PandaID IN "
                                          f"({{ids}}) AND {where} ORDER BY PandaID, fileID", type_ids, fvm)
        jobs, by_id = _jobs_in_order(job_cls, job_rows, ids)
        for row in _first_per_job(file_rows, file_cls.column_list().index("PandaID"), max_files_per_job):
            file_spec = file_cls.from_values(tuple(row))
            by_id[file_spec.PandaID].add_in_file(file_spec)
        if locked_by is not None:
            for job in jobs:
                job.lockedBy = locked_by
                setattr(job, time_column, now)
        tmp_log.debug(f"got {len(jobs)} jobs")
        return jobs

    # ------------------------------------------------------------ stager
    @db_method(list)
    def get_jobs_for_stage_out(self, max_jobs: int, interval_without_lock: float, interval_with_lock: float,
                               locked_by: str, sub_status: str, has_out_file_flag: int,
                               bad_has_out_file_flag_list: Sequence[int] | None = None,
                               max_files_per_job: int | None = None) -> list[Any]:
        """Jobs to trigger/check/zip output for, locked with stagerTime/stagerLock, with their output
        files in the status matching ``has_out_file_flag`` (attemptNr incremented) and workers."""
        job_cls = schema.spec_class("job_table")
        now = naive_utcnow()
        varmap: dict[str, Any] = {":subStatus": sub_status, ":hasOutFile": has_out_file_flag,
                                  ":lockTimeLimit": now - datetime.timedelta(seconds=interval_with_lock),
                                  ":updateTimeLimit": now - datetime.timedelta(seconds=interval_without_lock)}
        cond = "(subStatus=:subStatus OR hasOutFile=:hasOutFile)"
        if bad_has_out_file_flag_list:
            cond += f" AND (hasOutFile IS NULL OR hasOutFile NOT IN " \
                    f"({in_binds('bad', list(bad_has_out_file_flag_list), varmap)}))"
        cond += " AND " + _lock_condition("stagerTime", "stagerLock", True, True)
        file_status = lifecycle.file_status_for(has_out_file_flag)
        file_cls = schema.spec_class("file_table")
        work_cls = schema.spec_class("work_table")
        not_in = _NOT_STAGED_OUT
        zip_flags = (job_cls.HO_hasZipOutput, job_cls.HO_hasPostZipOutput)
        # inside the transaction only the SQL: the rows are read raw and the specs are built after
        # the commit (the jobs are locked for this caller by then)
        with self._tx():
            ids = self._pick_ids("job_table", "PandaID", cond, "ORDER BY stagerTime", varmap, int(max_jobs))
            self._lock_ids("job_table", "PandaID", ids, "stagerTime=:now,stagerLock=:lockedBy", cond,
                           dict(varmap, **{":now": now, ":lockedBy": locked_by}))
            job_rows = self._ids_in(f"SELECT {job_cls.column_names(slim=True)} FROM job_table "
                                    "WHERE PandaID IN ({ids})", ids)
            # old jobs without the extracted output/log parameters need the full job description
            log_idx = job_cls.slim_column_list().index("jobParamsExtForLog")
            params = dict(self._ids_in("SELECT PandaID, jobParams FROM job_table WHERE PandaID IN ({ids})",
                                       [row[0] for row in job_rows if row[log_idx] in (None, "null")]))
            file_rows = self._ids_in(f"SELECT {file_cls.column_names()} FROM file_table WHERE PandaID IN ({{ids}}) "
                                     f"AND status=:status AND {not_in} ORDER BY PandaID, fileID", ids,
                                     {":status": file_status})
            file_rows = _first_per_job(file_rows, file_cls.column_list().index("PandaID"), max_files_per_job)
            fid_idx = file_cls.column_list().index("fileID")
            file_ids = [row[fid_idx] for row in file_rows]
            self._update_in("UPDATE file_table SET attemptNr=attemptNr+1 WHERE fileID IN ({ids})", file_ids)
            assoc_rows = self._ids_in(f"SELECT {file_cls.column_names()} FROM file_table WHERE zipFileID IN ({{ids}}) "
                                      f"AND {not_in}", file_ids) if has_out_file_flag in zip_flags else []
            jw_rows = self._ids_in("SELECT PandaID, workerID FROM jw_table WHERE PandaID IN ({ids})", ids)
            worker_rows = self._ids_in(f"SELECT {work_cls.column_names(slim=True)} FROM work_table "
                                       "WHERE workerID IN ({ids})", sorted({r[1] for r in jw_rows}))
        jobs, by_id = _jobs_in_order(job_cls, job_rows, ids, slim=True)
        workers = {w.workerID: w for w in (work_cls.from_values(tuple(row), slim=True) for row in worker_rows)}
        workers_of: dict[Any, list[Any]] = {}
        for panda_id, worker_id in sorted(jw_rows, key=lambda r: r[1]):
            if worker_id in workers:
                workers_of.setdefault(panda_id, []).append(workers[worker_id])
        files = [file_cls.from_values(tuple(row)) for row in file_rows]
        zipped = {f.fileID: f for f in files}
        for row in assoc_rows:
            assoc = file_cls.from_values(tuple(row))
            zipped[assoc.zipFileID].add_associated_file(assoc)
        for file_spec in files:
            file_spec.attemptNr = (file_spec.attemptNr or 0) + 1
            by_id[file_spec.PandaID].add_out_file(file_spec)
        for job in jobs:
            job.stagerLock = locked_by
            job.stagerTime = now
            if job.PandaID in params:
                job.set_blob_attribute("jobParams", params[job.PandaID])
                if isinstance(job.jobParams, dict):
                    job.get_output_file_attributes()
                    job.get_logfile_info()
            job.add_workspec_list(workers_of.get(job.PandaID, []))
        make_logger(_logger, f"thr={locked_by}", method_name="get_jobs_for_stage_out").debug(f"got {len(jobs)} jobs")
        return jobs

    @db_method(None)
    def update_job_for_stage_out(self, jobspec: Any, update_event_status: bool, locked_by: str) -> str | None:
        """Write stage-out results of a job still locked by ``locked_by``; returns the new subStatus,
        None when the lock was lost (or on error)."""
        tmp_log = make_logger(_logger, f"PandaID={jobspec.PandaID} subStatus={jobspec.subStatus} thr={locked_by}",
                              method_name="update_job_for_stage_out")
        with self._tx():
            written, out_files = self._write_stage_out(jobspec, update_event_status, locked_by)
        if not written:
            tmp_log.debug("skip since locked by another")
            return None
        self._stage_out_written(jobspec, out_files)
        tmp_log.debug("done")
        return jobspec.subStatus

    @db_method(list)
    def update_jobs_for_stage_out(self, items: Sequence[tuple[Any, bool]], locked_by: str) -> list[str | None]:
        """:meth:`update_job_for_stage_out` for many ``(jobspec, update_event_status)`` in one
        transaction; one entry per job: its new subStatus, or None when its lock was lost or its
        write failed (that job alone is rolled back, its error logged with its PandaID).
        [] after a DB error of the whole transaction (nothing written)."""
        with self._tx():
            results = self._bulk_or_each(lambda: self._write_stage_out_bulk(items, locked_by),
                                         lambda: self._write_stage_out_each(items, locked_by),
                                         "update_jobs_for_stage_out")
        statuses: list[str | None] = []
        lost: list[Any] = []
        for (jobspec, _flag), result in zip(items, results):
            if result is not None and result[0]:
                self._stage_out_written(jobspec, result[1])
                statuses.append(jobspec.subStatus)
            else:
                statuses.append(None)
                if result is not None:
                    lost.append(jobspec.PandaID)
        tmp_log = make_logger(_logger, f"thr={locked_by}", method_name="update_jobs_for_stage_out")
        if lost:
            tmp_log.debug(f"skip since locked by another: {ids_text('PandaID', lost)}")
        tmp_log.debug(f"done with {sum(s is not None for s in statuses)} of {len(items)}")
        return statuses

    @staticmethod
    def _stage_out_written(jobspec: Any, out_files: Sequence[Any]) -> None:
        jobspec.reset_changed_list()
        for file_spec in out_files:
            file_spec.reset_changed_list()

    def _write_stage_out_each(self, items: Sequence[tuple[Any, bool]], locked_by: str
                              ) -> list[tuple[bool, list[Any]] | None]:
        """The writes of :meth:`update_jobs_for_stage_out` job by job, each in a savepoint
        (None: that job's write failed and was undone)."""
        results: list[tuple[bool, list[Any]] | None] = []
        for jobspec, update_event_status in items:
            try:
                with self._savepoint():
                    results.append(self._write_stage_out(jobspec, update_event_status, locked_by))
            except Exception:
                dump_error_message(make_logger(_logger, f"PandaID={jobspec.PandaID}",
                                               method_name="update_jobs_for_stage_out"))
                results.append(None)
        return results

    def _write_stage_out(self, jobspec: Any, update_event_status: bool, locked_by: str) -> tuple[bool, list[Any]]:
        """The writes of :meth:`update_job_for_stage_out` inside the caller's transaction;
        (False, []) when the job is not locked by ``locked_by`` any more."""
        n = self._exec("UPDATE job_table SET stagerTime=:now WHERE PandaID=:id AND stagerLock=:lockedBy",
                       {":now": naive_utcnow(), ":id": jobspec.PandaID, ":lockedBy": locked_by}).rowcount
        if n == 0:
            return False, []
        out_files = list(jobspec.outFiles)
        self._update_specs_bulk("file_table", out_files, "fileID")
        if update_event_status:
            self._events_follow_files(out_files)
        statuses = [r[0] for r in self._exec("SELECT DISTINCT status FROM file_table WHERE PandaID=:id",
                                             {":id": jobspec.PandaID}).fetchall()]
        if self._next_stage_out_step(jobspec, statuses):
            jobspec.reset_out_file()
            for file_spec in self._select_specs("file_table", "PandaID=:id AND status=:finished AND fileType IN "
                                                "(:output,:log)", {":id": jobspec.PandaID,
                                                                  ":finished": lifecycle.FILE_FINISHED,
                                                                  ":output": "output", ":log": "log"}):
                jobspec.add_out_file(file_spec)
            jobspec.outputFilesToReport = core_utils.get_output_file_report(jobspec)
        self._update_changes("job_table", jobspec, "PandaID=:id_key AND stagerLock=:lockedBy_key",
                             {":id_key": jobspec.PandaID, ":lockedBy_key": locked_by}, skip=("PandaID",))
        return True, out_files

    def _write_stage_out_bulk(self, items: Sequence[tuple[Any, bool]], locked_by: str
                              ) -> list[tuple[bool, list[Any]] | None]:
        """:meth:`_write_stage_out` for many jobs, a statement per kind of write for all of them
        (lock re-check, file updates, file statuses, staged files, job updates) instead of per
        job. The jobs' rows are disjoint (distinct PandaIDs, files of one job each), so the outcome
        is the job-by-job one; jobs or files listed twice go job by job."""
        jobs = [jobspec for jobspec, _flag in items]
        files = [f for jobspec in jobs for f in jobspec.outFiles]
        if len({j.PandaID for j in jobs}) != len(jobs) or len({f.fileID for f in files}) != len(files):
            return self._write_stage_out_each(items, locked_by)
        ids = [j.PandaID for j in jobs]
        self._update_in("UPDATE job_table SET stagerTime=:now WHERE PandaID IN ({ids}) AND stagerLock=:lockedBy",
                        ids, {":now": naive_utcnow(), ":lockedBy": locked_by})
        # the rows just updated are locked by this transaction: nobody can change stagerLock now
        mine = {r[0] for r in self._ids_in("SELECT PandaID FROM job_table WHERE PandaID IN ({ids}) "
                                           "AND stagerLock=:lockedBy", ids, {":lockedBy": locked_by})}
        written = [(jobspec, flag) for jobspec, flag in items if jobspec.PandaID in mine]
        out_files = {jobspec.PandaID: list(jobspec.outFiles) for jobspec, _flag in written}
        self._update_specs_bulk("file_table", [f for jobspec, _f in written for f in out_files[jobspec.PandaID]],
                                "fileID")
        for jobspec, flag in written:
            if flag:
                self._events_follow_files(out_files[jobspec.PandaID])
        statuses: dict[Any, set[Any]] = {pid: set() for pid in out_files}
        for pid, status in self._ids_in("SELECT DISTINCT PandaID, status FROM file_table WHERE PandaID IN ({ids})",
                                        list(out_files)):
            statuses[pid].add(status)
        staged = [jobspec for jobspec, _flag in written if self._next_stage_out_step(jobspec, statuses[jobspec.PandaID])]
        if staged:
            done = self._select_specs_in("file_table", "PandaID", [j.PandaID for j in staged],
                                         "AND status=:finished AND fileType IN (:output,:log)",
                                         {":finished": lifecycle.FILE_FINISHED, ":output": "output", ":log": "log"})
            by_job: dict[Any, list[Any]] = {j.PandaID: [] for j in staged}
            for file_spec in sorted(done, key=lambda f: (f.fileType or "", f.fileID)):  # as PandaID=:id read them
                by_job[file_spec.PandaID].append(file_spec)
            for jobspec in staged:
                jobspec.reset_out_file()
                for file_spec in by_job[jobspec.PandaID]:
                    jobspec.add_out_file(file_spec)
                jobspec.outputFilesToReport = core_utils.get_output_file_report(jobspec)
        self._update_specs_bulk("job_table", [jobspec for jobspec, _flag in written], "PandaID",
                                "stagerLock=:stager_lock", {":stager_lock": locked_by})
        return [(True, out_files[jobspec.PandaID]) if jobspec.PandaID in mine else (False, [])
                for jobspec, _flag in items]

    def _events_follow_files(self, out_files: Sequence[Any]) -> None:
        """An event still open follows its output file (and a zip's, the files zipped in it)."""
        ev_sql = ("UPDATE event_table SET eventStatus=:st,subStatus=:st WHERE eventRangeID IN ({ids}) "
                  "AND eventStatus<>:ev_failed AND subStatus<>:ev_done")
        for file_spec in out_files:
            range_ids = []
            if file_spec.eventRangeID is not None:
                range_ids.append(file_spec.eventRangeID)
            if file_spec.isZip == 1:
                range_ids += [r[0] for r in self._exec(
                    "SELECT eventRangeID FROM file_table WHERE PandaID=:id AND zipFileID=:z",
                    {":id": file_spec.PandaID, ":z": file_spec.fileID}).fetchall() if r[0] is not None]
            self._update_in(ev_sql, range_ids, {":st": file_spec.status, ":ev_failed": lifecycle.EVENT_FAILED,
                                                ":ev_done": lifecycle.EVENT_DONE})

    @staticmethod
    def _next_stage_out_step(jobspec: Any, statuses: Iterable[Any]) -> bool:
        """The job's state after its files' ``statuses`` were written (lock released, status,
        subStatus, propagation); True when it is staged (its finished outputs are to be reported)."""
        statuses = list(statuses)
        jobspec.stagerLock = None
        jobspec.hasOutFile = lifecycle.has_out_file_of(statuses)
        step = lifecycle.stage_out_step(jobspec.subStatus, jobspec.hasOutFile, lifecycle.FILE_FAILED in statuses)
        if step.status is not None:
            jobspec.status = step.status
        jobspec.subStatus = step.sub_status
        if step.stager_done:
            jobspec.stagerTime = None
        if step.propagate:
            jobspec.trigger_propagation()
        return bool(step.staged)

    # ------------------------------------------------------------ submitter
    @db_method(list)
    def get_job_chunks_for_workers(self, queue_name: str, n_workers: int, n_ready: int,
                                   n_jobs_per_worker: int | None, n_workers_per_job: int | None,
                                   use_job_late_binding: bool, check_interval: float, lock_interval: float,
                                   locked_by: str, allow_job_mixture: bool = False,
                                   max_workers_per_job_in_total: int | None = None,
                                   max_workers_per_job_per_cycle: int | None = None) -> list[list[Any]]:
        """Chunks of jobs to make workers from, highest priority first; the jobs taken get
        submitterTime/lockedBy. A job is reused across chunks for OneToMany (n_workers_per_job)."""
        tmp_log = make_logger(_logger, f"queue={queue_name}", method_name="get_job_chunks_for_workers")
        if n_jobs_per_worker is None and not n_workers_per_job:
            n_jobs_per_worker = 1
        if n_jobs_per_worker is not None:
            max_jobs = (n_workers + n_ready) * n_jobs_per_worker
        else:
            max_jobs = math.ceil((n_workers + n_ready) / n_workers_per_job)
        now = naive_utcnow()
        varmap = {":s1": lifecycle.SUB_PREPARED, ":s2": lifecycle.SUB_QUEUED, ":s3": lifecycle.SUB_SUBMITTED,
                  ":s4": lifecycle.SUB_RUNNING, ":queueName": queue_name,
                  ":lockTimeLimit": now - datetime.timedelta(seconds=lock_interval),
                  ":checkTimeLimit": now - datetime.timedelta(seconds=check_interval)}
        cond = ("computingSite=:queueName AND (subStatus IN (:s1,:s2) OR (subStatus IN (:s3,:s4) "
                "AND nWorkers IS NOT NULL AND nWorkersLimit IS NOT NULL AND nWorkers<nWorkersLimit "
                "AND moreWorkers IS NULL AND (maxWorkersInTotal IS NULL OR nWorkersInTotal IS NULL "
                "OR nWorkersInTotal<maxWorkersInTotal))) AND (submitterTime IS NULL "
                "OR (submitterTime<:lockTimeLimit AND lockedBy IS NOT NULL) "
                "OR (submitterTime<:checkTimeLimit AND lockedBy IS NULL))")
        chunk_list: list[list[Any]] = []
        taken: list[Any] = []
        with self._tx():
            if n_jobs_per_worker is not None and n_jobs_per_worker > 1:
                (n_available,) = self._exec(f"SELECT COUNT(*) FROM job_table WHERE {cond}", varmap).fetchone()
                max_jobs = int(min(max_jobs, n_available) / n_jobs_per_worker) * n_jobs_per_worker
            if max_jobs == 0:
                tmp_log.debug("skip due to maxJobs=0")
                return []
            # every eligible job of the queue (no LIMIT): locked all at once on MariaDB; the queue is
            # the submitter's alone meanwhile (get_queues_to_submit)
            ids = [r[0] for r in self._exec(f"SELECT PandaID FROM job_table WHERE {cond} ORDER BY currentPriority "
                                            f"DESC, taskID, PandaID{self._for_update()}", varmap).fetchall()]
            chunk: list[Any] = []
            n_seen = 0
            done = False
            for start in range(0, len(ids), 200):
                batch_ids = ids[start:start + 200]
                jobs = {j.PandaID: j for j in self._select_specs_in("job_table", "PandaID", batch_ids)}
                for pid in batch_ids:
                    job = jobs[pid]
                    n_seen += 1
                    if chunk and chunk[0].taskID != job.taskID and not allow_job_mixture:
                        chunk_list.append(chunk)
                        chunk = []
                    if not (len(chunk_list) >= n_ready and job.subStatus == lifecycle.SUB_QUEUED):
                        taken.append(job)
                        chunk.append(job)
                        if n_jobs_per_worker is not None and len(chunk) >= n_jobs_per_worker:
                            chunk_list.append(chunk)
                            chunk = []
                        elif n_workers_per_job is not None:
                            if job.nWorkersLimit is None:
                                job.nWorkersLimit = n_workers_per_job
                            if max_workers_per_job_in_total is not None:
                                job.maxWorkersInTotal = max_workers_per_job_in_total
                            n_multi = min(job.nWorkersLimit - (job.nWorkers or 0), n_workers - len(chunk_list))
                            if job.maxWorkersInTotal is not None and job.nWorkersInTotal is not None:
                                n_multi = min(n_multi, job.maxWorkersInTotal - job.nWorkersInTotal)
                            if max_workers_per_job_per_cycle is not None:
                                n_multi = min(n_multi, max_workers_per_job_per_cycle)
                            chunk_list += [chunk] * max(n_multi, 0)
                            chunk = []
                        if len(chunk_list) >= n_workers:
                            done = True
                    if done or n_seen >= max_jobs:
                        done = True
                        break
                if done:
                    break
            in_chunks = {id(j) for c in chunk_list for j in c}
            taken = [j for j in taken if id(j) in in_chunks]
            self._lock_ids("job_table", "PandaID", [j.PandaID for j in taken], "submitterTime=:now,lockedBy=:lockedBy",
                           cond, dict(varmap, **{":now": now, ":lockedBy": locked_by}))
            files = self._select_specs_in("file_table", "PandaID", [j.PandaID for j in taken],
                                          f"AND fileType IN {SQL_INPUT_TYPES}")
            by_id = {j.PandaID: j for j in taken}
            for file_spec in files:
                by_id[file_spec.PandaID].add_in_file(file_spec)
            for job in taken:
                job.lockedBy = locked_by
        tmp_log.debug(f"got {len(chunk_list)} job chunks")
        return chunk_list
