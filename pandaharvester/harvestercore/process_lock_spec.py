"""ProcessLockSpec: a named lock shared by harvester processes — a row of ``lock_table``."""

from __future__ import annotations

from .spec_base import SpecBase


class ProcessLockSpec(SpecBase):
    """Lock name, holder and the time it was taken (locks expire)."""

    attributesWithTypes = (
        "processName:text primary key",
        "lockedBy:text",
        "lockTime:timestamp",
    )
