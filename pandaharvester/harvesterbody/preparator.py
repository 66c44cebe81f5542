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

from pandaharvester.harvesterbody.agent_base import AgentBase, Step
from pandaharvester.harvesterbody.stage_batch import Outcomes, StageStep, log_unwritten
from pandaharvester.harvestercore import core_utils, lifecycle
from pandaharvester.harvestercore.pilot_errors import PilotErrors

_logger = core_utils.setup_logger("preparator")


class Preparator(AgentBase):
    """Stage-in driver; see the module docstring."""

    cfg_section = "preparator"
    batch_keys = ("maxJobsToCheck", "maxJobsToTrigger")

    def __init__(self, communicator: Any, queue_config_mapper: Any, single_mode: bool = False):
        super().__init__(single_mode, queue_config_mapper=queue_config_mapper, communicator=communicator)

    def steps(self) -> list[Step]:
        lock_interval = self.cfg("lockInterval")
        file_states: dict[str, dict] = {}  # input file states per endpoint, shared by the cycle's triggers

        def stage(name: str, run_one: Any) -> StageStep:
            return StageStep(self, name, run_one, self.write_jobs, "preparatorTime", "lockedBy", lock_interval,
                             plugin_of=lambda queue_config: self.pluginFactory.get_plugin(queue_config.preparator))

        def trigger(job: Any, found: Any, log: Any, writes: list, outcomes: Outcomes) -> None:
            self.trigger_job(job, found, log, writes, outcomes, file_states)

        return [stage("check_job", self.check_job).step(self.pick_to_check, self.cfg("maxJobsToCheck")),
                stage("trigger_job", trigger).step(self.pick_to_trigger, self.cfg("maxJobsToTrigger"))]

    def pick_to_check(self) -> list[Any]:
        """Jobs in ``preparing`` due for a check, locked."""
        return self.dbProxy.get_jobs_in_sub_status(
            "preparing", self.cfg("maxJobsToCheck"), "preparatorTime", "lockedBy", self.cfg("checkInterval"),
            self.cfg("lockInterval"), self.locked_by, max_files_per_job=self.cfg("maxFilesPerJobToCheck", 0) or None,
            ng_file_status_list=["ready"]) or []

    def pick_to_trigger(self) -> list[Any]:
        """Jobs just fetched, locked and moved to ``preparing``."""
        return self.dbProxy.get_jobs_in_sub_status(
            "fetched", self.cfg("maxJobsToTrigger"), "preparatorTime", "lockedBy", self.cfg("triggerInterval"),
            self.cfg("lockInterval"), self.locked_by, "preparing",
            max_files_per_job=self.cfg("maxFilesPerJobToPrepare", 0) or None) or []

    def write_jobs(self, writes: list, log: Any, outcomes: Outcomes) -> None:
        """Queue the chunk's job writes: one ``update_jobs_each`` transaction."""
        self.writes.add("update_jobs_each", writes,
                        on_result=lambda items, replies: log_unwritten(log, [item[0] for item in items], replies))

    # ------------------------------------------------------------------ outcomes
    def _release(self, job: Any, old_sub_status: str, writes: list, update_in_file: bool = False) -> None:
        """Queue the job's write (unlocked) for the end of the chunk."""
        job.lockedBy = None
        writes.append((job, {"lockedBy": self.locked_by, "subStatus": old_sub_status}, update_in_file, False))

    def _fail(self, job: Any, old_sub_status: str, diag: str, writes: list) -> None:
        lifecycle.change_job_status(job, lifecycle.JOB_FAILED, lifecycle.SUB_FAILED_TO_PREPARE)
        job.preparatorTime = None
        job.set_pilot_error(PilotErrors.STAGEINFAILED, f"stage-in failed with {diag}")
        job.trigger_propagation()
        self._release(job, old_sub_status, writes)

    # ------------------------------------------------------------------ check
    def check_job(self, job: Any, found: tuple[Any, Any], log: Any, writes: list, outcomes: Outcomes) -> None:
        """Ask the plugin whether the job's inputs are there (``found``: its queue config and plugin)."""
        _queue_config, plugin = found
        old = job.subStatus
        method = "check_stage_in_status" if hasattr(plugin, "check_stage_in_status") else "check_status"
        ok, reply = self.call_plugin(log, plugin, method, job, role="preparator")
        status, diag = reply if ok else (None, reply)
        if status is None:
            outcomes.add("debug", f"still preparing: {diag}", job.PandaID)
            self._release(job, old, writes)
        elif status is True:
            ok, reply = self.call_plugin(log, plugin, "resolve_input_paths", job, role="preparator")
            resolved, diag = reply if ok else (False, reply)
            if resolved is False:
                log.error(f"failed to resolve input file paths: {diag}")
                self._release(job, old, writes)
                return
            job.subStatus = "prepared"
            job.preparatorTime = None
            job.set_all_input_ready()
            self._release(job, old, writes, update_in_file=True)
            outcomes.add("info", "inputs ready", job.PandaID)
        else:
            log.error(f"stage-in failed: {diag}")
            self._fail(job, old, diag, writes)

    # ------------------------------------------------------------------ trigger
    def trigger_job(self, job: Any, found: tuple[Any, Any], log: Any, writes: list, outcomes: Outcomes,
                    file_states: dict[str, dict]) -> None:
        """Share the inputs other jobs already have, else ask the plugin to start staging them in."""
        queue_config, plugin = found
        old = job.subStatus
        if self.share_inputs(job, self.locked_by, queue_config.ddmEndpointIn, file_states.setdefault(
                str(queue_config.ddmEndpointIn), {})):
            outcomes.add("debug", "waiting: inputs are being prepared by another job", job.PandaID)
            self._release(job, old, writes)
            return
        ok, reply = self.call_plugin(log, plugin, "trigger_preparation", job, role="preparator")
        status, diag = reply if ok else (None, reply)
        if status is True:
            job.subStatus = "preparing"
            job.preparatorTime = None
            self._release(job, old, writes, update_in_file=True)
            outcomes.add("info", "stage-in triggered", job.PandaID)
        elif status is False:
            log.error(f"failed to trigger stage-in: {diag}")
            self._fail(job, old, diag, writes)
        else:
            outcomes.add("debug", f"trigger later: {diag}", job.PandaID)
            self._release(job, old, writes)

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
