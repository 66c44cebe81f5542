"""Zipper that makes zip files locally (synchronously, also for the async interface)."""

from __future__ import annotations

from typing import Any

from pandaharvester.harvestercore import log_utils

from .base_zipper import BaseZipper

_logger = log_utils.setup_logger("simple_zipper")


class SimpleZipper(BaseZipper):
    """``zip_output``/``async_zip_output`` zip at once; ``post_zip_output`` has nothing left to do."""

    def zip_output(self, jobspec: Any) -> tuple[bool | None, str]:
        """Make the job's zip files; sets path, fsize, chksum of each."""
        return self.simple_zip_output(jobspec, self.make_logger(_logger, f"PandaID={jobspec.PandaID}",
                                                                method_name="zip_output"))

    def async_zip_output(self, jobspec: Any) -> tuple[bool | None, str]:
        """Same as zip_output (no two-step zipping here)."""
        return self.simple_zip_output(jobspec, self.make_logger(_logger, f"PandaID={jobspec.PandaID}",
                                                                method_name="async_zip_output"))

    def post_zip_output(self, jobspec: Any) -> tuple[bool, str]:
        """Nothing to do after async_zip_output."""
        return True, ""
