"""Stager: drives stage-out of job outputs (and zipping) with the queue's plugins.

Three steps per cycle, each over jobs picked by ``get_jobs_for_stage_out``:

- check: jobs ``transferring`` → ``check_stage_out_status``;
- trigger: jobs ``to_transfer`` with outputs → ``trigger_stage_out``;
- zip: jobs ``to_transfer`` whose outputs must be zipped first → ``zip_output`` (the queue's
  ``zipper`` plugin when it has one, else the stager plugin).

True = done (``update_job_for_stage_out`` moves the job on), False = failed for good (files
not finished are failed, the job gets a stage-out error), None = not yet.
"""

from __future__ import annotations

from typing import Any, Callable

from pandaharvester.harvesterbody.agent_base import AgentBase
from pandaharvester.harvesterconfig import harvester_config
from pandaharvester.harvestercore import core_utils
from pandaharvester.harvestercore.db_proxy_pool import DBProxyPool as DBProxy
from pandaharvester.harvestercore.job_spec import JobSpec
from pandaharvester.harvestercore.pilot_errors import PilotErrors
from pandaharvester.harvestercore.plugin_factory import PluginFactory

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
             getattr(cfg, "maxFilesPerJobToCheck", 0), self.check_job),
            ("trigger", cfg.maxJobsToTrigger, cfg.triggerInterval, "to_transfer", JobSpec.HO_hasOutput,
             [JobSpec.HO_hasZipOutput, JobSpec.HO_hasPostZipOutput], getattr(cfg, "maxFilesPerJobToTrigger", 0),
             self.trigger_job),
            ("zip", getattr(cfg, "maxJobsToZip", cfg.maxJobsToTrigger), getattr(cfg, "zipInterval", cfg.triggerInterval),
             "to_transfer", JobSpec.HO_hasZipOutput, [JobSpec.HO_hasOutput, JobSpec.HO_hasPostZipOutput],
             getattr(cfg, "maxFilesPerJobToZip", 0), self.zip_job),
        )
        for _name, max_jobs, interval, sub_status, flag, bad_flags, max_files, step in steps:
            jobs = self.dbProxy.get_jobs_for_stage_out(max_jobs, interval, cfg.lockInterval, locked_by, sub_status,
                                                       flag, bad_flags, max_files_per_job=max_files or None) or []
            for job in jobs:
                self._guarded(job, locked_by, step)
            full = full or len(jobs) >= max_jobs
        return full

    def _guarded(self, job: Any, locked_by: str, step: Callable[..., None]) -> None:
        """Find the job's queue config, re-lock the job and run ``step``; exceptions stay per job."""
        log = self.make_logger(_logger, f"PandaID={job.PandaID}", method_name=step.__name__)
        try:
            config_id = job.configID if core_utils.dynamic_plugin_change() else None
            if not self.queueConfigMapper.has_queue(job.computingSite, config_id):
                log.error(f"no queue config for {job.computingSite}/{config_id}; job left for a later cycle")
                return
            queue_config = self.queueConfigMapper.get_queue(job.computingSite, config_id)
            if not self.dbProxy.lock_job_again(job.PandaID, "stagerTime", "stagerLock", locked_by):
                log.debug("skipped: locked by another thread")
                return
            step(job, locked_by, log, queue_config)
        except Exception:
            core_utils.dump_error_message(log)

    def _plugin(self, queue_config: Any, kind: str = "stager") -> Any:
        conf = getattr(queue_config, kind, None)
        return self.pluginFactory.get_plugin(conf) if conf else None

    def _ask(self, log: Any, plugin: Any, method: str, job: Any) -> tuple[Any, str]:
        ok, reply = self.call_plugin(log, plugin, method, job)
        return reply if ok else (None, reply)

    def _fail(self, job: Any, locked_by: str, diag: str, log: Any) -> None:
        for file_spec in job.outFiles:
            if file_spec.status != "finished":
                file_spec.status = "failed"
        job.set_pilot_error(PilotErrors.STAGEOUTFAILED, f"stage-out failed with {diag}")
        job.trigger_propagation()
        new_sub_status = self.dbProxy.update_job_for_stage_out(job, True, locked_by)
        log.error(f"stage-out failed: {diag}; new subStatus={new_sub_status}")

    # ------------------------------------------------------------------ steps
    def check_job(self, job: Any, locked_by: str, log: Any, queue_config: Any) -> None:
        plugin = self._plugin(queue_config)
        method = "check_stage_out_status" if hasattr(plugin, "check_stage_out_status") else "check_status"
        status, diag = self._ask(log, plugin, method, job)
        if status is True:
            log.info(f"stage-out done; new subStatus={self.dbProxy.update_job_for_stage_out(job, True, locked_by)}")
        elif status is False:
            self._fail(job, locked_by, diag, log)
        else:
            log.debug(f"check later: {diag}")

    def trigger_job(self, job: Any, locked_by: str, log: Any, queue_config: Any) -> None:
        status, diag = self._ask(log, self._plugin(queue_config), "trigger_stage_out", job)
        if status is True:
            job.all_files_triggered_to_stage_out()
            log.info(f"stage-out triggered; new subStatus={self.dbProxy.update_job_for_stage_out(job, True, locked_by)}")
        elif status is False:
            self._fail(job, locked_by, diag, log)
        else:
            log.debug(f"trigger later: {diag}")

    def zip_job(self, job: Any, locked_by: str, log: Any, queue_config: Any) -> None:
        zipper = self._plugin(queue_config, "zipper") or self._plugin(queue_config)
        status, diag = self._ask(log, zipper, "zip_output", job)
        if status is True:
            job.all_files_zipped()
            log.info(f"outputs zipped; new subStatus={self.dbProxy.update_job_for_stage_out(job, False, locked_by)}")
        else:
            log.warning(f"zip failed, retried later: {diag}")
