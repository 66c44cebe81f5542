"""Preparator: drives stage-in of job inputs with the queue's preparator plugin.

Two steps per cycle:

- trigger: jobs just fetched (subStatus ``fetched``) move to ``preparing``; an input another
  job already has (or is preparing) is shared instead of staged twice; then
  ``trigger_preparation(job)``;
- check: jobs in ``preparing`` are asked ``check_stage_in_status(job)``; once True the plugin
  resolves the input paths and the job becomes ``prepared`` (ready for a worker).

Plugin answers: True = done, False = failed for good (job failed, ``failed_to_prepare``),
None = not yet (asked again after checkInterval/triggerInterval).
"""

from __future__ import annotations

from typing import Any

from pandaharvester.harvesterbody.agent_base import AgentBase
from pandaharvester.harvesterconfig import harvester_config
from pandaharvester.harvestercore import core_utils
from pandaharvester.harvestercore.db_proxy_pool import DBProxyPool as DBProxy
from pandaharvester.harvestercore.pilot_errors import PilotErrors
from pandaharvester.harvestercore.plugin_factory import PluginFactory

_logger = core_utils.setup_logger("preparator")


class Preparator(AgentBase):
    """Stage-in driver; see the module docstring."""

    cfg_section = "preparator"
    batch_keys = ("maxJobsToCheck", "maxJobsToTrigger")

    def __init__(self, communicator: Any, queue_config_mapper: Any, single_mode: bool = False):
        AgentBase.__init__(self, single_mode)
        self.dbProxy = DBProxy()
        self.communicator = communicator
        self.queueConfigMapper = queue_config_mapper
        self.pluginFactory = PluginFactory()

    def run_cycle(self) -> bool:
        cfg = harvester_config.preparator
        locked_by = f"preparator-{self.get_pid()}"
        to_check = self.dbProxy.get_jobs_in_sub_status(
            "preparing", cfg.maxJobsToCheck, "preparatorTime", "lockedBy", cfg.checkInterval, cfg.lockInterval,
            locked_by, max_files_per_job=getattr(cfg, "maxFilesPerJobToCheck", 0) or None,
            ng_file_status_list=["ready"]) or []
        for job in to_check:
            self._guarded(job, locked_by, self.check_job)
        to_trigger = self.dbProxy.get_jobs_in_sub_status(
            "fetched", cfg.maxJobsToTrigger, "preparatorTime", "lockedBy", cfg.triggerInterval, cfg.lockInterval,
            locked_by, "preparing", max_files_per_job=getattr(cfg, "maxFilesPerJobToPrepare", 0) or None) or []
        file_states: dict[str, dict] = {}
        for job in to_trigger:
            self._guarded(job, locked_by, self.trigger_job, file_states)
        return len(to_check) >= cfg.maxJobsToCheck or len(to_trigger) >= cfg.maxJobsToTrigger

    def _guarded(self, job: Any, locked_by: str, step: Any, *extra: Any) -> None:
        """Find the job's plugin, re-lock the job and run ``step``; exceptions stay per job."""
        log = self.make_logger(_logger, f"PandaID={job.PandaID}", method_name=step.__name__)
        try:
            config_id = job.configID if core_utils.dynamic_plugin_change() else None
            if not self.queueConfigMapper.has_queue(job.computingSite, config_id):
                log.error(f"no queue config for {job.computingSite}/{config_id}; job left for a later cycle")
                return
            queue_config = self.queueConfigMapper.get_queue(job.computingSite, config_id)
            plugin = self.pluginFactory.get_plugin(queue_config.preparator)
            if plugin is None:
                log.error(f"no preparator plugin for {job.computingSite}")
                return
            if not self.dbProxy.lock_job_again(job.PandaID, "preparatorTime", "lockedBy", locked_by):
                log.debug("skipped: locked by another thread")
                return
            step(job, locked_by, log, plugin, queue_config, *extra)
        except Exception:
            core_utils.dump_error_message(log)

    # ------------------------------------------------------------------ outcomes
    def _release(self, job: Any, locked_by: str, old_sub_status: str, **kwargs: Any) -> None:
        job.lockedBy = None
        self.dbProxy.update_job(job, {"lockedBy": locked_by, "subStatus": old_sub_status}, **kwargs)

    def _fail(self, job: Any, locked_by: str, old_sub_status: str, diag: str) -> None:
        job.status = "failed"
        job.subStatus = "failed_to_prepare"
        job.preparatorTime = None
        job.stateChangeTime = core_utils.naive_utcnow()
        job.set_pilot_error(PilotErrors.STAGEINFAILED, f"stage-in failed with {diag}")
        job.trigger_propagation()
        self._release(job, locked_by, old_sub_status)

    # ------------------------------------------------------------------ check
    def check_job(self, job: Any, locked_by: str, log: Any, plugin: Any, queue_config: Any) -> None:
        old = job.subStatus
        method = "check_stage_in_status" if hasattr(plugin, "check_stage_in_status") else "check_status"
        ok, reply = self.call_plugin(log, plugin, method, job)
        status, diag = reply if ok else (None, reply)
        if status is None:
            log.debug(f"still preparing: {diag}")
            self._release(job, locked_by, old)
        elif status is True:
            ok, reply = self.call_plugin(log, plugin, "resolve_input_paths", job)
            resolved, diag = reply if ok else (False, reply)
            if resolved is False:
                log.error(f"failed to resolve input file paths: {diag}")
                self._release(job, locked_by, old)
                return
            job.subStatus = "prepared"
            job.preparatorTime = None
            job.set_all_input_ready()
            self._release(job, locked_by, old, update_in_file=True)
            log.info("inputs ready")
        else:
            log.error(f"stage-in failed: {diag}")
            self._fail(job, locked_by, old, diag)

    # ------------------------------------------------------------------ trigger
    def trigger_job(self, job: Any, locked_by: str, log: Any, plugin: Any, queue_config: Any,
                    file_states: dict[str, dict]) -> None:
        old = job.subStatus
        if self.share_inputs(job, locked_by, queue_config.ddmEndpointIn, file_states.setdefault(
                str(queue_config.ddmEndpointIn), {})):
            log.debug("waiting: inputs are being prepared by another job")
            self._release(job, locked_by, old)
            return
        ok, reply = self.call_plugin(log, plugin, "trigger_preparation", job)
        status, diag = reply if ok else (None, reply)
        if status is True:
            job.subStatus = "preparing"
            job.preparatorTime = None
            self._release(job, locked_by, old, update_in_file=True)
            log.info("stage-in triggered")
        elif status is False:
            log.error(f"failed to trigger stage-in: {diag}")
            self._fail(job, locked_by, old, diag)
        else:
            log.debug(f"trigger later: {diag}")
            self._release(job, locked_by, old)

    def share_inputs(self, job: Any, locked_by: str, endpoint: Any, states: dict[str, dict]) -> bool:
        """Take over inputs already staged for other jobs; True when the job must wait for one."""
        changes = []
        wait = False
        for file_spec in job.inFiles:
            if file_spec.status != "preparing":
                continue
            if file_spec.lfn not in states:
                states[file_spec.lfn] = self.dbProxy.get_file_status(file_spec.lfn, "input", endpoint, "starting") or {}
            known = states[file_spec.lfn]
            if "ready" in known:
                file_spec.status = "ready"
                group = self.dbProxy.get_group_for_file(file_spec.lfn, "input", endpoint)
                if group is not None:
                    file_spec.groupID = group["groupID"]
                    file_spec.groupStatus = group["groupStatus"]
                    file_spec.groupUpdateTime = group["groupUpdateTime"]
            elif "to_prepare" in known:
                wait = True
                continue
            else:
                file_spec.status = "to_prepare"
            changes.append((file_spec.fileID, file_spec.lfn, file_spec.status))
            known[file_spec.status] = known.get(file_spec.status, 0) + 1
        if changes:
            self.dbProxy.change_file_status(job.PandaID, changes, locked_by)
        return wait
