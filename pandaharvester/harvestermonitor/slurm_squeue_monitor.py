"""``SlurmSqueueMonitor``: checks each worker with ``squeue -j`` (sacct for jobs slurmctld forgot).

As the original, a worker whose access point holds a post-mortem file ``FINISHED`` (JSON with
``"worker_status": "finished"`` or ``"failed"``, written by the payload) gets that status without
asking Slurm; an unreadable file is ignored (Slurm is asked instead).
"""

from __future__ import annotations

import json
import os
from typing import Any

from pandaharvester.harvesterbatch.slurm import JobRecord
from pandaharvester.harvestercore.work_spec import WorkSpec

from .slurm_monitor import SlurmMonitorBase


class SlurmSqueueMonitor(SlurmMonitorBase):
    """Per-worker ``squeue``, with the payload's post-mortem file taking precedence."""

    _HARVESTER_POSTMORTEM_FILENAME = "FINISHED"
    chunkSize = 1

    def query(self, batch_ids: list[str]) -> dict[str, JobRecord]:
        return self.client.squeue(batch_ids)

    def check_workers(self, workspec_list: list) -> tuple[bool, list[tuple[str | None, str]]]:
        results: list[tuple[str | None, str] | None] = [self.postmortem_status(w) for w in workspec_list]
        to_ask = [w for w, r in zip(workspec_list, results) if r is None]
        asked = iter(self.check_in_chunks(to_ask, self.chunkSize))
        return True, [r if r is not None else next(asked) for r in results]

    def postmortem_status(self, workspec: Any) -> tuple[str, str] | None:
        """(status, "") from the post-mortem file, or None when there is none (or it is unreadable)."""
        access_point = workspec.get_access_point()
        if not access_point:
            return None
        path = os.path.join(access_point, self._HARVESTER_POSTMORTEM_FILENAME)
        try:
            with open(path) as stream:
                status = json.load(stream).get("worker_status")
        except (OSError, ValueError, AttributeError):
            return None
        if status in (WorkSpec.ST_finished, WorkSpec.ST_failed):
            return status, ""
        return None
