"""Base class of worker makers: how jobs map onto workers and how workers are sized."""

from __future__ import annotations

from typing import Any

from pandaharvester.harvestercore.plugin_base import PluginBase


class BaseWorkerMaker(PluginBase):
    """Answers the submitter's sizing questions from optional queue-config attributes."""

    def __init__(self, **kwarg: Any) -> None:
        PluginBase.__init__(self, **kwarg)

    def get_num_jobs_per_worker(self, n_workers: int) -> int:
        """Jobs per worker (``nJobsPerWorker``, default 1)."""
        return getattr(self, "nJobsPerWorker", 1)

    def get_num_workers_per_job(self, n_workers: int) -> int:
        """Workers running concurrently per job (``nWorkersPerJob``, default 1)."""
        return getattr(self, "nWorkersPerJob", 1)

    def num_ready_resources(self) -> int:
        """Resources ready for workers (``nReadyResources``, default 1)."""
        return getattr(self, "nReadyResources", 1)

    def get_max_workers_per_job_in_total(self) -> int:
        """Cap on workers ever made for one job (``maxWorkersPerJobInTotal``, default 10)."""
        return getattr(self, "maxWorkersPerJobInTotal", 10)

    def get_max_workers_per_job_per_cycle(self) -> int | None:
        """Cap on new workers per job per cycle (``maxWorkersPerJobPerCycle``, default None)."""
        return getattr(self, "maxWorkersPerJobPerCycle", None)
