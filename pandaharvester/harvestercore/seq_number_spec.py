"""SeqNumberSpec: a named counter (SEQ_workerID, SEQ_configID) — a row of ``seq_table``."""

from __future__ import annotations

from .spec_base import SpecBase


class SeqNumberSpec(SpecBase):
    """A sequence: its name and current value."""

    attributesWithTypes = (
        "numberName:text primary key",
        "curVal:integer",
    )
