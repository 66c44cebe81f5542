"""Propagator: reports jobs, workers, worker statistics, service metrics and dialogs to PanDA.

Jobs come from ``get_jobs_to_propagate``: a running job is due every ``updateInterval``
seconds (the 30-minute heartbeat), a job whose state changed is due at once
(``trigger_propagation``). Everything goes in bulk (``nJobsInBulk``, ``nWorkersInBulk``). A job
PanDA acknowledged in a final state is never sent again (``propagatorTime`` unset, subStatus
``done``); a ``tobekilled`` command in the reply marks the job's workers to kill.
"""

from __future__ import annotations

import datetime
import logging
import threading
import time
from typing import Any

from pandaharvester.harvesterbody.agent_base import AgentBase
from pandaharvester.harvesterconfig import harvester_config
from pandaharvester.harvestercore import core_utils, lifecycle
from pandaharvester.harvestercore.command_spec import CommandSpec
from pandaharvester.harvestercore.log_utils import ids_text
from pandaharvester.harvestercore.db_proxy_pool import DBProxyPool as DBProxy
from pandaharvester.harvestercore.pilot_errors import PilotErrors
from pandaharvester.harvestercore.worker_stats import by_panda_queue

_logger = core_utils.setup_logger("propagator")

STATS_PERIOD = 300
# when this process last reported worker statistics (shared by the Propagator threads)
_stats_sent: dict[str, float | None] = {"time": None}
_stats_lock = threading.Lock()
METRICS_PERIOD = 300
# statuses whose heartbeat a true-pilot queue without its own noHeartbeat list suppresses
_TRUE_PILOT_SUPPRESSED = ["running", "transferring", "finished", "failed"]


class Propagator(AgentBase):
    """Reports to PanDA; see the module docstring."""

    cfg_section = "propagator"
    batch_keys = ("maxJobs", "maxWorkers")

    def __init__(self, communicator: Any, queue_config_mapper: Any, single_mode: bool = False):
        AgentBase.__init__(self, single_mode)
        self.dbProxy = DBProxy()
        self.communicator = communicator
        self.queueConfigMapper = queue_config_mapper
        self._last_stats_update: float | None = None
        self._last_metrics_update: datetime.datetime | None = None

    def bootstrap(self) -> None:
        self.dbProxy.clean_service_metrics()

    def run_cycle(self) -> bool:
        cfg = harvester_config.propagator
        locked_by = f"propagator-{self.get_pid()}"
        n_jobs = self.propagate_jobs(locked_by)
        n_workers = self.propagate_workers()
        self.process_commands()
        self.report_worker_stats()
        self.report_service_metrics()
        self.send_dialogs()
        return n_jobs >= cfg.maxJobs or n_workers >= cfg.maxWorkers

    # ------------------------------------------------------------------ jobs
    def propagate_jobs(self, locked_by: str) -> int:
        cfg = harvester_config.propagator
        log = self.make_logger(_logger, f"id={locked_by}", method_name="propagate_jobs")
        jobs = self.dbProxy.get_jobs_to_propagate(cfg.maxJobs, cfg.lockInterval, cfg.updateInterval, locked_by) or []
        log.debug(f"got {len(jobs)} jobs")
        suppressed: dict[str, list[str]] = {}
        for chunk in core_utils.create_shards(jobs, cfg.nJobsInBulk):
            to_skip, to_check, to_update = [], [], []
            for job in chunk:
                states = suppressed.get(job.computingSite)
                if states is None:  # one queue config look-up per site and cycle
                    states = suppressed[job.computingSite] = self._no_heartbeat_states(job)
                if job.get_status() in states and not job.not_suppress_heartbeat():
                    (to_check if job.status == "running" else to_skip).append(job)
                else:
                    to_update.append(job)
            replies = [{"StatusCode": 0, "command": None} for _ in to_skip]
            replies += list(self.communicator.check_jobs(to_check)) if to_check else []
            replies += list(self.communicator.update_jobs(to_update, locked_by)) if to_update else []
            sent = {id(job) for job in to_update}
            outcomes: dict[tuple, list[Any]] = {}
            answered = [job for job, reply in zip(to_skip + to_check + to_update, replies)
                        if self.apply_job_reply(job, reply or {}, id(job) in sent, outcomes)]
            self.log_outcomes(outcomes)
            # the answered jobs of the chunk in one transaction (one per job cost more than the HTTP call)
            if answered and len(self.dbProxy.update_jobs_bulk(answered, {"propagatorLock": locked_by},
                                                              update_out_file=True)) != len(answered):
                log.error(f"{len(answered)} answered jobs not updated in the DB (see panda-db_proxy.log): they "
                          f"stay locked and are sent again after [propagator] lockInterval")
        return len(jobs)

    def _no_heartbeat_states(self, job: Any) -> list[str]:
        queue_config = self.queueConfigMapper.get_queue(job.computingSite, job.configID)
        return queue_config.get_no_heartbeat_status() if queue_config else list(_TRUE_PILOT_SUPPRESSED)

    def record_job_reply(self, job: Any, reply: dict, was_sent: bool, locked_by: str) -> None:
        """Store what PanDA answered for one job and release its propagator lock."""
        if self.apply_job_reply(job, reply, was_sent):
            self.dbProxy.update_job(job, {"propagatorLock": locked_by}, update_out_file=True)

    def apply_job_reply(self, job: Any, reply: dict, was_sent: bool,
                        outcomes: dict[tuple, list[Any]] | None = None) -> bool:
        """Apply what PanDA answered to the job (propagator lock released, final jobs done, kills);
        False when PanDA refused it: the job is not written and stays locked.

        With ``outcomes`` the job's DEBUG line is collected there ({(what, status, subStatus):
        [PandaID, ...]}, logged by :meth:`log_outcomes`) instead of written at once."""
        if reply.get("StatusCode") != 0:
            # left locked: it becomes due again after lockInterval, so nothing is lost
            self._job_logger(job).error(f"failed to update status={job.status}: {reply.get('ErrorDiag', reply)}")
            return False
        key = ("updated" if was_sent else "skipped", job.status, job.subStatus)
        if outcomes is None:
            self._job_logger(job).debug(f"{key[0]} status={key[1]} subStatus={key[2]}")
        else:
            outcomes.setdefault(key, []).append(job.PandaID)
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
    def propagate_workers(self) -> int:
        cfg = harvester_config.propagator
        log = self.make_logger(_logger, f"id={self.get_pid()}", method_name="propagate_workers")
        workers = self.dbProxy.get_workers_to_propagate(cfg.maxWorkers, cfg.updateInterval) or []
        for chunk in core_utils.create_shards(workers, cfg.nWorkersInBulk):
            replies, message = self.communicator.update_workers(chunk)
            if replies is None:
                log.error(f"failed to update {len(chunk)} workers: {message}")
                continue
            accepted = []
            for work_spec, ok in zip(chunk, replies):
                if not ok:
                    log.error(f"workerID={work_spec.workerID} failed to update status={work_spec.status}")
                    continue
                self.upload_logs(work_spec, log)
                if work_spec.is_final_status():
                    work_spec.disable_propagation()
                accepted.append(work_spec)
            # one transaction for the chunk (one per worker cost more than the HTTP call)
            if accepted and len(self.dbProxy.update_workers_bulk(accepted)) != len(accepted):
                log.error(f"{len(accepted)} reported workers not updated in the DB (see panda-db_proxy.log): "
                          f"they are reported again after [propagator] updateInterval")
        return len(workers)

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

    # ------------------------------------------------------------------ statistics, metrics, dialogs
    def process_commands(self) -> None:
        for command in self.dbProxy.get_commands_for_receiver("propagator") or []:
            if command.command.startswith(CommandSpec.COM_reportWorkerStats):
                site_name = command.command.split(":")[-1]
                self._send_worker_stats(site_name, self.dbProxy.get_worker_stats(site_name), "command")

    def report_worker_stats(self) -> None:
        """Every STATS_PERIOD, one of the Propagator threads of this process reports the statistics
        of every active queue (they used to send the same reports once per thread), under the PanDA
        queue name (``worker_stats.by_panda_queue``)."""
        with _stats_lock:
            last = _stats_sent["time"]
            if last and time.time() - last <= STATS_PERIOD:
                return
            _stats_sent["time"] = time.time()  # claimed: the other threads skip this period
        sent = False
        stats = self.dbProxy.get_worker_stats_bulk(self.queueConfigMapper.get_active_ups_queues())
        # one report per PanDA queue (the pseudo-queues of a unified queue merged): each replaces the last
        for site_name, site_stats in by_panda_queue(stats or {}, self.queueConfigMapper.get_queue).items():
            if self._send_worker_stats(site_name, site_stats, "bulk"):
                sent = True
                self._last_stats_update = time.time()
        if not sent:
            with _stats_lock:  # nothing went through: the next cycle (of any thread) tries again
                _stats_sent["time"] = last

    def _send_worker_stats(self, site_name: str, stats: Any, how: str) -> bool:
        log = self.make_logger(_logger, f"site={site_name}", method_name="report_worker_stats")
        if not stats:
            log.debug(f"no worker statistics to report ({how})")
            return False
        ok, message = self.communicator.update_worker_stats(site_name, stats)
        if not ok:
            log.error(f"failed to update worker statistics ({how}): {message}")
        return bool(ok)

    def report_service_metrics(self) -> None:
        now = core_utils.naive_utcnow()
        if self._last_metrics_update and now - self._last_metrics_update <= datetime.timedelta(seconds=METRICS_PERIOD):
            return
        metrics = self.dbProxy.get_service_metrics(self._last_metrics_update)
        if not metrics:
            self._last_metrics_update = now
            return
        ok, message = self.communicator.update_service_metrics(metrics)
        if ok:
            self._last_metrics_update = now
        else:
            _logger.error(f"failed to update service metrics: {message}")

    def send_dialogs(self) -> None:
        cfg = harvester_config.propagator
        dialogs = self.dbProxy.get_dialog_messages_to_send(getattr(cfg, "maxDialogs", 50), cfg.lockInterval) or []
        if not dialogs:
            return
        ok, message = self.communicator.send_dialog_messages(dialogs)
        if ok:
            self.dbProxy.delete_dialog_messages([d.diagID for d in dialogs])
        else:
            _logger.error(f"failed to send {len(dialogs)} dialog messages: {message}")
