"""What the Propagator reports to PanDA besides jobs and workers (:class:`PandaReports`).

- worker statistics: for a ``REPORT_WORKER_STATS:<site>`` command at once, and every
  ``STATS_PERIOD`` seconds for every active unified (pull) queue, by one of the Propagator
  threads of the instance (one thread of the process, then process lock
  ``propagator_worker_stats:<harvester_id>`` between the processes of ``[master] nProcesses``),
  under the PanDA queue name (``worker_stats.by_panda_queue``);
- service metrics (what the ServiceMonitor stored) every ``METRICS_PERIOD`` seconds, by one
  Propagator of the instance (process lock ``propagator_service_metrics:<harvester_id>``): those
  created since the last report, whose time is kept in the cache table, so that no process
  sends what another one sent;
- dialog messages (log lines at or above ``[propagator] minMessageLevel``), up to
  ``[propagator] maxDialogs`` per cycle, deleted once PanDA has them.
"""

from __future__ import annotations

import datetime
import threading
import time
from typing import Any

from pandaharvester.harvestercore import core_utils
from pandaharvester.harvestercore.command_spec import CommandSpec
from pandaharvester.harvestercore.worker_stats import by_panda_queue

_logger = core_utils.setup_logger("propagator")

STATS_PERIOD = 300
# when this process last reported worker statistics (shared by the Propagator threads)
_stats_sent: dict[str, float | None] = {"time": None}
_stats_lock = threading.Lock()
METRICS_PERIOD = 300
METRICS_SENT_KEY = "_service_metrics_sent"  # cache_table: creation time after the last metrics sent


class PandaReports:
    """The Propagator's reports besides jobs and workers (a mixin of an :class:`AgentBase` with a
    ``communicator``; it keeps ``_last_metrics_update``)."""

    _last_metrics_update: datetime.datetime | None = None

    def send_reports(self) -> None:
        """Everything this module describes, in that order (after the commands for the propagator)."""
        self.process_commands()
        self.report_worker_stats()
        self.report_service_metrics()
        self.send_dialogs()

    def process_commands(self) -> None:
        """Worker statistics PanDA asked for (``REPORT_WORKER_STATS:<site>``)."""
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
        lock = f"propagator_worker_stats:{self.cfg_value('master', 'harvester_id', '')}"
        if not self.acquire_process_lock(lock, STATS_PERIOD):
            return  # another process of this instance reported in this period
        sent = False
        stats = self.dbProxy.get_worker_stats_bulk(self.queueConfigMapper.get_active_ups_queues())
        # one report per PanDA queue (the pseudo-queues of a unified queue merged): each replaces the last
        for site_name, site_stats in by_panda_queue(stats or {}, self.queueConfigMapper.get_queue).items():
            if self._send_worker_stats(site_name, site_stats, "bulk"):
                sent = True
        if not sent:
            with _stats_lock:  # nothing went through: the next cycle (of any thread) tries again
                _stats_sent["time"] = last
            self.release_process_lock(lock)

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
        """The service metrics stored since the last report of the instance, every METRICS_PERIOD seconds."""
        now = core_utils.naive_utcnow()
        if self._last_metrics_update and now - self._last_metrics_update <= datetime.timedelta(seconds=METRICS_PERIOD):
            return
        self._last_metrics_update = now  # this thread's next try
        harvester_id = self.cfg_value("master", "harvester_id", "")
        lock = f"propagator_service_metrics:{harvester_id}"
        if not self.acquire_process_lock(lock, METRICS_PERIOD):
            return  # another Propagator of this instance reports in this period
        cached = self.dbProxy.get_cache(METRICS_SENT_KEY, harvester_id, from_local_cache=False)
        since = datetime.datetime(1970, 1, 1)  # never reported: everything kept (24 h)
        if cached is not None and cached.data:
            since = datetime.datetime.fromisoformat(str(cached.data))
        metrics = self.dbProxy.get_service_metrics(since)
        if not metrics:
            return
        ok, message = self.communicator.update_service_metrics(metrics)
        if ok:
            # just after the newest one sent: get_service_metrics takes creationTime >= since
            newest = max(datetime.datetime.strptime(m[0], "%Y-%m-%d %H:%M:%S.%f") for m in metrics)
            self.dbProxy.refresh_cache(METRICS_SENT_KEY, harvester_id,
                                       (newest + datetime.timedelta(microseconds=1)).isoformat())
        else:
            _logger.error(f"failed to update service metrics: {message}")
            self.release_process_lock(lock)
            self._last_metrics_update = None

    def send_dialogs(self) -> None:
        """Send the dialog messages, then delete them."""
        dialogs = self.dbProxy.get_dialog_messages_to_send(self.cfg_value("propagator", "maxDialogs", 50),
                                                          self.cfg_value("propagator", "lockInterval")) or []
        if not dialogs:
            return
        ok, message = self.communicator.send_dialog_messages(dialogs)
        if ok:
            self.dbProxy.delete_dialog_messages([d.diagID for d in dialogs])
        else:
            _logger.error(f"failed to send {len(dialogs)} dialog messages: {message}")
