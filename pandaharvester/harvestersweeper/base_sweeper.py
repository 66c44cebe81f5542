"""Base class of sweeper plugins: kill workers and clean up after them."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from pandaharvester.harvestercore.plugin_base import PluginBase


class BaseSweeper(PluginBase, ABC):
    """Sweepers implement ``sweep_worker`` and either ``kill_worker`` or ``kill_workers``.

    The default ``kill_workers`` calls ``kill_worker`` for each worker.
    """

    def __init__(self, **kwarg: Any) -> None:
        PluginBase.__init__(self, **kwarg)

    def kill_worker(self, workspec: Any) -> tuple[bool, str]:
        """Kill one worker in the batch system: (True, "") on success."""
        raise NotImplementedError(f"{type(self).__name__} implements neither kill_worker nor kill_workers")

    def kill_workers(self, workspec_list: list) -> list[tuple[bool, str]]:
        """Kill workers; [(bool, diag)] aligned with ``workspec_list``."""
        return [self.kill_worker(workspec) for workspec in workspec_list]

    @abstractmethod
    def sweep_worker(self, workspec: Any) -> tuple[bool, str]:
        """Clean up after a worker (directories, batch leftovers): (True, "") on success."""
