"""How the Submitter submits the workers made for one slot (:class:`WorkerSubmission`).

In this order, so that nothing done outside the DB is lost: set the attributes every new worker
needs, make the access points and feed the jobs through the messenger (a worker whose jobs could
not be fed is not submitted: it fails for now and its jobs are retried), record the workers
(``insert_workers``, status pending) BEFORE the batch submission, submit (the submitter plugin's
``submit_workers``, once for the slot), then record every outcome in one transaction
(``register_workers_bulk``). The jobs of a worker that failed are counted an attempt (stored by
the slot's flush), and fail with it once out of attempts (``maxSubmissionAttempts``) or when the
plugin said the failure is for good (``False``).
"""

from __future__ import annotations

import logging
import math
import socket
from typing import Any

from pandaharvester.harvestercore import core_utils
from pandaharvester.harvestercore.log_utils import ids_text
from pandaharvester.harvestercore.pilot_errors import PilotErrors
from pandaharvester.harvestercore.work_spec import WorkSpec

_logger = core_utils.setup_logger("submitter")


class WorkerSubmission:
    """A slot's submission (a mixin of the Submitter: it uses the agent's ``call_plugin``,
    ``pluginFactory``, ``dbProxy`` and ``writes``)."""

    def prepare_workers(self, queue_config: Any, ok_chunks: list[tuple[WorkSpec, list[Any]]]) -> list[WorkSpec]:
        """Set the attributes every new worker needs before its access point is made."""
        workers = []
        for work_spec, jobs in ok_chunks:
            if (queue_config.useJobLateBinding and work_spec.workerID is None) or \
                    queue_config.mapType == WorkSpec.MT_NoJob:
                work_spec.hasJob = 0
            else:
                work_spec.hasJob = 1
                work_spec.set_jobspec_list(jobs)
                work_spec.set_num_jobs_with_list()
            work_spec.mapType = queue_config.mapType
            work_spec.computingSite = queue_config.queueName
            work_spec.accessPoint = queue_config.messenger["accessPoint"]
            work_spec.syncLevel = queue_config.get_synchronization_level()
            work_spec.configID = queue_config.configID
            work_spec.harvesterHost = socket.gethostname()
            if jobs and any(core_utils.job_param_flag(jobs[0], key) for key in ("eventService", "cloneJob", "isHPO")):
                work_spec.eventsRequest = WorkSpec.EV_useEvents
            workers.append(work_spec)
        return workers

    def submit_chunks(self, queue_config: Any, ok_chunks: list[tuple[WorkSpec, list[Any]]], locked_by: str,
                      log: Any) -> set[int]:
        """Feed, record, submit and register the workers; return the PandaIDs touched."""
        submitter = self.pluginFactory.get_plugin(queue_config.submitter)
        messenger = self.pluginFactory.get_plugin(queue_config.messenger)
        if submitter is None or messenger is None:
            log.error("submitter or messenger plugin missing in the queue config; nothing submitted")
            return {job.PandaID for _w, jobs in ok_chunks for job in jobs}
        workers = self.prepare_workers(queue_config, ok_chunks)
        not_ready = self.feed_workers(messenger, workers, log)
        self.dbProxy.insert_workers(workers, locked_by)
        results = self.call_submitter(submitter, workers, log, not_ready)
        ok_pandaids = {job.PandaID for (w, jobs), (ok, _d) in zip(ok_chunks, results) if ok for job in jobs}
        now = core_utils.naive_utcnow()
        touched: set[int] = set()
        outcomes = [(work_spec, self.record_outcome(queue_config, work_spec, ok, diag, ok_pandaids, now, log), ok)
                    for (work_spec, _jobs), (ok, diag) in zip(ok_chunks, results)]
        # all the workers of the slot in one transaction (one per worker cost more than the submission)
        registered = self.dbProxy.register_workers_bulk([(w, jobs) for w, jobs, _ok in outcomes], locked_by)
        if len(registered) != len(outcomes):
            registered = [False] * len(outcomes)
            log.error(f"{len(outcomes)} workers not registered: DB error (see panda-db_proxy.log); the pending "
                      f"rows are removed after [submitter] lockInterval and their jobs are released")
        # one line per outcome, naming every worker (and its jobs), rather than one line per worker
        lines: dict[tuple[str, bool], list[str]] = {}
        for (work_spec, jobs, ok), is_registered in zip(outcomes, registered):
            for job in work_spec.get_jobspec_list() or []:
                touched.add(job.PandaID)
            entry = f"workerID={work_spec.workerID} batchID={work_spec.batchID}"
            if jobs:
                entry += " " + ids_text("PandaID", (j.PandaID for j in jobs))
            lines.setdefault(("submitted" if ok else "failed to submit", is_registered), []).append(entry)
        for (state, is_registered), entries in lines.items():
            log.info(f"{state} {len(entries)} workers registered={is_registered}: {', '.join(entries)}")
        if self.cfg_value("monitor", "fifoEnable", False):
            from pandaharvester.harvesterbody.monitor_fifo import enqueue_new_workers

            enqueue_new_workers(self, queue_config.queueName,
                                [w for (w, _jobs, _ok), done in zip(outcomes, registered) if done], log)
        return touched

    def feed_workers(self, messenger: Any, workers: list[WorkSpec], log: Any) -> dict[int, tuple[None, str]]:
        """Make the access points and write the jobs there; ``{id(worker): (None, diag)}`` for the
        workers that must not be submitted (a pilot without its job description would be lost):
        they fail for now, and their jobs are retried (``maxSubmissionAttempts``)."""
        ok, reply = self.call_plugin(log, messenger, "setup_access_points", workers, role="messenger")
        if not ok or reply is False:
            diag = f"access points not made: {reply if not ok else 'setup_access_points returned False'}"
            log.error(diag)
            return {id(w): (None, diag) for w in workers}
        not_ready: dict[int, tuple[None, str]] = {}
        fed_entries = []
        debug = log.isEnabledFor(logging.DEBUG)
        for work_spec in workers:
            if work_spec.hasJob != 1:
                continue
            jobs = work_spec.get_jobspec_list()
            ok, fed = self.call_plugin(log, messenger, "feed_jobs", work_spec, jobs, role="messenger")
            if not ok or fed is False:
                diag = f"jobs not fed to the worker: {fed if not ok else 'feed_jobs returned False'}"
                log.error(f"workerID={work_spec.workerID} {diag}; not submitted")
                not_ready[id(work_spec)] = (None, diag)
            elif debug:
                fed_entries.append(f"workerID={work_spec.workerID} "
                                   + ids_text("PandaID", (j.PandaID for j in jobs or [])))
        if fed_entries:  # one line for the batch, naming every worker and job
            log.debug(f"jobs fed to {len(fed_entries)} workers: {', '.join(fed_entries)}")
        return not_ready

    def call_submitter(self, submitter: Any, workers: list[WorkSpec], log: Any,
                       preset: dict[int, tuple[Any, str]] | None = None) -> list[tuple[Any, str]]:
        """Run the plugin on the workers that need a batch submission; one (status, diag) per worker.

        Workers already ready or running (late binding) are not submitted again, nor those with
        a ``preset`` answer (keyed by ``id(worker)``). A plugin exception or a reply its contract
        does not allow (wrong length, bad status, ...) fails the whole batch with that diagnostic.
        """
        preset = preset or {}
        to_submit = [w for w in workers
                     if w.status not in (WorkSpec.ST_ready, WorkSpec.ST_running) and id(w) not in preset]
        watch = core_utils.get_stopwatch()
        ok, replies = self.call_plugin(log, submitter, "submit_workers", to_submit, role="submitter") \
            if to_submit else (True, [])
        if not ok:
            log.error(f"submitter plugin failed: {replies}")
            replies = [(False, replies)] * len(to_submit)
        log.debug(f"submitted {len(to_submit)} workers{watch.get_elapsed_time()}")
        by_id = {**preset, **{id(w): reply for w, reply in zip(to_submit, replies)}}
        return [by_id.get(id(w), (True, "")) for w in workers]

    def record_outcome(self, queue_config: Any, work_spec: WorkSpec, ok: Any, diag: str, ok_pandaids: set[int],
                       now: Any, log: Any) -> list[Any] | None:
        """Set the worker's state after submission; return the jobs to bind to it."""
        jobs = work_spec.get_jobspec_list()
        if not ok:
            message = f"failed to submit workerID={work_spec.workerID}: {diag}"
            log.error(message)
            work_spec.set_status(WorkSpec.ST_missed)
            work_spec.set_dialog_message(diag)
            work_spec.set_pilot_error(PilotErrors.SETUPFAILURE, message)
            work_spec.set_pilot_closed()
            jobs = self.count_submission_attempt(queue_config, jobs, ok, ok_pandaids)
        elif queue_config.useJobLateBinding and work_spec.hasJob == 1:
            work_spec.set_status(WorkSpec.ST_running)
        else:
            work_spec.set_status(WorkSpec.ST_submitted)
        work_spec.submitTime = now
        work_spec.modificationTime = now
        work_spec.checkTime = now
        if ok and work_spec.hasJob == 1 and work_spec.eventsRequest == WorkSpec.EV_useEvents \
                and queue_config.prefetchEvents:
            self.request_events(queue_config, work_spec, jobs or [])
        return jobs

    def count_submission_attempt(self, queue_config: Any, jobs: list[Any] | None, ok: Any,
                                 ok_pandaids: set[int]) -> list[Any] | None:
        """Jobs of a failed worker: those out of attempts (or failed for good) fail with it; others retry."""
        if jobs is None:
            return None
        to_fail, to_retry = [], []
        for job in jobs:
            if job.PandaID in ok_pandaids:
                continue
            job.submissionAttempts = (job.submissionAttempts or 0) + 1
            if ok is False or job.submissionAttempts >= queue_config.maxSubmissionAttempts:
                to_fail.append(job)
            else:
                to_retry.append(job)
        self.writes.count_submission_attempts(to_retry)
        return to_fail

    @staticmethod
    def request_events(queue_config: Any, work_spec: WorkSpec, jobs: list[Any]) -> None:
        """Ask the EventFeeder to prefetch event ranges for the worker's jobs."""
        work_spec.eventsRequest = WorkSpec.EV_requestEvents
        params = {}
        for job in jobs:
            n_ranges = max(int(math.ceil((work_spec.nCore or 1) / max(len(jobs), 1))),
                           int(job.jobParams.get("coreCount") or 1)) * queue_config.initEventsMultipler
            params[job.PandaID] = {"pandaID": job.PandaID, "taskID": job.taskID,
                                   "jobsetID": job.jobParams.get("jobsetID"), "nRanges": n_ranges}
            if core_utils.job_param_flag(job, "isHPO"):
                params[job.PandaID].update({"isHPO": True, "jobsetID": 0,
                                            "sourceURL": job.jobParams.get("sourceURL")})
        work_spec.eventsRequestParams = params

