"""Slurm monitors' common ``check_workers``, and ``SlurmMonitor`` (one ``scontrol show job`` per worker).

:class:`SlurmMonitorBase` asks Slurm about the workers' batch jobs in chunks (``query``, one
command per chunk: a chunk of one job for the per-worker monitors, up to ``bulk_size`` for
``SlurmBulkMonitor``), asks ``sacct`` about the jobs slurmctld no longer knows, and translates
every answer with the one table of ``harvesterbatch.slurm``. A command that fails
leaves those workers unchecked (status None and the error as diagnostic; the Monitor agent
keeps their status and checks them again); when it failed because Slurm is unreachable, the
rest of the cycle's chunks are not tried (each attempt would wait for the same timeout).
Output that cannot be read whole (``SlurmOutputError``) leaves unchecked only the workers whose
jobs it could not tell about. A job is taken as unknown to Slurm (and its worker failed, the rule
of ``harvesterbatch.slurm``) only when ``scontrol show job`` says so and accounting, asked
successfully, has no record: an empty or unreadable ``squeue``/``sacct`` answer is not enough.

Queue-config attributes: ``commandTimeout`` (seconds per Slurm command, default 60).
"""

from __future__ import annotations

from typing import Any

from pandaharvester.harvesterbatch.slurm import (
    FINAL_SLURM_STATES,
    AccountingUnavailable,
    JobRecord,
    SlurmClient,
    SlurmError,
    SlurmOutputError,
    worker_status,
)
from pandaharvester.harvestercore import core_utils, log_utils
from pandaharvester.harvestercore.plugin_base import PluginBase
from pandaharvester.harvestercore.work_spec import WorkSpec

_logger = log_utils.setup_logger("slurm_monitor")

_NO_NODE = ("", "(null)", "None", "None assigned", "n/a")


class SlurmMonitorBase(PluginBase):
    """``check_workers`` for the Slurm monitors; subclasses implement ``query``."""

    chunkSize = 1  # batch jobs per query

    def __init__(self, **kwarg: Any) -> None:
        self.commandTimeout = 60
        PluginBase.__init__(self, **kwarg)
        self.client = SlurmClient(float(self.commandTimeout))
        # set when the query itself already asked sacct (the bulk monitor in sacct mode)
        self.queryUsesAccounting = False
        # set when the query is scontrol show job itself (nothing to confirm)
        self.queryIsScontrol = False

    def query(self, batch_ids: list[str]) -> dict[str, JobRecord]:
        """{batch id: record} for the jobs Slurm knows; raises SlurmError when it cannot tell."""
        raise NotImplementedError

    def check_workers(self, workspec_list: list) -> tuple[bool, list[tuple[str | None, str]]]:
        """(True, [(new status or None, diag), ...]) aligned with ``workspec_list``."""
        return True, self.check_in_chunks(workspec_list, self.chunkSize)

    # ------------------------------------------------------------------ the cycle
    def check_in_chunks(self, workspec_list: list, chunk_size: int) -> list[tuple[str | None, str]]:
        """Query the workers' jobs ``chunk_size`` at a time, then translate each answer."""
        log = self.make_logger(_logger, f"queueName={getattr(self, 'queueName', None)}", method_name="check_workers")
        batch_ids = list(dict.fromkeys(str(w.batchID) for w in workspec_list if w.batchID not in (None, "")))
        records: dict[str, JobRecord] = {}
        errors: dict[str, str] = {}
        outage: str | None = None
        for chunk in core_utils.create_shards(batch_ids, max(int(chunk_size), 1)):
            if outage is not None:
                errors.update({i: f"not checked: Slurm unreachable earlier in this cycle ({outage})" for i in chunk})
                continue
            try:
                records.update(self.query(chunk))
            except SlurmOutputError as exc:
                self.unreadable(exc, records, errors, log)
            except SlurmError as exc:
                log.error(f"could not check batch jobs {chunk[:5]}{'...' if len(chunk) > 5 else ''}: {exc}")
                errors.update({i: f"could not check the Slurm job (will retry): {exc}" for i in chunk})
                if exc.transient:
                    outage = str(exc)
        missing = [i for i in batch_ids if i not in records and i not in errors]
        if missing and not self.queryUsesAccounting:
            self.ask_accounting(missing, records, errors, log)
        missing = [i for i in batch_ids if i not in records and i not in errors]
        if missing and outage is None and not self.queryIsScontrol:
            self.confirm_unknown(missing, records, errors, log)
        if outage is None:
            self.add_exit_codes(records, log)
        results = [self.translate(w, records, errors) for w in workspec_list]
        log.debug(f"checked {len(workspec_list)} workers: {len(records)} jobs known, {len(errors)} unchecked")
        return results

    @staticmethod
    def unreadable(exc: SlurmOutputError, records: dict[str, JobRecord], errors: dict[str, str], log: Any) -> None:
        """Use what malformed output said; its unreadable jobs are left unchecked with the reason."""
        ids = sorted(exc.unreadable)
        log.error(f"{exc}: {len(exc.records)} jobs read, {len(ids)} left unchecked {ids[:5]}"
                  f"{'...' if len(ids) > 5 else ''} (checked again next cycle)")
        records.update(exc.records)
        errors.update({i: f"could not read Slurm's answer about this job (will retry): {exc}" for i in ids})

    def confirm_unknown(self, missing: list[str], records: dict[str, JobRecord], errors: dict[str, str],
                        log: Any) -> None:
        """Jobs neither squeue nor sacct listed: unknown only if ``scontrol show job`` says so."""
        for batch_id in missing:
            try:
                record = self.client.show_job(batch_id)
            except SlurmOutputError as exc:
                self.unreadable(exc, records, errors, log)
                continue
            except SlurmError as exc:
                log.error(f"scontrol show job {batch_id} (listed by neither squeue nor sacct) failed: {exc}")
                errors[batch_id] = (f"Slurm job listed by neither squeue nor sacct, and scontrol failed "
                                    f"(will retry): {exc}")
                if exc.transient:
                    for other in missing:
                        errors.setdefault(other, errors[batch_id])
                    return
                continue
            if record is not None:
                log.warning(f"job {batch_id} listed by neither squeue nor sacct but scontrol knows it "
                            f"({record.state}): their output was incomplete")
                records[batch_id] = record

    def ask_accounting(self, missing: list[str], records: dict[str, JobRecord], errors: dict[str, str],
                       log: Any) -> None:
        """Look up in sacct the jobs slurmctld no longer knows (in one call)."""
        try:
            records.update(self.client.sacct(missing))
        except SlurmOutputError as exc:
            self.unreadable(exc, records, errors, log)
        except AccountingUnavailable as exc:
            log.debug(f"no accounting for {len(missing)} jobs unknown to slurmctld: {exc}")
        except SlurmError as exc:
            log.error(f"sacct failed for jobs unknown to slurmctld {missing[:5]}: {exc}")
            errors.update({i: f"Slurm job unknown to slurmctld and sacct failed (will retry): {exc}"
                           for i in missing})

    def add_exit_codes(self, records: dict[str, JobRecord], log: Any) -> None:
        """Exit codes of ended jobs squeue reported (it prints none): from sacct, else scontrol."""
        need = [r for r in records.values() if r.exit_code is None and r.state in FINAL_SLURM_STATES]
        if not need:
            return
        try:
            accounted = self.client.sacct([r.job_id for r in need])
        except SlurmOutputError as exc:
            log.warning(f"exit codes from sacct only in part: {exc}")
            accounted = exc.records
        except SlurmError as exc:
            log.debug(f"no exit codes from sacct: {exc}")
            accounted = {}
        for record in need:
            other = accounted.get(record.job_id)
            try:
                if other is None or other.state not in FINAL_SLURM_STATES:  # accounting lags a little
                    other = self.client.show_job(record.job_id)
            except SlurmError as exc:
                log.debug(f"no exit code for job {record.job_id}: {exc}")
                continue
            if other is not None:
                record.exit_code = other.exit_code

    @staticmethod
    def translate(workspec: Any, records: dict[str, JobRecord], errors: dict[str, str]) -> tuple[str | None, str]:
        """One worker's (status, diag); records nativeStatus, nativeExitCode and nodeID."""
        if workspec.batchID in (None, ""):
            return WorkSpec.ST_failed, "the worker has no batchID: it never reached Slurm"
        batch_id = str(workspec.batchID)
        if batch_id in errors:
            return None, errors[batch_id]
        record = records.get(batch_id)
        status, diag = worker_status(record, batch_id)
        if record is not None:
            workspec.nativeStatus = record.state
            if record.exit_status is not None and record.state != "PENDING":
                workspec.nativeExitCode = record.exit_status
            if record.nodes and record.nodes not in _NO_NODE:
                workspec.nodeID = record.nodes
        else:
            workspec.nativeStatus = "UNKNOWN"
        return status, diag


class SlurmMonitor(SlurmMonitorBase):
    """Checks each worker with ``scontrol show job`` (sacct for jobs slurmctld forgot)."""

    chunkSize = 1

    def __init__(self, **kwarg: Any) -> None:
        SlurmMonitorBase.__init__(self, **kwarg)
        self.queryIsScontrol = True

    def query(self, batch_ids: list[str]) -> dict[str, JobRecord]:
        found = {}
        for batch_id in batch_ids:
            record = self.client.show_job(batch_id)
            if record is not None:
                found[batch_id] = record
        return found
