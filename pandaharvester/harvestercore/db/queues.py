"""PanDA queues (pq_table): fill from the queue config, site locks for the submitter, limits."""

from __future__ import annotations

import datetime
from typing import Any, Sequence

from .. import core_utils, lifecycle
from ..log_utils import make_logger, setup_logger
from ..time_utils import naive_utcnow
from . import schema
from .base import DBModule, db_method

_logger = setup_logger("db_proxy")

LIMIT_ATTRS = ("nQueueLimitJob", "nQueueLimitWorker", "maxWorkers", "nQueueLimitJobRatio", "nQueueLimitJobMax",
               "nQueueLimitJobMin", "nQueueLimitWorkerRatio", "nQueueLimitWorkerMax", "nQueueLimitWorkerMin")


class QueuesMixin(DBModule):
    """fill_panda_queue_table, get_queues_to_submit, release_site, set_queue_limit,
    update_panda_queue_attribute, clone_queue_with_new_job_and_resource_type, purge_pq."""

    @db_method(False)
    def fill_panda_queue_table(self, panda_queue_list: Sequence[str], queue_config_mapper: Any,
                               refill_table: bool = False) -> bool:
        """Make pq_table follow the active queues: drop others, insert new ones, refresh limits."""
        pq_cls = schema.spec_class("pq_table")
        columns = pq_cls.column_names().split(",")
        wanted = set(panda_queue_list)
        # resolve the configs before taking the write lock (the mapper may use the DB itself)
        configs = {name: queue_config_mapper.get_queue(name) for name in panda_queue_list}
        with self._tx():
            for (queue_name,) in self._exec("SELECT DISTINCT queueName FROM pq_table").fetchall():
                if queue_name not in wanted:
                    self._exec("DELETE FROM pq_table WHERE queueName=:q", {":q": queue_name})
            for queue_name in panda_queue_list:
                queue_config = configs[queue_name]
                if queue_config is None:
                    continue
                # the queue's own row: resource type ANY, or RT for a pseudo-queue SITE/RT
                resource_type = getattr(queue_config, "resourceType", None) or pq_cls.RT_catchall
                job_type = getattr(queue_config, "jobType", None) or pq_cls.JT_catchall
                unique_name = core_utils.get_unique_queue_name(queue_name, resource_type, job_type)
                exists = self._exec("SELECT 1 FROM pq_table WHERE queueName=:q AND resourceType=:rt AND jobType=:jt",
                                    {":q": queue_name, ":rt": resource_type, ":jt": job_type}).fetchone() is not None
                if refill_table:
                    self._exec("DELETE FROM pq_table WHERE queueName=:q", {":q": queue_name})
                if exists and not refill_table:
                    self._fix_unique_name(queue_name, resource_type, job_type, unique_name)
                    varmap = {f":{a}": getattr(queue_config, a) for a in LIMIT_ATTRS if hasattr(queue_config, a)}
                    if not varmap:
                        continue
                    schema.check_map("pq_table", pq_cls, varmap)
                    sets = ",".join(f"{k[1:]}={k}" for k in varmap)
                    varmap[":q_key"] = queue_name
                    self._exec(f"UPDATE pq_table SET {sets} WHERE queueName=:q_key", varmap)
                    continue
                values = {c: getattr(queue_config, c) for c in columns if hasattr(queue_config, c)}
                # keyed by the row's own job type, not by the queue config's uniqueName (made with the
                # prodSourceLabel, it would take the key of the row PanDA's first real job type needs)
                values.update(queueName=queue_name, resourceType=resource_type, jobType=job_type,
                              uniqueName=unique_name)
                names = list(values)
                schema.check_row("pq_table", pq_cls, names, [values[n] for n in names])
                self._exec(self._engine.insert_sql("pq_table", names, ignore=True), [values[n] for n in names])
        make_logger(_logger, method_name="fill_panda_queue_table").debug(f"done refill={refill_table}")
        return True

    def _fix_unique_name(self, queue_name: str, resource_type: str, job_type: str, unique_name: str) -> None:
        """Re-key the queue's own row as ``unique_name`` (an older version keyed it with the queue
        config's uniqueName, ``<queue>:<resourceType>:<prodSourceLabel>``)."""
        if self._exec("SELECT 1 FROM pq_table WHERE uniqueName=:u", {":u": unique_name}).fetchone() is None:
            self._exec("UPDATE pq_table SET uniqueName=:u WHERE queueName=:q AND resourceType=:rt AND jobType=:jt",
                       {":u": unique_name, ":q": queue_name, ":rt": resource_type, ":jt": job_type})

    @db_method(lambda: ({}, None, {}))
    def get_queues_to_submit(self, *args: Any, **kwargs: Any) -> tuple[dict[str, Any], str | None, dict[str, Any]]:
        """Lock one site for the submitter and count its workers.

        Arguments: ``(lookup_interval, lock_interval, locked_by, queue_lock_interval)``; the older
        form with a leading ``n_queues`` is accepted too. Returns
        ``({queue: {jobType: {resourceType: {nReady, nRunning, nQueue, nNewWorkers}}}}, siteName,
        {jobType: {resourceType: queue}})``; ``({}, None, {})`` when no site is due.
        """
        names = ["lookup_interval", "lock_interval", "locked_by", "queue_lock_interval"]
        if len(args) == 5 or (len(args) >= 3 and isinstance(args[2], (int, float)) and not isinstance(args[2], bool)):
            args = args[1:]
        kwargs.pop("n_queues", None)
        params = dict(zip(names, args))
        params.update(kwargs)
        lookup, lock, locked_by, queue_lock = (params[n] for n in names)
        now = naive_utcnow()
        result: dict[str, Any] = {}
        resource_map: dict[str, Any] = {}
        site_name = None
        with self._tx():
            sites = [r[0] for r in self._exec(
                "SELECT siteName FROM pq_table WHERE submitTime IS NULL OR (submitTime<:lockLimit AND lockedBy IS NOT "
                "NULL) OR (submitTime<:lookupLimit AND lockedBy IS NULL) ORDER BY submitTime",
                {":lockLimit": now - datetime.timedelta(seconds=queue_lock),
                 ":lookupLimit": now - datetime.timedelta(seconds=lookup)}).fetchall()]
            for site in dict.fromkeys(sites):
                n = self._exec("UPDATE pq_table SET submitTime=:now,lockedBy=:lockedBy WHERE siteName=:s "
                               "AND (submitTime IS NULL OR submitTime<:limit)",
                               {":now": now, ":lockedBy": locked_by, ":s": site,
                                ":limit": now - datetime.timedelta(seconds=lookup)}).rowcount
                if n == 0:
                    continue
                site_name = site
                result, resource_map = self._site_slots(site, lock, now)
                break
        make_logger(_logger, method_name="get_queues_to_submit").debug(f"site={site_name} got {result}")
        return result, site_name, resource_map

    @db_method(lambda: ({}, {}))
    def get_site_slots(self, site_name: str, lock_interval: float) -> tuple[dict[str, Any], dict[str, Any]]:
        """The counts ``get_queues_to_submit`` gives for a site the caller already locked, read again
        (after ``set_queue_limit`` added rows): ``(counts, {jobType: {resourceType: queue}})``."""
        with self._tx():
            return self._site_slots(site_name, lock_interval, naive_utcnow())

    def _site_slots(self, site: str, lock: float, now: datetime.datetime) -> tuple[dict[str, Any], dict[str, Any]]:
        """Worker counts per pq_table row (queue, jobType, resourceType) of ``site``; pending workers
        older than ``lock`` seconds (a submitter that crashed before registering them) do not count:
        the sweeper kills, sweeps and deletes them (``get_interrupted_submissions``)."""
        work_cls = schema.spec_class("work_table")
        result: dict[str, Any] = {}
        resource_map: dict[str, Any] = {}
        for queue, job_type, resource_type, n_new in self._exec(
                "SELECT queueName, jobType, resourceType, nNewWorkers FROM pq_table WHERE siteName=:s",
                {":s": site}).fetchall():
            varmap: dict[str, Any] = {":q": queue}
            extra = ""
            if job_type != "ANY":
                extra += " AND jobType=:jt"
                varmap[":jt"] = job_type
            if resource_type != "ANY":
                extra += " AND resourceType=:rt"
                varmap[":rt"] = resource_type
            # workers inserted before submission and never registered (a crashed submitter) are
            # not counted; their batch jobs may run: they are not deleted here but by the sweeper,
            # after it killed them
            n_queue = n_ready = n_running = 0
            for status, cnt in self._exec(f"SELECT status, COUNT(*) FROM work_table WHERE computingSite=:q"
                                          f"{extra} AND NOT (status=:pending AND modificationTime<:limit) "
                                          f"GROUP BY status",
                                          dict(varmap, **{":pending": work_cls.ST_pending,
                                                          ":limit": now - datetime.timedelta(seconds=lock)})
                                          ).fetchall():
                if status in lifecycle.WORKER_QUEUED:
                    n_queue += cnt
                elif status == lifecycle.WORKER_READY:
                    n_ready += cnt
                elif status == lifecycle.WORKER_RUNNING:
                    n_running += cnt
            (n_refill,) = self._exec(f"SELECT COUNT(*) FROM work_table WHERE computingSite=:q AND "
                                     f"status=:running AND nJobsToReFill IS NOT NULL AND nJobsToReFill>0"
                                     f"{extra}", dict(varmap, **{":running": lifecycle.WORKER_RUNNING})).fetchone()
            result.setdefault(queue, {}).setdefault(job_type, {})[resource_type] = {
                "nReady": n_ready + n_refill, "nRunning": n_running, "nQueue": n_queue, "nNewWorkers": n_new}
            resource_map.setdefault(job_type, {})[resource_type] = queue
        return result, resource_map

    @db_method(False)
    def release_site(self, site_name: str, locked_by: str) -> bool:
        with self._tx():
            self._exec("UPDATE pq_table SET lockedBy=NULL WHERE siteName=:s AND lockedBy=:lockedBy",
                       {":s": site_name, ":lockedBy": locked_by})
        return True

    @db_method(False)
    def clone_queue_with_new_job_and_resource_type(self, site_name: str, queue_name: str, job_type: str,
                                                   resource_type: str, new_workers: int) -> bool:
        """Add a pq_table row for (job type, resource type) to a queue of the site: a copy of a row of
        ``queue_name`` (of that resource type first, then the catch-all job type), else — the
        original's call with the site name — of any row of the site."""
        pq_cls = schema.spec_class("pq_table")
        columns = pq_cls.column_names().split(",")
        with self._tx():
            row = self._exec(f"SELECT {','.join(columns)} FROM pq_table WHERE siteName=:s "
                             "ORDER BY queueName=:q DESC, resourceType=:rt DESC, jobType=:any DESC, uniqueName "
                             "LIMIT 1", {":s": site_name, ":q": queue_name, ":rt": resource_type,
                                         ":any": pq_cls.JT_catchall}).fetchone()
            if row is None:
                make_logger(_logger, f"site_name={site_name}", method_name="clone_queue_with_new_job_and_resource_type"
                            ).debug("no queue to clone")
                return True
            values = dict(zip(columns, row))
            values.update(resourceType=resource_type, jobType=job_type, nNewWorkers=new_workers,
                          uniqueName=core_utils.get_unique_queue_name(values["queueName"], resource_type, job_type))
            schema.check_row("pq_table", pq_cls, columns, [values[c] for c in columns])
            if self._exec(self._engine.insert_sql("pq_table", columns, ignore=True),
                          [values[c] for c in columns]).rowcount == 0:
                make_logger(_logger, f"site_name={site_name}", method_name="clone_queue_with_new_job_and_resource_type"
                            ).warning(f"pq_table row uniqueName={values['uniqueName']} exists already; not cloned")
                return False
        return True

    @staticmethod
    def _queue_for_resource_type(rows: Sequence[tuple[str, str, str]], resource_type: str) -> str | None:
        """The queue of a site that serves ``resource_type``: its pseudo-queue (a row of that
        resource type), else the site's catch-all queue (resource type ANY), else None."""
        for wanted in (resource_type, "ANY"):
            queues = sorted({queue for queue, _jt, rt in rows if rt == wanted})
            if queues:
                return queues[0]
        return None

    @db_method(dict)
    def set_queue_limit(self, site_name: str, params: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """Apply PanDA's SET_N_WORKERS_JOBTYPE: nNewWorkers per (jobType, resourceType) (others reset to 0);
        returns {jobType: {resourceType: value}} of what was set.

        A (jobType, resourceType) the site has no row for gets one in the queue serving that
        resource type (``_queue_for_resource_type``); with no such queue the value is not applied
        (a WARNING names what to add).
        """
        tmp_log = make_logger(_logger, f"siteName={site_name}", method_name="set_queue_limit")
        result: dict[str, dict[str, Any]] = {}
        with self._tx():
            self._exec("UPDATE pq_table SET nNewWorkers=0 WHERE siteName=:s", {":s": site_name})
            rows = [tuple(r) for r in self._exec("SELECT queueName, jobType, resourceType FROM pq_table "
                                                 "WHERE siteName=:s", {":s": site_name}).fetchall()]
            known = {(jt, rt) for _queue, jt, rt in rows}
            for job_type, values in params.items():
                result.setdefault(job_type, {})
                for resource_type, value in values.items():
                    value = 0 if value is None else value
                    n = self._exec("UPDATE pq_table SET nNewWorkers=:n WHERE siteName=:s AND jobType=:jt AND "
                                   "resourceType=:rt", {":n": value, ":s": site_name, ":jt": job_type,
                                                        ":rt": resource_type}).rowcount
                    slot = f"jobType={job_type} resourceType={resource_type}"
                    if n > 0 or (job_type, resource_type) in known:
                        result[job_type][resource_type] = value
                        tmp_log.debug(f"set nNewWorkers={value} to {slot}")
                        continue
                    queue_name = self._queue_for_resource_type(rows, resource_type)
                    if queue_name is None:
                        message = (f"{slot} nNewWorkers={value} not applied: no queue of the site serves "
                                   f"{resource_type} (queues: {', '.join(sorted({r[0] for r in rows})) or 'none'}); "
                                   f"add the pseudo-queue {site_name}/{resource_type} or a catch-all queue "
                                   f"{site_name} to the queue config to serve it")
                        (tmp_log.warning if value else tmp_log.debug)(message)
                        continue
                    if self.clone_queue_with_new_job_and_resource_type(site_name, queue_name, job_type,
                                                                         resource_type, value):
                        result[job_type][resource_type] = value
                        rows.append((queue_name, job_type, resource_type))
                        tmp_log.debug(f"set nNewWorkers={value} to {slot} in the new row of {queue_name}")
        return result

    @db_method(False)
    def update_panda_queue_attribute(self, key: str, value: Any, site_name: str | None = None,
                                     queue_name: str | None = None) -> bool:
        """Set one pq_table column for a site's (or a queue's) rows."""
        pq_cls = schema.spec_class("pq_table")
        schema.check_map("pq_table", pq_cls, {f":{key}": value})
        varmap = {":value": value}
        if site_name is not None:
            where = "siteName=:s"
            varmap[":s"] = site_name
        else:
            where = "queueName=:q"
            varmap[":q"] = queue_name
        with self._tx():
            self._exec(f"UPDATE pq_table SET {key}=:value WHERE {where}", varmap)
        return True

    @db_method(False)
    def purge_pq(self, queue_name: str) -> bool:
        """Delete a queue with its jobs, workers, relations and config dumps."""
        with self._tx():
            pids = [r[0] for r in self._exec("SELECT PandaID FROM job_table WHERE computingSite=:q",
                                             {":q": queue_name}).fetchall()]
            for table in ("job_table", "file_table", "event_table", "jw_table"):
                self._update_in(f"DELETE FROM {table} WHERE PandaID IN ({{ids}})", pids)
            wids = [r[0] for r in self._exec("SELECT workerID FROM work_table WHERE computingSite=:q",
                                             {":q": queue_name}).fetchall()]
            for table in ("work_table", "jw_table"):
                self._update_in(f"DELETE FROM {table} WHERE workerID IN ({{ids}})", wids)
            self._exec("DELETE FROM qcdump_table WHERE queueName=:q", {":q": queue_name})
            self._exec("DELETE FROM pq_table WHERE queueName=:q", {":q": queue_name})
        return True
