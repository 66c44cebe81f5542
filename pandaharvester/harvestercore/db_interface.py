"""``DBInterface``: the part of the DB that plugins (and agent log hooks) may use."""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from .db_proxy_pool import DBProxyPool

_LEVELS = ("DEBUG", "INFO", "ERROR", "WARNING")


class DBInterface:
    """Thin wrapper over the DB proxy pool with the original's plugin-facing method names."""

    def __init__(self) -> None:
        self.dbProxy = DBProxyPool()

    # ------------------------------------------------------------ cache and file groups
    def get_cache(self, data_name: str) -> Any:
        """The CacheSpec of ``data_name`` (its ``.data`` is the content), None when absent."""
        return self.dbProxy.get_cache(data_name)

    def get_files_with_group_id(self, group_id: str) -> list[Any]:
        return self.dbProxy.get_files_with_group_id(group_id)

    def update_file_group_status(self, group_id: str, status_string: str) -> bool:
        return self.dbProxy.update_file_group_status(group_id, status_string)

    def get_file_group_status(self, group_id: str) -> Any:
        return self.dbProxy.get_file_group_status(group_id)

    def refresh_file_group_info(self, job_spec: Any) -> bool:
        return self.dbProxy.refresh_file_group_info(job_spec)

    def set_file_group(self, file_specs: Any, group_id: str, status_string: str) -> bool:
        return self.dbProxy.set_file_group(file_specs, group_id, status_string)

    # ------------------------------------------------------------ object locks
    def get_locked_by(self) -> str:
        """Owner string of the calling plugin thread (process id and thread ident: unique)."""
        return f"plugin-{os.getpid()}-{threading.current_thread().ident}"

    def get_object_lock(self, object_name: str, lock_interval: float) -> bool:
        return self.dbProxy.get_process_lock(object_name, self.get_locked_by(), lock_interval)

    def release_object_lock(self, object_name: str) -> bool:
        return self.dbProxy.release_process_lock(object_name, self.get_locked_by())

    # ------------------------------------------------------------ worker limits and stats
    def get_worker_limits(self, site_name: str, queue_config: Any = None) -> Any:
        return self.dbProxy.get_worker_limits(site_name, queue_config)

    def get_worker_ce_stats(self, site_name: str) -> dict:
        return self.dbProxy.get_worker_ce_stats(site_name)

    def get_worker_ce_backend_throughput(self, site_name: str, time_window: float) -> dict:
        return self.dbProxy.get_worker_ce_backend_throughput(site_name, time_window)

    def get_num_missed_workers(self, queue_name: str, criteria: dict) -> int:
        return self.dbProxy.get_num_missed_workers(queue_name, criteria)

    # ------------------------------------------------------------ dialogs
    def add_dialog_message(self, message: str, level: str, module_name: str, identifier: Any = None) -> bool:
        """Store a message for PanDA if ``level`` reaches ``[propagator] minMessageLevel``."""
        if level not in _LEVELS:
            level = "INFO"
        try:
            from pandaharvester.harvesterconfig import harvester_config

            min_level = getattr(harvester_config.propagator, "minMessageLevel", "WARNING")
        except Exception:
            min_level = "WARNING"
        if min_level not in _LEVELS:
            min_level = "WARNING"
        if getattr(logging, level) < getattr(logging, min_level):
            return True
        return self.dbProxy.add_dialog_message(message, level, module_name, identifier)
