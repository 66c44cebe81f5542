"""Simple worker maker: one worker for a chunk of jobs, sized from the jobs and the queue.

Queue information comes from CRIC (``PandaQueuesDict``: corecount, maxrss, maxtime, maxwdir,
capability, type); when CRIC knows nothing of the queue, the same-named attributes of the queue
config are used, else 1. Workers with jobs add up the jobs' cores and memory (``jobAttributesToUse``
chooses which job values count); workers without jobs (pull) get a prodSourceLabel drawn
with the queue's ``prodSourceLabelRandomWeightsPermille`` weights to set pilotType/jobType.
"""

from __future__ import annotations

import math
import random
from typing import Any

from pandaharvester.harvestercore import core_utils, log_utils
from pandaharvester.harvestercore.job_spec import JobSpec
from pandaharvester.harvestercore.time_utils import naive_utcnow
from pandaharvester.harvestercore.work_spec import WorkSpec

from .base_worker_maker import BaseWorkerMaker

_logger = log_utils.setup_logger("simple_worker_maker")

RESOURCE_TYPES = ("SCORE", "SCORE_HIMEM", "MCORE", "MCORE_HIMEM")
_CAPABILITY_TO_RTYPE = {"score": "SCORE", "himem": "SCORE_HIMEM", "mcore": "MCORE", "mcorehimem": "MCORE_HIMEM"}


def _queue_info(queue_name: str) -> tuple[dict, dict]:
    """(CRIC queue dict, harvester params) or ({}, {}) when CRIC data is unavailable."""
    try:
        from pandaharvester.harvestercore.info_dicts import PandaQueuesDict

        queues = PandaQueuesDict()
        return queues.get(queue_name, {}) or {}, queues.get_harvester_params(queue_name) or {}
    except Exception:
        return {}, {}


class SimpleWorkerMaker(BaseWorkerMaker):
    """Makes WorkSpecs from job chunks (push) or from nothing (pull)."""

    def __init__(self, **kwarg: Any) -> None:
        self.jobAttributesToUse = ["nCore", "minRamCount", "maxDiskCount", "maxWalltime", "ioIntensity"]
        BaseWorkerMaker.__init__(self, **kwarg)
        self.rt_mapper = None
        try:
            from pandaharvester.harvestercore.resource_type_mapper import ResourceTypeMapper

            self.rt_mapper = ResourceTypeMapper()
        except Exception:
            self.rt_mapper = None

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _queue_value(queue_dict: dict, queue_config: Any, key: str, default: Any) -> Any:
        value = queue_dict.get(key)
        if value in (None, 0, ""):
            value = getattr(queue_config, key, None)
        return value if value not in (None, 0, "") else default

    def get_job_core_and_memory(self, queue_dict: dict, job_spec: Any) -> tuple[int, int]:
        """(cores, memory MB) of a job; memory from the queue for unified queues when unset."""
        job_memory = job_spec.jobParams.get("minRamCount", 0) or 0
        job_corecount = job_spec.jobParams.get("coreCount", 1) or 1
        if not job_memory and queue_dict.get("capability", "") == "ucore":
            site_maxrss = queue_dict.get("maxrss", 0) or 0
            site_corecount = queue_dict.get("corecount", 1) or 1
            job_memory = int(math.ceil(site_maxrss / site_corecount)) if job_corecount == 1 else site_maxrss
        return int(job_corecount), int(job_memory)

    def get_job_type(self, job_spec: Any, job_type: str | None, queue_dict: dict,
                     tmp_prodsourcelabel: str | None = None) -> str | None:
        """prodSourceLabel of the worker: from the job (push), the requested type (UPS), or the queue."""
        queue_type = queue_dict.get("type")
        if job_spec is not None and "prodSourceLabel" in (job_spec.jobParams or {}):
            return job_spec.jobParams["prodSourceLabel"]
        if job_type and job_type != "ANY":
            if tmp_prodsourcelabel and queue_type != "analysis" and tmp_prodsourcelabel not in ("user", "panda",
                                                                                                   "managed"):
                return "managed"
            return job_type
        return {"analysis": "user", "production": "managed"}.get(queue_type)

    @staticmethod
    def capability_to_rtype(capability: str) -> str | None:
        """Resource type of a CRIC capability (score, himem, mcore, mcorehimem)."""
        return _CAPABILITY_TO_RTYPE.get(capability)

    def _requirements(self, resource_type: str, queue_dict: dict, queue_config: Any) -> tuple[int, int]:
        if self.rt_mapper is not None:
            try:
                return self.rt_mapper.calculate_worker_requirements(resource_type, queue_dict)
            except Exception:
                pass
        site_corecount = int(self._queue_value(queue_dict, queue_config, "corecount", 1))
        site_maxrss = int(self._queue_value(queue_dict, queue_config, "maxrss", 1))
        if resource_type.startswith("SCORE"):
            memory = site_maxrss if "HIMEM" in resource_type else int(math.ceil(site_maxrss / max(site_corecount, 1)))
            return 1, memory
        return site_corecount, site_maxrss

    # ------------------------------------------------------------------ the maker
    def make_worker(self, jobspec_list: list, queue_config: Any, job_type: str | None, resource_type: str | None,
                    prod_source_label: str | None = "ANY", **kwargs: Any) -> WorkSpec:
        """A new WorkSpec for ``jobspec_list`` (may be empty) on ``queue_config``'s queue."""
        def tmp_log() -> Any:
            return self.make_logger(_logger, f"queue={queue_config.queueName}:{job_type}:{resource_type}",
                                    method_name="make_worker")

        # not logged here: the WorkerMaker logs the new workers per batch, with their workerIDs and PandaIDs
        workspec = WorkSpec()
        workspec.creationTime = naive_utcnow()
        queue_dict, harvester_params = _queue_info(queue_config.queueName)
        is_ucore = queue_dict.get("capability", "") == "ucore"
        resource_type = resource_type or "ANY"
        if not is_ucore:
            workspec.nCore = int(self._queue_value(queue_dict, queue_config, "corecount", 1))
            workspec.minRamCount = int(self._queue_value(queue_dict, queue_config, "maxrss", 1))
        else:
            if not jobspec_list and resource_type not in RESOURCE_TYPES:
                tmp_log().warning(f"invalid resource type {resource_type!r} for a unified pull queue; using SCORE")
                resource_type = "SCORE"
            workspec.nCore, workspec.minRamCount = self._requirements(resource_type, queue_dict, queue_config)
        workspec.maxWalltime = self._queue_value(queue_dict, queue_config, "maxtime", 1)
        workspec.maxDiskCount = self._queue_value(queue_dict, queue_config, "maxwdir", 1)
        if jobspec_list:
            self._size_from_jobs(workspec, jobspec_list, queue_dict, harvester_params, is_ucore)
            workspec.pilotType = jobspec_list[0].get_pilot_type()
            workspec.jobType = self.get_job_type(jobspec_list[0], job_type, queue_dict)
        else:
            if prod_source_label and prod_source_label != "ANY":
                label = prod_source_label
            else:
                weights = getattr(queue_config, "prodSourceLabelRandomWeightsPermille", {}) or {}
                label = random.choice(core_utils.make_choice_list(pdpm=weights, default="managed"))
            fake_job = JobSpec()
            fake_job.jobParams = {"prodSourceLabel": label}
            workspec.pilotType = fake_job.get_pilot_type()
            workspec.jobType = self.get_job_type(None, job_type, queue_dict, label)
        queue_rtype = self.capability_to_rtype(queue_dict.get("capability", ""))
        if resource_type and resource_type != "ANY":
            workspec.resourceType = resource_type
        elif queue_rtype:
            workspec.resourceType = queue_rtype
        else:
            workspec.resourceType = "SCORE" if workspec.nCore == 1 else "MCORE"
        return workspec

    def _size_from_jobs(self, workspec: WorkSpec, jobspec_list: list, queue_dict: dict, params: dict,
                        is_ucore: bool) -> None:
        n_core = min_ram = max_disk = max_walltime = io_intensity = 0
        for jobspec in jobspec_list:
            cores, memory = self.get_job_core_and_memory(queue_dict, jobspec)
            n_core += cores
            min_ram += memory
            for key, total in (("maxDiskCount", "disk"), ("maxWalltime", "wall"), ("ioIntensity", "io")):
                try:
                    value = int(jobspec.jobParams[key] or 0)
                except (KeyError, TypeError, ValueError):
                    continue
                if total == "disk":
                    max_disk += value
                elif total == "wall":
                    max_walltime += value
                else:
                    io_intensity += value
        use = self.jobAttributesToUse
        if (n_core > 0 and "nCore" in use) or is_ucore:
            workspec.nCore = n_core
        if (min_ram > 0 and "minRamCount" in use) or is_ucore:
            workspec.minRamCount = min_ram
        if max_disk > 0 and ("maxDiskCount" in use or params.get("job_maxdiskcount") is True):
            workspec.maxDiskCount = max_disk
        if max_walltime > 0 and ("maxWalltime" in use or params.get("job_maxwalltime") is True):
            workspec.maxWalltime = max_walltime
        if io_intensity > 0 and ("ioIntensity" in use or params.get("job_iointensity") is True):
            workspec.ioIntensity = io_intensity
