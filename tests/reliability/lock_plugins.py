"""Test plugins for the lock-recovery test, imported by the daemon (``"module": "lock_plugins"``)."""

from __future__ import annotations

import time
from typing import Any

from pandaharvester.harvestermonitor.dummy_monitor import DummyMonitor


class SlowMonitor(DummyMonitor):
    """DummyMonitor that holds its cycle's worker locks ``holdSeconds`` before answering, so a
    ``kill -9`` is sure to land while rows are locked."""

    def __init__(self, **kwarg: Any) -> None:
        self.holdSeconds = 2.0
        DummyMonitor.__init__(self, **kwarg)

    def check_workers(self, workspec_list: list) -> Any:
        time.sleep(float(self.holdSeconds))
        return DummyMonitor.check_workers(self, workspec_list)
