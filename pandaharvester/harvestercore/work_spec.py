"""WorkSpec: one worker (batch job, pod, pilot...) — a row of ``work_table``."""

from __future__ import annotations

import datetime
import os
import re
from typing import Any

from . import lifecycle
from .spec_base import SpecBase
from .time_utils import naive_utcnow, to_panda_string

# ${name} placeholders in an access point
_PLACEHOLDER = re.compile(r"\$\{([a-zA-Z\d_.]+)\}")
# ${_workerID_<d>[.<d>...]}: digits of workerID picked by position counted from the right
_WORKER_ID_DIGITS = re.compile(r"^_workerID_(\d+(?:\.\d+)*)$")

# workAttributes keys that are forwarded to PanDA with the worker
_PROPAGATED_LOG_KEYS = ("stdOut", "stdErr", "batchLog", "jdl")

# columns sent to PanDA by convert_to_propagate, in this order
_PROPAGATED_COLUMNS = (
    "workerID",
    "batchID",
    "queueName",
    "status",
    "computingSite",
    "nCore",
    "nodeID",
    "submitTime",
    "startTime",
    "endTime",
    "jobType",
    "resourceType",
    "nativeExitCode",
    "nativeStatus",
    "diagMessage",
    "nJobs",
    "computingElement",
    "syncLevel",
    "submissionHost",
    "harvesterHost",
    "errorCode",
    "minRamCount",
)


def _harvester_id() -> str:
    """The instance id from the cfg, read at call time (specs import without a cfg)."""
    from pandaharvester.harvesterconfig import harvester_config

    return str(harvester_config.master.harvester_id)


class WorkSpec(SpecBase):
    """A worker and its state, as stored in ``work_table``."""

    # worker statuses (defined in lifecycle)
    ST_submitted = lifecycle.WORKER_SUBMITTED
    ST_running = lifecycle.WORKER_RUNNING
    ST_finished = lifecycle.WORKER_FINISHED
    ST_failed = lifecycle.WORKER_FAILED
    ST_ready = lifecycle.WORKER_READY
    ST_cancelled = lifecycle.WORKER_CANCELLED
    ST_idle = lifecycle.WORKER_IDLE
    ST_missed = lifecycle.WORKER_MISSED
    ST_pending = lifecycle.WORKER_PENDING

    # statuses a worker can report (pending is internal)
    ST_LIST = list(lifecycle.WORKER_REPORTABLE)

    # job/worker mapping types
    MT_NoJob = "NoJob"
    MT_OneToOne = "OneToOne"
    MT_MultiJobs = "ManyToOne"
    MT_MultiWorkers = "OneToMany"

    # event handling of the worker
    EV_noEvents = 0
    EV_useEvents = 1
    EV_requestEvents = 2

    attributesWithTypes = (
        "workerID:integer primary key",
        "batchID:text",
        "mapType:text",
        "queueName:text",
        "status:text / index",
        "hasJob:integer",
        "workParams:blob",
        "workAttributes:blob",
        "eventsRequestParams:blob",
        "eventsRequest:integer / index",
        "computingSite:text / index",
        "creationTime:timestamp",
        "submitTime:timestamp / index",
        "startTime:timestamp",
        "endTime:timestamp",
        "nCore:integer",
        "walltime:timestamp",
        "accessPoint:text",
        # no index of its own: every query on it also filters on status (idxh_work_status_mod), and
        # each monitor write changes it, so a second index only cost every write time
        "modificationTime:timestamp",
        "lastUpdate:timestamp / index",
        "eventFeedTime:timestamp / index",
        "lockedBy:text",
        "postProcessed:integer",
        "nodeID:text",
        "minRamCount:integer",
        "maxDiskCount:integer",
        "maxWalltime:integer",
        "killTime:timestamp / index",
        "computingElement:text",
        "nJobsToReFill:integer / index",
        "logFilesToUpload:blob",
        "jobType:text",
        "resourceType:text",
        "nativeExitCode:integer",
        "nativeStatus:text",
        "diagMessage:varchar(500)",
        "nJobs:integer",
        "submissionHost:text",
        "configID:integer / index",
        "syncLevel:integer",
        "checkTime:timestamp",
        "ioIntensity:integer",
        "harvesterHost:text",
        "pilotType:text",
        "eventFeedLock:text",
        "errorCode:integer",
        "errorDiag:text",
    )

    # big blobs not read by slim queries
    skipAttrsToSlim = ("workParams", "workAttributes")

    def _init_extra_attributes(self) -> None:
        d = self.__dict__
        d["isNew"] = False
        d["nextLookup"] = False
        d["jobspec_list"] = None
        d["pandaid_list"] = None
        d["new_status"] = False
        d["pilot_closed"] = False

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        # transient flags of one agent cycle
        state.pop("isNew", None)
        state.pop("new_status", None)
        return state

    # ------------------------------------------------------------------ status
    def set_status(self, value: str) -> None:
        """Set the status; a change triggers propagation and sets start/end times.

        ``submitted`` is ignored for a worker already running or idle (no reverse transition).
        """
        if not lifecycle.worker_may_become(self.status, value):
            return
        if self.status != value:
            self.trigger_propagation()
            self.new_status = True
        self.status = value
        lifecycle.stamp_times(self, value)

    def is_final_status(self) -> bool:
        """True for finished, failed, cancelled and missed."""
        return self.status in lifecycle.WORKER_FINAL

    def convert_to_job_status(self, status: str | None = None) -> tuple[str, str]:
        """(job status, job sub-status) that a worker status implies for its jobs
        (:func:`lifecycle.job_status_of_worker`)."""
        return lifecycle.job_status_of_worker(self.status if status is None else status)  # type: ignore[return-value]

    # ------------------------------------------------------------------ access point
    def get_access_point(self) -> str | None:
        """The access point with ``${...}`` placeholders expanded (and stored back).

        ``${attr}`` is any attribute of the worker, ``${harvesterID}`` the instance id and
        ``${_workerID_a.b...}`` the digits of workerID at positions a, b, ... counted from the
        right (0 = last digit), ``0`` where the id is shorter. Unknown names are left as is.
        """
        access_point = self.accessPoint
        if access_point is None or "$" not in access_point:
            return access_point
        for name in _PLACEHOLDER.findall(access_point):
            value = None
            if name in self._column_set or name in self.__dict__:
                value = str(getattr(self, name))
            elif hasattr(type(self), name) and not callable(getattr(type(self), name)):
                value = str(getattr(self, name))
            elif name == "harvesterID":
                value = _harvester_id()
            else:
                match = _WORKER_ID_DIGITS.match(name)
                if match:
                    id_str = str(self.workerID)
                    picked = []
                    for pos in match.group(1).split("."):
                        index = int(pos) + 1
                        picked.append(id_str[-index] if index <= len(id_str) else "0")
                    value = "".join(picked)
            if value is not None:
                access_point = access_point.replace("${" + name + "}", value)
        self.accessPoint = access_point
        return access_point

    # ------------------------------------------------------------------ jobs
    def set_jobspec_list(self, jobspec_list: list | None) -> None:
        """Attach the JobSpecs this worker runs (not stored in the worker row)."""
        self.jobspec_list = jobspec_list

    def get_jobspec_list(self) -> list | None:
        """The attached JobSpecs, or None."""
        return self.jobspec_list

    def set_num_jobs_with_list(self) -> None:
        """Add the number of attached jobs to nJobs."""
        if not self.jobspec_list:
            return
        self.nJobs = (self.nJobs or 0) + len(self.jobspec_list)

    # ------------------------------------------------------------------ flags and times
    def is_post_processed(self) -> bool:
        """True once post-processing was done."""
        return self.postProcessed == 1

    def post_processed(self) -> None:
        """Mark post-processing done."""
        self.postProcessed = 1

    def trigger_next_lookup(self) -> None:
        """Make the monitor pick this worker at its next cycle."""
        self.nextLookup = True
        self.modificationTime = naive_utcnow() - datetime.timedelta(hours=1)

    def trigger_propagation(self) -> None:
        """Make the propagator report this worker to PanDA soon."""
        self.lastUpdate = naive_utcnow() - datetime.timedelta(hours=24)

    def disable_propagation(self) -> None:
        """Stop reporting this worker to PanDA."""
        self.lastUpdate = None
        self.force_update("lastUpdate")

    def set_start_time(self, force: bool = False) -> None:
        """Set startTime to now unless already set (or ``force``)."""
        lifecycle.stamp_start(self, force=force)

    def set_end_time(self, force: bool = False) -> None:
        """Set endTime to now unless already set (or ``force``)."""
        lifecycle.stamp_end(self, force=force)

    # ------------------------------------------------------------------ PanDA payload
    def convert_to_propagate(self) -> dict[str, Any]:
        """The dict sent to PanDA's update_workers (datetimes as ``datetime/...`` strings)."""
        d = self.__dict__
        data: dict[str, Any] = {}
        for name in _PROPAGATED_COLUMNS:
            val = d.get(name)
            if val is None:
                continue
            if isinstance(val, datetime.datetime):
                val = to_panda_string(val)
            data[name] = val
        if self.errorCode not in (None, 0) and self.errorDiag not in (None, ""):
            data["diagMessage"] = self.errorDiag
        if self.pandaid_list is not None:
            data["pandaid_list"] = self.pandaid_list
        if self.workAttributes is not None:
            for key in _PROPAGATED_LOG_KEYS:
                if key in self.workAttributes:
                    data[key] = self.workAttributes[key]
        return data

    # ------------------------------------------------------------------ work params / attributes
    def set_work_params(self, data: dict | None) -> None:
        """Merge ``data`` into workParams, recording a change only when something differs."""
        if data is None:
            return
        if self.workParams is None:
            self.workParams = {}
        params = self.workParams
        for key, val in data.items():
            if key not in params or params[key] != val:
                params[key] = val
                self.force_update("workParams")

    def get_work_params(self, name: str) -> tuple[bool, Any]:
        """(True, value) if workParams has ``name``, else (False, None)."""
        if self.workParams is None or name not in self.workParams:
            return False, None
        return True, self.workParams[name]

    def has_work_params(self, name: str) -> bool:
        """True if workParams has ``name``."""
        return self.workParams is not None and name in self.workParams

    def set_work_attributes(self, data: dict | None) -> None:
        """Merge ``data`` into workAttributes, recording a change only when something differs."""
        if data is None:
            return
        if self.workAttributes is None:
            self.workAttributes = {}
        attrs = self.workAttributes
        for key, val in data.items():
            if key not in attrs or attrs[key] != val:
                attrs[key] = val
                self.force_update("workAttributes")

    def get_work_attribute(self, name: str) -> tuple[bool, Any]:
        """(True, value) if workAttributes has ``name``, else (False, None)."""
        if self.workAttributes is None or name not in self.workAttributes:
            return False, None
        return True, self.workAttributes[name]

    def has_work_attribute(self, name: str) -> bool:
        """True if workAttributes has ``name``."""
        return self.workAttributes is not None and name in self.workAttributes

    # ------------------------------------------------------------------ log files
    def update_log_files_to_upload(self, file_path: str, position: int, remote_name: str | None = None,
                                   stream_type: str | None = None) -> None:
        """Register (or move the upload position of) a local log file to upload to PanDA.

        With a ``stream_type``, whatever was registered for that stream is replaced.
        """
        if self.logFilesToUpload is None:
            self.logFilesToUpload = {}
        files = self.logFilesToUpload
        if stream_type is not None:
            for path in [p for p, info in files.items() if info.get("stream_type") == stream_type]:
                del files[path]
                self.force_update("logFilesToUpload")
        if file_path not in files:
            files[file_path] = {"position": position, "remote_name": remote_name, "stream_type": stream_type}
            self.force_update("logFilesToUpload")
        elif files[file_path]["position"] != position:
            files[file_path]["position"] = position
            self.force_update("logFilesToUpload")

    def set_log_file(self, log_type: str, stream: str) -> None:
        """Record where a log of the worker can be read.

        ``log_type`` is stdout, stderr, jdl or anything else for the batch log. A URL is stored
        as is; a local path is scheduled for upload and the cache URL it will have is stored.
        """
        key = {"stdout": "stdOut", "stderr": "stdErr", "jdl": "jdl"}.get(log_type, "batchLog")
        if stream.startswith("http"):
            url = stream
        else:
            from pandaharvester.harvesterconfig import harvester_config

            remote_name = f"{harvester_config.master.harvester_id}__{os.path.basename(stream)}"
            url = f"{harvester_config.pandacon.pandaCacheURL_R}/{remote_name}"
            self.update_log_files_to_upload(stream, 0, remote_name, key)
        self.set_work_attributes({key: url})

    def get_log_files_to_upload(self) -> list[tuple[str, int, int, str | None]]:
        """[(path, offset, n bytes to send, remote name)] for registered logs that grew."""
        result = []
        for path, info in (self.logFilesToUpload or {}).items():
            try:
                size = os.stat(path).st_size
            except OSError:
                continue
            if size <= info["position"]:
                continue
            result.append((path, info["position"], size - info["position"], info["remote_name"]))
        return result

    # ------------------------------------------------------------------ diagnostics
    def set_dialog_message(self, msg: str | None) -> None:
        """Set diagMessage (truncated to the column's 500 characters); empty is ignored."""
        if msg not in (None, ""):
            self.diagMessage = str(msg)[:500]

    def set_pilot_error(self, error_code: int, error_dialog: str) -> None:
        """Record a pilot error code/diag in workAttributes (reported with the jobs)."""
        self.set_work_attributes({"pilotErrorCode": error_code, "pilotErrorDiag": error_dialog})

    def has_pilot_error(self) -> bool:
        """True if a pilot error was recorded."""
        return self.has_work_attribute("pilotErrorCode")

    def set_pilot_closed(self) -> None:
        """Flag that the pilot was closed (jobs are reported with sub-status pilot_closed)."""
        self.pilot_closed = True

    def set_supplemental_error(self, error_code: int | None, error_diag: str | None) -> None:
        """Set errorCode/errorDiag (diag truncated to 256 characters)."""
        if error_code is not None:
            self.errorCode = error_code
        if error_diag not in (None, ""):
            self.errorDiag = str(error_diag)[:256]
