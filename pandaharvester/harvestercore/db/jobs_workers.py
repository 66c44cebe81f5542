"""Writes that touch jobs and workers together: register/insert workers, the monitor's update."""

from __future__ import annotations

import logging
from typing import Any, Sequence

from .. import core_utils, lifecycle
from ..log_utils import ids_text, make_logger, setup_logger
from ..time_utils import naive_utcnow
from . import schema
from .base import SQL_WORKERS_ACTIVE, SQL_WORKERS_FINAL, DBModule, db_method

_logger = setup_logger("db_proxy")

# a worker row the monitor may still write: locked by it and not final
_STILL_LOCKED = f"lockedBy=:lb_key AND status NOT IN {SQL_WORKERS_FINAL}"


class JobsWorkersMixin(DBModule):
    """register_worker, insert_workers, update_jobs_workers."""

    def _active_workers_of_job(self, panda_id: int) -> set[int]:
        return {r[0] for r in self._exec("SELECT DISTINCT t.workerID FROM jw_table t, work_table w WHERE t.PandaID=:p "
                                         f"AND w.workerID=t.workerID AND w.status IN {SQL_WORKERS_ACTIVE}",
                                         {":p": panda_id}).fetchall()}

    def _active_workers_of_jobs(self, panda_ids: Sequence[int]) -> dict[int, set[int]]:
        """:meth:`_active_workers_of_job` for several jobs: ``{PandaID: {workerID, ...}}`` (jobs
        without active workers left out). Two look-ups by index: the relations, then which of
        their workers are active (a join over an ``IN`` list made SQLite scan the workers)."""
        relations = self._ids_in("SELECT PandaID, workerID FROM jw_table WHERE PandaID IN ({ids})", panda_ids) \
            if panda_ids else []
        if not relations:
            return {}
        active_ids = {r[0] for r in self._ids_in("SELECT workerID FROM work_table WHERE workerID IN ({ids}) AND "
                                                 f"status IN {SQL_WORKERS_ACTIVE}",
                                                 list({w for _p, w in relations}))}
        active: dict[int, set[int]] = {}
        for panda_id, worker_id in relations:
            if worker_id in active_ids:
                active.setdefault(panda_id, set()).add(worker_id)
        return active

    def _insert_relations(self, worker_id: int, panda_ids: Sequence[int]) -> None:
        """Insert the missing (PandaID, workerID) relations."""
        if panda_ids:
            self._insert_relations_bulk({worker_id: list(panda_ids)})

    # ------------------------------------------------------------ submitter
    @db_method(False)
    def insert_workers(self, workspec_list: Sequence[Any], locked_by: str) -> bool:
        """Insert new workers as ``pending`` (before submission; the sweeper kills and deletes those a
        crashed submitter left, after ``[submitter] lockInterval``)."""
        cls = schema.spec_class("work_table")
        names = cls.column_names().split(",")
        i_mod, i_status = names.index("modificationTime"), names.index("status")
        now = naive_utcnow()
        rows = []
        inserted = []
        for workspec in workspec_list:
            if not workspec.isNew:
                continue
            values = list(workspec.values_list())
            values[i_mod] = now
            values[i_status] = cls.ST_pending
            schema.check_row("work_table", cls, names, values)
            rows.append(values)
            inserted.append(workspec)
        with self._tx():
            self._many(self._engine.insert_sql("work_table", names), rows)
        if self._depth == 0:  # committed: the row holds the spec but for the two columns set here,
            for workspec in inserted:  # so register_worker's UPDATE writes only what changes after
                workspec.reset_changed_list()
                workspec.force_update("status")
                workspec.force_update("modificationTime")
        return True

    @db_method(False)
    def register_worker(self, workspec: Any, jobspec_list: Sequence[Any] | None, locked_by: str) -> bool:
        """Insert (or update) a submitted worker, bind its jobs and update them, in one transaction."""
        with self._tx():
            self._register(workspec, jobspec_list, locked_by)
        self._registered(workspec, jobspec_list)
        return True

    @db_method(list)
    def register_workers_bulk(self, worker_list: Sequence[tuple[Any, Sequence[Any] | None]], locked_by: str
                              ) -> list[bool]:
        """:meth:`register_worker` for several ``(workspec, jobspec_list)`` in one transaction; one True
        per worker ([] after a DB error: nothing written). The statements are batched (one look-up
        for the whole batch, one executemany per set of changed columns) when no worker has jobs
        (pull), or when every worker is new and no job is in two of them (push: the jobs' other
        workers are then outside the batch, so the order of the writes cannot matter); otherwise
        the workers are written one after the other, as :meth:`register_worker` does."""
        with self._tx():
            if all(not jobspec_list for _w, jobspec_list in worker_list):
                self._register_jobless([w for w, _jobs in worker_list], locked_by)
            elif self._jobs_apart(worker_list):
                self._register_new_with_jobs(worker_list, locked_by)
            else:
                for workspec, jobspec_list in worker_list:
                    self._register(workspec, jobspec_list, locked_by)
        for workspec, jobspec_list in worker_list:
            workspec.reset_changed_list()
            for job in jobspec_list or []:
                job.reset_changed_list()
        if worker_list:
            make_logger(_logger, method_name="register_workers_bulk").debug(
                f"registered {len(worker_list)} workers: " + ", ".join(
                    f"workerID={w.workerID} batchID={w.batchID} nJobs={len(jobs or [])}" for w, jobs in worker_list))
        return [True] * len(worker_list)

    @staticmethod
    def _jobs_apart(worker_list: Sequence[tuple[Any, Sequence[Any] | None]]) -> bool:
        """True when every worker is new (with its workerID) and no PandaID is in two of them."""
        seen: set[int] = set()
        worker_ids: set[Any] = set()
        for workspec, jobspec_list in worker_list:
            if not workspec.isNew or workspec.workerID is None or workspec.workerID in worker_ids:
                return False
            worker_ids.add(workspec.workerID)
            for job in jobspec_list or []:
                if job.PandaID in seen:
                    return False
                seen.add(job.PandaID)
        return True

    def _new_rows_present(self, workspecs: Sequence[Any]) -> set[int]:
        """The workerIDs of the new ``workspecs`` that already have their (pending) row."""
        new_ids = [w.workerID for w in workspecs if w.isNew and w.workerID is not None]
        return {r[0] for r in self._ids_in("SELECT workerID FROM work_table WHERE workerID IN ({ids})",
                                           new_ids)} if new_ids else set()

    def _register_jobless(self, workspecs: Sequence[Any], locked_by: str) -> None:
        """:meth:`_register` for workers without jobs, inside the caller's transaction: one query for
        which new workers already have their (pending) row, their UPDATEs grouped by changed columns."""
        present = self._new_rows_present(workspecs)
        to_update = []
        for workspec in workspecs:
            if workspec.isNew and workspec.workerID not in present:
                self._register(workspec, None, locked_by)  # no row yet: inserted as register_worker does
            else:
                to_update.append(workspec)
        self._update_changes_bulk("work_table", to_update, "workerID")

    def _register_new_with_jobs(self, worker_list: Sequence[tuple[Any, Sequence[Any] | None]],
                                locked_by: str) -> None:
        """:meth:`_register` for new workers whose jobs are all different (see :meth:`_jobs_apart`),
        inside the caller's transaction, with the same outcome: the worker rows, then one look-up of
        the jobs' active workers, the jobs' UPDATEs and the new relations, each for the whole batch."""
        present = self._new_rows_present([w for w, _jobs in worker_list])
        batch = []
        for workspec, jobspec_list in worker_list:
            if workspec.workerID not in present:
                self._register(workspec, jobspec_list, locked_by)  # no row yet: inserted as register_worker does
            else:
                batch.append((workspec, jobspec_list or []))
        self._update_changes_bulk("work_table", [w for w, _jobs in batch], "workerID")
        active = self._active_workers_of_jobs([job.PandaID for _w, jobs in batch for job in jobs])
        to_write = []
        related: dict[int, list[int]] = {}
        for workspec, jobs in batch:
            for job in jobs:
                worker_ids = set(active.get(job.PandaID, ()))
                worker_ids.add(workspec.workerID)
                if not self._bind_job(workspec, job, worker_ids):
                    continue
                to_write.append(job)
                if job.subStatus in lifecycle.SUB_WITH_WORKER:
                    related.setdefault(workspec.workerID, []).append(job.PandaID)
        self._update_locked_jobs_bulk(to_write, locked_by)
        self._insert_relations_bulk(related)

    def _update_locked_jobs_bulk(self, jobs: Sequence[Any], locked_by: str) -> None:
        """UPDATE the changed columns of ``jobs`` (distinct PandaIDs) whose row is locked by
        ``locked_by``; one executemany per set of changed columns."""
        self._update_specs_bulk("job_table", jobs, "PandaID", "lockedBy=:lb_key", {":lb_key": locked_by})

    def _insert_relations_bulk(self, related: dict[int, list[int]]) -> None:
        """:meth:`_insert_relations` for several workers ``{workerID: [PandaID, ...]}``."""
        if not related:
            return
        have = {(r[0], r[1]) for r in self._ids_in("SELECT workerID, PandaID FROM jw_table WHERE workerID IN ({ids})",
                                                    list(related))}
        rel_cls = schema.spec_class("jw_table")
        rows = []
        for worker_id, panda_ids in related.items():
            for pid in dict.fromkeys(panda_ids):
                if (worker_id, pid) in have:
                    continue
                rel = rel_cls()
                rel.PandaID = pid
                rel.workerID = worker_id
                rows.append(rel)
        self._insert_specs("jw_table", rows)

    def _registered(self, workspec: Any, jobspec_list: Sequence[Any] | None) -> None:
        """After the commit: the specs are clean again."""
        workspec.reset_changed_list()
        for job in jobspec_list or []:
            job.reset_changed_list()
        make_logger(_logger, f"batchID={workspec.batchID}", method_name="register_worker").debug(
            f"registered workerID={workspec.workerID} with {len(jobspec_list or [])} jobs")

    def _register(self, workspec: Any, jobspec_list: Sequence[Any] | None, locked_by: str) -> None:
        """The writes of :meth:`register_worker`, inside the caller's transaction."""
        is_new = False
        if workspec.isNew:
            is_new = self._exec("SELECT 1 FROM work_table WHERE workerID=:w",
                                {":w": workspec.workerID}).fetchone() is None
        if is_new:
            self._insert_specs("work_table", [workspec])
            self._exec("UPDATE pq_table SET nNewWorkers=nNewWorkers-1 WHERE queueName=:q AND "
                       "nNewWorkers IS NOT NULL AND nNewWorkers>0", {":q": workspec.computingSite})
        else:
            self._update_changes("work_table", workspec, "workerID=:w_key", {":w_key": workspec.workerID},
                                 skip=("workerID",))
        related = []
        for job in jobspec_list or []:
            worker_ids = self._active_workers_of_job(job.PandaID)
            worker_ids.add(workspec.workerID)
            if not self._bind_job(workspec, job, worker_ids):
                continue
            self._update_changes("job_table", job, "PandaID=:p_key AND lockedBy=:lb_key",
                                 {":p_key": job.PandaID, ":lb_key": locked_by}, skip=("PandaID",))
            if job.subStatus in lifecycle.SUB_WITH_WORKER:
                related.append(job.PandaID)
        self._insert_relations(workspec.workerID, related)

    @staticmethod
    def _bind_job(workspec: Any, job: Any, worker_ids: set[int]) -> bool:
        """Set the job's attributes for its (just registered) worker; ``worker_ids``: its active
        workers, this one included. False: the job is left alone (a missed worker while others
        are active on it)."""
        work_cls = type(workspec)
        if job.subStatus in lifecycle.SUB_WITH_WORKER:
            job.nWorkers = len(worker_ids)
            job.nWorkersInTotal = (job.nWorkersInTotal or 0) + 1 if job.nWorkersInTotal is not None \
                else job.nWorkers
        elif workspec.status == work_cls.ST_missed:
            # do not touch the job while other workers are active on it
            if len(worker_ids) > 1:
                return False
            core_utils.update_job_attributes_with_workers(workspec.mapType, [job], [workspec], {}, {})
            job.trigger_propagation()
            if workspec.hasJob == 1:
                job.nWorkers = len(worker_ids)
                job.nWorkersInTotal = (job.nWorkersInTotal + 1) if job.nWorkersInTotal is not None \
                    else job.nWorkers
        elif workspec.hasJob == 1:
            job.subStatus = lifecycle.SUB_SUBMITTED
            job.nWorkers = len(worker_ids)
            job.nWorkersInTotal = (job.nWorkersInTotal + 1) if job.nWorkersInTotal is not None \
                else job.nWorkers
        else:
            job.subStatus = lifecycle.SUB_QUEUED
        return True

    # ------------------------------------------------------------ monitor
    @db_method(False)
    def update_jobs_workers(self, jobspec_list: Sequence[Any] | None, workspec_list: Sequence[Any], locked_by: str,
                            panda_ids_list: Sequence[Sequence[int]] | None = None) -> bool:
        """Write what the monitor learned: jobs (new output files, zip groups, events) and workers
        (only while still locked by ``locked_by`` and not final in the DB); False if a worker's
        lock was lost."""
        now = naive_utcnow()
        with self._tx():
            ok = self._write_jobs_workers(jobspec_list, workspec_list, locked_by, panda_ids_list, now)
        for spec in list(jobspec_list or []) + list(workspec_list):
            spec.reset_changed_list()
        return ok

    @db_method(list)
    def update_jobs_workers_bulk(self, chunk_list: Sequence[tuple[Sequence[Any] | None, Sequence[Any],
                                                                  Sequence[Sequence[int]] | None]],
                                 locked_by: str) -> list[bool]:
        """:meth:`update_jobs_workers` for several worker chunks ``(jobspec_list, workspec_list,
        panda_ids_list)`` in one transaction; one bool per chunk ([] after a DB error: nothing written)."""
        now = naive_utcnow()
        with self._tx():
            oks = self._write_chunks(chunk_list, locked_by, now)
        for jobs, workers, _ids in chunk_list:
            for spec in list(jobs or []) + list(workers):
                spec.reset_changed_list()
        return oks

    def _write_jobs_workers(self, jobspec_list: Sequence[Any] | None, workspec_list: Sequence[Any], locked_by: str,
                            panda_ids_list: Sequence[Sequence[int]] | None, now: Any) -> bool:
        """The writes of :meth:`update_jobs_workers`, inside the caller's transaction."""
        return self._write_chunks([(jobspec_list, workspec_list, panda_ids_list)], locked_by, now)[0]

    def _write_chunks(self, chunk_list: Sequence[tuple[Sequence[Any] | None, Sequence[Any],
                                                       Sequence[Sequence[int]] | None]],
                      locked_by: str, now: Any) -> list[bool]:
        """Per chunk: its jobs, then its workers' final touches; then every worker row in one
        go (:meth:`_update_locked_workers`). One bool per chunk: False if a worker's lock was lost."""
        work_cls = schema.spec_class("work_table")
        all_workers: list[Any] = []
        known = self._job_rows_of([job for jobs, _w, _i in chunk_list for job in (jobs or [])])
        inserted: dict[int, list[Any]] = {}  # {number of files inserted: [PandaID, ...]}
        deferred: list[Any] = []  # job rows written together below (jobs listed once)
        later: list[Any] = []  # new file rows inserted together below (see _update_job_from_workers)
        for jobspec_list, workspec_list, panda_ids_list in chunk_list:
            if jobspec_list is not None:
                multi = bool(workspec_list) and workspec_list[0].mapType == work_cls.MT_MultiWorkers
                for job in jobspec_list:
                    n_files = self._update_job_from_workers(job, multi, now, known, deferred, later)
                    if n_files:
                        inserted.setdefault(n_files, []).append(job.PandaID)
            for idx, worker in enumerate(workspec_list):
                worker.lockedBy = None
                lifecycle.stamp_times(worker, worker.status, now, fill_start=True)
                if not worker.nextLookup:
                    if worker.has_updated_attributes():
                        worker.modificationTime = now
                else:
                    worker.nextLookup = False
                if panda_ids_list is not None and len(panda_ids_list) > idx:
                    self._insert_relations(worker.workerID, list(panda_ids_list[idx]))
            all_workers.extend(workspec_list)
        self._insert_new_files(later, {})
        # one executemany per set of changed job columns instead of one UPDATE per job
        self._update_specs_bulk("job_table", deferred, "PandaID")
        if inserted and _logger.isEnabledFor(logging.DEBUG):
            log = make_logger(_logger, method_name="update_jobs_workers")
            for n_files, ids in inserted.items():
                log.debug(f"inserted {n_files} files for {ids_text('PandaID', ids)}")
        lost = self._update_locked_workers(all_workers, locked_by)
        oks = []
        pos = 0
        for _jobs, workspec_list, _ids in chunk_list:
            ok = True
            for worker in workspec_list:
                pos += 1
                if pos - 1 in lost:
                    make_logger(_logger, f"workerID={worker.workerID}", method_name="update_jobs_workers").warning(
                        f"not updated: lock lost (not locked by {locked_by} any more) or already final")
                    ok = False
            oks.append(ok)
        return oks

    def _update_locked_workers(self, workers: Sequence[Any], locked_by: str) -> set[int]:
        """UPDATE the changed columns of ``workers`` whose row is still locked by ``locked_by`` and
        not final (one ``executemany`` per set of changed columns, see
        :meth:`_update_changes_bulk`); returns the positions in ``workers`` of those not
        written for that reason. A worker with nothing changed is not written, nor tested."""
        changed = [(pos, w) for pos, w in enumerate(workers) if w.has_updated_attributes()]
        if not changed:
            return set()
        # the look-up first, inside the same write transaction: a row the bulk UPDATE then misses
        # can only be the second copy of a worker listed twice (its first copy unlocked the row)
        held = {r[0] for r in self._ids_in(f"SELECT workerID FROM work_table WHERE workerID IN ({{ids}}) AND "
                                           f"{_STILL_LOCKED}", [w.workerID for _, w in changed],
                                           {":lb_key": locked_by})}
        lost = {pos for pos, w in changed if w.workerID not in held}
        kept = [(pos, w) for pos, w in changed if w.workerID in held]
        counts = self._update_changes_bulk("work_table", [w for _, w in kept], "workerID", _STILL_LOCKED,
                                           {":lb_key": locked_by})
        lost.update(pos for (pos, _w), n in zip(kept, counts) if n == 0)
        return lost

    def _job_rows_of(self, jobs: Sequence[Any]) -> dict[Any, dict[Any, int] | None]:
        """For the jobs listed once: {PandaID: {lfn: fileID} of its non-input files, or None when
        the job row is gone}, read in two queries (a job listed twice is read again at its turn,
        after the writes of its first copy)."""
        counts: dict[Any, int] = {}
        for job in jobs:
            counts[job.PandaID] = counts.get(job.PandaID, 0) + 1
        once = [pid for pid, n in counts.items() if n == 1]
        if not once:
            return {}
        known: dict[Any, dict[Any, int] | None] = {pid: None for pid in once}
        for (pid,) in self._ids_in("SELECT PandaID FROM job_table WHERE PandaID IN ({ids})", once):
            known[pid] = {}
        for pid, lfn, file_id in self._ids_in("SELECT PandaID, lfn, fileID FROM file_table WHERE PandaID IN ({ids}) "
                                              "AND fileType<>'input'", once):
            lfns = known.get(pid)
            if lfns is not None:
                lfns[lfn] = file_id
        return known

    def _update_job_from_workers(self, job: Any, multi: bool, now: Any,
                                 known: dict[Any, dict[Any, int] | None] | None = None,
                                 deferred: list[Any] | None = None, later: list[Any] | None = None) -> int:
        """Write one job the monitor updated (``known``: what :meth:`_job_rows_of` read for it);
        returns the number of files inserted for it. The job row of a job in ``known`` goes to
        ``deferred`` when given (the caller writes those rows together), and so do its new file
        rows to ``later`` when nothing of the job's write reads them (no zipping, no events; the
        caller inserts them with :meth:`_insert_new_files`)."""
        listed_once = known is not None and job.PandaID in known
        if listed_once:
            all_lfns = known.pop(job.PandaID)
        elif self._exec("SELECT status FROM job_table WHERE PandaID=:p", {":p": job.PandaID}).fetchone() is None:
            all_lfns = None
        else:
            all_lfns = dict(self._exec("SELECT lfn, fileID FROM file_table WHERE PandaID=:p AND fileType<>'input'",
                                       {":p": job.PandaID}).fetchall())
        if all_lfns is None:
            make_logger(_logger, f"PandaID={job.PandaID}", method_name="update_jobs_workers").warning(
                "job not in the DB any more; skipped")
            return 0
        active: set[int] = set()
        if multi:
            active = self._active_workers_of_job(job.PandaID)
            job.nWorkers = len(active)
        file_id_map: dict[Any, int] = {}
        zip_rows: dict[str, Any] = {}
        # the job's new file rows, inserted together after the loop (nothing in it reads them): the
        # values as of now and whether the row is a new file (else an extra row of an existing zip)
        new_rows: list[tuple[Any, list[Any], bool]] = []
        extra_rows: set[tuple[Any, Any]] = set()  # (lfn, eventRangeID) of the extra zip rows in new_rows
        for file_spec in job.outFiles:
            if file_spec.lfn not in all_lfns:
                file_spec.status, has_out_file = lifecycle.new_output_status(file_spec.fileType, file_spec.isZip,
                                                                             job.zipPerMB)
                if has_out_file is not None:
                    job.hasOutFile = has_out_file
                new_rows.append((file_spec, self._spec_row("file_table", file_spec), True))
            elif file_spec.isZip == 1 and file_spec.eventRangeID is not None:
                # an extra row carrying the eventRangeID, pointing at the existing zip file
                exists = self._exec("SELECT 1 FROM file_table WHERE PandaID=:p AND lfn=:l AND eventRangeID=:e",
                                    {":p": file_spec.PandaID, ":l": file_spec.lfn,
                                     ":e": file_spec.eventRangeID}).fetchone()
                if exists is None and (file_spec.lfn, file_spec.eventRangeID) not in extra_rows:
                    extra_rows.add((file_spec.lfn, file_spec.eventRangeID))
                    if file_spec.lfn not in zip_rows:
                        zip_rows[file_spec.lfn] = self._select_specs("file_table", "PandaID=:p AND lfn=:l",
                                                                     {":p": file_spec.PandaID, ":l": file_spec.lfn},
                                                                     suffix="LIMIT 1")[0]
                    file_spec.status = lifecycle.FILE_ZIPPED
                    file_spec.zipFileID = zip_rows[file_spec.lfn].zipFileID
                    new_rows.append((file_spec, self._spec_row("file_table", file_spec), False))
            elif file_spec.fileType == lifecycle.TYPE_CHECKPOINT:
                self._exec("UPDATE file_table SET status=:st, zipFileID=NULL WHERE fileID=:f",
                           {":st": lifecycle.FILE_RENEWED, ":f": all_lfns[file_spec.lfn]})
        n_files = len(new_rows)
        zipping = lifecycle.wants_zipping(job.zipPerMB, job.subStatus)
        if later is not None and listed_once and not zipping and not job.events:
            later.extend(new_rows)  # nothing below reads them: inserted with the other jobs' rows
        else:
            self._insert_new_files(new_rows, file_id_map)
        if zipping:
            self._make_zip_groups(job, active)
        self._write_events(job, file_id_map)
        if job.has_updated_attributes():
            job.lockedBy = None
            job.modificationTime = now
            if listed_once and deferred is not None:
                deferred.append(job)
            else:
                self._update_changes("job_table", job, "PandaID=:p_key", {":p_key": job.PandaID}, skip=("PandaID",))
        return n_files

    def _insert_new_files(self, new_rows: Sequence[tuple[Any, list[Any], bool]], file_id_map: dict[Any, int]
                          ) -> None:
        """Insert the rows :meth:`_update_job_from_workers` collected (``(spec, values, new
        file)``), in order, in one call: a new file's spec gets its fileID (a zip points at
        itself), an eventRangeID its file's id in ``file_id_map``."""
        new_ids = self._insert_rows_ids("file_table", [values for _spec, values, _new in new_rows])
        zips = []
        for (file_spec, _values, new_file), file_id in zip(new_rows, new_ids):
            if not new_file:
                file_id_map[file_spec.eventRangeID] = file_id
                continue
            file_spec.fileID = file_id
            if file_spec.eventRangeID is not None:
                file_id_map[file_spec.eventRangeID] = file_id
            if file_spec.isZip == 1:
                zips.append({":z": file_id, ":f": file_id})
        if zips:
            self._many("UPDATE file_table SET zipFileID=:z WHERE fileID=:f", zips)

    def _make_zip_groups(self, job: Any, active: set[int]) -> None:
        """Insert the zip files :func:`lifecycle.zip_groups` makes of the job's pending outputs."""
        pending = [lifecycle.PendingFile(*row) for row in self._exec(
            "SELECT fileID, fsize, lfn, provenanceID, workerID FROM file_table WHERE PandaID=:p AND status=:st "
            "AND fileType<>'input' ORDER BY provenanceID, workerID, fileID",
            {":p": job.PandaID, ":st": lifecycle.FILE_PENDING}).fetchall()]
        groups = lifecycle.zip_groups(pending, job.zipPerMB, job.subStatus, active) if pending else []
        file_cls = schema.spec_class("file_table")
        for members in groups:
            zip_spec = file_cls()
            for name, value in lifecycle.zip_file_fields(members).items():
                setattr(zip_spec, name, value)
            zip_spec.PandaID = job.PandaID
            zip_spec.taskID = job.taskID
            zip_id = self._insert_spec("file_table", zip_spec)
            self._many("UPDATE file_table SET status=:st, zipFileID=:z WHERE fileID=:f",
                       [{":st": lifecycle.FILE_ZIPPED, ":z": zip_id, ":f": f.file_id} for f in members])
        if groups:
            job.hasOutFile = lifecycle.HO_HAS_ZIP_OUTPUT

    def _write_events(self, job: Any, file_id_map: dict[Any, int]) -> None:
        """Insert new events and update those that may still change (:func:`lifecycle.event_statuses`)."""
        if not job.events:
            return
        open_ids, settled = set(), set()
        for range_id, status in self._exec("SELECT eventRangeID, eventStatus FROM event_table WHERE PandaID=:p "
                                           "AND eventRangeID IS NOT NULL", {":p": job.PandaID}).fetchall():
            (open_ids if lifecycle.event_may_change(status) else settled).add(range_id)
        file_stat = dict(self._exec("SELECT eventRangeID, status FROM file_table WHERE PandaID=:p AND "
                                    "eventRangeID IS NOT NULL", {":p": job.PandaID}).fetchall())
        inserts, updates = [], []
        for event in job.events:
            range_id = event.eventRangeID
            if range_id in settled:
                continue
            event.eventStatus, event.subStatus = lifecycle.event_statuses(event.eventStatus, file_stat.get(range_id),
                                                                          range_id in file_stat)
            if range_id in file_id_map:
                event.fileID = file_id_map[range_id]
            if range_id not in open_ids:
                inserts.append(event)
            else:
                updates.append({":es": event.eventStatus, ":ss": event.subStatus, ":p": job.PandaID, ":e": range_id})
        self._insert_specs("event_table", inserts)
        if updates:
            self._many("UPDATE event_table SET eventStatus=:es, subStatus=:ss WHERE PandaID=:p AND eventRangeID=:e",
                       updates)
