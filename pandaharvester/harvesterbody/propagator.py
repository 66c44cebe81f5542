"""Propagator: reports jobs, workers, worker statistics, service metrics and dialogs to PanDA.

Two steps (the base's batch skeleton), then the reports. Jobs come from
``get_jobs_to_propagate``: a running job is due every ``updateInterval`` seconds (the 30-minute
heartbeat), a job whose state changed is due at once (``trigger_propagation``); workers from
``get_workers_to_propagate``. Each chunk (``nJobsInBulk`` jobs, ``nWorkersInBulk`` workers) is one
request to PanDA, then one DB write of what PanDA accepted. A job PanDA acknowledged in a final
state is never sent again (``propagatorTime`` unset, subStatus ``done``); a ``tobekilled`` command
in the reply marks the job's workers to kill. Then commands, worker statistics, service metrics
and dialogs.
"""

from __future__ import annotations

import datetime
import logging
from typing import Any

from pandaharvester.harvesterbody.agent_base import AgentBase, Step
from pandaharvester.harvesterbody.panda_reports import PandaReports
from pandaharvester.harvestercore import core_utils, lifecycle
from pandaharvester.harvestercore.log_utils import ids_text
from pandaharvester.harvestercore.pilot_errors import PilotErrors

_logger = core_utils.setup_logger("propagator")

# statuses whose heartbeat a true-pilot queue without its own noHeartbeat list suppresses
_TRUE_PILOT_SUPPRESSED = ["running", "transferring", "finished", "failed"]


class Propagator(PandaReports, AgentBase):
    """Reports to PanDA; see the module docstring (the reports besides jobs and workers: :mod:`panda_reports`)."""

    cfg_section = "propagator"
    batch_keys = ("maxJobs", "maxWorkers")

    def __init__(self, communicator: Any, queue_config_mapper: Any, single_mode: bool = False):
        super().__init__(single_mode, queue_config_mapper=queue_config_mapper, communicator=communicator)
        self._last_metrics_update: datetime.datetime | None = None  # see panda_reports

    def bootstrap(self) -> None:
        self.dbProxy.clean_service_metrics()

    def steps(self) -> list[Step]:
        max_jobs, max_workers = self.cfg("maxJobs"), self.cfg("maxWorkers")
        suppressed: dict[str, list[str]] = {}  # no-heartbeat states per site: one queue-config look-up a cycle
        return [Step("propagate_jobs", self.pick_jobs, lambda chunk: self.propagate_jobs(chunk, suppressed),
                     self.cfg("nJobsInBulk"), full=lambda jobs: len(jobs) >= max_jobs),
                Step("propagate_workers", self.pick_workers, self.propagate_workers, self.cfg("nWorkersInBulk"),
                     full=lambda workers: len(workers) >= max_workers)]

    def run_cycle(self) -> bool:
        full = super().run_cycle()
        self.send_reports()
        return full

    # ------------------------------------------------------------------ jobs
    def pick_jobs(self) -> list[Any]:
        """The jobs due for an update, locked (propagatorLock)."""
        jobs = self.dbProxy.get_jobs_to_propagate(self.cfg("maxJobs"), self.cfg("lockInterval"),
                                                  self.cfg("updateInterval"), self.locked_by) or []
        self.make_logger(_logger, f"id={self.locked_by}", method_name="propagate_jobs").debug(f"got {len(jobs)} jobs")
        return jobs

    def propagate_jobs(self, chunk: list[Any], suppressed: dict[str, list[str]]) -> None:
        """Send one chunk of jobs (heartbeats a queue suppresses are only checked, or skipped) and
        queue the answered ones for one DB write."""
        to_skip, to_check, to_update = [], [], []
        for job in chunk:
            states = suppressed.get(job.computingSite)
            if states is None:
                states = suppressed[job.computingSite] = self._no_heartbeat_states(job)
            if job.get_status() in states and not job.not_suppress_heartbeat():
                (to_check if job.status == "running" else to_skip).append(job)
            else:
                to_update.append(job)
        replies = [{"StatusCode": 0, "command": None} for _ in to_skip]
        replies += list(self.communicator.check_jobs(to_check)) if to_check else []
        replies += list(self.communicator.update_jobs(to_update, self.locked_by)) if to_update else []
        sent = {id(job) for job in to_update}
        outcomes: dict[tuple, list[Any]] = {}
        answered = [job for job, reply in zip(to_skip + to_check + to_update, replies)
                    if self.apply_job_reply(job, reply or {}, id(job) in sent, outcomes)]
        self.log_outcomes(outcomes)
        # the answered jobs of the chunk in one transaction (one per job cost more than the HTTP call)
        self.writes.update_jobs(answered, {"propagatorLock": self.locked_by}, update_out_file=True,
                                on_result=self._jobs_written)

    def _jobs_written(self, jobs: list[Any], n_rows: list | None) -> None:
        if n_rows is None:
            self.make_logger(_logger, f"id={self.locked_by}", method_name="propagate_jobs").error(
                f"{len(jobs)} answered jobs not updated in the DB (see panda-db_proxy.log): they stay locked and "
                f"are sent again after [propagator] lockInterval")

    def _no_heartbeat_states(self, job: Any) -> list[str]:
        queue_config = self.queue_config(job.computingSite, job.configID)
        return queue_config.get_no_heartbeat_status() if queue_config else list(_TRUE_PILOT_SUPPRESSED)

    def apply_job_reply(self, job: Any, reply: dict, was_sent: bool, outcomes: dict[tuple, list[Any]]) -> bool:
        """Apply what PanDA answered to the job (propagator lock released, final jobs done, kills);
        False when PanDA refused it: the job is not written and stays locked. The job's DEBUG line
        is collected in ``outcomes`` ({(what, status, subStatus): [PandaID, ...]}, logged by
        :meth:`log_outcomes`)."""
        if reply.get("StatusCode") != 0:
            # left locked: it becomes due again after lockInterval, so nothing is lost
            self._job_logger(job).error(f"failed to update status={job.status}: {reply.get('ErrorDiag', reply)}")
            return False
        outcomes.setdefault(("updated" if was_sent else "skipped", job.status, job.subStatus), []).append(job.PandaID)
        job.propagatorLock = None
        if job.is_final_status() and job.status == job.get_status():
            job.propagatorTime = None
            job.subStatus = "done"
            job.modificationTime = core_utils.naive_utcnow()
        elif job.is_final_status() and not job.all_events_done():
            job.trigger_propagation()
        else:
            command = reply.get("command")
            if job.status == "starting" and self._no_events_left(job, self._job_logger(job)):
                command = "tobekilled"
            if command == "tobekilled":
                self.kill_job(job, self._job_logger(job))
        return True

    def _job_logger(self, job: Any) -> Any:
        return self.make_logger(_logger, f"PandaID={job.PandaID}", method_name="record_job_reply")

    def log_outcomes(self, outcomes: dict[tuple, list[Any]]) -> None:
        """One DEBUG line per (updated/skipped, status, subStatus) with the PandaIDs concerned."""
        if not outcomes or not _logger.isEnabledFor(logging.DEBUG):
            return
        log = self.make_logger(_logger, method_name="record_job_reply")
        for (what, status, sub_status), ids in outcomes.items():
            log.debug(f"{what} status={status} subStatus={sub_status} for {ids_text('PandaID', ids)}")

    def _no_events_left(self, job: Any, log: Any) -> bool:
        """Event-service jobs still starting: PanDA has no event left for them."""
        if job.status != "starting" or not core_utils.job_param_flag(job, "eventService") or job.subStatus == "submitted":
            return False
        ok, n_events = self.communicator.check_event_availability(job)
        if ok and n_events is not None:
            job.nRemainingEvents = n_events
        if ok and n_events == 0:
            log.info("to be killed: no event left in PanDA")
            return True
        return False

    def kill_job(self, job: Any, log: Any) -> None:
        """PanDA asked to kill the job: kill its workers, or cancel it when it has none."""
        n_workers = self.dbProxy.mark_workers_to_kill_by_pandaid(job.PandaID)
        log.info(f"kill requested by PanDA: {n_workers} workers marked to kill")
        if not n_workers:
            lifecycle.change_job_status(job, lifecycle.JOB_CANCELLED, lifecycle.SUB_KILLED)
            job.set_pilot_error(PilotErrors.PANDAKILL, PilotErrors.pilot_error_msg.get(PilotErrors.PANDAKILL, "killed"))
            job.trigger_propagation()

    # ------------------------------------------------------------------ workers
    def pick_workers(self) -> list[Any]:
        """The workers due for an update (``updateInterval``)."""
        return self.dbProxy.get_workers_to_propagate(self.cfg("maxWorkers"), self.cfg("updateInterval")) or []

    def propagate_workers(self, chunk: list[Any]) -> None:
        """Send one chunk of workers (and their new log parts) and queue the accepted ones for one DB write."""
        log = self.make_logger(_logger, f"id={self.get_pid()}", method_name="propagate_workers")
        replies, message = self.communicator.update_workers(chunk)
        if replies is None:
            log.error(f"failed to update {len(chunk)} workers: {message}")
            return
        accepted = []
        for work_spec, ok in zip(chunk, replies):
            if not ok:
                log.error(f"workerID={work_spec.workerID} failed to update status={work_spec.status}")
                continue
            self.upload_logs(work_spec, log)
            if work_spec.is_final_status():
                work_spec.disable_propagation()
            accepted.append(work_spec)

        def written(workers: list[Any], n_rows: list | None) -> None:
            if n_rows is None:
                log.error(f"{len(workers)} reported workers not updated in the DB (see panda-db_proxy.log): "
                          f"they are reported again after [propagator] updateInterval")

        # one transaction for the chunk (one per worker cost more than the HTTP call)
        self.writes.add("update_workers_bulk", accepted, on_result=written)

    def upload_logs(self, work_spec: Any, log: Any) -> None:
        """Send new parts of the worker's local log files to PanDA's cache."""
        for path, offset, size, remote_name in work_spec.get_log_files_to_upload():
            try:
                with open(path, "rb") as stream:
                    ok, message = self.communicator.upload_file(remote_name, stream, offset, size)
            except OSError as exc:
                ok, message = False, str(exc)
            if ok:
                work_spec.update_log_files_to_upload(path, offset + size)
            else:
                log.warning(f"workerID={work_spec.workerID} log {path} not uploaded: {message}")
