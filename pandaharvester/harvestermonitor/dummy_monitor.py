"""Dummy monitor: the state of a dummy-pilot worker, from its process and its status file.

- the pilot's final status file (``dummy_pilot_status.json``) says finished/failed → that;
- no final status and the recorded process (PID *and* start time) is alive → running;
- no final status and the process is gone → failed, with a diag saying it vanished;
- failed (either way) after ``DummySweeper`` killed the pilot (``dummy_pilot_killed.json``) or while
  the worker is marked to kill (``killTime`` set) → cancelled;
- an unreadable status/record file (being written, corrupt) → None for that worker (retry).
"""

from __future__ import annotations

import os
from typing import Any

from pandaharvester.harvesterbatch.dummy import (
    KILLED_FILE,
    STATUS_FILE,
    pilot_is_alive,
    read_json,
    read_process_record,
)
from pandaharvester.harvestercore import log_utils
from pandaharvester.harvestercore.plugin_base import PluginBase
from pandaharvester.harvestercore.work_spec import WorkSpec

_logger = log_utils.setup_logger("dummy_monitor")


class DummyMonitor(PluginBase):
    """Checks dummy-pilot workers."""

    def __init__(self, **kwarg: Any) -> None:
        PluginBase.__init__(self, **kwarg)

    def check_workers(self, workspec_list: list) -> tuple[bool, list[tuple[str | None, str]]]:
        """(True, [(new status or None, diag), ...]) aligned with ``workspec_list``."""
        ret_list = []
        for workspec in workspec_list:
            tmp_log = self.make_logger(_logger, f"workerID={workspec.workerID}", method_name="check_workers")
            try:
                ret_list.append(self._killed_is_cancelled(workspec, *self._check_one(workspec, tmp_log)))
            except Exception as exc:
                tmp_log.error(f"check failed: {type(exc).__name__}: {exc}")
                ret_list.append((None, f"dummy monitor could not check the worker: {exc}"))
        return True, ret_list

    @staticmethod
    def _killed_is_cancelled(workspec: Any, status: str | None, diag: str) -> tuple[str | None, str]:
        """A pilot that ended failed (SIGTERM exit, or vanished) after ``DummySweeper`` removed it (its
        ``dummy_pilot_killed.json``) or while the worker is marked to kill (``killTime``) was killed:
        report it cancelled, as a batch system reports a removed job."""
        access_point = workspec.get_access_point()
        killed = getattr(workspec, "killTime", None) is not None or \
            bool(access_point and os.path.exists(os.path.join(access_point, KILLED_FILE)))
        if status == WorkSpec.ST_failed and killed:
            workspec.nativeStatus = "killed"
            return WorkSpec.ST_cancelled, f"killed by Harvester. {diag}".strip()
        return status, diag

    def _check_one(self, workspec: Any, tmp_log: Any) -> tuple[str | None, str]:
        access_point = workspec.get_access_point()
        if not access_point or not os.path.isdir(access_point):
            return WorkSpec.ST_failed, f"access point {access_point} of the worker is gone"
        status_path = os.path.join(access_point, STATUS_FILE)
        try:
            status = read_json(status_path)
            record = read_process_record(access_point)
        except ValueError as exc:
            tmp_log.error(f"unreadable pilot file in {access_point} of workerID={workspec.workerID}: {exc}; retry")
            return None, f"unreadable pilot status in {access_point}: {exc}"
        if status and status.get("status") in (WorkSpec.ST_finished, WorkSpec.ST_failed):
            diag = status.get("diag") or ""
            if status.get("exitCode"):
                workspec.nativeExitCode = status["exitCode"]
            workspec.nativeStatus = status["status"]
            return status["status"], diag
        if record is None:
            if workspec.batchID is None:
                return WorkSpec.ST_submitted, ""
            return WorkSpec.ST_failed, f"no pilot record {access_point}/dummy_pilot_process.json for batchID={workspec.batchID}"
        if pilot_is_alive(record):
            workspec.nativeStatus = "running" if status else "starting"
            return (WorkSpec.ST_running if status else WorkSpec.ST_submitted), ""
        # the process may have written its final status between the two reads
        try:
            status = read_json(status_path)
        except ValueError:
            status = None
        if status and status.get("status") in (WorkSpec.ST_finished, WorkSpec.ST_failed):
            return status["status"], status.get("diag") or ""
        diag = (f"dummy pilot PID={record.get('pid')} vanished without a final report (killed or crashed); "
                f"see {record.get('stderr')}")
        tmp_log.warning(diag)
        workspec.nativeStatus = "vanished"
        return WorkSpec.ST_failed, diag
