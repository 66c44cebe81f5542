"""The monitor's FIFO mode (``[monitor] fifoEnable``) and event-based checks (``eventBasedEnable``).

The FIFO (:class:`~pandaharvester.harvestercore.fifos.MonitorFIFO`) holds objects
``(queueName, [[WorkSpec, ...], ...])`` scored by the time their workers are next due. The DB
stays the truth: the FIFO's copies only say *which* workers to check *when*. One FIFO cycle
(every ``fifoSleepTimeMilli``):

- take the due objects (score <= now; protectively with ``fifoProtectiveDequeue``, released
  once their checks are written, restored at start after a crash), up to ``maxWorkers``
  workers;
- lock their workers in the DB as the DB cycle does (``get_workers_to_update_by_ids``: still
  active, not locked by another thread) and check them from the fresh rows; a copy older than
  the worker's last enqueueing (workParams ``lastCheckAt``) is a stale duplicate and dropped;
- every still active worker goes back with ``lastCheckAt`` = now and the score
  now + ``fifoCheckInterval`` (a monitor plugin's own ``fifoCheckInterval`` wins); a worker
  waiting for its post-processing goes to the head (score - 2**32) for at most
  ``fifoMaxPreemptInterval`` seconds.

The DB cycle still runs every ``sleepTime`` seconds and checks the workers the FIFO does not
serve (a FIFO-checked worker is written at each check, so the DB cycle does not see it as due);
one it finds unchecked for ``fifoForceEnqueueInterval`` seconds (or never checked) is put in
the FIFO. At start the FIFO is filled from the DB when empty (``fifoMaxWorkersToPopulate``).

Event-based checks: every ``eventBasedCheckInterval`` one thread (process lock
``monitor_event_deliverer``) asks each plugin of ``eventBasedPlugins`` for
``report_updated_workers(time_window=eventBasedTimeWindow)`` → ``[(workerID, update time)]``,
stored in the :class:`~pandaharvester.harvestercore.fifos.MonitorEventFIFO` (a newer update
re-arms an event); each cycle checks first the workers of up to ``eventBasedCheckMaxEvents``
events, whatever their check interval. Handled events stay in the temporary space (so that the
same update does not trigger twice) until ``eventBasedEventLifetime`` seconds old.
"""

from __future__ import annotations

import time
from typing import Any

from pandaharvester.harvestercore import core_utils
from pandaharvester.harvestercore.fifos import HEAD_OFFSET, MonitorEventFIFO, MonitorFIFO
from pandaharvester.harvestercore.lifecycle import WORKER_ACTIVE, WORKER_ENDED
from pandaharvester.harvestercore.plugin_factory import PluginFactory

_logger = core_utils.setup_logger("monitor")

Groups = list  # [(queueName, configID, [[WorkSpec, ...], ...])]


class MonitorFifoMode:
    """The FIFO side of a :class:`~pandaharvester.harvesterbody.monitor.Monitor` (module docstring)."""

    cfg_section = "monitor"  # the section of the keys read with self.cfg (the agent's)

    def __init__(self, agent: Any) -> None:
        self.agent = agent
        self.fifo = MonitorFIFO()
        self.event_fifo = MonitorEventFIFO() if agent.cfg("eventBasedEnable", False) else None
        self.event_plugins: list[Any] = []
        if self.event_fifo is not None:
            factory = PluginFactory()
            for conf in agent.cfg("eventBasedPlugins", None) or []:
                self.event_plugins.append(factory.get_plugin(conf, role="monitor"))
        self.last_db_cycle = 0.0
        self.last_delivery = 0.0
        self.last_dispose = 0.0
        self.busy_since: float | None = None
        self._taken: list[Any] = []  # ids of the objects taken protectively this cycle

    # ------------------------------------------------------------ settings
    def cfg(self, key: str, default: Any = None) -> Any:
        return self.agent.cfg(key, default)

    def sleep_time(self) -> float:
        """Seconds between FIFO cycles (``fifoSleepTimeMilli``)."""
        return float(self.cfg("fifoSleepTimeMilli", 5000)) / 1000.0

    def check_interval(self, monitor_plugin: Any) -> float:
        """Seconds until a checked worker is due again."""
        value = getattr(monitor_plugin, "fifoCheckInterval", None)
        if value is None:
            value = self.cfg("fifoCheckInterval", None)
        return float(value if value is not None else self.cfg("checkInterval", 300))

    def log(self, method: str) -> Any:
        return self.agent.make_logger(_logger, f"id={self.agent.locked_by}", method_name=method, send_dialog=False)

    # ------------------------------------------------------------ start
    def bootstrap(self) -> None:
        """Objects left in the temporary space by a crash go back; an empty FIFO is filled from the DB."""
        self.fifo.restore()
        if self.fifo.size() == 0:
            n = self.fifo.populate()
            self.log("bootstrap").info(f"monitor FIFO filled with {n} active workers from the DB")

    def db_cycle_due(self) -> bool:
        """Whether the DB cycle runs in this cycle (every ``sleepTime`` s); the clock restarts when it does."""
        now = time.time()
        if now < self.last_db_cycle + float(self.cfg("sleepTime", 600)):
            return False
        self.last_db_cycle = now
        return True

    # ------------------------------------------------------------ FIFO cycle
    def pick_due(self) -> Groups:
        """Take the due objects (up to ``maxWorkers`` workers) and lock their workers in the DB."""
        max_workers = int(self.cfg("maxWorkers", 500))
        per_object = int(self.cfg("fifoMaxWorkersPerChunk", 500))
        protective = bool(self.cfg("fifoProtectiveDequeue", True))
        stamps: dict[int, float] = {}
        n_workers = 0
        now = time.time()
        while n_workers < max_workers:
            count = max(1, (max_workers - n_workers) // per_object)
            objs = self.fifo.getmany(maxscore=now, count=count, protective=protective)
            if not objs:
                break
            for obj in objs:
                if protective:
                    self._taken.append(obj.id)
                _queue, chunks = obj.item
                for chunk in chunks:
                    for work_spec in chunk:
                        _ok, stamp = work_spec.get_work_params("lastCheckAt")
                        stamps[work_spec.workerID] = stamp if stamp is not None else now
                        n_workers += 1
        return self._lock(stamps)

    def pick_events(self) -> Groups:
        """Deliver (under the process lock) and take the events due; lock their workers."""
        interval = float(self.cfg("eventBasedCheckInterval", 300))
        now = time.time()
        if now >= self.last_delivery + interval:
            self.last_delivery = now
            if self.agent.acquire_process_lock("monitor_event_deliverer", interval):
                self.deliver_events(float(self.cfg("eventBasedTimeWindow", 450)))
        if now >= self.last_dispose + interval / 2:
            self.last_dispose = now
            removed = self.event_fifo.getmany(maxscore=now - float(self.cfg("eventBasedEventLifetime", 1800)),
                                              count=int(self.cfg("eventBasedRemoveMaxEvents", 2000)), temporary=True)
            if removed:
                self.log("pick_events").debug(f"removed {len(removed)} expired worker events")
        events = self.event_fifo.getmany(count=int(self.cfg("eventBasedCheckMaxEvents", 500)), protective=True,
                                         decode_item=False)
        return self._lock({int(e.id): None for e in events}) if events else []

    def deliver_events(self, time_window: float) -> None:
        """Store the updates each event-based plugin reports (a newer update re-arms an event)."""
        log = self.log("deliver_events")
        for plugin in self.event_plugins:
            ok, updates = self.agent.call_plugin(log, plugin, "report_updated_workers", time_window=time_window)
            if not ok:
                log.error(f"{type(plugin).__name__}.report_updated_workers failed: {updates}")
                continue
            for worker_id, timestamp in updates or []:
                if not self.event_fifo.putbyid(id=worker_id, item=True, score=timestamp):
                    self.event_fifo.update(id=worker_id, score=timestamp, temporary=0, cond_score="gt")

    def _lock(self, stamps: dict[int, float | None]) -> Groups:
        """Lock the workers ``stamps`` names ({workerID: its copy's lastCheckAt, or None: no staleness check})."""
        if not stamps:
            return []
        known = {k: v for k, v in stamps.items() if v is not None}
        worker_map = self.agent.dbProxy.get_workers_to_update_by_ids(
            list(stamps), self.cfg("lockInterval"), self.agent.locked_by, stamps=known or None) or {}
        return [(queue, config_id, chunks) for queue, by_config in worker_map.items()
                for config_id, chunks in by_config.items()]

    def release(self, _groups: Groups) -> None:
        """Drop the objects taken protectively in this cycle (their workers are written and re-enqueued)."""
        if self._taken:
            taken, self._taken = self._taken, []
            self.fifo.release(taken)

    def full(self, groups: Groups) -> bool:
        """A full batch: run again at once, for at most ``fifoCheckDuration`` s in a row."""
        n = sum(len(chunk) for _q, _c, chunks in groups for chunk in chunks)
        now = time.time()
        if n < int(self.cfg("maxWorkers", 500)):
            self.busy_since = None
            return False
        if self.busy_since is None:
            self.busy_since = now
        return now - self.busy_since < float(self.cfg("fifoCheckDuration", 30))

    # ------------------------------------------------------------ after a check
    def plan(self, chunks: list[list[Any]], results: dict[int, Any], monitor_plugin: Any, from_fifo: bool
             ) -> list[tuple[list[Any], float]]:
        """The chunks to put back and their scores; stamps their workers' lastCheckAt (written
        with the check's results, which makes older copies stale)."""
        now = time.time()
        interval = self.check_interval(monitor_plugin)
        force_after = float(self.cfg("fifoForceEnqueueInterval", 3600))
        preempt = float(self.cfg("fifoMaxPreemptInterval", 60))
        planned = []
        for chunk in chunks:
            first = chunk[0]
            result = results.get(first.workerID)
            if result is None or result.new_status not in WORKER_ACTIVE:
                continue
            if not from_fifo and not _unchecked_for(chunk, force_after, now):
                continue  # served by the FIFO (or will be): the DB cycle only stood in
            score = now + interval
            if result.mon_status in WORKER_ENDED:
                ok, since = first.get_work_params("startFifoPreemptAt")
                if not ok or since is None:
                    since = now
                    first.set_work_params({"startFifoPreemptAt": since})
                if now - float(since) < preempt:
                    score -= HEAD_OFFSET
            for work_spec in chunk:
                work_spec.set_work_params({"lastCheckAt": now})
            planned.append((chunk, score))
        return planned

    def enqueue(self, queue_name: str, planned: list[tuple[list[Any], float]]) -> None:
        """Put the planned chunks back, ``fifoMaxWorkersPerChunk`` workers per object, head ones apart."""
        per_object = int(self.cfg("fifoMaxWorkersPerChunk", 500))
        for head in (True, False):
            part = [(chunk, score) for chunk, score in planned if (score < 0) == head]
            if not part:
                continue
            score = max(s for _c, s in part)
            batch: list[list[Any]] = []
            n = 0
            for chunk, _s in part:
                batch.append(chunk)
                n += len(chunk)
                if n >= per_object:
                    self.fifo.put((queue_name, batch), score)
                    batch, n = [], 0
            if batch:
                self.fifo.put((queue_name, batch), score)


def fifo_problems() -> list[str]:
    """The start-up check of the FIFO mode: with ``[monitor] fifoEnable`` the monitor FIFOs'
    backends are made once (module, class, file or server reachable); one line per problem."""
    from pandaharvester.errors import ConfigError
    from pandaharvester.harvesterconfig import schema

    if not schema.cfg_value("monitor", "fifoEnable", False):
        return []
    problems = []
    for make in (MonitorFIFO, MonitorEventFIFO) if schema.cfg_value("monitor", "eventBasedEnable", False) \
            else (MonitorFIFO,):
        try:
            make()
        except ConfigError as exc:
            problems.append(str(exc))
    return problems


def _unchecked_for(chunk: list[Any], seconds: float, now: float) -> bool:
    """Whether a worker of the chunk was never checked, or not for ``seconds`` (before this check)."""
    for work_spec in chunk:
        previous = work_spec.get_work_params("lastCheckAt")[1]
        if previous is None or now - float(previous) > seconds:
            return True
    return False


def enqueue_new_workers(agent: Any, queue_name: str, workers: list[Any], log: Any) -> None:
    """Put newly submitted (active) workers in the monitor FIFO, due after ``[monitor]
    fifoCheckInterval`` (the submitter's part of the FIFO mode; its FIFO is made at first use)."""
    active = [[w] for w in workers if w.status in WORKER_ACTIVE]
    if not active:
        return
    try:
        fifo = getattr(agent, "_monitor_fifo", None)
        if fifo is None:
            fifo = agent._monitor_fifo = MonitorFIFO()
        interval = agent.cfg_value("monitor", "fifoCheckInterval", None)
        if interval is None:
            interval = agent.cfg_value("monitor", "checkInterval", 300)
        now = time.time()
        for chunk in active:
            chunk[0].set_work_params({"lastCheckAt": now})
        per_object = int(agent.cfg_value("monitor", "fifoMaxWorkersPerChunk", 500))
        for start in range(0, len(active), per_object):
            fifo.put((queue_name, active[start:start + per_object]), now + float(interval))
    except Exception:
        core_utils.dump_error_message(log)
        log.error(f"{len(active)} new workers not put in the monitor FIFO: the monitor's DB cycle checks them")
