"""Dummy preparator: inputs are "there" at once; paths point into a dummy directory."""

from __future__ import annotations

from typing import Any

from pandaharvester.harvestercore import log_utils
from pandaharvester.harvestercore.plugin_base import PluginBase

_logger = log_utils.setup_logger("dummy_preparator")


class DummyPreparator(PluginBase):
    """``inputPathBase`` (default "dummypath") is the directory given to every input file."""

    def __init__(self, **kwarg: Any) -> None:
        self.inputPathBase = "dummypath"
        PluginBase.__init__(self, **kwarg)

    def trigger_preparation(self, jobspec: Any) -> tuple[bool, str]:
        """Start stage-in (nothing to do)."""
        return True, ""

    def check_stage_in_status(self, jobspec: Any) -> tuple[bool, str]:
        """Stage-in is always complete."""
        return True, ""

    # name used by older agents
    check_status = check_stage_in_status

    def resolve_input_paths(self, jobspec: Any) -> tuple[bool, str]:
        """Set ``<inputPathBase>/<lfn>`` as the path of every input file."""
        in_files = jobspec.get_input_file_attributes()
        for lfn, attrs in in_files.items():
            attrs["path"] = f"{self.inputPathBase}/{lfn}"
        jobspec.set_input_file_paths(in_files)
        return True, ""
