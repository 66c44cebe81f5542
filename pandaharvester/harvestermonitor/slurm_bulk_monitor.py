"""``SlurmBulkMonitor``: one Slurm command per ``bulk_size`` workers instead of one per worker.

By default (as the original) it asks ``sacct`` (accounting: knows finished jobs for good, and
answers while slurmctld is down); jobs sacct does not list yet (accounting lags a second behind)
are asked from ``squeue`` in the same cycle. With ``use_squeue_monitor: true`` it asks ``squeue -t all``
and only jobs slurmctld forgot go to sacct. When accounting is disabled or sacct fails, squeue
answers instead. When sacct's output cannot be read whole, squeue is asked about the jobs it did
not tell; those neither could tell about are left unchecked (never taken as unknown to Slurm).
"""

from __future__ import annotations

from typing import Any

from pandaharvester.harvesterbatch.slurm import AccountingUnavailable, JobRecord, SlurmError, SlurmOutputError
from pandaharvester.harvestercore import log_utils

from .slurm_monitor import SlurmMonitorBase

_logger = log_utils.setup_logger("slurm_bulk_monitor")


class SlurmBulkMonitor(SlurmMonitorBase):
    """Bulk ``sacct`` (default) or ``squeue`` (``use_squeue_monitor``) queries."""

    def __init__(self, **kwarg: Any) -> None:
        self.use_squeue_monitor = False
        SlurmMonitorBase.__init__(self, **kwarg)
        self.use_squeue_monitor = bool(self.use_squeue_monitor)
        self.queryUsesAccounting = not self.use_squeue_monitor
        self._accounting_disabled = False

    def check_workers(self, workspec_list: list, bulk_size: int = 100) -> tuple[bool, list[tuple[str | None, str]]]:
        """(True, [(new status or None, diag), ...]); one Slurm command per ``bulk_size`` workers."""
        return True, self.check_in_chunks(workspec_list, bulk_size)

    def query(self, batch_ids: list[str]) -> dict[str, JobRecord]:
        if self.use_squeue_monitor or self._accounting_disabled:
            return self.client.squeue(batch_ids)
        unreadable: set[str] = set()
        why = ""
        try:
            records = self.client.sacct(batch_ids)
        except SlurmOutputError as exc:
            self.make_logger(_logger, method_name="query").warning(f"{exc}: asking squeue about the other jobs")
            records, unreadable, why = dict(exc.records), set(exc.unreadable), str(exc)
        except AccountingUnavailable as exc:
            self.make_logger(_logger, method_name="query").warning(f"{exc}: using squeue instead")
            self._accounting_disabled = True
            return self.client.squeue(batch_ids)
        except SlurmError as exc:
            self.make_logger(_logger, method_name="query").warning(f"sacct failed ({exc}): using squeue")
            return self.client.squeue(batch_ids)
        missing = [i for i in batch_ids if i not in records]
        if missing:
            try:
                records.update(self.client.squeue(missing))
            except SlurmOutputError as exc:
                records.update(exc.records)
                unreadable |= exc.unreadable
                why = f"{why}; {exc}" if why else str(exc)
        unreadable -= set(records)
        if unreadable:  # accounting's answer about them could not be read: not "unknown to Slurm"
            raise SlurmOutputError(why, records, unreadable)
        return records
