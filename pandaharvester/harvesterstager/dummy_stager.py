"""Dummy stager: output files are "transferred" at once."""

from __future__ import annotations

from typing import Any

from pandaharvester.harvestercore import log_utils

from .base_stager import BaseStager

_logger = log_utils.setup_logger("dummy_stager")


class DummyStager(BaseStager):
    """Marks output files finished; zips for real when asked to (``zip_output``)."""

    def trigger_stage_out(self, jobspec: Any) -> tuple[bool, str]:
        """Start the transfer of the job's output files (nothing to do)."""
        return True, ""

    def check_stage_out_status(self, jobspec: Any) -> tuple[bool, str]:
        """Every output file not yet done is finished."""
        for filespec in jobspec.get_output_file_specs(skip_done=True):
            filespec.status = "finished"
        return True, ""

    # name used by older agents
    check_status = check_stage_out_status

    def zip_output(self, jobspec: Any) -> tuple[bool | None, str]:
        """Make the job's zip files locally."""
        return self.simple_zip_output(jobspec, self.make_logger(_logger, f"PandaID={jobspec.PandaID}",
                                                                method_name="zip_output"))
