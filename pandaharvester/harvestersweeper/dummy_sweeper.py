"""Dummy sweeper: stops dummy-pilot processes (in bulk, as a batch system) and removes their access points."""

from __future__ import annotations

import os
import time
from typing import Any

from pandaharvester.harvesterbatch.dummy import (
    KILLED_FILE,
    read_process_record,
    terminate_pilots,
    write_json,
)
from pandaharvester.harvestercore import log_utils

from .base_sweeper import BaseSweeper

_logger = log_utils.setup_logger("dummy_sweeper")


class DummySweeper(BaseSweeper):
    """``killGracePeriod`` (seconds between SIGTERM and SIGKILL, default 3) is configurable."""

    def __init__(self, **kwarg: Any) -> None:
        self.killGracePeriod = 3.0
        BaseSweeper.__init__(self, **kwarg)

    def kill_worker(self, workspec: Any) -> tuple[bool, str]:
        """SIGTERM, then SIGKILL, the pilot's process group; an already dead pilot is a success."""
        return self.kill_workers([workspec])[0]

    def kill_workers(self, workspec_list: list) -> list[tuple[bool, str]]:
        """Bulk kill: record the removal in each access point, then signal all pilots at once."""
        results: list[tuple[bool, str] | None] = [None] * len(workspec_list)
        to_kill: list[tuple[int, Any, dict | None]] = []
        for index, workspec in enumerate(workspec_list):
            tmp_log = self.make_logger(_logger, f"workerID={workspec.workerID}", method_name="kill_workers")
            access_point = workspec.get_access_point()
            if not access_point:
                results[index] = (True, "no access point, nothing to kill")
                continue
            try:
                record = read_process_record(access_point)
            except ValueError as exc:
                results[index] = (False, f"unreadable pilot record in {access_point}: {exc}")
                tmp_log.error(results[index][1])
                continue
            try:  # what a batch system remembers of a removed job: the monitor reports it cancelled
                if os.path.isdir(access_point):
                    write_json(os.path.join(access_point, KILLED_FILE), {"killTime": time.time()})
            except OSError as exc:
                tmp_log.warning(f"cannot record the kill in {access_point}: {exc}; killing anyway")
            to_kill.append((index, workspec, record))
        replies = terminate_pilots([record for _i, _w, record in to_kill], float(self.killGracePeriod))
        for (index, workspec, _record), (ok, diag) in zip(to_kill, replies):
            tmp_log = self.make_logger(_logger, f"workerID={workspec.workerID}", method_name="kill_workers")
            (tmp_log.debug if ok else tmp_log.error)(f"ok={ok} {diag}")
            results[index] = (ok, "" if ok else diag)
        return [result or (False, "not killed") for result in results]

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
