"""QueueConfigDumpSpec: one distinct version of a queue's config — a row of ``qcdump_table``.

The stored data has the values of secret keys (``password``, ``token``, ... : the cfg's rule,
``harvesterconfig._section.mask_value``) masked, and the checksum is that of the masked data:
no secret is kept in the DB, and a changed password alone makes no new version. A version is
read back to build plugins for the workers and jobs made with it, so
:func:`restore_secrets` fills the masked values in from the queue's current config.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from pandaharvester.harvesterconfig._section import MASK, mask_value

from .spec_base import PythonObjectEncoder, SpecBase


def mask_secrets(data: Any) -> Any:
    """A copy of queue config data with the values of secret keys masked, at any depth."""
    return mask_value("", data)


def restore_secrets(masked: Any, live: Any) -> Any:
    """``masked`` (a dump's data) with every masked value replaced by the value at the same place
    in ``live`` (the queue's current config) when there is one there; others stay masked."""
    if isinstance(masked, dict):
        live_map = live if isinstance(live, dict) else {}
        return {k: restore_secrets(v, live_map.get(k)) for k, v in masked.items()}
    if isinstance(masked, list):
        live_list = live if isinstance(live, list) else []
        return [restore_secrets(v, live_list[i] if i < len(live_list) else None) for i, v in enumerate(masked)]
    if masked == MASK and live is not None and live != MASK:
        return copy.deepcopy(live)
    return masked


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
        """Store a copy of the config (without queueStatus, secrets masked), its md5 checksum and
        unique name.

        queueName must be set first: dumpUniqueName is ``"<queueName>_<checksum>"``.
        """
        snapshot = mask_secrets(copy.deepcopy(data))
        if isinstance(snapshot, dict):
            snapshot.pop("queueStatus", None)
        self.data = snapshot
        text = json.dumps(snapshot, cls=PythonObjectEncoder)
        self.checksum = hashlib.md5(text.encode("utf-8")).hexdigest()
        self.dumpUniqueName = f"{self.queueName}_{self.checksum}"
