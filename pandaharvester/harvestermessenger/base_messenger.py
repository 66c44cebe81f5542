"""Base messenger: the do-nothing defaults of the worker <-> Harvester communication interface.

A messenger tells Harvester what a worker asked for (jobs, events, to be killed), what it
produced (attributes, output files, event updates) and feeds it jobs and events. The file
names of the shared-file protocol come from the cfg section ``[payload_interaction]``
(:mod:`harvestercore.payload_interaction`); they are read when a messenger is built (never at
import), and any of them can be overridden per queue by the same-named plugin attribute (e.g.
``"jsonAttrsFileName": "my_attrs.json"``).
"""

from __future__ import annotations

from typing import Any

from pandaharvester.harvestercore.payload_interaction import (  # noqa: F401  (also imported from here)
    PAYLOAD_FILE_KEYS,
    get_payload_interaction_attr,
    payload_file_names,
)
from pandaharvester.harvestercore.plugin_base import PluginBase


class BaseMessenger(PluginBase):
    """Defaults for every messenger method; return shapes follow the original."""

    def __init__(self, **kwarg: Any) -> None:
        self._load_default_attrs()
        PluginBase.__init__(self, **kwarg)

    def _load_default_attrs(self) -> None:
        """Set the file-name attributes from ``[payload_interaction]`` (queue config may override)."""
        for key, (attr, default) in PAYLOAD_FILE_KEYS.items():
            setattr(self, attr, get_payload_interaction_attr(key, default))

    def get_access_point(self, workspec: Any, panda_id: Any) -> str | None:
        """Directory shared with the worker for job ``panda_id``."""
        return None

    def get_work_attributes(self, workspec: Any) -> dict:
        """{PandaID: {attribute: value}} reported by the worker for its jobs."""
        return {}

    def get_files_to_stage_out(self, workspec: Any) -> dict:
        """{PandaID: {lfn: [{path, type, fsize, chksum, guid, ...}]}} produced by the worker."""
        return {}

    def get_unreadable_reports(self, workspec: Any) -> dict:
        """{PandaID: {path: why}} of the worker's report files (outputs, end state) that exist but
        cannot be used now; the monitor holds such a job instead of ending it. {} = nothing unreadable."""
        return {}

    def job_requested(self, workspec: Any) -> int | bool:
        """Number of jobs the worker asks for (falsy = none)."""
        return 0

    def feed_jobs(self, workspec: Any, jobspec_list: list) -> bool:
        """Give jobs to the worker; True on success."""
        return False

    def events_requested(self, workspec: Any) -> dict:
        """{PandaID: request params} for event ranges the worker asks for."""
        return {}

    def feed_events(self, workspec: Any, events_dict: dict) -> bool:
        """Give event ranges ({PandaID: [ranges]}) to the worker; True on success."""
        return False

    def events_to_update(self, workspec: Any) -> dict:
        """{PandaID: [event dicts]} the worker reports."""
        return {}

    def acknowledge_events_files(self, workspec: Any) -> None:
        """Mark reported events/files as consumed."""
        return None

    def setup_access_points(self, workspec_list: list) -> Any:
        """Prepare the access points of new workers."""
        return None

    def filter_log_tgz(self, name: str) -> bool:
        """True if a file called ``name`` belongs in the job's log tarball."""
        return False

    def post_processing(self, workspec: Any, jobspec_list: list, map_type: str) -> bool | None:
        """Work after the worker ended (log tarball etc.); None = not done yet, retry."""
        return True

    def get_panda_ids(self, workspec: Any) -> list:
        """PandaIDs the worker got by itself (pull mode)."""
        return []

    def kill_requested(self, workspec: Any) -> bool:
        """True if the worker asked to be killed."""
        return False

    def is_alive(self, workspec: Any, time_limit: float) -> bool | None:
        """Heartbeat check; None = unknown."""
        return None

    def clean_up(self, workspec: Any) -> tuple[bool | None, str]:
        """Remove what the messenger made for the worker."""
        return None, "skipped"
