"""The interface every communicator offers to the agents.

Each method has a neutral implementation that reports success without doing anything, in
the original's return shapes, so a subclass (a test double, a communicator for another WMS)
only overrides what it supports. :class:`~.panda_communicator.PandaCommunicator` overrides all.
"""

from __future__ import annotations

from typing import Any

from pandaharvester.harvestercore import core_utils

_logger = core_utils.setup_logger("communicator")


class BaseCommunicator:
    """Base class of communicators with the WMS (PanDA)."""

    def __init__(self) -> None:
        pass

    def make_logger(self, tag: Any = None, method_name: str | None = None) -> core_utils.LogWrapper:
        """A ``panda.log.communicator`` logger whose lines carry ``method_name`` and ``tag``."""
        return core_utils.make_logger(_logger, token=tag, method_name=method_name)

    # -- jobs
    def get_jobs(self, site_name: str, node_name: str, prod_source_label: str, computing_element: str,
                 n_jobs: int, additional_criteria: dict | None) -> tuple[list[dict], str]:
        """Jobs for a queue: ``(list of job dicts, "OK" or error text)``."""
        return [], ""

    def update_jobs(self, jobspec_list: list, id: Any) -> list[dict]:
        """Report job states: one ``{"StatusCode", "ErrorDiag", "command"}`` dict per job."""
        return [{"StatusCode": 0, "ErrorDiag": "", "command": ""} for _ in jobspec_list]

    def check_jobs(self, jobspec_list: list) -> list[dict]:
        """Status of jobs in PanDA: one dict per job (``StatusCode`` 0 when known)."""
        return [{"StatusCode": 0, "ErrorDiag": "", "command": ""} for _ in jobspec_list]

    # -- events
    def get_event_ranges(self, data_map: dict, scattered: bool, base_path: str | None = None) -> tuple[bool, dict]:
        """Event ranges per PandaID: ``(status, {PandaID: [range dicts]})``."""
        return True, {}

    def update_event_ranges(self, event_ranges: list, tmp_log: Any) -> dict:
        """Report event ranges: ``{"StatusCode": 0, "Returns": [...]}``."""
        return {"StatusCode": 0, "Returns": [True] * len(event_ranges)}

    # -- commands
    def get_commands(self, n_commands: int) -> list[dict]:
        """Pending commands for this instance."""
        return []

    def ack_commands(self, command_ids: list) -> bool:
        """Acknowledge commands."""
        return True

    # -- workers and instance
    def update_workers(self, workspec_list: list) -> tuple[list[bool] | None, str]:
        """Report workers: ``(list of per-worker bools, message)``; list None on failure."""
        return [True] * len(workspec_list), ""

    def is_alive(self, key_values: dict) -> tuple[bool, str]:
        """Heartbeat of this Harvester instance."""
        return True, ""

    def update_worker_stats(self, site_name: str, stats: dict) -> tuple[bool, str]:
        """Report worker statistics of a queue."""
        return True, ""

    def send_dialog_messages(self, dialog_list: list) -> tuple[bool, str]:
        """Send dialog (log) messages."""
        return True, ""

    def update_service_metrics(self, service_metrics_list: list) -> tuple[bool, str]:
        """Send this instance's service metrics."""
        return True, ""

    # -- credentials
    def force_credential_renewal(self) -> None:
        """Make the next request re-read the credentials (token files)."""
        return None
