"""Base class of stager plugins; stagers can zip outputs too, so it extends BaseZipper."""

from __future__ import annotations

from typing import Any

from pandaharvester.harvesterzipper.base_zipper import BaseZipper


class BaseStager(BaseZipper):
    """Stagers implement ``trigger_stage_out``, ``check_stage_out_status`` and ``zip_output``."""

    def __init__(self, **kwarg: Any) -> None:
        BaseZipper.__init__(self, **kwarg)
