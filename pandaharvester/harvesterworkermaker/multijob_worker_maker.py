"""Multi-job worker maker: one worker runs several jobs, one job per node (HPC style).

Queue-config attributes: ``executor`` (e.g. "aprun"; with aprun the node/core layout is put on
the command line), ``pilot`` (the payload launcher), ``pilot_params``, ``env`` (", "-separated
environment lines); ``submitter.nCorePerNode`` sizes the worker; the queue's ``walltimeLimit``
bounds it.
"""

from __future__ import annotations

from typing import Any

from pandaharvester.harvestercore import log_utils
from pandaharvester.harvestercore.work_spec import WorkSpec

from .base_worker_maker import BaseWorkerMaker

_logger = log_utils.setup_logger("multijob_worker_maker")


class MultiJobWorkerMaker(BaseWorkerMaker):
    """Makes one worker for all jobs of a chunk."""

    def __init__(self, **kwarg: Any) -> None:
        self.executor = ""
        self.pilot = ""
        self.pilot_params: str | None = None
        self.env: str | None = None
        BaseWorkerMaker.__init__(self, **kwarg)

    def _get_executable(self, queue_config: Any) -> str:
        """Body of the batch script: environment lines and the executor command."""
        tmp_log = self.make_logger(_logger, method_name="_get_executable")
        env_str = ""
        if self.env not in (None, "NULL"):
            env_str = "\n".join(part.strip() for part in self.env.split(", "))
        try:
            if self.executor == "aprun":
                n_core_per_node = queue_config.submitter["nCorePerNode"]
                exe_str = f"{self.executor} -n {self.nJobsPerWorker} -d {n_core_per_node} {self.pilot}"
            else:
                exe_str = f"{self.executor} {self.pilot}".strip()
            if self.pilot_params:
                exe_str = f"{exe_str} {self.pilot_params}"
        except Exception as exc:
            tmp_log.error(f"cannot build the executor command ({exc}); check executor/pilot/submitter.nCorePerNode")
            exe_str = ""
        return "\n".join([env_str, exe_str])

    def make_worker(self, jobspec_list: list, queue_config: Any, job_type: str | None, resource_type: str | None,
                    prod_source_label: str | None = "ANY", **kwargs: Any) -> WorkSpec:
        """A worker for all of ``jobspec_list`` (nCorePerNode cores per job)."""
        tmp_log = self.make_logger(_logger, f"queue={queue_config.queueName}", method_name="make_worker")
        workspec = WorkSpec()
        self.nJobsPerWorker = len(jobspec_list)
        tmp_log.debug(f"worker for {self.nJobsPerWorker} jobs")
        if self.nJobsPerWorker > 0:
            submitter_conf = getattr(queue_config, "submitter", None) or {}
            workspec.nCore = int(submitter_conf.get("nCorePerNode", 1)) * self.nJobsPerWorker
            workspec.minRamCount = 0
            workspec.maxDiskCount = 0
            workspec.maxWalltime = getattr(queue_config, "walltimeLimit", None) or 0
            for jobspec in jobspec_list:
                try:
                    workspec.minRamCount = max(workspec.minRamCount, int(jobspec.jobParams["minRamCount"]))
                except (KeyError, TypeError, ValueError):
                    pass
                try:
                    workspec.maxDiskCount += int(jobspec.jobParams["maxDiskCount"])
                except (KeyError, TypeError, ValueError):
                    pass
            workspec.workParams = {"executable": self._get_executable(queue_config)}
        if resource_type and resource_type != "ANY":
            workspec.resourceType = resource_type
        return workspec
