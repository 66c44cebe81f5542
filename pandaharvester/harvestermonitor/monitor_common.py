"""Helpers shared by monitor plugins (the original's ``harvestermonitor.monitor_common``)."""

from __future__ import annotations

# error message of a payload's exit code, per payload type
ec_em_map: dict[str, dict[int, str]] = {
    "atlas_pilot_wrapper": {
        1: "wrapper fault",
        2: "wrapper killed stuck pilot",
        64: "wrapper got cvmfs repos issue",
        65: "wrapper got cvmfs repos issue",
        66: "wrapper got cvmfs repos issue",
    },
}


def get_payload_errstr_from_ec(payload_type: str, exit_code: int) -> str:
    """The message for ``exit_code`` of a ``payload_type`` payload; "" when none is known."""
    return ec_em_map.get(payload_type, {}).get(exit_code, "")
