"""Submitter: makes workers for the queues of one site per cycle and submits them.

One cycle: lock a site (``get_queues_to_submit``), apply PanDA's ``SET_N_WORKERS_JOBTYPE``
commands, ask the WorkerAdjuster how many workers each (queue, job type, resource type) slot
gets, and for each slot: take job chunks as the queue's mapType says, make WorkSpecs, prepare
access points and feed jobs through the messenger (a worker whose jobs could not be fed is
not submitted: it fails for now and its jobs are retried), record the workers
(``insert_workers``, status pending) BEFORE the batch submission, submit, then record the
outcome (``register_worker``) and release jobs and site.
"""

from __future__ import annotations

import datetime
import logging
import math
import socket
from typing import Any

from pandaharvester.harvesterbody.agent_base import AgentBase
from pandaharvester.harvesterbody.worker_adjuster import WorkerAdjuster
from pandaharvester.harvesterbody.worker_maker import WorkerMaker
from pandaharvester.harvesterconfig import harvester_config
from pandaharvester.harvestercore import core_utils, lifecycle
from pandaharvester.harvestercore.log_utils import ids_text
from pandaharvester.harvestercore.command_spec import CommandSpec
from pandaharvester.harvestercore.db_proxy_pool import DBProxyPool as DBProxy
from pandaharvester.harvestercore.pilot_errors import PilotErrors
from pandaharvester.harvestercore.plugin_factory import PluginFactory
from pandaharvester.harvestercore.work_spec import WorkSpec

_logger = core_utils.setup_logger("submitter")


class Submitter(AgentBase):
    """Submits workers; see the module docstring for one cycle."""

    cfg_section = "submitter"
    batch_keys = ("maxNewWorkers",)

    def __init__(self, queue_config_mapper: Any, single_mode: bool = False):
        AgentBase.__init__(self, single_mode)
        self.queueConfigMapper = queue_config_mapper
        self.dbProxy = DBProxy()
        self.workerMaker = WorkerMaker()
        self.workerAdjuster = WorkerAdjuster(queue_config_mapper)
        self.pluginFactory = PluginFactory()

    # ------------------------------------------------------------------ cycle
    def run_cycle(self) -> bool:
        cfg = harvester_config.submitter
        locked_by = f"submitter-{self.get_pid()}"
        current, site_name, res_map = self.dbProxy.get_queues_to_submit(
            cfg.nQueues, cfg.lookupTime, cfg.lockInterval, locked_by, cfg.queueLockInterval)
        if site_name is None:
            return False
        log = self.make_logger(_logger, f"site={site_name}", method_name="run_cycle")
        submitted = False
        try:
            self.apply_commands(site_name, log, current, res_map)
            n_workers_map = self.workerAdjuster.define_num_workers(current, site_name)
            if n_workers_map is None:
                log.error("WorkerAdjuster failed to define the number of workers; nothing submitted")
                return False
            for queue_name, by_job_type in n_workers_map.items():
                for job_type, by_resource in by_job_type.items():
                    for resource_type, counts in by_resource.items():
                        submitted |= self.submit_slot(queue_name, job_type, resource_type, counts, locked_by)
        finally:
            self.dbProxy.release_site(site_name, locked_by)
        if submitted and cfg.minSubmissionInterval > 0:
            next_time = core_utils.naive_utcnow() + datetime.timedelta(seconds=cfg.minSubmissionInterval)
            self.dbProxy.update_panda_queue_attribute("submitTime", next_time, site_name=site_name)
        # another site may be waiting: go on at once unless told to respect the sleep time
        return not getattr(cfg, "respectSleepTime", False)

    def apply_commands(self, site_name: str, log: Any, current: dict | None = None, res_map: dict | None = None
                       ) -> None:
        """Apply the queue depths PanDA set with SET_N_WORKERS_JOBTYPE for this site in the DB, then
        read this cycle's counts ``current`` (and ``res_map``: {jobType: {resourceType: queue}})
        again, so that a new depth — also one for a job type the site had no row for — counts at
        once rather than at the site's next turn."""
        pattern = f"{CommandSpec.COM_setNWorkers}:{site_name}"
        applied = False
        for command in self.dbProxy.get_commands_for_receiver("submitter", pattern) or []:
            log.info(f"applying {command.command} params={command.params}")
            self.dbProxy.set_queue_limit(site_name, command.params)
            applied = True
        if not applied or current is None:
            return
        fresh, fresh_map = self.dbProxy.get_site_slots(site_name, harvester_config.submitter.lockInterval)
        if fresh:
            current.clear()
            current.update(fresh)
            if res_map is not None:
                res_map.clear()
                res_map.update(fresh_map)

    # ------------------------------------------------------------------ one slot
    def submit_slot(self, queue_name: str, job_type: str, resource_type: str, counts: dict, locked_by: str) -> bool:
        """Make and submit the workers of one (queue, job type, resource type) slot."""
        log = self.make_logger(_logger, f"queueName={queue_name} jobType={job_type} resourceType={resource_type}",
                               method_name="submit_slot")
        n_ready = counts.get("nReady", 0)
        n_workers = counts.get("nNewWorkers", 0) + n_ready
        if n_workers <= 0:
            return False
        if not self.queueConfigMapper.has_queue(queue_name):
            log.error("no queue config for the queue; nothing submitted")
            return False
        queue_config = self.queueConfigMapper.get_queue(queue_name)
        maker = self.workerMaker.get_plugin(queue_config)
        if maker is None:
            log.error("workerMaker plugin missing in the queue config; nothing submitted")
            return False
        job_chunks = self.get_job_chunks(queue_config, n_workers, n_ready, job_type, resource_type, maker, locked_by)
        if not job_chunks:
            return False
        ok_chunks, ng_chunks = self.workerMaker.make_workers(job_chunks, queue_config, n_ready, job_type,
                                                            resource_type, maker=maker)
        self.fail_unmade_jobs(ng_chunks, maker, locked_by)
        # every job locked for the slot is released, also those of chunks the maker dropped (no workerID)
        pandaids: set[int] = {job.PandaID for chunk in job_chunks for job in chunk}
        if ok_chunks:
            pandaids |= self.submit_chunks(queue_config, ok_chunks, locked_by, log)
        if pandaids:  # pull queues have no jobs: no transaction
            self.dbProxy.release_jobs(list(pandaids), locked_by)
        return bool(ok_chunks)

    def get_job_chunks(self, queue_config: Any, n_workers: int, n_ready: int, job_type: str, resource_type: str,
                       maker: Any, locked_by: str) -> list[list[Any]]:
        """Job chunks for the workers as the queue's mapType says ([] chunks for NoJob)."""
        if queue_config.mapType == WorkSpec.MT_NoJob:
            return [[] for _ in range(n_workers)]
        cfg = harvester_config.submitter
        per_worker, per_job = None, None
        max_in_total = max_per_cycle = None
        if queue_config.mapType == WorkSpec.MT_OneToOne:
            per_worker = 1
        elif queue_config.mapType == WorkSpec.MT_MultiJobs:
            per_worker = maker.get_num_jobs_per_worker(n_workers)
        elif queue_config.mapType == WorkSpec.MT_MultiWorkers:
            per_job = maker.get_num_workers_per_job(n_workers)
            max_in_total = maker.get_max_workers_per_job_in_total()
            max_per_cycle = maker.get_max_workers_per_job_per_cycle()
        else:
            _logger.error(f"queueName={queue_config.queueName} unknown mapType={queue_config.mapType!r}: "
                          f"use NoJob, OneToOne, ManyToOne or OneToMany")
            return []
        return self.dbProxy.get_job_chunks_for_workers(
            queue_config.queueName, n_workers, n_ready, per_worker, per_job, queue_config.useJobLateBinding,
            cfg.checkInterval, cfg.lockInterval, locked_by, queue_config.allowJobMixture, max_in_total, max_per_cycle)

    def fail_unmade_jobs(self, ng_chunks: list[list[Any]], maker: Any, locked_by: str) -> None:
        """Jobs no worker could be made for fail (unless the maker says to skip them)."""
        if getattr(maker, "skipOnFail", False):
            return
        now = core_utils.naive_utcnow()
        for chunk in ng_chunks:
            for job in chunk:
                lifecycle.change_job_status(job, lifecycle.JOB_FAILED, lifecycle.SUB_FAILED_TO_MAKE, now)
                job.lockedBy = None
                job.set_pilot_error(PilotErrors.SETUPFAILURE, "failed to make a worker for the job")
                job.trigger_propagation()
                self.dbProxy.update_job(job, {"lockedBy": locked_by, "subStatus": "prepared"})

    # ------------------------------------------------------------------ submission
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
        return touched

    def feed_workers(self, messenger: Any, workers: list[WorkSpec], log: Any) -> dict[int, tuple[None, str]]:
        """Make the access points and write the jobs there; ``{id(worker): (None, diag)}`` for the
        workers that must not be submitted (a pilot without its job description would be lost):
        they fail for now, and their jobs are retried (``maxSubmissionAttempts``)."""
        ok, reply = self.call_plugin(log, messenger, "setup_access_points", workers)
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
            ok, fed = self.call_plugin(log, messenger, "feed_jobs", work_spec, jobs)
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
        a ``preset`` answer (keyed by ``id(worker)``). A plugin exception or a reply of the wrong
        length fails the whole batch with that diagnostic.
        """
        preset = preset or {}
        to_submit = [w for w in workers
                     if w.status not in (WorkSpec.ST_ready, WorkSpec.ST_running) and id(w) not in preset]
        watch = core_utils.get_stopwatch()
        try:
            replies = list(submitter.submit_workers(to_submit)) if to_submit else []
            if len(replies) != len(to_submit):
                raise ValueError(f"submit_workers returned {len(replies)} results for {len(to_submit)} workers")
        except Exception as exc:
            diag = f"submitter plugin {submitter.__class__.__name__} raised {exc.__class__.__name__}: {exc}"
            log.error(diag)
            replies = [(False, diag)] * len(to_submit)
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
        to_fail = []
        for job in jobs:
            if job.PandaID in ok_pandaids:
                continue
            job.submissionAttempts = (job.submissionAttempts or 0) + 1
            if ok is False or job.submissionAttempts >= queue_config.maxSubmissionAttempts:
                to_fail.append(job)
            else:
                self.dbProxy.increment_submission_attempt(job.PandaID, job.submissionAttempts)
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

