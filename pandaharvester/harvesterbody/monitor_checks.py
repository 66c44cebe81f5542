"""What the Monitor learns about each worker in one cycle.

:class:`WorkerChecker` calls the monitor plugin once for all workers of a queue, asks the
messenger what each worker reported (attributes, output files, events, kill requests,
heartbeat) and decides the worker's new status. It writes nothing to the DB: the kill marks it
decides go to the agent's write batch (``agent.writes``), written before the results, which
:mod:`monitor` writes back in one batch. A messenger hook that raises, or answers in a shape its
contract does not allow, leaves that worker unchecked (as a failed plugin check: cancelled after
``checkTimeout``); a monitor plugin reply of the wrong shape leaves all its workers unchecked,
an unknown status only that worker.

Status rules for a worker the plugin says is final (finished/failed/cancelled):

- while it still has output files or events to report, it is held in running (or idle), so
  the files/events are recorded first;
- while a job's reports (outputs dump, attributes, job report) exist but cannot be used
  (messenger ``get_unreadable_reports``), the job is held: its reported attributes are not
  applied (so it does not end) and an ended worker stays in running (or idle); once the worker
  ended, this lasts until ``[monitor] postProcessTimeout`` minutes after the first check that
  found it so (at least one more check), then the job and the worker are failed with a
  diagnostic naming the file and the reason;
- then the messenger's ``post_processing`` runs once (unless the status is a no-heartbeat one
  or the queue is a true-pilot queue); ``None`` from it means "not yet": held again until
  ``[monitor] postProcessTimeout`` minutes have passed;
- then the final status is written.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from pandaharvester.errors import PluginReplyError
from pandaharvester.harvestercore import core_utils, lifecycle
from pandaharvester.harvestercore.pilot_errors import PilotErrors
from pandaharvester.harvestercore.work_spec import WorkSpec

FINAL_MONITOR_STATES = lifecycle.WORKER_ENDED
# job states a worker reports in its attributes (jobStatus) that end the job
JOB_END_STATES = lifecycle.JOB_PAYLOAD_END
# workParams key: when a check first found the ended worker with reports that cannot be used
UNREADABLE_SINCE = "unreadableReportsSince"
# PanDA's pilotErrorDiag column holds 500 characters
PILOT_DIAG_LIMIT = 500


class MessengerFailure(Exception):
    """A messenger hook raised (or is missing) for one worker: that worker is left unchecked."""


@dataclass(slots=True)
class CheckResult:
    """Everything the Monitor learnt about one worker in this cycle (empty reports are shared
    empty tuples: a cycle keeps one result per worker alive, and every list is work for the GC)."""

    old_status: str | None
    new_status: str | None = None
    mon_status: str | None = None
    diag: str = ""
    work_attributes: dict | None = None
    files_to_stage_out: dict = field(default_factory=dict)
    events_to_update: Any = ()
    events_request_params: dict = field(default_factory=dict)
    panda_ids: Any = ()
    n_jobs_to_refill: int | None = None
    is_checked: bool = True


class WorkerChecker:
    """Checks the workers of one queue (see the module docstring)."""

    def __init__(self, agent: Any, db_proxy: Any, queue_config: Any, monitor_plugin: Any, messenger: Any,
                 log: Any):
        self.agent = agent
        self.dbProxy = db_proxy
        self.queue_config = queue_config
        self.plugin = monitor_plugin
        self.messenger = messenger
        self.log = log
        self.now = core_utils.naive_utcnow()
        # {workerID: jobs} read in bulk for the post-processing of this check (prefetch_jobs)
        self._jobs_of: dict[int, list[Any]] = {}
        self.check_timeout = getattr(monitor_plugin, "checkTimeout", None) or \
            agent.cfg_value("monitor", "checkTimeout", None)
        self.queue_time_limit = agent.cfg_value("monitor", "workerQueueTimeLimit", 172800)
        self.post_process_timeout = agent.cfg_value("monitor", "postProcessTimeout", 0)
        try:
            self.heartbeat_limit = int(queue_config.messenger["worker_heartbeat"])
        except (AttributeError, KeyError, TypeError, ValueError):
            self.heartbeat_limit = None

    # ------------------------------------------------------------------ entry point
    def check(self, workers: list[WorkSpec]) -> dict[int, CheckResult]:
        """One :class:`CheckResult` per workerID."""
        # one clock reading per check: the limits it is compared with are minutes or hours
        self.now = core_utils.naive_utcnow()
        results: dict[int, CheckResult] = {}
        to_check: list[WorkSpec] = []
        post_process_only: list[tuple[WorkSpec, str]] = []
        for work_spec in workers:
            result = CheckResult(old_status=work_spec.status)
            results[work_spec.workerID] = result
            has_final, final_status = work_spec.get_work_params("finalMonStatus")
            try:
                if has_final and final_status:
                    post_process_only.append((work_spec, final_status))
                elif work_spec.hasJob == 0 and work_spec.mapType != WorkSpec.MT_NoJob:
                    # late binding: the worker becomes ready once it asks for a job
                    result.new_status = result.mon_status = (
                        WorkSpec.ST_ready if self.ask("job_requested", work_spec) else work_spec.status)
                else:
                    if work_spec.nJobsToReFill in (0, None):
                        result.n_jobs_to_refill = self.ask("job_requested", work_spec) or None
                    to_check.append(work_spec)
            except MessengerFailure as exc:
                results[work_spec.workerID] = self.messenger_failed(work_spec, str(exc))
        checked = self.call_plugin(to_check)
        self.prefetch_jobs([w for w, (status, _d) in zip(to_check, checked) if status in FINAL_MONITOR_STATES] +
                           [w for w, _status in post_process_only])
        for work_spec, (status, diag) in zip(to_check, checked):
            self.interpret_or_fail(work_spec, status, diag, results)
        for work_spec, status in post_process_only:
            self.interpret_or_fail(work_spec, status, "", results)
        return results

    def prefetch_jobs(self, final_workers: list[WorkSpec]) -> None:
        """The jobs (with files) of the workers the plugin says are final, in one read, for their
        post-processing (a read per worker cost more than the rest of its check); a worker the
        bulk read missed is read alone when needed."""
        self._jobs_of = {}
        wanted = [w.workerID for w in final_workers if getattr(w, "pandaid_list", None) != []]
        if len(wanted) > 1:
            self._jobs_of = self.dbProxy.get_jobs_with_worker_ids(wanted, only_running=True, slim=True,
                                                                  with_file=True) or {}

    def interpret_or_fail(self, work_spec: WorkSpec, status: str | None, diag: str | None,
                          results: dict[int, CheckResult]) -> None:
        """:meth:`interpret` into ``results``; the messenger-failed result when a hook raised."""
        try:
            self.interpret(work_spec, status, diag or "", results[work_spec.workerID])
        except MessengerFailure as exc:
            results[work_spec.workerID] = self.messenger_failed(work_spec, str(exc))

    def ask(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """``messenger.<method>(*args)``; raises :class:`MessengerFailure` when it raises
        (``default=``: the reply when the messenger lacks the method)."""
        ok, reply = self.agent.call_plugin(self.log, self.messenger, method, *args, role="messenger",
                                           queue=self.queue_config.queueName, **kwargs)
        if not ok:
            raise MessengerFailure(reply)
        return reply

    def messenger_failed(self, work_spec: WorkSpec, message: str) -> CheckResult:
        """The result for a worker whose messenger hook raised: as it was (what it reported is read
        again next cycle; the messenger keeps reports until acknowledged), cancelled after checkTimeout."""
        result = CheckResult(old_status=work_spec.status)
        status, diag = self.unchecked(work_spec, f"messenger failed: {message}", core_utils.naive_utcnow(), result)
        result.new_status = result.mon_status = status
        result.diag = diag
        return result

    def call_plugin(self, workers: list[WorkSpec]) -> list[tuple[str | None, str]]:
        """(status, diag) per worker from the monitor plugin; (None, why) for all when it fails
        (it raised, or its reply has not the contract's shape: logged by the agent's call_plugin).
        An unknown status is one worker's problem (:meth:`interpret` keeps that worker as it was)."""
        if not workers:
            return []
        unknown: list[PluginReplyError] = []
        ok, reply = self.agent.call_plugin(self.log, self.plugin, "check_workers", workers, role="monitor",
                                           queue=self.queue_config.queueName, bad_items=unknown)
        if not ok:
            return [(None, reply)] * len(workers)
        for error in unknown:  # one line per such worker, naming it
            self.log.error(str(error))
        status_ok, statuses = reply
        if not status_ok:
            return [(None, f"monitor plugin failed: {statuses}")] * len(workers)
        return statuses

    # ------------------------------------------------------------------ one worker
    def interpret(self, work_spec: WorkSpec, status: str | None, diag: str, result: CheckResult) -> None:
        now = self.now
        worker_id = work_spec.workerID
        if status is None:
            status, diag = self.unchecked(work_spec, diag, now, result)
        elif status not in WorkSpec.ST_LIST:  # logged by call_plugin, naming the plugin and the worker
            diag = f"monitor plugin returned unknown status {status!r}; kept {work_spec.status}. {diag}"
            status, result.is_checked = work_spec.status, False
        if self.ask("kill_requested", work_spec):
            self.log.info(f"workerID={worker_id} kill requested by the worker")
            self.agent.writes.kill_workers([worker_id])
        if work_spec.status == WorkSpec.ST_submitted and work_spec.submitTime is not None and \
                now > work_spec.submitTime + datetime.timedelta(seconds=self.queue_time_limit):
            diag = self.kill(work_spec, f"worker queuing longer than {self.queue_time_limit} s. {diag}")
            work_spec.set_pilot_closed()
        if self.heartbeat_limit and not self.ask("is_alive", work_spec, self.heartbeat_limit):
            diag = self.kill(work_spec, f"worker heartbeat expired. {diag}")
        self.collect_reports(work_spec, result)
        status, diag, held = self.hold_unreadable(work_spec, status, diag, result)
        result.mon_status = status
        result.new_status = self.holding_status(work_spec) if held else \
            self.hold_until_reported(work_spec, status, result)
        result.diag = diag

    def unchecked(self, work_spec: WorkSpec, diag: str, now: datetime.datetime,
                  result: CheckResult) -> tuple[str, str]:
        """The plugin could not tell: keep the status, or cancel after checkTimeout of failures."""
        result.is_checked = False
        self.log.warning(f"workerID={work_spec.workerID} failed to check: {diag}")
        if work_spec.checkTime is not None and self.check_timeout is not None and \
                now - work_spec.checkTime > datetime.timedelta(seconds=self.check_timeout):
            return WorkSpec.ST_cancelled, self.kill(work_spec, f"consecutive worker check failures. {diag}", log=False)
        return work_spec.status, diag

    def kill(self, work_spec: WorkSpec, why: str, log: bool = True) -> str:
        """Mark the worker to kill (in the agent's write batch) with the pilot error saying why;
        returns the diag ``Killed by Harvester due to <why>``."""
        diag = f"Killed by Harvester due to {why}"
        if log:
            self.log.info(f"workerID={work_spec.workerID} {diag}")
        self.agent.writes.kill_workers([work_spec.workerID])
        work_spec.set_pilot_error(PilotErrors.FAILEDBYSERVER, diag)
        return diag

    def collect_reports(self, work_spec: WorkSpec, result: CheckResult) -> None:
        """What the worker wrote for Harvester: attributes, files, events, PandaIDs."""
        result.work_attributes = self.ask("get_work_attributes", work_spec)
        result.files_to_stage_out = self.ask("get_files_to_stage_out", work_spec) or {}
        if work_spec.eventsRequest in (WorkSpec.EV_useEvents, WorkSpec.EV_requestEvents):
            result.events_to_update = self.ask("events_to_update", work_spec) or ()
        if work_spec.eventsRequest == WorkSpec.EV_useEvents:
            result.events_request_params = self.ask("events_requested", work_spec) or {}
        if work_spec.mapType == WorkSpec.MT_NoJob:
            result.panda_ids = self.ask("get_panda_ids", work_spec) or ()

    @staticmethod
    def holding_status(work_spec: WorkSpec) -> str:
        """The status an ended worker is held in while something of it is still to be reported."""
        return WorkSpec.ST_running if work_spec.status == WorkSpec.ST_running else WorkSpec.ST_idle

    def hold_until_reported(self, work_spec: WorkSpec, status: str, result: CheckResult) -> str:
        """The status to write now: a final status waits for files, events and post-processing."""
        if status not in FINAL_MONITOR_STATES:
            return status
        holding = self.holding_status(work_spec)
        if result.files_to_stage_out or result.events_to_update:
            work_spec.trigger_next_lookup()
            return holding
        if work_spec.is_post_processed():
            return status
        force = bool(getattr(self.messenger, "forcePostProcessing", False))
        if force or (not self.queue_config.is_no_heartbeat_status(status) and not self.queue_config.truePilot):
            # a worker read with its (empty) job list, e.g. a pull worker, needs no job look-up
            if getattr(work_spec, "pandaid_list", None) == []:
                jobs = []
            elif work_spec.workerID in self._jobs_of:
                jobs = self._jobs_of.pop(work_spec.workerID)
            else:
                jobs = self.dbProxy.get_jobs_with_worker_id(work_spec.workerID, None, True, only_running=True,
                                                            slim=True)
            done = self.ask("post_processing", work_spec, jobs, work_spec.mapType)
            if done is None and not self.post_process_timed_out(work_spec):
                work_spec.trigger_next_lookup()
                return holding
        work_spec.post_processed()
        return status

    def hold_unreadable(self, work_spec: WorkSpec, status: str, diag: str,
                        result: CheckResult) -> tuple[str, str, bool]:
        """Hold the jobs whose reports cannot be used (module docstring): ``(status, diag, held)``,
        where ``held`` keeps the ended worker in its holding status. Asked only once the worker
        ended or its attributes end a job: before that nothing would end the job."""
        attrs = result.work_attributes if isinstance(result.work_attributes, dict) else {}
        ended = status in FINAL_MONITOR_STATES
        if not ended and not any(isinstance(a, dict) and a.get("jobStatus") in JOB_END_STATES
                                 for a in attrs.values()):
            return status, diag, False
        problems = self.ask("get_unreadable_reports", work_spec, default={}) or {}
        if not problems:
            if work_spec.get_work_params(UNREADABLE_SINCE)[1] is not None:
                work_spec.set_work_params({UNREADABLE_SINCE: None})
            return status, diag, False
        result.work_attributes = attrs
        worker_id = work_spec.workerID
        texts = {panda_id: "; ".join(f"cannot read {path}: {why}" for path, why in files.items())
                 for panda_id, files in problems.items()}
        if not ended or not self.unreadable_timed_out(work_spec):
            for panda_id, text in texts.items():
                attrs[panda_id] = {}  # not applied: the job keeps running until its reports can be used
                self.log.warning(f"workerID={worker_id} PandaID={panda_id} held: {text}; checked again each "
                                 f"cycle, failed once the worker has been ended so for [monitor] "
                                 f"postProcessTimeout = {self.post_process_timeout} min (at the next check at "
                                 f"the earliest)")
            return status, diag, ended
        for panda_id, text in texts.items():
            attrs[panda_id] = self.failed_job_attributes(attrs.get(panda_id), text)
            self.log.error(f"workerID={worker_id} PandaID={panda_id} failed: {text} "
                           f"(unreadable for [monitor] postProcessTimeout = {self.post_process_timeout} min)")
        worker_diag = f"Harvester failed the job(s): {'; '.join(texts.values())}"
        work_spec.set_supplemental_error(PilotErrors.STAGEOUTFAILED, worker_diag)
        return WorkSpec.ST_failed, f"{worker_diag}. {diag}" if diag else worker_diag, False

    @staticmethod
    def failed_job_attributes(reported: Any, text: str) -> dict:
        """The attributes that fail a job whose reports cannot be used: the reported ones, ended
        failed with a diag naming the file (after the pilot's own error when it reported one)."""
        attrs = dict(reported) if isinstance(reported, dict) else {}
        ours = f"Harvester cannot use the job's reports: {text}"
        if attrs.get("jobStatus") == "failed" and attrs.get("pilotErrorCode"):
            ours = f"{attrs.get('pilotErrorDiag') or ''} | {ours}"
        else:
            attrs["pilotErrorCode"] = PilotErrors.STAGEOUTFAILED
        attrs["jobStatus"] = "failed"
        attrs["pilotErrorDiag"] = ours[:PILOT_DIAG_LIMIT]
        return attrs

    def unreadable_timed_out(self, work_spec: WorkSpec) -> bool:
        """True once the ended worker's reports stayed unusable ``postProcessTimeout`` minutes since
        the first check that found them so (recorded in workParams); that first check never is."""
        _found, since = work_spec.get_work_params(UNREADABLE_SINCE)
        try:
            first = datetime.datetime.fromisoformat(since) if since else None
        except (TypeError, ValueError):
            first = None
        if first is None:
            work_spec.set_work_params({UNREADABLE_SINCE: self.now.isoformat()})
            return False
        return self.now - first >= datetime.timedelta(minutes=max(self.post_process_timeout, 0))

    def post_process_timed_out(self, work_spec: WorkSpec) -> bool:
        """True when post-processing may not be retried any more (postProcessTimeout minutes; 0 = no retry)."""
        if self.post_process_timeout <= 0:
            return True
        if work_spec.endTime is None:
            work_spec.set_end_time()
            return False
        limit = core_utils.naive_utcnow() - datetime.timedelta(minutes=self.post_process_timeout)
        return work_spec.endTime <= limit
