"""One ``typing.Protocol`` per plugin role: the methods Harvester calls, as the original names them.

A plugin need not inherit from these (the original's plugins derive from ``PluginBase`` only);
they say what a plugin of the role looks like, for type checkers and for readers. Every method
of the role is declared; which are required and which are optional (``kill_workers`` *or*
``kill_worker``, the event-based monitor's ``report_updated_workers``, ...) is in
:data:`~pandaharvester.harvestercore.plugin_contracts.roles.ROLES`, which also takes its
parameter lists from here. Return shapes use the original's convention: ``True`` done,
``False`` failed for good, ``None`` not yet / failed for now, always with a diagnostic string.
"""

from __future__ import annotations

from typing import Any, Protocol

Status = bool | None  # True: done; False: failed for good; None: not yet, or failed for now
Reply = tuple[Status, str]


class SubmitterPlugin(Protocol):
    """Queue-config key ``submitter``."""

    def submit_workers(self, workspec_list: list) -> list[Reply]:
        """One ``(status, diag)`` per worker, in order; on True the plugin has set ``workspec.batchID``."""


class MonitorPlugin(Protocol):
    """Queue-config key ``monitor``."""

    def check_workers(self, workspec_list: list) -> tuple[bool, list[tuple[str | None, str]]]:
        """``(True, [(WorkSpec.ST_* or None, diag), ...])`` one per worker, or ``(False, why)``."""

    def report_updated_workers(self, time_window: float) -> list[tuple[int, Any]]:
        """Optional (event-based monitoring): ``[(workerID, update timestamp), ...]`` of the last
        ``time_window`` seconds."""


class SweeperPlugin(Protocol):
    """Queue-config key ``sweeper``: ``kill_workers`` (bulk) or ``kill_worker``, and ``sweep_worker``."""

    def kill_workers(self, workspec_list: list) -> list[tuple[bool, str]]:
        """Kill in the batch system; one ``(ok, diag)`` per worker. An already ended job counts as killed."""

    def kill_worker(self, workspec: Any) -> tuple[bool, str]:
        """Kill one worker (used when the plugin has no ``kill_workers``)."""

    def sweep_worker(self, workspec: Any) -> tuple[bool, str]:
        """Clean up after a final worker (directories, batch leftovers)."""


class PreparatorPlugin(Protocol):
    """Queue-config key ``preparator`` (and ``aux_preparator``): stage-in."""

    def trigger_preparation(self, jobspec: Any) -> Reply:
        """Start the stage-in of the job's inputs."""

    def check_stage_in_status(self, jobspec: Any) -> Reply:
        """True once every input is there (the original's older name: ``check_status``)."""

    def resolve_input_paths(self, jobspec: Any) -> Reply:
        """Set each input's local path with ``jobspec.set_input_file_paths({lfn: {"path": ...}})``
        (only ``False`` is a failure)."""


class StagerPlugin(Protocol):
    """Queue-config key ``stager``: stage-out (and zipping when the queue has no zipper)."""

    def trigger_stage_out(self, jobspec: Any) -> Reply:
        """Start the transfer of ``jobspec.get_output_file_specs(skip_done=True)``."""

    def check_stage_out_status(self, jobspec: Any) -> Reply:
        """Set each output FileSpec's ``status`` "finished" or "failed" (older name: ``check_status``)."""

    def zip_output(self, jobspec: Any) -> Reply:
        """Optional: make the job's zip files (see :class:`ZipperPlugin`)."""


class ZipperPlugin(Protocol):
    """Queue-config key ``zipper``: each FileSpec in ``jobspec.outFiles`` is a zip of its ``associatedFiles``."""

    def zip_output(self, jobspec: Any) -> Reply:
        """Make the zip files; set their ``path``, ``fsize`` and ``chksum``."""

    def async_zip_output(self, jobspec: Any) -> Reply:
        """Optional: start zipping ([stager] usePostZipping); ``post_zip_output`` ends it."""

    def post_zip_output(self, jobspec: Any) -> Reply:
        """Optional: after ``async_zip_output``, set the zip files' ``path``, ``fsize`` and ``chksum``."""


class MessengerPlugin(Protocol):
    """Queue-config key ``messenger`` (``accessPoint`` in its dict): talks with the worker.

    Every method is optional for a plugin deriving from ``BaseMessenger``, whose do-nothing
    defaults are the reference; listed here with the shapes the agents rely on (``None`` from a
    method returning a dict or a list means nothing, as the original's agents read it).
    """

    def setup_access_points(self, workspec_list: list) -> Any:
        """Prepare the access points of new workers (False = failed)."""

    def feed_jobs(self, workspec: Any, jobspec_list: list) -> bool | None:
        """Hand the jobs to the worker; True on success (only ``False`` is a failure)."""

    def job_requested(self, workspec: Any) -> Any:
        """Number of jobs the worker asks for (falsy: none)."""

    def kill_requested(self, workspec: Any) -> bool:
        """True when the worker asks to be killed."""

    def is_alive(self, workspec: Any, time_limit: float) -> bool | None:
        """Heartbeat newer than ``time_limit`` seconds? None: unknown."""

    def get_work_attributes(self, workspec: Any) -> dict:
        """``{PandaID: {attribute: value}}`` the worker reported."""

    def get_files_to_stage_out(self, workspec: Any) -> dict:
        """``{PandaID: {lfn: [{path, type, fsize, chksum, ...}]}}`` the worker produced."""

    def events_requested(self, workspec: Any) -> dict:
        """``{PandaID: request params}`` for event ranges."""

    def feed_events(self, workspec: Any, events_dict: dict) -> bool | None:
        """Hand event ranges to the worker; True on success (only ``False`` is a failure)."""

    def events_to_update(self, workspec: Any) -> dict:
        """``{PandaID: [event dicts]}`` the worker reported."""

    def acknowledge_events_files(self, workspec: Any) -> Any:
        """Mark what was read as consumed."""

    def get_panda_ids(self, workspec: Any) -> list:
        """PandaIDs a pull worker got by itself."""

    def post_processing(self, workspec: Any, jobspec_list: list, map_type: str) -> bool | None:
        """Work after the worker ended; None: not done yet, asked again."""

    def clean_up(self, workspec: Any) -> Reply:
        """Remove what the messenger made for the worker."""


class WorkerMakerPlugin(Protocol):
    """Queue-config key ``workerMaker``: jobs onto workers, and worker sizes."""

    def make_worker(self, jobspec_list: list, queue_config: Any, job_type: str | None,
                    resource_type: str | None, prod_source_label: str | None = "ANY") -> Any:
        """A new WorkSpec for the jobs (empty list for pull queues), or None when none can be made
        (older makers take no ``prod_source_label``)."""

    def get_num_jobs_per_worker(self, n_workers: int) -> int:
        """Jobs per worker."""

    def get_num_workers_per_job(self, n_workers: int) -> int:
        """Workers per job."""

    def num_ready_resources(self) -> int:
        """Resources ready for workers."""

    def get_max_workers_per_job_in_total(self) -> int | None:
        """Cap on the workers ever made for one job."""

    def get_max_workers_per_job_per_cycle(self) -> int | None:
        """Cap on new workers per job per cycle (None: none)."""


class ThrottlerPlugin(Protocol):
    """Queue-config key ``throttler``."""

    def to_be_throttled(self, queue_config: Any, queue_config_mapper: Any = None) -> Reply:
        """``(True, why)`` to make no new worker for the queue this cycle (older throttlers take
        ``queue_config`` only)."""


class CredManagerPlugin(Protocol):
    """cfg ``[credmanager]`` or queue-config ``credmanagers`` list."""

    def check_credential(self) -> bool:
        """True while the credential is valid long enough (``None`` counts as not valid)."""

    def renew_credential(self) -> tuple[bool, str]:
        """Renew it; ``(True, "")`` on success."""

    def check_credential_lifetime(self) -> float | None:
        """Optional: remaining lifetime in hours (service monitoring), None when unknown."""


class ExtractorPlugin(Protocol):
    """Queue-config key ``extractor``."""

    def get_aux_inputs(self, jobspec: Any) -> dict:
        """``{lfn: {"scope", "INTERNAL_FileType", "INTERNAL_URL"}}`` of the job's auxiliary inputs."""
