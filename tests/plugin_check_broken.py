"""Deliberately broken plugins: each makes ``harvester-admin plugin check`` fail in one known way."""

from __future__ import annotations

import os

from pandaharvester.harvestercore.plugin_base import PluginBase
from pandaharvester.harvestercore.work_spec import WorkSpec


class TypoSubmitter(PluginBase):
    """``submit_worker`` instead of ``submit_workers``."""

    def submit_worker(self, workspec):
        return True, ""


class NoArgSubmitter(PluginBase):
    """``submit_workers`` that takes no worker list."""

    def submit_workers(self):
        return []


class DictSubmitter(PluginBase):
    """Returns a dict instead of a list of pairs."""

    def submit_workers(self, workspec_list):
        return {w.workerID: (True, "") for w in workspec_list}


class ShortSubmitter(PluginBase):
    """One reply too few."""

    def submit_workers(self, workspec_list):
        for workspec in workspec_list:
            workspec.batchID = f"short-{workspec.workerID}"
        return [(True, "")] * (len(workspec_list) - 1)


class RaisingSubmitter(PluginBase):
    """Raises instead of returning the failure."""

    def submit_workers(self, workspec_list):
        raise RuntimeError("batch system exploded")


class NoBatchIDSubmitter(PluginBase):
    """Says True but never sets batchID."""

    def submit_workers(self, workspec_list):
        return [(True, "")] * len(workspec_list)


class StatusSettingSubmitter(PluginBase):
    """Works, but sets the worker's status itself (the agents' field)."""

    def submit_workers(self, workspec_list):
        for workspec in workspec_list:
            workspec.batchID = f"status-{workspec.workerID}"
            workspec.status = WorkSpec.ST_running
        return [(True, "")] * len(workspec_list)


class NoKwargSubmitter(PluginBase):
    """A constructor that takes no queue-config keys."""

    def __init__(self):
        PluginBase.__init__(self)

    def submit_workers(self, workspec_list):
        return []


class FileSubmitter(PluginBase):
    """A correct submitter: the "batch job" is a status file that says finished."""

    def submit_workers(self, workspec_list):
        for workspec in workspec_list:
            workspec.batchID = f"file-{workspec.workerID}"
            with open(os.path.join(workspec.get_access_point(), "state"), "w") as stream:
                stream.write("finished")
        return [(True, "")] * len(workspec_list)


class TypoStatusMonitor(PluginBase):
    """Reports "finshed", which is no WorkSpec status."""

    def check_workers(self, workspec_list):
        return True, [("finshed", "") for _ in workspec_list]


class BareListMonitor(PluginBase):
    """Returns the list of statuses without the leading bool."""

    def check_workers(self, workspec_list):
        return [(WorkSpec.ST_running, "") for _ in workspec_list]


class FailingSweeper(PluginBase):
    """Cannot kill, and has no ``sweep_worker``."""

    def kill_worker(self, workspec):
        return False, "scancel: permission denied"


class RefusingSweeper(PluginBase):
    """Has every method, but killing fails."""

    def kill_workers(self, workspec_list):
        return [(False, "scancel: permission denied")] * len(workspec_list)

    def sweep_worker(self, workspec):
        return True, ""


class PathlessPreparator(PluginBase):
    """Says the inputs are resolved but sets no path."""

    def trigger_preparation(self, jobspec):
        return True, ""

    def check_stage_in_status(self, jobspec):
        return True, ""

    def resolve_input_paths(self, jobspec):
        return True, ""


class LazyStager(PluginBase):
    """Says the transfer is done but leaves the outputs' status alone."""

    def trigger_stage_out(self, jobspec):
        return True, ""

    def check_stage_out_status(self, jobspec):
        return True, ""


class StringThrottler(PluginBase):
    """Returns a bare string."""

    def to_be_throttled(self, queue_config, queue_config_mapper=None):
        return "no"


class OldThrottler(PluginBase):
    """The original's older signature: no queue_config_mapper keyword."""

    def to_be_throttled(self, queue_config):
        return False, ""
