"""Worker statistics and queue limits (read-only aggregations over work_table and pq_table)."""

from __future__ import annotations

import datetime
from typing import Any, Sequence

from .. import lifecycle
from ..log_utils import make_logger, setup_logger
from ..time_utils import naive_utcnow
from .base import (SQL_WORKERS_COUNTED, SQL_WORKERS_EVENT_FEEDABLE, SQL_WORKERS_QUEUED_OR_RUNNING, DBModule,
                   db_method, in_binds)

_logger = setup_logger("db_proxy")


def _new_counts(to_submit: Any = 0, with_finished: bool = True) -> dict[str, Any]:
    counts = {"running": 0, "submitted": 0, "to_submit": to_submit}
    if with_finished:
        counts["finished"] = 0
    return counts


def _dynamic_limit(base: int | None, ratio: int | None, minimum: int | None, running: int) -> int | None:
    """A limit that grows with the running amount: max(running*ratio/100, minimum), capped by base."""
    if ratio is None or ratio <= 0:
        return base
    value = max(int(running * ratio / 100), 1 if minimum is None else minimum)
    return value if base is None else min(value, base)


class StatsMixin(DBModule):
    """get_worker_stats*, get_worker_limits, get_worker_ce_stats, get_worker_ce_backend_throughput."""

    @db_method(dict)
    def get_worker_stats(self, site_name: str) -> dict[str, dict[str, dict[str, int]]]:
        """{jobType: {resourceType: {running, submitted, finished, to_submit}}} for a site: a slot per
        pq_table row (``to_submit`` = its nNewWorkers), each worker of the site's queues counted once,
        under its own jobType and resourceType (none: ``ANY``)."""
        result: dict[str, dict[str, dict[str, int]]] = {}
        with self._tx(write=False):
            for _queue, job_type, resource_type, n_new in self._exec(
                    "SELECT queueName, jobType, resourceType, nNewWorkers FROM pq_table WHERE siteName=:s",
                    {":s": site_name}).fetchall():
                result.setdefault(job_type, {}).setdefault(resource_type, _new_counts(n_new))
            for status, job_type, resource_type, cnt in self._exec(
                    "SELECT status, COALESCE(jobType,'ANY'), COALESCE(resourceType,'ANY'), COUNT(*) FROM work_table "
                    "WHERE computingSite IN (SELECT queueName FROM pq_table WHERE siteName=:s) "
                    f"AND status IN {SQL_WORKERS_COUNTED} "
                    "GROUP BY status, COALESCE(jobType,'ANY'), COALESCE(resourceType,'ANY')",
                    {":s": site_name}).fetchall():
                result.setdefault(job_type, {}).setdefault(resource_type, _new_counts())[status] = cnt
        return result

    @db_method(dict)
    def get_worker_stats_bulk(self, active_ups_queues: Sequence[str] | None) -> dict[str, Any]:
        """{queue: {jobType: {resourceType: counts}}} for all queues (UPS queues always present); a
        worker without a jobType counts under ``ANY``. The Propagator reports it per PanDA queue
        (``worker_stats.by_panda_queue``)."""
        result: dict[str, Any] = {}
        with self._tx(write=False):
            for queue, job_type, resource_type, n_new in self._exec(
                    "SELECT queueName, jobType, resourceType, nNewWorkers FROM pq_table").fetchall():
                by_type = result.setdefault(queue, {}).setdefault(job_type, {})
                if resource_type and resource_type != "ANY":
                    by_type.setdefault(resource_type, _new_counts(n_new))
            for status, queue, job_type, resource_type, cnt in self._exec(
                    "SELECT status, computingSite, COALESCE(jobType,'ANY'), resourceType, COUNT(*) FROM work_table "
                    f"WHERE status IN {SQL_WORKERS_COUNTED} "
                    "GROUP BY status, computingSite, COALESCE(jobType,'ANY'), resourceType").fetchall():
                if resource_type and resource_type != "ANY":
                    result.setdefault(queue, {}).setdefault(job_type, {}).setdefault(
                        resource_type, _new_counts())[status] = cnt
        for queue in active_ups_queues or []:
            if not result.get(queue) or result[queue] == {"ANY": {}}:
                result[queue] = {"managed": {"SCORE": _new_counts()}}
        return result

    @db_method(dict)
    def get_worker_stats_full(self, filter_site_list: Sequence[str] | None = None) -> dict[str, Any]:
        """{queue: {jobType: {resourceType: {status: n, to_submit}}}} over all worker statuses."""
        result: dict[str, Any] = {}
        vm_q: dict[str, Any] = {}
        vm_w: dict[str, Any] = {}
        sql_q = "SELECT queueName, jobType, resourceType, nNewWorkers FROM pq_table"
        sql_w = "SELECT status, computingSite, jobType, resourceType, COUNT(*) FROM work_table"
        if filter_site_list is not None:
            sql_q += f" WHERE siteName IN ({in_binds('s', list(filter_site_list), vm_q)})"
            sql_w += f" WHERE computingSite IN ({in_binds('s', list(filter_site_list), vm_w)})"
        sql_w += " GROUP BY status, computingSite, jobType, resourceType"
        with self._tx(write=False):
            for queue, job_type, resource_type, n_new in self._exec(sql_q, vm_q).fetchall():
                result.setdefault(str(queue), {}).setdefault(str(job_type), {})[str(resource_type)] = \
                    _new_counts(n_new, with_finished=False)
            for status, queue, job_type, resource_type, cnt in self._exec(sql_w, vm_w).fetchall():
                result.setdefault(str(queue), {}).setdefault(str(job_type), {}).setdefault(
                    str(resource_type), _new_counts(with_finished=False))[str(status)] = cnt
        return result

    _LIMIT_COLS = "maxWorkers, nQueueLimitWorker, nQueueLimitWorkerRatio, nQueueLimitWorkerMax, nQueueLimitWorkerMin"

    def _limit_row(self, site_name: str, queue_config: Any = None) -> tuple[tuple[Any, ...] | None, int]:
        """(limit columns, number of resource types) for ``site_name``.

        As the original: the site's catch-all row (siteName=site_name, resourceType 'ANY') and
        its resource-type rows. Callers pass a queue name (the worker adjuster, plugins): for a
        pseudo-queue ``SITE/RT`` (siteName SITE, resourceType RT, no catch-all row) the queue's
        own row is used instead (the one of the queue config's resource type first), with the
        queue's own resource-type rows.
        """
        row = self._exec(f"SELECT {self._LIMIT_COLS} FROM pq_table WHERE siteName=:s AND resourceType='ANY' "
                         "AND (jobType='ANY' OR jobType IS NULL)", {":s": site_name}).fetchone()
        if row is not None:
            (n_rt,) = self._exec("SELECT COUNT(*) FROM pq_table WHERE siteName=:s AND resourceType!='ANY'",
                                 {":s": site_name}).fetchone()
            return tuple(row), max(1, n_rt)
        resource_type = getattr(queue_config, "resourceType", None) or "ANY"
        row = self._exec(f"SELECT {self._LIMIT_COLS} FROM pq_table WHERE queueName=:q "
                         "ORDER BY resourceType=:rt DESC, (jobType='ANY' OR jobType IS NULL) DESC, uniqueName LIMIT 1",
                         {":q": site_name, ":rt": resource_type}).fetchone()
        if row is None:
            return None, 1
        (n_rt,) = self._exec("SELECT COUNT(*) FROM pq_table WHERE queueName=:q AND resourceType!='ANY'",
                             {":q": site_name}).fetchone()
        return tuple(row), max(1, n_rt)

    @staticmethod
    def _worker_limits(row: Sequence[Any], n_running: int, n_rt: int) -> dict[str, Any]:
        max_workers, base, ratio, n_max, n_min = row
        if ratio is not None and ratio > 0:
            by_ratio = int(n_running * ratio / 100)
            minimum = 1 if n_min is None else n_min
            limit = max(by_ratio, minimum * n_rt)
            per_rt = max(by_ratio, minimum)
            if n_max is not None:
                limit, per_rt = min(limit, n_max), min(per_rt, n_max)
            if base is not None:
                limit, per_rt = min(limit, base), min(per_rt, base)
        elif base is not None:
            limit = per_rt = base
        else:
            limit = per_rt = max_workers
        if max_workers is not None and limit is not None:
            limit = min(limit, max_workers)
        return {"maxWorkers": max_workers, "nQueueLimitWorker": limit, "nQueueLimitWorkerPerRT": per_rt}

    @db_method(lambda: ({}, {}))
    def get_worker_limits(self, site_name: str, queue_config: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:
        """(limits, stats) of a queue.

        limits: maxWorkers, nQueueLimitWorker, nQueueLimitWorkerPerRT (dynamic with the Ratio/Min/Max
        attributes), nQueueWorkerCores / nQueueWorkerMemory (from the queue config's
        nQueueLimitWorkerCores*/nQueueLimitWorkerMemory*, None when unset).
        stats: {"queue": {"n", "core", "mem"}, "running": {"n", "core", "mem"}} of the queue's workers.
        """
        stats = {"queue": {"n": 0, "core": 0, "mem": 0}, "running": {"n": 0, "core": 0, "mem": 0}}
        with self._tx(write=False):
            row, n_rt = self._limit_row(site_name, queue_config)
            for status, cnt, cores, mem in self._exec(
                    "SELECT status, COUNT(*), SUM(COALESCE(nCore,1)), SUM(COALESCE(minRamCount,0)) FROM work_table "
                    f"WHERE computingSite=:s AND status IN {SQL_WORKERS_QUEUED_OR_RUNNING} GROUP BY status",
                    {":s": site_name}).fetchall():
                key = "running" if status == lifecycle.WORKER_RUNNING else "queue"
                stats[key]["n"] += cnt
                stats[key]["core"] += cores or 0
                stats[key]["mem"] += mem or 0
        limits: dict[str, Any] = {}
        if row is not None:
            limits = self._worker_limits(row, stats["running"]["n"], n_rt)
        for kind, key, stat in (("Cores", "nQueueWorkerCores", "core"), ("Memory", "nQueueWorkerMemory", "mem")):
            base = getattr(queue_config, f"nQueueLimitWorker{kind}", None) if queue_config is not None else None
            ratio = getattr(queue_config, f"nQueueLimitWorker{kind}Ratio", None) if queue_config is not None else None
            minimum = getattr(queue_config, f"nQueueLimitWorker{kind}Min", None) if queue_config is not None else None
            limits[key] = _dynamic_limit(base, ratio, minimum, stats["running"][stat]) \
                if (base is not None or ratio) else None
        make_logger(_logger, f"site_name={site_name}", method_name="get_worker_limits").debug(f"got {limits} {stats}")
        return limits, stats

    @db_method(dict)
    def get_worker_limits_old(self, site_name: str) -> dict[str, Any]:
        """The single-dict form of get_worker_limits (maxWorkers, nQueueLimitWorker, nQueueLimitWorkerPerRT)."""
        with self._tx(write=False):
            row, n_rt = self._limit_row(site_name)
            (n_running,) = self._exec("SELECT COUNT(*) FROM work_table WHERE computingSite=:s AND status=:running",
                                      {":s": site_name, ":running": lifecycle.WORKER_RUNNING}).fetchone()
        return {} if row is None else self._worker_limits(row, n_running, n_rt)

    @db_method(dict)
    def get_worker_ce_stats(self, site_name: str) -> dict[str, dict[str, int]]:
        """{computingElement: {running, submitted}} of a queue."""
        result: dict[str, dict[str, int]] = {}
        with self._tx(write=False):
            for status, ce, cnt in self._exec(
                    "SELECT status, computingElement, COUNT(*) FROM work_table WHERE computingSite=:s "
                    f"AND status IN {SQL_WORKERS_EVENT_FEEDABLE} GROUP BY status, computingElement",
                    {":s": site_name}).fetchall():
                result.setdefault(ce, {"running": 0, "submitted": 0})[status] = cnt
        return result

    @db_method(dict)
    def get_worker_ce_backend_throughput(self, site_name: str, time_window: float) -> dict[str, dict[str, int]]:
        """{computingElement: {submitted, running, finished}} of workers created before the middle of
        the window and started within it (or not started)."""
        end = naive_utcnow()
        start = end - datetime.timedelta(seconds=time_window)
        middle = end - datetime.timedelta(seconds=time_window / 2)
        result: dict[str, dict[str, int]] = {}
        with self._tx(write=False):
            for ce, status, cnt in self._exec(
                    "SELECT computingElement, status, COUNT(*) FROM work_table WHERE computingSite=:s "
                    f"AND status IN {SQL_WORKERS_COUNTED} AND creationTime<:mid "
                    "AND (startTime IS NULL OR (startTime>=:start AND startTime<:end)) "
                    "GROUP BY status, computingElement",
                    {":s": site_name, ":mid": middle, ":start": start, ":end": end}).fetchall():
                result.setdefault(ce, {"submitted": 0, "running": 0, "finished": 0})[status] = cnt
        return result
