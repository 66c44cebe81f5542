"""Dummy sweeper: stops dummy-pilot processes and removes their access points."""

from __future__ import annotations

import os
from typing import Any

from pandaharvester.harvestercore import log_utils
from pandaharvester.harvestersubmitter.dummy_submitter import read_process_record, terminate_pilot

from .base_sweeper import BaseSweeper

_logger = log_utils.setup_logger("dummy_sweeper")


class DummySweeper(BaseSweeper):
    """``killGracePeriod`` (seconds between SIGTERM and SIGKILL, default 3) is configurable."""

    def __init__(self, **kwarg: Any) -> None:
        self.killGracePeriod = 3.0
        BaseSweeper.__init__(self, **kwarg)

    def kill_worker(self, workspec: Any) -> tuple[bool, str]:
        """SIGTERM, then SIGKILL, the pilot's process group; an already dead pilot is a success."""
        tmp_log = self.make_logger(_logger, f"workerID={workspec.workerID}", method_name="kill_worker")
        access_point = workspec.get_access_point()
        if not access_point:
            return True, "no access point, nothing to kill"
        try:
            record = read_process_record(access_point)
        except ValueError as exc:
            msg = f"unreadable pilot record in {access_point}: {exc}"
            tmp_log.error(msg)
            return False, msg
        ok, diag = terminate_pilot(record, float(self.killGracePeriod))
        (tmp_log.debug if ok else tmp_log.error)(f"ok={ok} {diag}")
        return ok, "" if ok else diag

    def kill_workers(self, workspec_list: list) -> list[tuple[bool, str]]:
        """Kill each worker in turn."""
        return [self.kill_worker(workspec) for workspec in workspec_list]

    def sweep_worker(self, workspec: Any) -> tuple[bool, str]:
        """Stop a leftover pilot, then remove the access point (already gone = success)."""
        tmp_log = self.make_logger(_logger, f"workerID={workspec.workerID}", method_name="sweep_worker")
        access_point = workspec.get_access_point()
        if not access_point or not os.path.exists(access_point):
            return True, ""
        ok, diag = self.kill_worker(workspec)
        if not ok:
            return False, f"pilot still running, access point kept: {diag}"
        return self.remove_access_point(access_point, tmp_log)
