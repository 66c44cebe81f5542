"""PanDA queues (pq_table): fill from the queue config, site locks for the submitter, limits."""

from __future__ import annotations

import datetime
from typing import Any, Sequence

from .. import core_utils
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
                exists = self._exec("SELECT 1 FROM pq_table WHERE queueName=:q AND resourceType=:rt AND jobType=:jt",
                                    {":q": queue_name, ":rt": pq_cls.RT_catchall, ":jt": pq_cls.JT_catchall}
                                    ).fetchone() is not None
                if refill_table:
                    self._exec("DELETE FROM pq_table WHERE queueName=:q", {":q": queue_name})
                if exists and not refill_table:
                    varmap = {f":{a}": getattr(queue_config, a) for a in LIMIT_ATTRS if hasattr(queue_config, a)}
                    if not varmap:
                        continue
                    schema.check_map("pq_table", pq_cls, varmap)
                    sets = ",".join(f"{k[1:]}={k}" for k in varmap)
                    varmap[":q_key"] = queue_name
                    self._exec(f"UPDATE pq_table SET {sets} WHERE queueName=:q_key", varmap)
                    continue
                values = {c: getattr(queue_config, c) for c in columns if hasattr(queue_config, c)}
                values["queueName"] = queue_name
                values.setdefault("resourceType", pq_cls.RT_catchall)
                values.setdefault("jobType", pq_cls.JT_catchall)
                values["resourceType"] = values["resourceType"] or pq_cls.RT_catchall
                values["jobType"] = values["jobType"] or pq_cls.JT_catchall
                if not values.get("uniqueName"):
                    values["uniqueName"] = core_utils.get_unique_queue_name(queue_name, values["resourceType"],
                                                                            values["jobType"])
                names = list(values)
                schema.check_row("pq_table", pq_cls, names, [values[n] for n in names])
                self._exec(self._engine.insert_sql("pq_table", names, ignore=True), [values[n] for n in names])
        make_logger(_logger, method_name="fill_panda_queue_table").debug(f"done refill={refill_table}")
        return True

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
        work_cls = schema.spec_class("work_table")
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
                    # workers inserted before submission and never registered (a crashed submitter)
                    self._exec(f"DELETE FROM work_table WHERE computingSite=:q AND status=:pending "
                               f"AND modificationTime<:limit{extra}",
                               dict(varmap, **{":pending": work_cls.ST_pending,
                                               ":limit": now - datetime.timedelta(seconds=lock)}))
                    n_queue = n_ready = n_running = 0
                    for status, cnt in self._exec(f"SELECT status, COUNT(*) FROM work_table WHERE computingSite=:q"
                                                  f"{extra} GROUP BY status", varmap).fetchall():
                        if status in ("submitted", "pending", "idle"):
                            n_queue += cnt
                        elif status == "ready":
                            n_ready += cnt
                        elif status == "running":
                            n_running += cnt
                    (n_refill,) = self._exec(f"SELECT COUNT(*) FROM work_table WHERE computingSite=:q AND "
                                             f"status='running' AND nJobsToReFill IS NOT NULL AND nJobsToReFill>0"
                                             f"{extra}", varmap).fetchone()
                    result.setdefault(queue, {}).setdefault(job_type, {})[resource_type] = {
                        "nReady": n_ready + n_refill, "nRunning": n_running, "nQueue": n_queue, "nNewWorkers": n_new}
                    resource_map.setdefault(job_type, {})[resource_type] = queue
                break
        make_logger(_logger, method_name="get_queues_to_submit").debug(f"site={site_name} got {result}")
        return result, site_name, resource_map

    @db_method(False)
    def release_site(self, site_name: str, locked_by: str) -> bool:
        with self._tx():
            self._exec("UPDATE pq_table SET lockedBy=NULL WHERE siteName=:s AND lockedBy=:lockedBy",
                       {":s": site_name, ":lockedBy": locked_by})
        return True

    @db_method(False)
    def clone_queue_with_new_job_and_resource_type(self, site_name: str, queue_name: str, job_type: str,
                                                   resource_type: str, new_workers: int) -> bool:
        """Add a pq_table row for (queue, job type, resource type) copied from a row of the site."""
        pq_cls = schema.spec_class("pq_table")
        columns = pq_cls.column_names().split(",")
        with self._tx():
            row = self._exec(f"SELECT {','.join(columns)} FROM pq_table WHERE siteName=:s LIMIT 1",
                             {":s": site_name}).fetchone()
            if row is None:
                make_logger(_logger, f"site_name={site_name}", method_name="clone_queue_with_new_job_and_resource_type"
                            ).debug("no queue to clone")
                return True
            values = dict(zip(columns, row))
            values.update(resourceType=resource_type, jobType=job_type, nNewWorkers=new_workers,
                          uniqueName=core_utils.get_unique_queue_name(queue_name, resource_type, job_type))
            schema.check_row("pq_table", pq_cls, columns, [values[c] for c in columns])
            self._exec(self._engine.insert_sql("pq_table", columns, ignore=True), [values[c] for c in columns])
        return True

    @db_method(dict)
    def set_queue_limit(self, site_name: str, params: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """Apply PanDA's SET_N_WORKERS_JOBTYPE: nNewWorkers per (jobType, resourceType) (others reset to 0);
        returns {jobType: {resourceType: value}} of what was set."""
        tmp_log = make_logger(_logger, f"siteName={site_name}", method_name="set_queue_limit")
        result: dict[str, dict[str, Any]] = {}
        with self._tx():
            self._exec("UPDATE pq_table SET nNewWorkers=0 WHERE siteName=:s", {":s": site_name})
            known = {tuple(r) for r in self._exec("SELECT jobType, resourceType FROM pq_table WHERE siteName=:s",
                                                  {":s": site_name}).fetchall()}
            for job_type, values in params.items():
                result.setdefault(job_type, {})
                for resource_type, value in values.items():
                    value = 0 if value is None else value
                    n = self._exec("UPDATE pq_table SET nNewWorkers=:n WHERE siteName=:s AND jobType=:jt AND "
                                   "resourceType=:rt", {":n": value, ":s": site_name, ":jt": job_type,
                                                        ":rt": resource_type}).rowcount
                    if n > 0 or (job_type, resource_type) in known:
                        result[job_type][resource_type] = value
                    elif self.clone_queue_with_new_job_and_resource_type(site_name, site_name, job_type,
                                                                         resource_type, value):
                        result[job_type][resource_type] = value
                    tmp_log.debug(f"set nNewWorkers={value} to {site_name}:{job_type}:{resource_type}")
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
