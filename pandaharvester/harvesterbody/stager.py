"""Stager: drives stage-out of job outputs (and zipping) with the queue's plugins.

Three steps per cycle, each over jobs picked by ``get_jobs_for_stage_out``:

- check: jobs ``transferring`` → ``check_stage_out_status``;
- trigger: jobs ``to_transfer`` with outputs → ``trigger_stage_out``;
- zip: jobs ``to_transfer`` whose outputs must be zipped first → ``zip_output`` (the queue's
  ``zipper`` plugin when it has one, else the stager plugin); its limits come from ``[zipper]``,
  key by key, else from ``[stager]`` (``base_zipper.zip_setting``).

True = done (``update_job_for_stage_out`` moves the job on), False = failed for good (files
not finished are failed, the job gets a stage-out error), None = not yet.
"""

from __future__ import annotations

from typing import Any, Callable

from pandaharvester.harvesterbody.agent_base import AgentBase
from pandaharvester.harvesterbody.stage_batch import (Outcomes, log_unwritten, queue_configs, relock, run_in_chunks,
                                                      run_locked)
from pandaharvester.harvesterconfig import harvester_config
from pandaharvester.harvestercore import core_utils
from pandaharvester.harvestercore.db_proxy_pool import DBProxyPool as DBProxy
from pandaharvester.harvestercore.job_spec import JobSpec
from pandaharvester.harvestercore.pilot_errors import PilotErrors
from pandaharvester.harvestercore.plugin_factory import PluginFactory
from pandaharvester.harvesterzipper.base_zipper import zip_setting

_logger = core_utils.setup_logger("stager")


class Stager(AgentBase):
    """Stage-out driver; see the module docstring."""

    cfg_section = "stager"
    batch_keys = ("maxJobsToCheck", "maxJobsToTrigger", "maxJobsToZip")

    def __init__(self, queue_config_mapper: Any, single_mode: bool = False):
        AgentBase.__init__(self, single_mode)
        self.dbProxy = DBProxy()
        self.queueConfigMapper = queue_config_mapper
        self.pluginFactory = PluginFactory()

    def run_cycle(self) -> bool:
        cfg = harvester_config.stager
        locked_by = f"stager-{self.get_pid()}"
        full = False
        steps = (
            ("check", cfg.maxJobsToCheck, cfg.checkInterval, "transferring", JobSpec.HO_hasTransfer, None,
             getattr(cfg, "maxFilesPerJobToCheck", 0), self.check_job, cfg.lockInterval),
            ("trigger", cfg.maxJobsToTrigger, cfg.triggerInterval, "to_transfer", JobSpec.HO_hasOutput,
             [JobSpec.HO_hasZipOutput, JobSpec.HO_hasPostZipOutput], getattr(cfg, "maxFilesPerJobToTrigger", 0),
             self.trigger_job, cfg.lockInterval),
            ("zip", zip_setting("maxJobsToZip", cfg.maxJobsToTrigger), zip_setting("zipInterval", cfg.triggerInterval),
             "to_transfer", JobSpec.HO_hasZipOutput, [JobSpec.HO_hasOutput, JobSpec.HO_hasPostZipOutput],
             zip_setting("maxFilesPerJobToZip", 0), self.zip_job, zip_setting("lockInterval", cfg.lockInterval)),
        )
        for _name, max_jobs, interval, sub_status, flag, bad_flags, max_files, step, lock in steps:
            jobs = self.dbProxy.get_jobs_for_stage_out(max_jobs, interval, lock, locked_by, sub_status,
                                                       flag, bad_flags, max_files_per_job=max_files or None) or []
            run_in_chunks(jobs, lambda chunk, step=step, lock=lock: self._run_chunk(chunk, locked_by, lock, step))
            full = full or len(jobs) >= max_jobs
        return full

    def _run_chunk(self, jobs: list[Any], locked_by: str, lock_interval: float,
                   step: Callable[..., None]) -> list[Any]:
        """Re-lock the chunk's jobs in one transaction, run ``step`` job by job (exceptions stay
        per job), then write the results in one transaction (see :mod:`stage_batch`); returns
        the jobs not reached before half of ``lock_interval`` passed."""
        chunk_log = self.make_logger(_logger, f"thr={locked_by}", method_name=step.__name__)
        outcomes = Outcomes()
        pairs = queue_configs(jobs, self.queueConfigMapper, chunk_log)
        locked = relock(self.dbProxy, pairs, "stagerTime", "stagerLock", locked_by, outcomes)
        writes, left = run_locked(
            locked, lock_interval,
            lambda job: self.make_logger(_logger, f"PandaID={job.PandaID}", method_name=step.__name__),
            lambda job, queue_config, log, mine: step(job, locked_by, log, queue_config, mine, outcomes))
        if writes:
            statuses = self.dbProxy.update_jobs_for_stage_out([(job, flag) for job, flag, _log, _msg in writes],
                                                              locked_by)
            log_unwritten(chunk_log, writes, len(statuses))
            for (job, _flag, log, message), new_sub_status in zip(writes, statuses):
                if message.startswith("stage-out failed"):
                    log.error(f"{message}; new subStatus={new_sub_status}")
                else:
                    outcomes.add("info", f"{message}; new subStatus={new_sub_status}", job.PandaID)
        outcomes.flush(chunk_log)
        return left

    def _plugin(self, queue_config: Any, kind: str = "stager") -> Any:
        conf = getattr(queue_config, kind, None)
        return self.pluginFactory.get_plugin(conf) if conf else None

    def _ask(self, log: Any, plugin: Any, method: str, job: Any) -> tuple[Any, str]:
        ok, reply = self.call_plugin(log, plugin, method, job)
        return reply if ok else (None, reply)

    @staticmethod
    def _fail(job: Any, diag: str, log: Any, writes: list) -> None:
        for file_spec in job.outFiles:
            if file_spec.status != "finished":
                file_spec.status = "failed"
        job.set_pilot_error(PilotErrors.STAGEOUTFAILED, f"stage-out failed with {diag}")
        job.trigger_propagation()
        writes.append((job, True, log, f"stage-out failed: {diag}"))

    # ------------------------------------------------------------------ steps
    # Each step queues ``(job, update_event_status, log, message)`` in ``writes``: the chunk's
    # results are written together once every plugin call of the chunk is done.
    def check_job(self, job: Any, locked_by: str, log: Any, queue_config: Any, writes: list,
                  outcomes: Outcomes) -> None:
        plugin = self._plugin(queue_config)
        method = "check_stage_out_status" if hasattr(plugin, "check_stage_out_status") else "check_status"
        status, diag = self._ask(log, plugin, method, job)
        if status is True:
            writes.append((job, True, log, "stage-out done"))
        elif status is False:
            self._fail(job, diag, log, writes)
        else:
            outcomes.add("debug", f"check later: {diag}", job.PandaID)

    def trigger_job(self, job: Any, locked_by: str, log: Any, queue_config: Any, writes: list,
                    outcomes: Outcomes) -> None:
        status, diag = self._ask(log, self._plugin(queue_config), "trigger_stage_out", job)
        if status is True:
            job.all_files_triggered_to_stage_out()
            writes.append((job, True, log, "stage-out triggered"))
        elif status is False:
            self._fail(job, diag, log, writes)
        else:
            outcomes.add("debug", f"trigger later: {diag}", job.PandaID)

    def zip_job(self, job: Any, locked_by: str, log: Any, queue_config: Any, writes: list,
                outcomes: Outcomes) -> None:
        zipper = self._plugin(queue_config, "zipper") or self._plugin(queue_config)
        status, diag = self._ask(log, zipper, "zip_output", job)
        if status is True:
            job.all_files_zipped()
            writes.append((job, False, log, "outputs zipped"))
        else:
            log.warning(f"zip failed, retried later: {diag}")
