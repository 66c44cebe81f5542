"""JobWorkerRelationSpec: which worker runs which job — a row of ``jw_table``."""

from __future__ import annotations

from .spec_base import SpecBase


class JobWorkerRelationSpec(SpecBase):
    """One job/worker pair."""

    attributesWithTypes = (
        "PandaID:integer / index",
        "workerID:integer / index",
        "relationType:text",
    )
