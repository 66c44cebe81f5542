"""Dummy preparator pooling input files of many jobs into shared transfers (file groups).

``trigger_preparation`` puts the job's inputs into a placeholder group; ``check_stage_in_status``
(under a DB object lock) turns the placeholder into a "real" transfer once enough files are
pooled (``minFilesToTransfer``, default 2) or the group is older than ``maxGroupAge`` minutes
(default 10), then reports the transfer as done on a later call.
"""

from __future__ import annotations

import datetime
import itertools
import threading
import uuid
from typing import Any

from pandaharvester.harvestercore import log_utils, time_utils
from pandaharvester.harvestercore.plugin_base import PluginBase

_logger = log_utils.setup_logger("dummy_bulk_preparator")

PLACEHOLDER_BASE = "dummy_id_for_in"
_ids = itertools.count()
_ids_lock = threading.Lock()


def _n_threads() -> int:
    try:
        from pandaharvester.harvesterconfig import harvester_config

        return max(int(harvester_config.preparator.nThreads), 1)
    except Exception:
        return 1


class DummyBulkPreparator(PluginBase):
    """Bulk-transfer example for the file-group helpers of JobSpec and DBInterface."""

    def __init__(self, **kwarg: Any) -> None:
        self.minFilesToTransfer = 2
        self.maxGroupAge = 10
        PluginBase.__init__(self, **kwarg)
        with _ids_lock:
            self.dummy_transfer_id = f"{PLACEHOLDER_BASE}_{next(_ids) % _n_threads()}"

    def trigger_preparation(self, jobspec: Any) -> tuple[bool, str]:
        """Attach the inputs not yet ready to the placeholder group."""
        lfns = list(jobspec.get_input_file_attributes(skip_ready=True).keys())
        jobspec.set_groups_to_files({self.dummy_transfer_id: {"lfns": lfns, "groupStatus": "pending"}})
        return True, ""

    def check_stage_in_status(self, jobspec: Any) -> tuple[bool | None, str]:
        """None while pooling / transferring, True once the job's groups are done."""
        tmp_log = self.make_logger(_logger, f"PandaID={jobspec.PandaID}", method_name="check_stage_in_status")
        groups = jobspec.get_groups_of_input_files(skip_ready=True)
        if self.dummy_transfer_id in groups:
            if not self.dbInterface.get_object_lock(self.dummy_transfer_id, lock_interval=120):
                return None, "escape since locked by another thread"
            try:
                self.dbInterface.refresh_file_group_info(jobspec)
                groups = jobspec.get_groups_of_input_files(skip_ready=True)
                if self.dummy_transfer_id in groups:
                    update_time = groups[self.dummy_transfer_id]["groupUpdateTime"]
                    file_specs = self.dbInterface.get_files_with_group_id(self.dummy_transfer_id)
                    too_old = update_time < time_utils.naive_utcnow() - datetime.timedelta(minutes=self.maxGroupAge)
                    if len(file_specs) >= self.minFilesToTransfer or too_old:
                        transfer_id = str(uuid.uuid4())
                        self.dbInterface.set_file_group(file_specs, transfer_id, "running")
                        msg = f"submitted transfer {transfer_id} for {len(file_specs)} files"
                    else:
                        msg = f"waiting for more files in {self.dummy_transfer_id}"
                    tmp_log.debug(msg)
                    return None, msg
            finally:
                self.dbInterface.release_object_lock(self.dummy_transfer_id)
        for transfer_id in groups:
            jobspec.update_group_status_in_files(transfer_id, "done")
        return True, ""

    check_status = check_stage_in_status

    def resolve_input_paths(self, jobspec: Any) -> tuple[bool, str]:
        """Set ``dummypath/<lfn>`` as the path of every input file."""
        in_files = jobspec.get_input_file_attributes()
        for lfn, attrs in in_files.items():
            attrs["path"] = f"dummypath/{lfn}"
        jobspec.set_input_file_paths(in_files)
        return True, ""
