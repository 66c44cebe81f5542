"""EventFeeder: gets event ranges from PanDA for workers that asked and feeds them via the messenger."""

from __future__ import annotations

from typing import Any

from pandaharvester.harvesterbody.agent_base import AgentBase, Step
from pandaharvester.harvestercore import core_utils
from pandaharvester.harvestercore.log_utils import ids_text
from pandaharvester.harvestercore.work_spec import WorkSpec

_logger = core_utils.setup_logger("event_feeder")


class EventFeeder(AgentBase):
    """One cycle: workers with ``eventsRequest == EV_requestEvents`` get their event ranges."""

    cfg_section = "eventfeeder"

    def __init__(self, communicator: Any, queue_config_mapper: Any, single_mode: bool = False):
        super().__init__(single_mode, queue_config_mapper=queue_config_mapper, communicator=communicator)

    def steps(self) -> list[Step]:
        max_workers = self.cfg("maxWorkers")
        return [Step("feed", self.pick, self.feed_queues, chunk_size=1,
                     full=lambda queues: sum(len(workers) for _q, workers in queues) >= max_workers)]

    def pick(self) -> list[tuple[str, list[WorkSpec]]]:
        """The workers that asked for events, locked (eventFeedLock): ``[(queueName, workers)]``."""
        worker_map = self.dbProxy.get_workers_to_feed_events(self.cfg("maxWorkers"), self.cfg("lockInterval"),
                                                             self.locked_by) or {}
        return list(worker_map.items())

    def feed_queues(self, queues: list[tuple[str, list[WorkSpec]]]) -> None:
        for queue_name, workers in queues:
            log = self.make_logger(_logger, f"queueName={queue_name}", method_name="run_cycle")
            queue_config = self.queue_config(queue_name, log=log, consequence="events not fed")
            if queue_config is None:
                continue
            messenger = self.pluginFactory.get_plugin(queue_config.messenger)
            for work_spec in workers:
                try:
                    self.feed_worker(work_spec, queue_config, messenger, self.locked_by)
                except Exception:
                    core_utils.dump_error_message(log)

    def feed_worker(self, work_spec: WorkSpec, queue_config: Any, messenger: Any, locked_by: str) -> None:
        """Fetch and feed the event ranges one worker asked for."""
        log = self.make_logger(_logger, f"workerID={work_spec.workerID}", method_name="feed_worker")
        if not self.dbProxy.lock_worker_again_to_feed_events(work_spec.workerID, locked_by):
            log.debug("skipped: locked by another thread")
            return
        ok, events = self.communicator.get_event_ranges(work_spec.eventsRequestParams,
                                                        getattr(queue_config, "scatteredEvents", False),
                                                        work_spec.get_access_point())
        if not ok:
            log.error(f"failed to get event ranges: {events}; retried after [eventfeeder] lockInterval")
            return
        fed_ok, diag = self.call_plugin(log, messenger, "feed_events", work_spec, events, role="messenger",
                                        queue=queue_config.queueName)
        if not fed_ok or diag is False:
            log.error(f"failed to feed events: {diag}; retried after [eventfeeder] lockInterval")
            return
        n_ranges = sum(len(ranges) for ranges in events.values())
        log.info(f"fed {n_ranges} event ranges for {ids_text('PandaID', events)}")
        if work_spec.mapType == WorkSpec.MT_MultiWorkers:
            for panda_id, ranges in events.items():
                requested = (work_spec.eventsRequestParams or {}).get(panda_id, {}).get("nRanges", 0)
                if len(ranges) < requested:
                    self.dbProxy.disable_multi_workers(panda_id)
        work_spec.eventsRequest = WorkSpec.EV_useEvents
        work_spec.eventsRequestParams = None
        work_spec.eventFeedTime = None
        work_spec.eventFeedLock = None
        self.dbProxy.update_worker(work_spec, {"eventFeedLock": locked_by})
