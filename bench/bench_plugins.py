"""Plugins for the cycle benchmark (imported by name from the bench queue config).

``StillRunningMonitor`` says every worker is still running without looking at anything, so a
monitor cycle measures the agent and the DB (locking, grouping, write-back), not a batch system.
"""

from __future__ import annotations

from typing import Any

from pandaharvester.harvestercore.plugin_base import PluginBase
from pandaharvester.harvestercore.work_spec import WorkSpec


class StillRunningMonitor(PluginBase):
    """``check_workers``: (running, "") for every worker."""

    def check_workers(self, workspec_list: list) -> tuple[bool, list[tuple[str, str]]]:
        return True, [(WorkSpec.ST_running, "") for _ in workspec_list]


class NoopSweeper(PluginBase):
    """Kills and sweeps nothing, successfully (the worker's batch job is already gone)."""

    def kill_workers(self, workspec_list: list) -> list[tuple[bool, str]]:
        return [(True, "") for _ in workspec_list]

    def sweep_worker(self, workspec: Any) -> tuple[bool, str]:
        return True, ""


class FinishedMonitor(PluginBase):
    """``check_workers``: (finished, "") for every worker (the push cycle bench)."""

    def check_workers(self, workspec_list: list) -> tuple[bool, list[tuple[str, str]]]:
        return True, [(WorkSpec.ST_finished, "") for _ in workspec_list]
