"""Dummy stager pooling output files of many jobs into shared transfers (file groups).

``trigger_stage_out`` puts outputs into a placeholder group; ``check_stage_out_status`` (under a
DB object lock) turns it into a "real" transfer once ``minFilesToTransfer`` (default 10) files
are pooled or the group is older than ``maxGroupAge`` minutes (default 10); outputs are
finished on a later call.
"""

from __future__ import annotations

import datetime
import uuid
from typing import Any

from pandaharvester.harvestercore import log_utils, time_utils

from .base_stager import BaseStager

_logger = log_utils.setup_logger("dummy_bulk_stager")

PLACEHOLDER_ID = "dummy_id_for_out"


class DummyBulkStager(BaseStager):
    """Bulk-transfer example for the file-group helpers of JobSpec and DBInterface."""

    def __init__(self, **kwarg: Any) -> None:
        self.minFilesToTransfer = 10
        self.maxGroupAge = 10
        BaseStager.__init__(self, **kwarg)

    def trigger_stage_out(self, jobspec: Any) -> tuple[bool, str]:
        """Attach the output files to the placeholder group."""
        lfns = [filespec.lfn for filespec in jobspec.get_output_file_specs(skip_done=True)]
        jobspec.set_groups_to_files({PLACEHOLDER_ID: {"lfns": lfns, "groupStatus": "pending"}})
        return True, ""

    def check_stage_out_status(self, jobspec: Any) -> tuple[bool | None, str]:
        """None while pooling / transferring, True once the outputs are finished."""
        tmp_log = self.make_logger(_logger, f"PandaID={jobspec.PandaID}", method_name="check_stage_out_status")
        groups = jobspec.get_groups_of_output_files()
        if PLACEHOLDER_ID in groups:
            if not self.dbInterface.get_object_lock(PLACEHOLDER_ID, lock_interval=120):
                return None, "escape since locked by another thread"
            try:
                self.dbInterface.refresh_file_group_info(jobspec)
                groups = jobspec.get_groups_of_output_files()
                if PLACEHOLDER_ID in groups:
                    update_time = groups[PLACEHOLDER_ID]["groupUpdateTime"]
                    file_specs = self.dbInterface.get_files_with_group_id(PLACEHOLDER_ID)
                    too_old = update_time < time_utils.naive_utcnow() - datetime.timedelta(minutes=self.maxGroupAge)
                    if len(file_specs) >= self.minFilesToTransfer or too_old:
                        transfer_id = str(uuid.uuid4())
                        self.dbInterface.set_file_group(file_specs, transfer_id, "running")
                        msg = f"submitted transfer {transfer_id} for {len(file_specs)} files"
                    else:
                        msg = "waiting until enough files are pooled"
                    tmp_log.debug(msg)
                    return None, msg
            finally:
                self.dbInterface.release_object_lock(PLACEHOLDER_ID)
        for filespec in jobspec.get_output_file_specs(skip_done=True):
            filespec.status = "finished"
        return True, ""

    check_status = check_stage_out_status

    def zip_output(self, jobspec: Any) -> tuple[bool | None, str]:
        """Make the job's zip files locally."""
        return self.simple_zip_output(jobspec, self.make_logger(_logger, f"PandaID={jobspec.PandaID}",
                                                                method_name="zip_output"))
