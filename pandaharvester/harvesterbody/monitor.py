"""Monitor: checks live workers in bulk and writes their new state and their jobs' back.

One cycle, one step (:class:`~pandaharvester.harvesterbody.agent_base.Step`): ``get_workers_to_update``
locks up to ``[monitor] maxWorkers`` workers due for a check (``checkInterval``) grouped by queue
and config; for each group the :class:`~pandaharvester.harvesterbody.monitor_checks.WorkerChecker`
asks the plugin (once for the group) and the messenger; then, up to 500 worker chunks at a time,
the jobs get the workers' news (``update_job_attributes_with_workers``) and the base's flush
writes the kill marks the check decided, then the jobs and workers (``update_jobs_workers_bulk``,
one transaction); finally the messenger acknowledges the files and events it reported.

With ``[monitor] fifoEnable`` the workers are also taken from the monitor FIFO when due (and,
with ``eventBasedEnable``, first those the event-based plugins report), checked the same way
and put back with their next check time; the DB cycle then runs every ``sleepTime`` for the
workers the FIFO lacks (:mod:`monitor_fifo`).
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from pandaharvester.harvesterbody.agent_base import AgentBase, Step
from pandaharvester.harvesterbody.monitor_checks import FINAL_MONITOR_STATES, CheckResult, WorkerChecker
from pandaharvester.harvestercore import core_utils
from pandaharvester.harvestercore.log_utils import ids_text
from pandaharvester.harvestercore.pilot_errors import PilotErrors
from pandaharvester.harvestercore.work_spec import WorkSpec

_logger = core_utils.setup_logger("monitor")

# worker chunks written back per DB transaction (bounded so that other agents get the DB in between)
CHUNKS_PER_TRANSACTION = 500


class Monitor(AgentBase):
    """Checks workers; see the module docstring for one cycle."""

    cfg_section = "monitor"

    def __init__(self, queue_config_mapper: Any, single_mode: bool = False):
        super().__init__(single_mode, queue_config_mapper=queue_config_mapper)
        self.fifo_mode = None
        if self.cfg("fifoEnable", False):
            from pandaharvester.harvesterbody.monitor_fifo import MonitorFifoMode

            self.fifo_mode = MonitorFifoMode(self)

    def bootstrap(self) -> None:
        if self.fifo_mode is not None:
            self.fifo_mode.bootstrap()

    def sleep_time(self) -> float:
        return self.fifo_mode.sleep_time() if self.fifo_mode is not None else super().sleep_time()

    def steps(self) -> list[Step]:
        max_workers = self.cfg("maxWorkers")
        db_step = Step("check", self.pick, self.check_groups,
                       full=lambda groups: sum(len(c) for _q, _id, chunks in groups for c in chunks) >= max_workers)
        fifo = self.fifo_mode
        if fifo is None:
            return [db_step]
        from_fifo = functools.partial(self.check_groups, from_fifo=True)
        steps = [Step("fifo", fifo.pick_due, from_fifo, release=fifo.release, full=fifo.full)]
        if fifo.event_fifo is not None:
            steps.insert(0, Step("events", fifo.pick_events, from_fifo))
        if fifo.db_cycle_due():
            steps.append(db_step)
        return steps

    def pick(self) -> list[tuple[str, int | None, list[list[WorkSpec]]]]:
        """The workers due for a check, locked: ``[(queueName, configID, worker chunks)]``."""
        worker_map = self.dbProxy.get_workers_to_update(self.cfg("maxWorkers"), self.cfg("checkInterval"),
                                                        self.cfg("lockInterval"), self.locked_by) or {}
        return [(queue_name, config_id, chunks) for queue_name, by_config in worker_map.items()
                for config_id, chunks in by_config.items()]

    def check_groups(self, groups: list[tuple[str, int | None, list[list[WorkSpec]]]], from_fifo: bool = False
                     ) -> None:
        """:meth:`monitor_agent_core` for each group; one that raises is logged, the others go on."""
        for queue_name, config_id, chunks in groups:
            try:
                self.monitor_agent_core(self.locked_by, queue_name, chunks, config_id=config_id, from_fifo=from_fifo)
            except Exception:
                core_utils.dump_error_message(self.make_logger(_logger, f"queueName={queue_name}",
                                                               method_name="run_cycle"))

    def monitor_agent_core(self, locked_by: str, queue_name: str, chunks: list[list[WorkSpec]],
                           config_id: int | None = None, from_fifo: bool = False) -> bool:
        """Check the worker chunks of one queue and write the results back (in FIFO mode, put the
        active ones back in the FIFO); False on failure."""
        log = self.make_logger(_logger, f"id={locked_by} queueName={queue_name}", method_name="monitor_agent_core")
        queue_config = self.queue_config(queue_name, config_id, exact=True, log=log,
                                         consequence="workers left for a later cycle")
        if queue_config is None:
            return False
        monitor_plugin = self.pluginFactory.get_plugin(queue_config.monitor)
        messenger = self.pluginFactory.get_plugin(queue_config.messenger)
        workers = [w for chunk in chunks for w in chunk]
        log.debug(f"checking {len(workers)} workers")
        checker = WorkerChecker(self, self.dbProxy, queue_config, monitor_plugin, messenger, log)
        results = checker.check(workers)
        planned = self.fifo_mode.plan(chunks, results, monitor_plugin, from_fifo) if self.fifo_mode else None
        self.process_in_chunks(chunks, lambda part: self.write_back_chunks(part, results, messenger, locked_by, log),
                               CHUNKS_PER_TRANSACTION, name="write_back")
        if planned:
            self.fifo_mode.enqueue(queue_name, planned)
        return True

    def write_back_chunks(self, chunks: list[list[WorkSpec]], results: dict[int, CheckResult], messenger: Any,
                          locked_by: str, log: Any) -> None:
        """Apply the results to worker chunks and their jobs, and queue them for one transaction
        (one transaction per chunk cost more than the checks themselves)."""
        outcomes: dict[tuple, list[int]] = {}
        now = core_utils.naive_utcnow()
        # the jobs of every chunk in one read (the chunk's first worker with jobs, as below)
        first_with_job = [next((w.workerID for w in chunk if w.hasJob == 1), None) for chunk in chunks]
        wanted = [worker_id for worker_id in first_with_job if worker_id is not None]
        jobs_of = self.dbProxy.get_jobs_with_worker_ids(wanted, only_running=True, slim=True) if wanted else {}
        prepared = [self.prepare_write_back(chunk, results, outcomes, now, jobs_of) for chunk in chunks]
        self.log_outcomes(outcomes)

        def written(_items: list[Any], oks: list[bool] | None) -> None:
            if oks is None:
                log.error(f"{sum(len(c) for c in chunks)} workers not updated: DB error (see panda-db_proxy.log); "
                          f"they stay locked and are checked again after [monitor] lockInterval")
                return
            for chunk, ok, (_jobs, _ids, events_list, files_map) in zip(chunks, oks, prepared):
                self.after_write_back(chunk, ok, events_list, files_map, messenger, log)

        self.writes.add("update_jobs_workers_bulk", [(jobs, chunk, ids) for chunk, (jobs, ids, _e, _f)
                                                     in zip(chunks, prepared)], locked_by, on_result=written)

    def prepare_write_back(self, chunk: list[WorkSpec], results: dict[int, CheckResult],
                           outcomes: dict[tuple, list[int]], now: Any, jobs_of: dict[int, list[Any]]
                           ) -> tuple[list[Any] | None, list[Any], list[Any], dict[int, Any]]:
        """Copy the results into one chunk's workers and jobs: (jobs, panda_ids_list, events_list, files_map).

        The jobs are those of the chunk's first worker with jobs, taken from ``jobs_of``
        ({workerID: jobs}, read in bulk by the caller) or read here when it lacks the worker.
        Each worker's outcome (old/new/monitored status, diag, number of files) is added to
        ``outcomes`` ({outcome: [workerID, ...]}, logged by :meth:`log_outcomes`)."""
        jobs = None
        panda_ids_list = []
        events_list = []
        files_map: dict[int, Any] = {}
        for work_spec in chunk:
            result = results[work_spec.workerID]
            self.apply_result(work_spec, result, now)
            if work_spec.hasJob == 1 and jobs is None:
                if work_spec.workerID in jobs_of:
                    jobs = jobs_of[work_spec.workerID]
                else:
                    jobs = self.dbProxy.get_jobs_with_worker_id(work_spec.workerID, None, only_running=True,
                                                                slim=True)
            panda_ids_list.append(result.panda_ids)
            if result.events_to_update:
                events_list.append(result.events_to_update)
            if result.files_to_stage_out:
                files_map[work_spec.workerID] = result.files_to_stage_out
            key = (result.old_status, result.new_status, result.mon_status, result.diag,
                   len(result.files_to_stage_out) if result.files_to_stage_out else 0)
            ids = outcomes.get(key)
            if ids is None:
                outcomes[key] = [work_spec.workerID]
            else:
                ids.append(work_spec.workerID)
        if jobs:
            core_utils.update_job_attributes_with_workers(chunk[0].mapType, jobs, chunk, files_map, events_list)
        return jobs, panda_ids_list, events_list, files_map

    def log_outcomes(self, outcomes: dict[tuple, list[int]]) -> None:
        """One DEBUG line per distinct outcome, carrying the workerIDs that had it (a line per
        worker cost about a tenth of the whole check)."""
        if not outcomes or not _logger.isEnabledFor(logging.DEBUG):
            return
        log = self.make_logger(_logger, method_name="write_back")
        for (old, new, mon, diag, n_files), ids in outcomes.items():
            log.debug(f"status {old} -> {new} (monitored {mon}) diag={diag!r} files={n_files} "
                      f"for {len(ids)} workers: {ids_text('workerID', ids)}")

    def after_write_back(self, chunk: list[WorkSpec], ok: bool, events_list: list[Any], files_map: dict[int, Any],
                         messenger: Any, log: Any) -> None:
        """Once a chunk is stored: acknowledge its files and events to the messenger (warn when not stored)."""
        if not ok:
            ids = [w.workerID for w in chunk]
            log.warning(f"{ids_text('workerID', ids)} not updated: already final or locked by another thread "
                        f"(raise [monitor] lockInterval if this repeats)")
            return
        if events_list or files_map:
            for work_spec in chunk:
                ok, message = self.call_plugin(log, messenger, "acknowledge_events_files", work_spec, default=None,
                                               role="messenger")
                if not ok:
                    log.error(f"workerID={work_spec.workerID} failed to acknowledge files/events: {message}")

    @staticmethod
    def apply_result(work_spec: WorkSpec, result: CheckResult, now: Any = None) -> None:
        """Copy one worker's check result into its spec (``now``: the checkTime, default the clock's)."""
        work_spec.set_status(result.new_status)
        work_spec.set_work_attributes(result.work_attributes)
        work_spec.set_dialog_message(result.diag)
        if result.is_checked:
            work_spec.checkTime = now or core_utils.naive_utcnow()
        if result.mon_status == WorkSpec.ST_failed and not work_spec.has_pilot_error() and work_spec.errorCode is None:
            work_spec.set_pilot_error(PilotErrors.GENERALERROR, result.diag)
        elif result.mon_status == WorkSpec.ST_cancelled and not work_spec.has_pilot_error() \
                and work_spec.errorCode is None:
            work_spec.set_pilot_error(PilotErrors.PANDAKILL, result.diag)
        if result.mon_status in FINAL_MONITOR_STATES:
            work_spec.set_work_params({"finalMonStatus": result.mon_status})
        if result.events_request_params:
            work_spec.eventsRequest = WorkSpec.EV_requestEvents
            work_spec.eventsRequestParams = result.events_request_params
        if result.n_jobs_to_refill is not None:
            work_spec.nJobsToReFill = result.n_jobs_to_refill
