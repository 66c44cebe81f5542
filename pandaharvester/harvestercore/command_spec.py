"""CommandSpec: a command received from PanDA (command manager) — a row of ``command_table``."""

from __future__ import annotations

from typing import Any, Mapping

from .spec_base import SpecBase


class CommandSpec(SpecBase):
    """A PanDA command, routed to the agent named by :attr:`receiver_map`."""

    attributesWithTypes = (
        "command_id:integer primary key",
        "command:text",
        "receiver:text",
        "params:blob",
        "ack_requested:integer",
        "processed:integer",
    )

    # command names (a command string may carry a ":<site>" suffix)
    COM_reportWorkerStats = "REPORT_WORKER_STATS"
    COM_setNWorkers = "SET_N_WORKERS_JOBTYPE"
    COM_killWorkers = "KILL_WORKERS"
    COM_syncWorkersKill = "SYNC_WORKERS_KILL"

    # which agent handles which command
    receiver_map = {
        COM_reportWorkerStats: "propagator",
        COM_setNWorkers: "submitter",
        COM_killWorkers: "sweeper",
        COM_syncWorkersKill: "sweeper",
    }

    def convert_command_json(self, data: Mapping[str, Any]) -> None:
        """Fill from a command dict of PanDA (command_id, command, params, ack_requested[, processed])."""
        self.command_id = data["command_id"]
        self.command = data["command"]
        self.params = data["params"]
        self.ack_requested = data["ack_requested"]
        self.processed = data.get("processed", 0)

    @classmethod
    def get_receiver(cls, command: str | None) -> str | None:
        """The agent for a command string (matched by prefix, e.g. ``KILL_WORKERS:SITE``)."""
        if not command:
            return None
        for prefix, receiver in cls.receiver_map.items():
            if command.startswith(prefix):
                return receiver
        return None
