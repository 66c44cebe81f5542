"""Jobs: insert, read, update, release, delete, stats (job_table with its files and events)."""

from __future__ import annotations

import datetime
import logging
from collections import defaultdict
from typing import Any, Sequence

from pandaharvester.errors import DBError

from .. import lifecycle
from ..log_utils import dump_error_message, ids_text, make_logger, setup_logger
from ..time_utils import naive_utcnow
from .. import job_secrets
from . import schema
from .base import DBModule, chunks, db_method, in_binds

_logger = setup_logger("db_proxy")

JOB_CHILD_TABLES = ("file_table", "event_table", "jw_table")


class JobsMixin(DBModule):
    """Job CRUD; the lock-taking job queries are in :mod:`job_cycles`."""

    # ------------------------------------------------------------ helpers
    def _delete_jobs(self, panda_ids: Sequence[int], with_job: bool = True, with_secrets: bool = True) -> int:
        """Delete jobs and their files/events/relations (and stored secrets); returns the number of jobs deleted."""
        n = 0
        if with_job:
            n = self._update_in("DELETE FROM job_table WHERE PandaID IN ({ids})", panda_ids)
        for table in JOB_CHILD_TABLES:
            self._update_in(f"DELETE FROM {table} WHERE PandaID IN ({{ids}})", panda_ids)
        if with_job and with_secrets:
            job_secrets.remove(panda_ids)
        return n

    def _attach_files(self, jobs: Sequence[Any], where_extra: str = "", varmap: dict[str, Any] | None = None,
                      adder: str = "add_file") -> None:
        """Read the files of ``jobs`` in chunks and add them to each job with ``adder``."""
        by_id = {job.PandaID: job for job in jobs}
        if not by_id:
            return
        for spec in self._select_specs_in("file_table", "PandaID", list(by_id), where_extra, varmap):
            getattr(by_id[spec.PandaID], adder)(spec)

    # ------------------------------------------------------------ insert / read
    @db_method(False)
    def insert_jobs(self, jobspec_list: Sequence[Any]) -> bool:
        """Insert jobs with their input files (replacing any job with the same PandaID)."""
        make_logger(_logger, method_name="insert_jobs").debug(f"{len(jobspec_list)} jobs")
        # PanDA's secrets go beside the DB (job_secrets), before the rows: never a job without them
        job_secrets.save({job.PandaID: job.secrets for job in jobspec_list
                          if getattr(job, "secrets", None) is not None})
        with self._tx():
            ids = [job.PandaID for job in jobspec_list]
            existing = [r[0] for r in self._ids_in("SELECT PandaID FROM job_table WHERE PandaID IN ({ids})", ids)]
            if existing:
                self._delete_jobs(existing, with_secrets=False)
            self._insert_specs("job_table", jobspec_list)
            self._insert_specs("file_table", [f for job in jobspec_list for f in job.inFiles])
        for job in jobspec_list:
            job.reset_changed_list()
        return True

    @db_method(None)
    def get_job(self, panda_id: int) -> Any:
        """JobSpec with all its files, or None."""
        with self._tx(write=False):
            jobs = self._select_specs("job_table", "PandaID=:PandaID", {":PandaID": panda_id})
            if not jobs:
                return None
            self._attach_files(jobs)
        return jobs[0]

    @db_method(None)
    def get_jobs(self) -> list[Any] | None:
        """Every job in the table (without files)."""
        with self._tx(write=False):
            return self._select_specs("job_table", "PandaID IS NOT NULL")

    @db_method(None)
    def update_job(self, jobspec: Any, criteria: dict[str, Any] | None = None, update_in_file: bool = False,
                   update_out_file: bool = False) -> int | None:
        """Write the changed attributes of a job (and its events/files); returns the rows updated."""
        with self._tx():
            n_row = self._write_job(jobspec, criteria, update_in_file, update_out_file)
        self._job_written(jobspec, n_row, update_in_file, update_out_file)
        return n_row

    @db_method(list)
    def update_jobs_bulk(self, jobspec_list: Sequence[Any], criteria: dict[str, Any] | None = None,
                         update_in_file: bool = False, update_out_file: bool = False) -> list[int | None]:
        """:meth:`update_job` for several jobs (same ``criteria`` for each) in one transaction; one
        entry per job ([] after a DB error: nothing written)."""
        with self._tx():
            n_rows = self._write_jobs_bulk(jobspec_list, criteria, update_in_file, update_out_file)
        for job, n_row in zip(jobspec_list, n_rows):
            self._job_written(job, n_row, update_in_file, update_out_file, log=False)
        self._log_written("update_jobs_bulk", jobspec_list, n_rows)
        return n_rows

    @db_method(list)
    def update_jobs_each(self, items: Sequence[tuple[Any, dict[str, Any] | None, bool, bool]]) -> list[int | None]:
        """:meth:`update_job` for many jobs in one transaction, each with its own
        ``(jobspec, criteria, update_in_file, update_out_file)``. A job whose write fails is
        rolled back alone (its error logged with its PandaID, None in its entry); the others are
        written. [] after a DB error of the whole transaction (nothing written)."""
        with self._tx():
            n_rows = self._bulk_or_each(lambda: self._write_jobs_each_bulk(items),
                                        lambda: self._write_jobs_each(items), "update_jobs_each")
        for (job, _criteria, in_file, out_file), n_row in zip(items, n_rows):
            if n_row is not None:
                self._job_written(job, n_row, in_file, out_file, log=False)
        self._log_written("update_jobs_each", [item[0] for item in items], n_rows)
        return n_rows

    def _write_jobs_each(self, items: Sequence[tuple[Any, dict[str, Any] | None, bool, bool]]) -> list[int | None]:
        """The writes of :meth:`update_jobs_each` job by job, each in a savepoint (None: failed)."""
        n_rows: list[int | None] = []
        for job, criteria, in_file, out_file in items:
            try:
                with self._savepoint():
                    n_rows.append(self._write_job(job, criteria, in_file, out_file))
            except Exception:
                dump_error_message(make_logger(_logger, f"PandaID={job.PandaID}", method_name="update_jobs_each"))
                n_rows.append(None)
        return n_rows

    def _write_jobs_each_bulk(self, items: Sequence[tuple[Any, dict[str, Any] | None, bool, bool]]
                              ) -> list[int | None]:
        """The writes of :meth:`update_jobs_each` as :meth:`_write_jobs_bulk` per group of jobs
        with the same ``(criteria, update_in_file, update_out_file)``; jobs listed twice (or
        criteria that cannot be compared) go job by job. Distinct jobs' writes touch distinct
        rows, so the grouping does not change the outcome."""
        if len({item[0].PandaID for item in items}) != len(items):
            return self._write_jobs_each(items)
        groups: dict[Any, list[int]] = {}
        try:
            for index, (_job, criteria, in_file, out_file) in enumerate(items):
                key = (tuple(sorted(criteria.items())) if criteria else (), bool(in_file), bool(out_file))
                groups.setdefault(key, []).append(index)
        except TypeError:  # an unhashable criteria value
            return self._write_jobs_each(items)
        n_rows: list[int | None] = [None] * len(items)
        for members in groups.values():
            _job, criteria, in_file, out_file = items[members[0]]
            for index, n_row in zip(members, self._write_jobs_bulk([items[i][0] for i in members], criteria,
                                                                   in_file, out_file)):
                n_rows[index] = n_row
        return n_rows

    @staticmethod
    def _log_written(method: str, jobs: Sequence[Any], n_rows: Sequence[int | None]) -> None:
        """One debug line per (subStatus, rows updated) with the PandaIDs concerned."""
        log = make_logger(_logger, method_name=method)
        if not log.isEnabledFor(logging.DEBUG):
            return
        groups: dict[tuple[Any, Any], list[Any]] = defaultdict(list)
        for job, n_row in zip(jobs, n_rows):
            groups[(job.subStatus, n_row)].append(job.PandaID)
        for (sub_status, n_row), ids in groups.items():
            log.debug(f"subStatus={sub_status} done with {n_row} for {ids_text('PandaID', ids)}")

    def _write_job(self, jobspec: Any, criteria: dict[str, Any] | None, update_in_file: bool,
                   update_out_file: bool) -> int:
        """The writes of :meth:`update_job`, inside the caller's transaction."""
        where_map: dict[str, Any] = {":PandaID_key": jobspec.PandaID}
        where = "PandaID=:PandaID_key" + self._criteria("job_table", criteria, where_map)
        n_row = self._update_changes("job_table", jobspec, where, where_map, skip=("PandaID",))
        if n_row is None:
            n_row = len(self._exec(f"SELECT PandaID FROM job_table WHERE {where}", where_map).fetchall())
        if n_row > 0:
            self._update_specs_bulk("event_table", jobspec.events, "eventRangeID")
            if update_in_file:
                self._update_specs_bulk("file_table", jobspec.inFiles, "fileID")
            elif jobspec.is_final_status():
                self._exec("UPDATE file_table SET status=:status WHERE PandaID=:PandaID "
                           "AND fileType IN (:t1,:t2)", {":status": lifecycle.FILE_DONE, ":PandaID": jobspec.PandaID,
                                                         ":t1": lifecycle.TYPE_INPUT, ":t2": lifecycle.TYPE_AUX_INPUT})
            if update_out_file:
                self._update_specs_bulk("file_table", jobspec.outFiles, "fileID")
            if jobspec.subStatus == lifecycle.SUB_DONE:
                self._exec("UPDATE file_table SET todelete=1 WHERE PandaID=:PandaID",
                           {":PandaID": jobspec.PandaID})
        return n_row

    def _write_jobs_bulk(self, jobspec_list: Sequence[Any], criteria: dict[str, Any] | None, update_in_file: bool,
                         update_out_file: bool) -> list[int]:
        """:meth:`_write_job` for many jobs inside the caller's write transaction, a statement
        per kind of write instead of per job: one look-up of the rows matching ``criteria``
        (no other writer can change them before the commit), one ``executemany`` per set of
        changed job columns, then the events and files of the jobs found. A job listed twice
        is written one by one, in order."""
        jobs = list(jobspec_list)
        if len({job.PandaID for job in jobs}) != len(jobs):
            return [self._write_job(job, criteria, update_in_file, update_out_file) for job in jobs]
        job_cls = schema.spec_class("job_table")
        crit_map: dict[str, Any] = {}
        crit = self._criteria("job_table", criteria, crit_map)
        found = {r[0] for r in self._ids_in(f"SELECT PandaID FROM job_table WHERE PandaID IN ({{ids}}){crit}",
                                            [job.PandaID for job in jobs], crit_map)}
        written = [job for job in jobs if job.PandaID in found]
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for job in written:
            varmap = dict(job.values_map(only_changed=True))
            varmap.pop(":PandaID", None)
            if not varmap:
                continue
            schema.check_map("job_table", job_cls, varmap)
            for key in crit_map:
                if key in varmap:
                    raise DBError(f"internal: bind {key} used both in SET and WHERE of job_table")
            columns = tuple(varmap)
            varmap[":PandaID_key"] = job.PandaID
            varmap.update(crit_map)
            groups.setdefault(columns, []).append(varmap)
        for columns, rows in groups.items():
            sets = ",".join(f"{key[1:]}={key}" for key in columns)
            self._many(f"UPDATE job_table SET {sets} WHERE PandaID=:PandaID_key{crit}", rows)
        self._update_specs_bulk("event_table", [e for job in written for e in job.events], "eventRangeID")
        if update_in_file:
            self._update_specs_bulk("file_table", [f for job in written for f in job.inFiles], "fileID")
        else:
            self._update_in("UPDATE file_table SET status=:status WHERE PandaID IN ({ids}) AND fileType IN (:t1,:t2)",
                            [job.PandaID for job in written if job.is_final_status()],
                            {":status": lifecycle.FILE_DONE, ":t1": lifecycle.TYPE_INPUT,
                             ":t2": lifecycle.TYPE_AUX_INPUT})
        if update_out_file:
            self._update_specs_bulk("file_table", [f for job in written for f in job.outFiles], "fileID")
        self._update_in("UPDATE file_table SET todelete=1 WHERE PandaID IN ({ids})",
                        [job.PandaID for job in written if job.subStatus == lifecycle.SUB_DONE])
        return [1 if job.PandaID in found else 0 for job in jobs]

    @staticmethod
    def _job_written(jobspec: Any, n_row: int, update_in_file: bool, update_out_file: bool, log: bool = True) -> None:
        """After the commit: the job and its written events/files are clean again."""
        jobspec.reset_changed_list()
        for spec in list(jobspec.events) + list(jobspec.inFiles if update_in_file else []) + \
                list(jobspec.outFiles if update_out_file else []):
            spec.reset_changed_list()
        if log:
            make_logger(_logger, f"PandaID={jobspec.PandaID} subStatus={jobspec.subStatus}",
                        method_name="update_job").debug(f"done with {n_row}")

    @db_method(False)
    def insert_files(self, jobspec_list: Sequence[Any]) -> bool:
        """Insert the output files of the jobs."""
        with self._tx():
            self._insert_specs("file_table", [f for job in jobspec_list for f in job.outFiles])
        return True

    # ------------------------------------------------------------ locks
    @db_method(False)
    def release_jobs(self, panda_ids: Sequence[int], locked_by: str) -> bool:
        """Clear lockedBy of the jobs still locked by ``locked_by``."""
        with self._tx():
            n = self._update_in("UPDATE job_table SET lockedBy=NULL WHERE PandaID IN ({ids}) AND lockedBy=:lockedBy",
                                list(panda_ids), {":lockedBy": locked_by})
        make_logger(_logger, method_name="release_jobs").debug(f"released {n} jobs")
        return True

    @db_method(False)
    def lock_job_again(self, panda_id: int, time_column: str, lock_column: str, locked_by: str) -> bool:
        """Refresh ``time_column`` if ``lock_column`` still holds ``locked_by``; False otherwise."""
        schema.check_column_names("job_table", schema.spec_class("job_table"), [time_column, lock_column])
        tmp_log = make_logger(_logger, f"PandaID={panda_id}", method_name="lock_job_again")
        with self._tx():
            row = self._exec(f"SELECT {lock_column},{time_column} FROM job_table WHERE PandaID=:id",
                             {":id": panda_id}).fetchone()
            if row is None:
                tmp_log.debug("not found")
                return False
            if row[0] != locked_by:
                tmp_log.debug(f"locked by another {row[0]} at {row[1]}")
                return False
            self._exec(f"UPDATE job_table SET {time_column}=:now WHERE PandaID=:id",
                       {":now": naive_utcnow(), ":id": panda_id})
        return True

    @db_method(list)
    def lock_jobs_again(self, panda_ids: Sequence[int], time_column: str, lock_column: str,
                        locked_by: str) -> list[int]:
        """:meth:`lock_job_again` for many jobs in one transaction: refreshes ``time_column`` of
        the jobs ``lock_column`` still holds ``locked_by`` for and returns their PandaIDs
        (in the given order); the others are left alone."""
        schema.check_column_names("job_table", schema.spec_class("job_table"), [time_column, lock_column])
        ids = list(panda_ids)
        with self._tx():
            mine = {r[0] for r in self._ids_in(f"SELECT PandaID FROM job_table WHERE PandaID IN ({{ids}}) "
                                               f"AND {lock_column}=:lockedBy", ids, {":lockedBy": locked_by})}
            kept = [pid for pid in ids if pid in mine]
            self._update_in(f"UPDATE job_table SET {time_column}=:now WHERE PandaID IN ({{ids}})", kept,
                            {":now": naive_utcnow()})
        lost = [pid for pid in ids if pid not in mine]
        if lost:
            make_logger(_logger, method_name="lock_jobs_again").debug(
                f"not locked by {locked_by} any more: {ids_text('PandaID', lost)}")
        return kept

    @db_method(False)
    def increment_submission_attempt(self, panda_id: int, new_number: int) -> bool:
        with self._tx():
            self._exec("UPDATE job_table SET submissionAttempts=:n WHERE PandaID=:id", {":n": new_number, ":id": panda_id})
        return True

    @db_method(False)
    def increment_submission_attempts(self, attempts: Sequence[tuple[int, int]]) -> bool:
        """:meth:`increment_submission_attempt` for many ``(PandaID, new number)`` in one transaction."""
        with self._tx():
            self._many("UPDATE job_table SET submissionAttempts=:n WHERE PandaID=:id",
                       [{":n": new_number, ":id": panda_id} for panda_id, new_number in attempts])
        return True

    @db_method(None)
    def disable_multi_workers(self, panda_id: int) -> int | None:
        """No more workers for a OneToMany job; returns the rows updated."""
        with self._tx():
            return self._exec("UPDATE job_table SET moreWorkers=0 WHERE PandaID=:id AND nWorkers IS NOT NULL "
                              "AND nWorkersLimit IS NOT NULL AND nWorkers>0", {":id": panda_id}).rowcount

    # ------------------------------------------------------------ clean-up
    @db_method(False)
    def delete_old_jobs(self, timeout: float) -> bool:
        """Delete jobs done (and reported) more than ``timeout`` hours ago, with files/events/relations."""
        now = naive_utcnow()
        with self._tx():
            ids = [r[0] for r in self._exec(
                "SELECT PandaID FROM job_table WHERE subStatus=:done AND propagatorTime IS NULL "
                "AND ((modificationTime IS NOT NULL AND modificationTime<:t1) "
                "OR (modificationTime IS NULL AND creationTime<:t2))",
                {":done": lifecycle.SUB_DONE, ":t1": now - datetime.timedelta(hours=timeout),
                 ":t2": now - datetime.timedelta(hours=timeout * 2)}).fetchall()]
            n = self._delete_jobs(ids)
        make_logger(_logger, f"timeout={timeout}", method_name="delete_old_jobs").debug(f"deleted {n} jobs")
        return True

    @db_method(False)
    def delete_orphaned_job_info(self) -> bool:
        """Delete files/events/relations whose job is gone."""
        with self._tx():
            for table in JOB_CHILD_TABLES:
                n = self._exec(f"DELETE FROM {table} WHERE PandaID IS NOT NULL AND "
                               f"NOT EXISTS (SELECT 1 FROM job_table j WHERE j.PandaID={table}.PandaID)").rowcount
                if n:
                    make_logger(_logger, method_name="delete_orphaned_job_info").debug(f"deleted {n} rows from {table}")
        # secrets of jobs not in the DB (a crash between storing them and the insert): an hour old at least,
        # so that a job being inserted now keeps its own
        stored = job_secrets.stored_ids(older_than=3600)
        if stored:
            with self._tx(write=False):
                live = {r[0] for r in self._ids_in("SELECT PandaID FROM job_table WHERE PandaID IN ({ids})", stored)}
            job_secrets.remove([i for i in stored if i not in live])
        return True

    # ------------------------------------------------------------ with workers
    @db_method(list)
    def get_jobs_with_worker_id(self, worker_id: int, locked_by: str | None, with_file: bool = False,
                                only_running: bool = False, slim: bool = False) -> list[Any]:
        """Jobs of a worker (locked by ``locked_by`` when given), with files when ``with_file``."""
        now = naive_utcnow()
        with self._tx(write=locked_by is not None):
            ids = [r[0] for r in self._exec("SELECT PandaID FROM jw_table WHERE workerID=:w", {":w": worker_id}).fetchall()]
            jobs = self._select_specs_in("job_table", "PandaID", ids, slim=slim)
            order = {pid: i for i, pid in enumerate(ids)}
            jobs.sort(key=lambda j: order.get(j.PandaID, 0))
            if only_running:
                jobs = [j for j in jobs if j.subStatus in lifecycle.SUB_AT_WORKER]
            for job in jobs:
                job.lockedBy = locked_by
                if slim and job.jobParamsExtForLog is None:
                    # old jobs without the extracted output/log parameters
                    row = self._exec("SELECT jobParams FROM job_table WHERE PandaID=:id", {":id": job.PandaID}).fetchone()
                    if row is not None and row[0] is not None:
                        job.set_blob_attribute("jobParams", row[0])
                    if isinstance(job.jobParams, dict):
                        job.get_output_file_attributes()
                        job.get_logfile_info()
            if locked_by is not None:
                self._update_in("UPDATE job_table SET modificationTime=:now,lockedBy=:lockedBy WHERE PandaID IN ({ids})",
                                [j.PandaID for j in jobs], {":now": now, ":lockedBy": locked_by})
            if with_file:
                self._attach_files(jobs, "AND zipFileID IS NULL")
        return jobs

    @db_method(dict)
    def get_jobs_with_worker_ids(self, worker_ids: Sequence[int], only_running: bool = False,
                                 slim: bool = False, with_file: bool = False) -> dict[int, list[Any]]:
        """:meth:`get_jobs_with_worker_id` (no lock taken) for many workers in one read:
        ``{workerID: [JobSpec, ...]}``, a worker without jobs mapped to []. Each worker gets its
        own spec objects (a job shared by two workers is two objects, as with one call each)."""
        wanted = list(dict.fromkeys(worker_ids))
        job_cls = schema.spec_class("job_table")
        file_cls = schema.spec_class("file_table")
        with self._tx(write=False):
            jw_rows = self._ids_in("SELECT workerID, PandaID FROM jw_table WHERE workerID IN ({ids})", wanted)
            panda_ids = list(dict.fromkeys(r[1] for r in jw_rows))
            names = job_cls._slim_columns if slim else job_cls.column_list()
            pid_col = names.index("PandaID")
            job_rows = {row[pid_col]: tuple(row) for row in self._ids_in(
                f"SELECT {job_cls.column_names(slim=slim)} FROM job_table WHERE PandaID IN ({{ids}})", panda_ids)}
            if only_running:
                sub_idx = names.index("subStatus")
                job_rows = {pid: row for pid, row in job_rows.items()
                            if row[sub_idx] in lifecycle.SUB_AT_WORKER}
            params: dict[Any, Any] = {}
            old_ids: list[Any] = []
            if slim:
                ext_idx = names.index("jobParamsExtForLog")
                old_ids = [pid for pid, row in job_rows.items() if row[ext_idx] in (None, "null")]
                # old jobs without the extracted output/log parameters
                params = dict(self._ids_in("SELECT PandaID, jobParams FROM job_table WHERE PandaID IN ({ids}) "
                                           "AND jobParams IS NOT NULL", old_ids))
            file_rows: dict[Any, list[tuple]] = defaultdict(list)
            if with_file:
                pid_idx = file_cls.column_list().index("PandaID")
                for row in self._ids_in(f"SELECT {file_cls.column_names()} FROM file_table WHERE PandaID IN "
                                        f"({{ids}}) AND zipFileID IS NULL", list(job_rows)):
                    file_rows[row[pid_idx]].append(tuple(row))
        result: dict[int, list[Any]] = {worker_id: [] for worker_id in wanted}
        old_set = set(old_ids)
        for worker_id, panda_id in jw_rows:
            row = job_rows.get(panda_id)
            if row is None:
                continue
            job = job_cls.from_values(row, slim=slim)
            job.lockedBy = None
            if panda_id in params:
                job.set_blob_attribute("jobParams", params[panda_id])
            # the raw row tells "no extracted parameters" without decoding the blob
            if panda_id in old_set and isinstance(job.jobParams, dict):
                job.get_output_file_attributes()
                job.get_logfile_info()
            for file_row in file_rows.get(panda_id, ()):
                job.add_file(file_cls.from_values(file_row))
            result[worker_id].append(job)
        return result

    # ------------------------------------------------------------ stats
    @db_method(None)
    def get_job_stats_full(self, filter_site_list: Sequence[str] | None = None) -> dict | None:
        """{site: {resourceType: {"jobs": {status: n}, "cores": {status: n}}}}."""
        varmap: dict[str, Any] = {}
        sql = "SELECT status, computingSite, resourceType, nCore, COUNT(*) FROM job_table "
        if filter_site_list is not None:
            sql += f"WHERE computingSite IN ({in_binds('site', list(filter_site_list), varmap)}) "
        sql += "GROUP BY status, computingSite, resourceType, nCore"
        with self._tx(write=False):
            rows = self._exec(sql, varmap).fetchall()
        result: dict[str, Any] = {}
        for status, site, resource_type, n_core, cnt in rows:
            if resource_type:
                resource_type = str(resource_type)
            else:
                resource_type = "MCORE" if n_core and n_core > 1 else "SCORE"
            n_core = n_core or 1
            entry = result.setdefault(str(site), {}).setdefault(
                resource_type, {"jobs": {"running": 0, "starting": 0}, "cores": {"running": 0, "starting": 0}})
            entry["jobs"][str(status)] = entry["jobs"].get(str(status), 0) + cnt
            entry["cores"][str(status)] = entry["cores"].get(str(status), 0) + n_core * cnt
        return result


__all__ = ["JobsMixin", "chunks"]
