"""Base class of sweeper plugins: kill workers and clean up after them."""

from __future__ import annotations

import os
import shutil
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

    @staticmethod
    def remove_access_point(access_point: str | None, log: Any) -> tuple[bool, str]:
        """Remove a worker's access point directory; one already gone is a success."""
        if not access_point or not os.path.exists(access_point):
            return True, ""
        try:
            shutil.rmtree(access_point)
        except FileNotFoundError:
            pass
        except OSError as exc:
            message = f"failed to remove {access_point}: {exc}"
            log.error(message)
            return False, message
        log.debug(f"removed {access_point}")
        return True, ""
