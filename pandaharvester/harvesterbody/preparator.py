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
from pandaharvester.harvesterbody.stage_batch import (Outcomes, log_unwritten, queue_configs, relock, run_in_chunks,
                                                      run_locked)
from pandaharvester.harvesterconfig import harvester_config
from pandaharvester.harvestercore import core_utils, lifecycle
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
        run_in_chunks(to_check, lambda chunk: self._run_chunk(chunk, locked_by, cfg.lockInterval, self.check_job))
        to_trigger = self.dbProxy.get_jobs_in_sub_status(
            "fetched", cfg.maxJobsToTrigger, "preparatorTime", "lockedBy", cfg.triggerInterval, cfg.lockInterval,
            locked_by, "preparing", max_files_per_job=getattr(cfg, "maxFilesPerJobToPrepare", 0) or None) or []
        file_states: dict[str, dict] = {}
        run_in_chunks(to_trigger, lambda chunk: self._run_chunk(chunk, locked_by, cfg.lockInterval, self.trigger_job,
                                                                file_states))
        return len(to_check) >= cfg.maxJobsToCheck or len(to_trigger) >= cfg.maxJobsToTrigger

    def _run_chunk(self, jobs: list[Any], locked_by: str, lock_interval: float, step: Any, *extra: Any) -> list[Any]:
        """Re-lock the chunk's jobs in one transaction, run ``step`` job by job (exceptions stay
        per job), then write the results in one transaction (see :mod:`stage_batch`); returns
        the jobs not reached before half of ``lock_interval`` passed."""
        chunk_log = self.make_logger(_logger, f"thr={locked_by}", method_name=step.__name__)
        outcomes = Outcomes()
        pairs = []
        for job, queue_config in queue_configs(jobs, self.queueConfigMapper, chunk_log):
            plugin = self.pluginFactory.get_plugin(queue_config.preparator)
            if plugin is None:
                self.make_logger(_logger, f"PandaID={job.PandaID}", method_name=step.__name__).error(
                    f"no preparator plugin for {job.computingSite}")
            else:
                pairs.append((job, (queue_config, plugin)))
        locked = relock(self.dbProxy, pairs, "preparatorTime", "lockedBy", locked_by, outcomes)
        writes, left = run_locked(
            locked, lock_interval,
            lambda job: self.make_logger(_logger, f"PandaID={job.PandaID}", method_name=step.__name__),
            lambda job, found, log, mine: step(job, locked_by, log, found[1], found[0], mine, outcomes, *extra))
        if writes:
            log_unwritten(chunk_log, writes, len(self.dbProxy.update_jobs_each(writes)))
        outcomes.flush(chunk_log)
        return left

    # ------------------------------------------------------------------ outcomes
    @staticmethod
    def _release(job: Any, locked_by: str, old_sub_status: str, writes: list, update_in_file: bool = False) -> None:
        """Queue the job's write (unlocked) for the end of the chunk."""
        job.lockedBy = None
        writes.append((job, {"lockedBy": locked_by, "subStatus": old_sub_status}, update_in_file, False))

    def _fail(self, job: Any, locked_by: str, old_sub_status: str, diag: str, writes: list) -> None:
        lifecycle.change_job_status(job, lifecycle.JOB_FAILED, lifecycle.SUB_FAILED_TO_PREPARE)
        job.preparatorTime = None
        job.set_pilot_error(PilotErrors.STAGEINFAILED, f"stage-in failed with {diag}")
        job.trigger_propagation()
        self._release(job, locked_by, old_sub_status, writes)

    # ------------------------------------------------------------------ check
    def check_job(self, job: Any, locked_by: str, log: Any, plugin: Any, queue_config: Any, writes: list,
                  outcomes: Outcomes) -> None:
        old = job.subStatus
        method = "check_stage_in_status" if hasattr(plugin, "check_stage_in_status") else "check_status"
        ok, reply = self.call_plugin(log, plugin, method, job)
        status, diag = reply if ok else (None, reply)
        if status is None:
            outcomes.add("debug", f"still preparing: {diag}", job.PandaID)
            self._release(job, locked_by, old, writes)
        elif status is True:
            ok, reply = self.call_plugin(log, plugin, "resolve_input_paths", job)
            resolved, diag = reply if ok else (False, reply)
            if resolved is False:
                log.error(f"failed to resolve input file paths: {diag}")
                self._release(job, locked_by, old, writes)
                return
            job.subStatus = "prepared"
            job.preparatorTime = None
            job.set_all_input_ready()
            self._release(job, locked_by, old, writes, update_in_file=True)
            outcomes.add("info", "inputs ready", job.PandaID)
        else:
            log.error(f"stage-in failed: {diag}")
            self._fail(job, locked_by, old, diag, writes)

    # ------------------------------------------------------------------ trigger
    def trigger_job(self, job: Any, locked_by: str, log: Any, plugin: Any, queue_config: Any, writes: list,
                    outcomes: Outcomes, file_states: dict[str, dict]) -> None:
        old = job.subStatus
        if self.share_inputs(job, locked_by, queue_config.ddmEndpointIn, file_states.setdefault(
                str(queue_config.ddmEndpointIn), {})):
            outcomes.add("debug", "waiting: inputs are being prepared by another job", job.PandaID)
            self._release(job, locked_by, old, writes)
            return
        ok, reply = self.call_plugin(log, plugin, "trigger_preparation", job)
        status, diag = reply if ok else (None, reply)
        if status is True:
            job.subStatus = "preparing"
            job.preparatorTime = None
            self._release(job, locked_by, old, writes, update_in_file=True)
            outcomes.add("info", "stage-in triggered", job.PandaID)
        elif status is False:
            log.error(f"failed to trigger stage-in: {diag}")
            self._fail(job, locked_by, old, diag, writes)
        else:
            outcomes.add("debug", f"trigger later: {diag}", job.PandaID)
            self._release(job, locked_by, old, writes)

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
