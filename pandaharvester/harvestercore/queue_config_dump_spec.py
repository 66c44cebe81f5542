"""QueueConfigDumpSpec: one distinct version of a queue's config — a row of ``qcdump_table``."""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from .spec_base import PythonObjectEncoder, SpecBase


class QueueConfigDumpSpec(SpecBase):
    """A queue config snapshot; configID identifies it for workers and jobs made with it."""

    attributesWithTypes = (
        "configID:integer primary key",
        "queueName:text / index",
        "checksum:text",
        "dumpUniqueName:text / unique",
        "creationTime:timestamp / index",
        "data:blob",
    )

    def set_data(self, data: dict[str, Any]) -> None:
        """Store a copy of the config (without queueStatus), its md5 checksum and unique name.

        queueName must be set first: dumpUniqueName is ``"<queueName>_<checksum>"``.
        """
        snapshot = copy.deepcopy(data)
        if isinstance(snapshot, dict):
            snapshot.pop("queueStatus", None)
        self.data = snapshot
        text = json.dumps(snapshot, cls=PythonObjectEncoder)
        self.checksum = hashlib.md5(text.encode("utf-8")).hexdigest()
        self.dumpUniqueName = f"{self.queueName}_{self.checksum}"
