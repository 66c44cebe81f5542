"""``SlurmSweeper``: cancels workers' batch jobs with ``scancel`` and removes their access points.

Killing is idempotent: a job that already ended, or that Slurm no longer knows, counts as
killed. ``kill_workers`` cancels all the workers' jobs in one ``scancel`` call.
Queue-config attributes: ``commandTimeout`` (seconds per Slurm command, default 60).
"""

from __future__ import annotations

from typing import Any

from pandaharvester.harvesterbatch.slurm import SlurmClient, SlurmError
from pandaharvester.harvestercore import log_utils

from .base_sweeper import BaseSweeper

_logger = log_utils.setup_logger("slurm_sweeper")


class SlurmSweeper(BaseSweeper):
    """scancel for kills; the access point (batch script, pilot files) removed by ``sweep_worker``."""

    def __init__(self, **kwarg: Any) -> None:
        self.commandTimeout = 60
        BaseSweeper.__init__(self, **kwarg)
        self.client = SlurmClient(float(self.commandTimeout))

    def kill_worker(self, workspec: Any) -> tuple[bool, str]:
        """Cancel one worker's batch job: (True, "") also when it already ended."""
        return self.kill_workers([workspec])[0]

    def kill_workers(self, workspec_list: list) -> list[tuple[bool, str]]:
        """Cancel the workers' batch jobs in one scancel call; [(bool, diag)] aligned with the list."""
        log = self.make_logger(_logger, f"queueName={getattr(self, 'queueName', None)}", method_name="kill_workers")
        batch_ids = list(dict.fromkeys(str(w.batchID) for w in workspec_list if w.batchID not in (None, "")))
        try:
            errors = self.client.cancel(batch_ids)
        except SlurmError as exc:
            log.error(f"scancel of {len(batch_ids)} jobs failed: {exc}")
            errors = {i: f"scancel failed: {exc}" for i in batch_ids}
        results = []
        for workspec in workspec_list:
            if workspec.batchID in (None, ""):
                results.append((True, "no batchID: nothing to cancel in Slurm"))
                continue
            error = errors.get(str(workspec.batchID))
            if error:
                log.error(f"workerID={workspec.workerID} batchID={workspec.batchID}: {error}")
                results.append((False, error))
            else:
                log.info(f"workerID={workspec.workerID} batchID={workspec.batchID} cancelled")
                results.append((True, ""))
        return results

    def sweep_worker(self, workspec: Any) -> tuple[bool, str]:
        """Remove the worker's access point (its batch script, pilot files and default logs)."""
        log = self.make_logger(_logger, f"workerID={workspec.workerID}", method_name="sweep_worker")
        return self.remove_access_point(workspec.get_access_point(), log)
