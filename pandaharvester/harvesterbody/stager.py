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

from typing import Any

from pandaharvester.harvesterbody.agent_base import AgentBase, Step
from pandaharvester.harvesterbody.stage_batch import Outcomes, StageStep, log_unwritten
from pandaharvester.harvestercore import core_utils
from pandaharvester.harvestercore.job_spec import JobSpec
from pandaharvester.harvestercore.pilot_errors import PilotErrors
from pandaharvester.harvesterzipper.base_zipper import zip_setting

_logger = core_utils.setup_logger("stager")


class Stager(AgentBase):
    """Stage-out driver; see the module docstring."""

    cfg_section = "stager"
    batch_keys = ("maxJobsToCheck", "maxJobsToTrigger", "maxJobsToZip")

    def __init__(self, queue_config_mapper: Any, single_mode: bool = False):
        super().__init__(single_mode, queue_config_mapper=queue_config_mapper)

    def steps(self) -> list[Step]:
        lock = self.cfg("lockInterval")
        max_trigger, trigger_interval = self.cfg("maxJobsToTrigger"), self.cfg("triggerInterval")
        # (step, max jobs, interval, lock interval, subStatus, flag, bad flags, max files per job)
        table = (
            (self.check_job, self.cfg("maxJobsToCheck"), self.cfg("checkInterval"), lock, "transferring",
             JobSpec.HO_hasTransfer, None, self.cfg("maxFilesPerJobToCheck", 0)),
            (self.trigger_job, max_trigger, trigger_interval, lock, "to_transfer", JobSpec.HO_hasOutput,
             [JobSpec.HO_hasZipOutput, JobSpec.HO_hasPostZipOutput], self.cfg("maxFilesPerJobToTrigger", 0)),
            (self.zip_job, zip_setting("maxJobsToZip", max_trigger), zip_setting("zipInterval", trigger_interval),
             zip_setting("lockInterval", lock), "to_transfer", JobSpec.HO_hasZipOutput,
             [JobSpec.HO_hasOutput, JobSpec.HO_hasPostZipOutput], zip_setting("maxFilesPerJobToZip", 0)),
        )
        steps = []
        for run_one, max_jobs, interval, lock_interval, sub_status, flag, bad_flags, max_files in table:
            def pick(max_jobs=max_jobs, interval=interval, lock_interval=lock_interval, sub_status=sub_status,
                     flag=flag, bad_flags=bad_flags, max_files=max_files) -> list[Any]:
                return self.dbProxy.get_jobs_for_stage_out(max_jobs, interval, lock_interval, self.locked_by,
                                                           sub_status, flag, bad_flags,
                                                           max_files_per_job=max_files or None) or []

            stage = StageStep(self, run_one.__name__, run_one, self.write_jobs, "stagerTime", "stagerLock",
                              lock_interval)
            steps.append(stage.step(pick, max_jobs))
        return steps

    def write_jobs(self, writes: list, chunk_log: Any, outcomes: Outcomes) -> None:
        """Queue the chunk's results: one ``update_jobs_for_stage_out`` transaction, then each
        job's outcome with its new subStatus."""
        def written(_items: list[Any], statuses: list | None) -> None:
            log_unwritten(chunk_log, [job for job, _flag, _log, _msg in writes], statuses)
            for (job, _flag, log, message), new_sub_status in zip(writes, statuses or []):
                if message.startswith("stage-out failed"):
                    log.error(f"{message}; new subStatus={new_sub_status}")
                else:
                    outcomes.add("info", f"{message}; new subStatus={new_sub_status}", job.PandaID)

        self.writes.add("update_jobs_for_stage_out", [(job, flag) for job, flag, _log, _msg in writes],
                        self.locked_by, on_result=written)

    def _plugin(self, queue_config: Any, kind: str = "stager") -> Any:
        conf = getattr(queue_config, kind, None)
        return self.pluginFactory.get_plugin(conf) if conf else None

    def _ask(self, log: Any, plugin: Any, method: str, job: Any, role: str = "stager") -> tuple[Any, str]:
        ok, reply = self.call_plugin(log, plugin, method, job, role=role)
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
    def check_job(self, job: Any, queue_config: Any, log: Any, writes: list, outcomes: Outcomes) -> None:
        plugin = self._plugin(queue_config)
        method = "check_stage_out_status" if hasattr(plugin, "check_stage_out_status") else "check_status"
        status, diag = self._ask(log, plugin, method, job)
        if status is True:
            writes.append((job, True, log, "stage-out done"))
        elif status is False:
            self._fail(job, diag, log, writes)
        else:
            outcomes.add("debug", f"check later: {diag}", job.PandaID)

    def trigger_job(self, job: Any, queue_config: Any, log: Any, writes: list, outcomes: Outcomes) -> None:
        status, diag = self._ask(log, self._plugin(queue_config), "trigger_stage_out", job)
        if status is True:
            job.all_files_triggered_to_stage_out()
            writes.append((job, True, log, "stage-out triggered"))
        elif status is False:
            self._fail(job, diag, log, writes)
        else:
            outcomes.add("debug", f"trigger later: {diag}", job.PandaID)

    def zip_job(self, job: Any, queue_config: Any, log: Any, writes: list, outcomes: Outcomes) -> None:
        zipper = self._plugin(queue_config, "zipper")
        role = "zipper" if zipper is not None else "stager"
        status, diag = self._ask(log, zipper or self._plugin(queue_config), "zip_output", job, role)
        if status is True:
            job.all_files_zipped()
            writes.append((job, False, log, "outputs zipped"))
        else:
            log.warning(f"zip failed, retried later: {diag}")
