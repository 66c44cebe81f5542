"""Submitter: makes workers for the queues of one site per cycle and submits them.

One cycle, one step: lock a site (``get_queues_to_submit``), apply PanDA's
``SET_N_WORKERS_JOBTYPE`` commands, ask the WorkerAdjuster how many workers each (queue, job
type, resource type) slot gets, and for each slot (one chunk of the base's batch skeleton): take
job chunks as the queue's mapType says, make WorkSpecs, prepare access points and feed jobs
through the messenger (a worker whose jobs could not be fed is not submitted: it fails for now
and its jobs are retried), record the workers (``insert_workers``, status pending) BEFORE the
batch submission, submit, then record the outcome (``register_workers_bulk``); the slot's flush
then fails the jobs no worker was made for, stores the submission attempts and releases the
jobs. Last, the site is released.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from pandaharvester.harvesterbody.agent_base import AgentBase, Step
from pandaharvester.harvesterbody.worker_adjuster import WorkerAdjuster
from pandaharvester.harvesterbody.worker_maker import WorkerMaker
from pandaharvester.harvesterbody.worker_submission import WorkerSubmission
from pandaharvester.harvestercore import core_utils, lifecycle
from pandaharvester.harvestercore.command_spec import CommandSpec
from pandaharvester.harvestercore.pilot_errors import PilotErrors
from pandaharvester.harvestercore.work_spec import WorkSpec

_logger = core_utils.setup_logger("submitter")


@dataclass
class SiteTurn:
    """The site a cycle serves (locked by ``get_queues_to_submit``) and how its turn went."""

    site_name: str
    current: dict
    res_map: dict
    adjusted: bool = False
    submitted: bool = False


class Submitter(WorkerSubmission, AgentBase):
    """Submits workers; see the module docstring for one cycle (a slot's submission: :mod:`worker_submission`)."""

    cfg_section = "submitter"
    batch_keys = ("maxNewWorkers",)

    def __init__(self, queue_config_mapper: Any, single_mode: bool = False):
        super().__init__(single_mode, queue_config_mapper=queue_config_mapper)
        self.workerMaker = WorkerMaker(self)
        self.workerAdjuster = WorkerAdjuster(queue_config_mapper, self)

    # ------------------------------------------------------------------ cycle
    def steps(self) -> list[Step]:
        # another site may be waiting: go on at once unless told to respect the sleep time
        go_on = not self.cfg("respectSleepTime", False)
        return [Step("submit", self.pick, self.submit_site, release=self.release,
                     full=lambda turns: go_on and any(turn.adjusted for turn in turns))]

    def pick(self) -> list[SiteTurn]:
        """The next site due, locked with its queues ([] when none is due)."""
        current, site_name, res_map = self.dbProxy.get_queues_to_submit(
            self.cfg("nQueues"), self.cfg("lookupTime"), self.cfg("lockInterval"), self.locked_by,
            self.cfg("queueLockInterval"))
        return [] if site_name is None else [SiteTurn(site_name, current, res_map)]

    def submit_site(self, turns: list[SiteTurn]) -> None:
        """Apply PanDA's commands, size the slots and submit them, one slot per chunk."""
        for turn in turns:
            log = self.make_logger(_logger, f"site={turn.site_name}", method_name="run_cycle")
            self.apply_commands(turn.site_name, log, turn.current, turn.res_map)
            n_workers_map = self.workerAdjuster.define_num_workers(turn.current, turn.site_name)
            if n_workers_map is None:
                log.error("WorkerAdjuster failed to define the number of workers; nothing submitted")
                continue
            turn.adjusted = True
            slots = [(queue_name, job_type, resource_type, counts)
                     for queue_name, by_job_type in n_workers_map.items()
                     for job_type, by_resource in by_job_type.items()
                     for resource_type, counts in by_resource.items()]

            def submit(chunk: list[tuple], turn: SiteTurn = turn) -> None:
                for slot in chunk:
                    turn.submitted = self.submit_slot(*slot, self.locked_by) or turn.submitted

            self.process_in_chunks(slots, submit, 1, name="submit_slot")

    def release(self, turns: list[SiteTurn]) -> None:
        """Release the site; after a submission, hold the next one ``minSubmissionInterval`` off."""
        interval = self.cfg("minSubmissionInterval")
        for turn in turns:
            self.dbProxy.release_site(turn.site_name, self.locked_by)
            if turn.submitted and interval > 0:
                next_time = core_utils.naive_utcnow() + datetime.timedelta(seconds=interval)
                self.dbProxy.update_panda_queue_attribute("submitTime", next_time, site_name=turn.site_name)

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
        fresh, fresh_map = self.dbProxy.get_site_slots(site_name, self.cfg("lockInterval"))
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
        queue_config = self.queue_config(queue_name, log=log, consequence="nothing submitted")
        if queue_config is None:
            return False
        maker = self.workerMaker.get_plugin(queue_config)
        if maker is None:
            log.error("workerMaker plugin missing in the queue config; nothing submitted")
            return False
        job_chunks = self.get_job_chunks(queue_config, n_workers, n_ready, job_type, resource_type, maker, locked_by,
                                         log=log)
        if not job_chunks:
            return False
        ok_chunks, ng_chunks = self.workerMaker.make_workers(job_chunks, queue_config, n_ready, job_type,
                                                            resource_type, maker=maker)
        self.fail_unmade_jobs(ng_chunks, maker, locked_by)
        # every job locked for the slot is released, also those of chunks the maker dropped (no workerID)
        pandaids: set[int] = {job.PandaID for chunk in job_chunks for job in chunk}
        if ok_chunks:
            pandaids |= self.submit_chunks(queue_config, ok_chunks, locked_by, log)
        self.writes.release_jobs(pandaids, locked_by)  # after the slot's other writes; pull queues have no jobs
        return bool(ok_chunks)

    def get_job_chunks(self, queue_config: Any, n_workers: int, n_ready: int, job_type: str, resource_type: str,
                       maker: Any, locked_by: str, log: Any = _logger) -> list[list[Any]]:
        """Job chunks for the workers as the queue's mapType says ([] chunks for NoJob; [] when a
        sizing method of the worker maker fails: nothing submitted for the slot this cycle)."""
        if queue_config.mapType == WorkSpec.MT_NoJob:
            return [[] for _ in range(n_workers)]
        per_worker, per_job = None, None
        max_in_total = max_per_cycle = None
        if queue_config.mapType == WorkSpec.MT_OneToOne:
            per_worker = 1
        elif queue_config.mapType == WorkSpec.MT_MultiJobs:
            sizes = self.maker_sizes(maker, queue_config, log, ("get_num_jobs_per_worker", n_workers))
            if sizes is None:
                return []
            (per_worker,) = sizes
        elif queue_config.mapType == WorkSpec.MT_MultiWorkers:
            sizes = self.maker_sizes(maker, queue_config, log, ("get_num_workers_per_job", n_workers),
                                     ("get_max_workers_per_job_in_total",), ("get_max_workers_per_job_per_cycle",))
            if sizes is None:
                return []
            per_job, max_in_total, max_per_cycle = sizes
        else:
            _logger.error(f"queueName={queue_config.queueName} unknown mapType={queue_config.mapType!r}: "
                          f"use NoJob, OneToOne, ManyToOne or OneToMany")
            return []
        return self.dbProxy.get_job_chunks_for_workers(
            queue_config.queueName, n_workers, n_ready, per_worker, per_job, queue_config.useJobLateBinding,
            self.cfg("checkInterval"), self.cfg("lockInterval"), locked_by, queue_config.allowJobMixture, max_in_total,
            max_per_cycle)

    def maker_sizes(self, maker: Any, queue_config: Any, log: Any, *calls: tuple) -> list[Any] | None:
        """The worker maker's replies to the sizing ``calls`` (``(method, *args)``); None (logged)
        when one raises or gives a reply of the wrong shape."""
        replies = []
        for method, *args in calls:
            ok, reply = self.call_plugin(log, maker, method, *args, role="workermaker", queue=queue_config.queueName)
            if not ok:
                log.error(f"{type(maker).__name__}.{method} failed: no jobs taken for the slot this cycle")
                return None
            replies.append(reply)
        return replies

    def fail_unmade_jobs(self, ng_chunks: list[list[Any]], maker: Any, locked_by: str) -> None:
        """Jobs no worker could be made for fail (unless the maker says to skip them)."""
        if getattr(maker, "skipOnFail", False):
            return
        now = core_utils.naive_utcnow()
        failed = [job for chunk in ng_chunks for job in chunk]
        for job in failed:
            lifecycle.change_job_status(job, lifecycle.JOB_FAILED, lifecycle.SUB_FAILED_TO_MAKE, now)
            job.lockedBy = None
            job.set_pilot_error(PilotErrors.SETUPFAILURE, "failed to make a worker for the job")
            job.trigger_propagation()
        self.writes.update_jobs(failed, {"lockedBy": locked_by, "subStatus": "prepared"})
