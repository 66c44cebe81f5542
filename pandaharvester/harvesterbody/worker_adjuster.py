"""How many workers to submit per queue, job type and resource type in this cycle.

Not a thread: the Submitter calls :meth:`WorkerAdjuster.define_num_workers` with the counts
from ``DBProxy.get_queues_to_submit`` and gets the same nested map back with ``nNewWorkers``
filled in::

    {queueName: {jobType: {resourceType: {"nQueue": n, "nReady": n, "nRunning": n, "nNewWorkers": n}}}}

The rules, in order, for one (queue, job type, resource type) slot:

1. nothing when the queue is offline/standby/maintenance in PanDA, has no queue config, or
   its throttler says so (or raises); PanDA's data (``panda_queues.json``,
   ``job_statistics.json``) is looked up by the queue's name, else — a pseudo-queue
   ``PQ/RESOURCE_TYPE`` — by the unified PQ name (``siteName``);
2. in ``runMode == "slave"`` PanDA sets the queue depth (``SET_N_WORKERS_JOBTYPE`` → pq_table
   ``nNewWorkers``): the number of workers it wants queued, so new workers fill the queue up to
   it (the original added that many every cycle, bounded only by the limits); zero means none;
3. nothing when the queued workers reach ``nQueueLimitWorker``, all workers reach
   ``maxWorkers``, or queued cores/memory reach their limits;
4. otherwise fill the queue up to its limit; pull queues (``mapType == "NoJob"``) are limited
   to the activated jobs PanDA has for the queue, scaled by ``activateWorkerFactor``
   (``auto`` = 1 / number of Harvester instances serving the queue);
5. cap by ``maxNewWorkersPerCycle`` and ``[submitter] maxNewWorkers``; finally, for unified
   queues, the sum over resource types respects the queue-wide limits.
"""

from __future__ import annotations

import copy
import math
from typing import Any

from pandaharvester.harvesterbody.agent_base import AgentBase, AgentHelper
from pandaharvester.harvesterconfig.schema import cfg_value
from pandaharvester.harvestercore import core_utils

_logger = core_utils.setup_logger("worker_adjuster")

_DISABLED_QUEUE_STATES = ("offline", "standby", "maintenance")
ANY = "ANY"


class WorkerAdjuster(AgentHelper):
    """Defines the number of new workers per queue slot (see the module docstring).

    ``agent``: the owning agent (the Submitter), whose plugin factory, DB proxy and plugin calls
    it uses (:class:`AgentHelper`; ``WorkerAdjuster(queue_config_mapper)`` as in the original works too).
    """

    def __init__(self, queue_config_mapper: Any, agent: AgentBase | None = None):
        super().__init__(agent, queue_config_mapper)
        self.queue_configMapper = queue_config_mapper
        self.throttlerMap: dict[str, Any] = {}
        self.maxNewWorkers = cfg_value("submitter", "maxNewWorkers", None)
        factor = cfg_value("submitter", "activateWorkerFactor", 1.0)
        self.activate_worker_factor: float | str = factor if factor == "auto" else float(factor)
        self.no_pilots_when_no_active_jobs = bool(cfg_value("submitter", "noPilotsWhenNoActiveJobs", False))

    # ------------------------------------------------------------------ shared inputs
    def _cache_data(self, key: str) -> Any:
        spec = self.dbProxy.get_cache(key, None)
        return None if spec is None else spec.data

    def _throttler(self, queue_name: str, queue_config: Any) -> Any:
        if queue_name not in self.throttlerMap:
            conf = getattr(queue_config, "throttler", None)
            self.throttlerMap[queue_name] = self.pluginFactory.get_plugin(conf) if conf else None
        return self.throttlerMap[queue_name]

    @staticmethod
    def _panda_entry(data: dict | None, queue_name: str, queue_config: Any) -> Any:
        """The entry of a PanDA cache dict for the queue: by its name, else (pseudo-queue
        ``PQ/RESOURCE_TYPE``) by the unified PQ name PanDA knows it by (``siteName``)."""
        if not data:
            return None
        if queue_name in data:
            return data[queue_name]
        site_name = getattr(queue_config, "siteName", None)
        return data.get(site_name) if site_name else None

    def get_activate_worker_factor(self, site_name: str) -> float:
        """Share of PanDA's activated jobs this instance should cover for ``site_name``."""
        if self.activate_worker_factor != "auto":
            return float(self.activate_worker_factor)
        stats = self._cache_data("worker_statistics.json") or {}
        instances = stats.get(site_name) or {}
        return 1.0 / max(len(instances), 1)

    def _worker_requirements(self, resource_type: str, queue_config: Any) -> tuple[int, int]:
        """(cores, memory MB) one worker of ``resource_type`` asks for."""
        try:
            from pandaharvester.harvestercore.resource_type_mapper import ResourceTypeMapper

            cores, memory = ResourceTypeMapper().calculate_worker_requirements(resource_type, {})
            return max(int(cores or 1), 1), max(int(memory or 1), 1)
        except Exception:
            return 1, 1

    # ------------------------------------------------------------------ the rules
    def _blocked_reason(self, queue_name: str, queue_config: Any, queue_stat: dict, log: Any = _logger) -> str | None:
        """Why no worker may be submitted to the queue at all, or None. A throttler that raises or
        gives a reply of the wrong shape blocks its queue (fail safe); one of the original's older
        signature (``to_be_throttled(queue_config)``) is called so, without ``queue_config_mapper``."""
        if queue_config is None:
            return "no queue config for the queue"
        status = (self._panda_entry(queue_stat, queue_name, queue_config) or {}).get("status")
        if status in _DISABLED_QUEUE_STATES:
            return f"queue status in PanDA is {status}"
        throttler = self._throttler(queue_name, queue_config)
        if throttler is not None:
            ok, reply = self.agent.call_plugin(log, throttler, "to_be_throttled", queue_config,
                                               queue_config_mapper=self.queue_configMapper, role="throttler",
                                               queue=queue_name)
            if not ok:  # fail safe for this queue only: no new workers until the throttler answers
                return f"throttler failed: {reply}"
            throttled, message = reply
            if throttled:
                return f"throttled by {throttler.__class__.__name__}: {message}"
        return None

    def _n_activated_limit(self, queue_name: str, queue_config: Any, job_stats: dict | None,
                           counts: dict) -> int | None:
        """Pull queues: how many queued workers the activated jobs justify, None when unknown."""
        if job_stats is None:
            return None
        activated = (self._panda_entry(job_stats, queue_name, queue_config) or {}).get("activated")
        if activated is None:
            if self.no_pilots_when_no_active_jobs:
                return 0
            return max(1 - counts["nQueue"] - counts["nReady"] - counts["nRunning"], 0)
        site_name = getattr(queue_config, "siteName", None) or queue_name
        scaled = int(activated * self.get_activate_worker_factor(site_name))
        minimum = 0 if self.no_pilots_when_no_active_jobs and activated == 0 else 1
        return max(scaled, minimum)

    def _n_new_for_slot(self, queue_name: str, queue_config: Any, resource_type: str, counts: dict,
                        limits: dict, queued: dict, job_stats: dict | None, log: Any) -> int:
        n_queue, n_ready, n_running = counts["nQueue"], counts["nReady"], counts["nRunning"]
        max_workers = limits.get("maxWorkers") or 0
        queue_limit = limits.get("nQueueLimitWorker") or 0
        cores_limit = limits.get("nQueueWorkerCores")
        memory_limit = limits.get("nQueueWorkerMemory")
        panda_defined = counts.get("nNewWorkers") if queue_config.runMode == "slave" else None
        if panda_defined is not None and panda_defined <= 0:
            log.debug("no new workers: PanDA set 0 in slave mode")
            return 0
        if n_queue >= queue_limit > 0:
            log.debug(f"no new workers: nQueue={n_queue} >= nQueueLimitWorker={queue_limit}")
            return 0
        if n_queue + n_ready + n_running >= max_workers > 0:
            log.debug(f"no new workers: {n_queue + n_ready + n_running} workers >= maxWorkers={max_workers}")
            return 0
        if cores_limit is not None and queued["core"] >= cores_limit:
            log.debug(f"no new workers: queued cores {queued['core']} >= {cores_limit}")
            return 0
        if memory_limit is not None and queued["mem"] >= memory_limit:
            log.debug(f"no new workers: queued memory {queued['mem']} MB >= {memory_limit} MB")
            return 0
        target = queue_limit if queue_limit > 0 else None
        if panda_defined is not None:
            # the number PanDA sets is the depth: how many workers it wants queued
            target = min(panda_defined, target) if target is not None else panda_defined
        elif queue_config.mapType == "NoJob":
            activated = self._n_activated_limit(queue_name, queue_config, job_stats, counts)
            if activated is not None:
                target = min(activated, target) if target is not None else activated
        if target is None:
            target = 1
        n_new = max(target - n_queue, 0)
        if max_workers > 0:
            n_new = min(n_new, max(max_workers - n_queue - n_ready - n_running, 0))
        cores, memory = self._worker_requirements(resource_type, queue_config)
        if cores_limit:
            n_new = min(n_new, math.ceil(max(cores_limit - queued["core"], 0) / cores))
        if memory_limit:
            n_new = min(n_new, math.ceil(max(memory_limit - queued["mem"], 0) / memory))
        return n_new

    def _cap_per_cycle(self, n_new: int, queue_config: Any) -> int:
        if queue_config.maxNewWorkersPerCycle and queue_config.maxNewWorkersPerCycle > 0:
            n_new = min(n_new, queue_config.maxNewWorkersPerCycle)
        if self.maxNewWorkers:
            n_new = min(n_new, self.maxNewWorkers)
        return n_new

    def _respect_queue_totals(self, slots: dict, queue_config: Any, limits: dict, log: Any) -> None:
        """Unified queues: scale resource-type slots so their sum respects queue-wide limits."""
        real = [(jt, rt) for jt in slots for rt in slots[jt] if jt != ANY and rt != ANY]
        if len(real) < 2:
            return
        totals = {k: sum(slots[jt][rt][k] for jt, rt in real) for k in ("nQueue", "nReady", "nRunning")}
        wanted = sum(slots[jt][rt]["nNewWorkers"] for jt, rt in real)
        cap = wanted
        queue_limit = limits.get("nQueueLimitWorker") or 0
        max_workers = limits.get("maxWorkers") or 0
        if queue_limit > 0:
            cap = min(cap, max(queue_limit - totals["nQueue"], 0))
        if max_workers > 0:
            cap = min(cap, max(max_workers - sum(totals.values()), 0))
        cap = self._cap_per_cycle(cap, queue_config)
        if wanted <= cap:
            return
        log.debug(f"scaling {wanted} new workers over resource types down to {cap}")
        shares = []
        for jt, rt in real:
            share, remainder = divmod(slots[jt][rt]["nNewWorkers"] * cap, wanted)
            slots[jt][rt]["nNewWorkers"] = share
            shares.append((remainder, jt, rt))
        left = cap - sum(slots[jt][rt]["nNewWorkers"] for jt, rt in real)
        for _remainder, jt, rt in sorted(shares, key=lambda item: item[0], reverse=True)[:left]:
            slots[jt][rt]["nNewWorkers"] += 1

    # ------------------------------------------------------------------ entry point
    def define_num_workers(self, static_num_workers: dict, site_name: str) -> dict | None:
        """Fill ``nNewWorkers`` in a copy of ``static_num_workers``; None on error."""
        log = core_utils.make_logger(_logger, f"site={site_name}", method_name="define_num_workers")
        result = copy.deepcopy(static_num_workers)
        try:
            queue_stat = self._cache_data("panda_queues.json") or {}
            job_stats = self._cache_data("job_statistics.json")
            for queue_name, by_job_type in result.items():
                queue_config = self.queue_configMapper.get_queue(queue_name)
                blocked = self._blocked_reason(queue_name, queue_config, queue_stat, log)
                if blocked is not None:
                    log.debug(f"queue={queue_name} no new workers: {blocked}")
                    for by_resource in by_job_type.values():
                        for counts in by_resource.values():
                            counts["nNewWorkers"] = 0
                    continue
                limits, stats = self.dbProxy.get_worker_limits(queue_name, queue_config)
                queued = (stats or {}).get("queue") or {"core": 0, "mem": 0}
                for job_type, by_resource in by_job_type.items():
                    for resource_type, counts in by_resource.items():
                        slot_log = core_utils.make_logger(
                            _logger, f"queue={queue_name} jobType={job_type} resourceType={resource_type}",
                            method_name="define_num_workers")
                        n_new = self._n_new_for_slot(queue_name, queue_config, resource_type, counts, limits,
                                                     queued, job_stats, slot_log)
                        counts["nNewWorkers"] = self._cap_per_cycle(n_new, queue_config)
                self._respect_queue_totals(by_job_type, queue_config, limits, log)
            log.debug(f"defined {result}")
            return result
        except Exception:
            core_utils.dump_error_message(log)
            return None
