"""EventSpec: one event range of an event-service job — a row of ``event_table``."""

from __future__ import annotations

from typing import Any, Mapping

from . import lifecycle
from .spec_base import SpecBase

# attributes reported to PanDA for an event range
_REPORTED = ("eventRangeID", "eventStatus", "coreCount", "cpuConsumptionTime", "loss")


class EventSpec(SpecBase):
    """An event range: eventStatus is what the payload reported, subStatus harvester's progress."""

    attributesWithTypes = (
        "eventRangeID:text / index",
        "PandaID:integer / index",
        "eventStatus:text",
        "coreCount:integer",
        "cpuConsumptionTime:integer",
        "subStatus:text / index",
        "fileID:integer",
        "loss:text",
    )

    def to_data(self) -> dict[str, Any]:
        """The event range update for PanDA.

        A "finished" event is reported as "running" until its output is dealt with (subStatus
        final), so that PanDA does not consider it done too early.
        """
        d = self.__dict__
        data = {}
        for name in _REPORTED:
            val = d.get(name)
            if name == "eventStatus" and val == lifecycle.EVENT_FINISHED and not self.is_final_status():
                val = lifecycle.EVENT_RUNNING
            if val is not None:
                data[name] = val
        return data

    def from_data(self, data: Mapping[str, Any], panda_id: Any) -> None:
        """Fill from an event update of the payload; keys that are not columns are ignored."""
        columns = self._column_set
        for name, val in data.items():
            if name in columns:
                setattr(self, name, val)
        self.PandaID = int(panda_id)

    def is_final_status(self) -> bool:
        """True when subStatus is finished, done or failed."""
        return self.subStatus in lifecycle.EVENT_FINAL
