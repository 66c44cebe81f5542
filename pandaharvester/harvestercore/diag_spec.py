"""DiagSpec: a dialog message to send to PanDA — a row of ``diag_table``."""

from __future__ import annotations

import datetime
from typing import Any

from .spec_base import SpecBase

_PROPAGATED = ("diagID", "moduleName", "identifier", "creationTime", "messageLevel", "diagMessage")


class DiagSpec(SpecBase):
    """A log message of level >= the dialog threshold, queued for PanDA's add_dialogs."""

    attributesWithTypes = (
        "diagID:integer primary key autoincrement",
        "moduleName:text / index",
        "identifier:text",
        "creationTime:timestamp / index",
        "lockTime:timestamp / index",
        "messageLevel:text",
        "lockedBy:integer / index",
        "diagMessage:varchar(500)",
    )

    def convert_to_propagate(self) -> dict[str, Any]:
        """The dict sent to PanDA; all keys present, datetimes as ``%Y-%m-%d %H:%M:%S.%f``."""
        d = self.__dict__
        data = {}
        for name in _PROPAGATED:
            val = d.get(name)
            if isinstance(val, datetime.datetime):
                val = val.strftime("%Y-%m-%d %H:%M:%S.%f")
            data[name] = val
        return data
