"""Faulty plugins for tests/reliability/test_plugin_faults.py, loaded by name by the plugin factory
(``"module": "reliability.plugin_fault_plugins"``: ``tests/`` is on the path of pytest and of the
daemons the tests start).

``mode`` (a key of the plugin dict) says how a call goes wrong:

- ``ok``: a normal reply (monitor: every worker as it was, diag ``checked by FaultyMonitor``;
  submitter: every worker submitted);
- ``hang``: blocks until :func:`release` ``(hangName)`` is called in this process (never, in a
  daemon), then answers as ``ok``;
- ``raise``, ``shape`` (a reply of the wrong type), ``short`` (one result fewer than workers),
  ``exit`` (``sys.exit``), ``thread`` (ok, and records the name of the thread it ran on).

Each call is counted in ``CALLS[hangName]`` and, with ``counterFile``, in that file.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

from pandaharvester.harvestercore.plugin_base import PluginBase

CALLS: dict[str, int] = {}
THREADS: list[str] = []
_EVENTS: dict[str, threading.Event] = {}
_lock = threading.Lock()


def _event(name: str) -> threading.Event:
    with _lock:
        return _EVENTS.setdefault(name, threading.Event())


def release(name: str) -> None:
    """Let the hung calls of ``name`` (and every later one) return."""
    _event(name).set()


def reset() -> None:
    """Release every hung call and forget the counts."""
    with _lock:
        events = list(_EVENTS.values())
        _EVENTS.clear()
        CALLS.clear()
        THREADS.clear()
    for event in events:
        event.set()


class _Faulty(PluginBase):
    mode = "ok"
    hangName = "hang"
    counterFile = ""

    def _enter(self) -> None:
        with _lock:
            CALLS[self.hangName] = CALLS.get(self.hangName, 0) + 1
        if self.counterFile:
            path = Path(self.counterFile)
            path.write_text(str(int(path.read_text() or 0) + 1 if path.exists() else 1))
        if self.mode == "hang":
            _event(self.hangName).wait()
        elif self.mode == "raise":
            raise RuntimeError(f"{type(self).__name__} deliberate failure")
        elif self.mode == "exit":
            sys.exit(3)
        elif self.mode == "thread":
            THREADS.append(threading.current_thread().name)


class FaultyMonitor(_Faulty):
    def check_workers(self, workspec_list: list) -> Any:
        self._enter()
        if self.mode == "shape":
            return {"status": "running"}
        replies = [(w.status, "checked by FaultyMonitor") for w in workspec_list]
        return True, replies[:-1] if self.mode == "short" else replies


class FaultySubmitter(_Faulty):
    def submit_workers(self, workspec_list: list) -> Any:
        self._enter()
        if self.mode == "shape":
            return "submitted"
        for work_spec in workspec_list:
            work_spec.batchID = f"faulty-{work_spec.workerID}"
        replies = [(True, "")] * len(workspec_list)
        return replies[:-1] if self.mode == "short" else replies
