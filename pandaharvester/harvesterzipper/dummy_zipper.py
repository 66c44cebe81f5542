"""Dummy zipper: real synchronous zipping; the async variant fakes a two-step zipping."""

from __future__ import annotations

import uuid
from typing import Any

from pandaharvester.harvestercore import log_utils

from .base_zipper import BaseZipper

_logger = log_utils.setup_logger("dummy_zipper")


class DummyZipper(BaseZipper):
    """``async_zip_output`` groups the zip files; ``post_zip_output`` sets fake path/size/checksum."""

    def zip_output(self, jobspec: Any) -> tuple[bool | None, str]:
        """Make the job's zip files locally."""
        return self.simple_zip_output(jobspec, self.make_logger(_logger, f"PandaID={jobspec.PandaID}",
                                                                method_name="zip_output"))

    def async_zip_output(self, jobspec: Any) -> tuple[bool, str]:
        """Record a zipping group for the job's zip files (nothing is made)."""
        lfns = [filespec.lfn for filespec in jobspec.outFiles]
        jobspec.set_groups_to_files({str(uuid.uuid4()): {"lfns": lfns, "groupStatus": "zipping"}})
        return True, ""

    def post_zip_output(self, jobspec: Any) -> tuple[bool, str]:
        """Pretend the zipping group ended: fake path, size and checksum."""
        for filespec in jobspec.outFiles:
            filespec.path = "/path/to/zip"
            filespec.fsize = 12345
            filespec.chksum = "66bb0985"
        return True, ""
