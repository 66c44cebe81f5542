"""Worker statistics as PanDA takes them: one report per PanDA queue.

``harvester/report_worker_statistics`` replaces everything PanDA holds for (instance, queue) with
the report, ``{jobType: {resourceType: {status: n}}}``. The pseudo-queues ``PQ/SCORE``,
``PQ/MCORE`` of a unified queue are one PanDA queue ``PQ`` (the name PanDA's SET_N_WORKERS_JOBTYPE
commands carry), so their statistics go out merged, as one report under ``PQ``.
"""

from __future__ import annotations

from typing import Any, Callable

from .queue_config import split_pseudo_queue_name


def panda_queue_name(queue_name: str, queue_config: Any = None) -> str:
    """The PanDA queue a Harvester queue reports under: a pseudo-queue ``PQ/RT``'s siteName
    (``PQ`` unless its config says otherwise), else the queue's own name (as the original)."""
    site_name, resource_type = split_pseudo_queue_name(queue_name)
    if resource_type is None:
        return queue_name
    return getattr(queue_config, "siteName", None) or site_name


def merge_worker_stats(into: dict[str, Any], stats: dict[str, Any]) -> dict[str, Any]:
    """Add ``stats`` ({jobType: {resourceType: {status: n}}}) into ``into``, summing the counts of
    a (jobType, resourceType, status) both hold (None counts as 0 there); returns ``into``."""
    for job_type, by_resource in stats.items():
        target_jt = into.setdefault(job_type, {})
        for resource_type, counts in by_resource.items():
            target = target_jt.setdefault(resource_type, {})
            for status, n in counts.items():
                target[status] = (target[status] or 0) + (n or 0) if status in target else n
    return into


def by_panda_queue(stats: dict[str, Any], queue_config_of: Callable[[str], Any]) -> dict[str, Any]:
    """``{harvester queue: stats}`` (``get_worker_stats_bulk``) as ``{PanDA queue: merged stats}``."""
    out: dict[str, Any] = {}
    for queue_name, queue_stats in stats.items():
        name = panda_queue_name(queue_name, queue_config_of(queue_name))
        merge_worker_stats(out.setdefault(name, {}), queue_stats or {})
    return out
