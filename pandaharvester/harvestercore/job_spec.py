"""JobSpec: one PanDA job handled by harvester — a row of ``job_table``."""

from __future__ import annotations

import datetime
import json
from typing import Any, Iterable

from . import lifecycle
from .spec_base import SpecBase
from .time_utils import naive_utcnow

# jobAttributes keys that PanDA accepts in a job update
_PANDA_JOB_ATTRIBUTES = frozenset(
    (
        "token", "transExitCode", "pilotErrorCode", "pilotErrorDiag", "timestamp", "node", "workdir",
        "cpuConsumptionTime", "cpuConsumptionUnit", "remainingSpace", "schedulerID", "pilotID",
        "siteName", "messageLevel", "pilotLog", "cpuConversionFactor", "exeErrorCode", "exeErrorDiag",
        "pilotTiming", "computingElement", "startTime", "endTime", "nEvents", "nInputFiles", "batchID",
        "attemptNr", "jobMetrics", "stdout", "coreCount", "maxRSS", "maxVMEM", "maxSWAP", "maxPSS",
        "avgRSS", "avgVMEM", "avgSWAP", "avgPSS", "totRCHAR", "totWCHAR", "totRBYTES", "totWBYTES",
        "rateRCHAR", "rateWCHAR", "rateRBYTES", "rateWBYTES",
    )
)

# job parameters dropped by get_job_params(strip=True)
_STRIPPED_JOB_PARAMS = frozenset(
    ("prodDBlocks", "realDatasetsIn", "dispatchDblock", "ddmEndPointIn", "scopeIn", "dispatchDBlockToken", "prodDBlockToken")
)

# error keys reported by a worker for all its jobs
_JOB_ERROR_KEYS = ("pilotErrorCode", "pilotErrorDiag", "exeErrorCode", "exeErrorDiag")

# prodSourceLabel → special pilot type (anything else with a label is "PR"), and the label
# used when a worker of a special pilot type is made without a job
PILOT_TYPE_OF_PROD_SOURCE_LABEL = {"rc_test": "RC", "rc_test2": "RC", "rc_alrb": "ALRB", "ptest": "PT"}
PROD_SOURCE_LABEL_OF_PILOT_TYPE = {"RC": "rc_test2", "ALRB": "rc_alrb", "PT": "ptest"}


def _job_int(data: dict, key: str, nullable: bool = False) -> int | None:
    """``data[key]`` as an int: the real server sends some ids as strings (``"taskID": "123"``),
    and the DB column and later comparisons want one type. ``nullable``: "NULL"/None give None.

    Raises ``ValueError`` naming the key and value when it is missing or not an integer.
    """
    if key not in data:
        raise ValueError(f"the job has no {key!r}")
    value = data[key]
    if nullable and value in (None, "NULL", ""):
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise ValueError(f"{key}={repr(value)[:100]} is not an integer")


def _split(params: dict, key: str) -> list[str]:
    value = params.get(key)
    if value in (None, ""):
        return [] if value is None else [""]
    return str(value).split(",")


class JobSpec(SpecBase):
    """A PanDA job and its processing state, as stored in ``job_table``."""

    # hasOutFile values (defined in lifecycle)
    HO_noOutput = lifecycle.HO_NO_OUTPUT
    HO_hasOutput = lifecycle.HO_HAS_OUTPUT
    HO_hasZipOutput = lifecycle.HO_HAS_ZIP_OUTPUT
    HO_hasTransfer = lifecycle.HO_HAS_TRANSFER
    HO_hasPostZipOutput = lifecycle.HO_HAS_POST_ZIP_OUTPUT

    # auxInput values
    AUX_hasAuxInput = 0
    AUX_inTriggered = 1
    AUX_allTriggered = 2
    AUX_inReady = 3
    AUX_allReady = 4

    attributesWithTypes = (
        "PandaID:integer primary key",
        "taskID:integer / index",
        "attemptNr:integer",
        "status:text",
        "subStatus:text / index",
        "currentPriority:integer / index",
        "computingSite:text / index",
        "creationTime:timestamp",
        "modificationTime:timestamp / index",
        "stateChangeTime:timestamp",
        "startTime:timestamp",
        "endTime:timestamp",
        "nCore:integer",
        "jobParams:blob",
        "jobAttributes:blob",
        "hasOutFile:integer",
        "metaData:blob",
        "outputFilesToReport:blob",
        "lockedBy:text",
        "propagatorLock:text",
        "propagatorTime:timestamp / index",
        "preparatorTime:timestamp / index",
        "submitterTime:timestamp",
        "stagerLock:text",
        "stagerTime:timestamp / index",
        "zipPerMB:integer",
        "nWorkers:integer",
        "nWorkersLimit:integer",
        "submissionAttempts:integer",
        "jobsetID:integer",
        "pilotClosed:integer",
        "configID:integer / index",
        "nRemainingEvents:integer",
        "moreWorkers:integer",
        "maxWorkersInTotal:integer",
        "nWorkersInTotal:integer",
        "jobParamsExtForOutput:blob",
        "jobParamsExtForLog:blob",
        "auxInput:integer",
        "resourceType:text",
    )

    # columns stored as 0 rather than NULL
    zeroAttrs = ("nWorkers", "submissionAttempts", "nWorkersInTotal")

    # not read by slim queries (a bare string, as in the original)
    skipAttrsToSlim = "jobParams"

    # JSON columns are decoded only by the readers that use them (the full PanDA job
    # description, jobParams, is the big one; most cycles read none of them)
    lazyBlobAttrs = ("jobParams", "jobAttributes", "metaData", "outputFilesToReport", "jobParamsExtForOutput",
                     "jobParamsExtForLog")

    def _init_extra_attributes(self) -> None:
        d = self.__dict__
        d["events"] = set()
        d["zipEventMap"] = {}
        d["inFiles"] = set()
        d["outFiles"] = set()
        d["zipFileMap"] = {}
        d["workspec_list"] = []
        d["secrets"] = None  # PanDA's job secrets (never a DB column: see job_secrets)

    # ------------------------------------------------------------------ files and events
    def add_file(self, filespec: Any) -> None:
        """Attach a FileSpec to inFiles (fileType input) or outFiles (anything else)."""
        if filespec.fileType == lifecycle.TYPE_INPUT:
            self.add_in_file(filespec)
        else:
            self.add_out_file(filespec)

    def add_in_file(self, filespec: Any) -> None:
        """Attach an input FileSpec."""
        self.inFiles.add(filespec)

    def add_out_file(self, filespec: Any) -> None:
        """Attach an output (or log) FileSpec."""
        self.outFiles.add(filespec)

    def reset_out_file(self) -> None:
        """Forget the attached output FileSpecs."""
        self.outFiles.clear()

    def get_files_to_delete(self) -> list:
        """FileSpecs flagged with todelete == 1."""
        return [f for f in self.inFiles | self.outFiles if f.todelete == 1]

    def add_event(self, event_spec: Any, zip_filespec: Any) -> None:
        """Attach an EventSpec, grouped by the zip file (FileSpec or None) holding its output."""
        zip_id = None if zip_filespec is None else zip_filespec.fileID
        group = self.zipEventMap.get(zip_id)
        if group is None:
            group = self.zipEventMap[zip_id] = {"events": set(), "zip": zip_filespec}
        group["events"].add(event_spec)
        self.events.add(event_spec)

    # ------------------------------------------------------------------ from PanDA
    def convert_job_json(self, data: dict) -> None:
        """Fill the job from a PanDA job dict (as returned by acquire_jobs).

        The whole dict becomes jobParams (as sent: the pilot gets PanDA's own values); PandaID,
        taskID, jobsetID, attemptNr and currentPriority become ints (the real server sends taskID
        and jobsetID as strings), "NULL" task/jobset ids None; "secrets" (a JSON string, decoded when
        possible) leaves jobParams for :attr:`secrets` (see :mod:`job_secrets`). Raises ``ValueError``
        naming the key when one of these five is missing or not an integer (the job cannot be stored
        or reported then).
        """
        if not isinstance(data, dict):
            raise ValueError(f"a job must be a JSON object, not {type(data).__name__} {repr(data)[:100]}")
        if "secrets" in data:
            # PanDA's secrets for the pilot: kept off jobParams (so off the DB and the logs), stored
            # beside the DB by insert_jobs and put back into the description by get_job_params
            secrets = data.pop("secrets")
            try:
                secrets = json.loads(secrets)
            except (TypeError, ValueError):
                pass
            self.secrets = secrets if secrets not in (None, "", {}) else None
        self.PandaID = _job_int(data, "PandaID")
        self.taskID = _job_int(data, "taskID", nullable=True)
        self.attemptNr = _job_int(data, "attemptNr")
        self.jobsetID = _job_int(data, "jobsetID", nullable=True)
        self.currentPriority = _job_int(data, "currentPriority")
        if "coreCount" in data:
            try:
                self.nCore = int(data["coreCount"])
            except (TypeError, ValueError):
                self.nCore = None
        resource_type = data.get("resource_type", data.get("resourceType"))
        if resource_type not in (None, "NULL"):
            self.resourceType = resource_type
        self.jobParams = data
        self.jobParamsExtForOutput = self.get_output_file_attributes()
        self.jobParamsExtForLog = self.get_logfile_info()
        if "zipPerMB" in data:
            self.zipPerMB = data["zipPerMB"]

    # ------------------------------------------------------------------ agent triggers
    def trigger_propagation(self) -> None:
        """Make the propagator pick the job at its next cycle."""
        self.propagatorTime = naive_utcnow() - datetime.timedelta(hours=1)

    def trigger_preparation(self) -> None:
        """Make the preparator pick the job at its next cycle."""
        self.preparatorTime = naive_utcnow() - datetime.timedelta(hours=1)

    def trigger_stage_out(self) -> None:
        """Make the stager pick the job at its next cycle."""
        self.stagerTime = naive_utcnow() - datetime.timedelta(hours=1)

    # ------------------------------------------------------------------ job attributes
    def set_attributes(self, attrs: dict | None) -> None:
        """Merge attributes reported by the worker: ``{PandaID: {name: value}}``.

        Top-level pilot/exe error keys apply to every job that has none of its own. ``metaData``
        and ``xml`` (the output file report) go to their own columns.
        """
        if attrs is None:
            return
        mine = attrs.get(self.PandaID)
        mine = dict(mine) if mine is not None else None
        for key in _JOB_ERROR_KEYS:
            if key in attrs:
                if mine is None:
                    mine = {}
                mine.setdefault(key, attrs[key])
        if mine is None:
            return
        if "metaData" in mine:
            self.metaData = mine.pop("metaData")
        if "xml" in mine:
            self.outputFilesToReport = mine.pop("xml")
        if self.jobAttributes is None:
            self.jobAttributes = mine
            return
        current = self.jobAttributes
        for key, val in mine.items():
            if key not in current or current[key] != val:
                current[key] = val
                self.force_update("jobAttributes")

    def set_one_attribute(self, attr: str, value: Any) -> None:
        """Set one entry of jobAttributes."""
        if self.jobAttributes is None:
            self.jobAttributes = {}
        if attr not in self.jobAttributes or self.jobAttributes[attr] != value:
            self.jobAttributes[attr] = value
            self.force_update("jobAttributes")

    def has_attribute(self, attr: str) -> bool:
        """True if jobAttributes has ``attr``."""
        return self.jobAttributes is not None and attr in self.jobAttributes

    def get_one_attribute(self, attr: str) -> Any:
        """jobAttributes[attr], or None."""
        if self.jobAttributes and attr in self.jobAttributes:
            return self.jobAttributes[attr]
        return None

    def get_job_attributes_for_panda(self) -> dict[str, Any]:
        """The jobAttributes PanDA accepts in a job update (ints sent as strings)."""
        if self.jobAttributes is None:
            return {}
        data = {}
        for key, val in self.jobAttributes.items():
            if key in _PANDA_JOB_ATTRIBUTES:
                data[key] = str(val) if type(val) is int else val
        return data

    def get_job_status_from_attributes(self) -> str | None:
        """"finished"/"failed" if the worker reported that job status, else None."""
        if self.jobAttributes is None:
            return None
        status = self.jobAttributes.get("jobStatus")
        return status if status in lifecycle.JOB_PAYLOAD_END else None

    # ------------------------------------------------------------------ status
    def is_final_status(self, job_status: str | None = None) -> bool:
        """True for finished, failed, cancelled and missed."""
        if job_status is None:
            job_status = self.status
        return job_status in lifecycle.JOB_FINAL

    def get_status(self) -> str | None:
        """Status to report: "transferring" while a final job still stages out or has events."""
        if (
            self.is_final_status()
            and self.subStatus != lifecycle.SUB_KILLED
            and (self.subStatus in (lifecycle.SUB_TO_TRANSFER, lifecycle.SUB_TRANSFERRING)
                 or not self.all_events_done())
        ):
            return lifecycle.JOB_TRANSFERRING
        return self.status

    def all_events_done(self) -> bool:
        """True when every attached event has subStatus done."""
        return all(e.subStatus == lifecycle.EVENT_DONE for e in self.events)

    def all_files_triggered_to_stage_out(self) -> None:
        """Put every unfinished output file in transferring (attempt counter reset)."""
        for f in self.outFiles:
            if f.status not in lifecycle.FILE_FINAL:
                f.status = lifecycle.FILE_TRANSFERRING
                f.attemptNr = 0

    def all_files_zipped(self, use_post_zipping: bool = False) -> None:
        """After zipping: unfinished outputs go to post_zipping, or back to defined (no group)."""
        for f in self.outFiles:
            if f.status in lifecycle.FILE_FINAL:
                continue
            f.attemptNr = 0
            if use_post_zipping:
                f.status = lifecycle.FILE_POST_ZIPPING
            else:
                f.status = lifecycle.FILE_DEFINED
                f.groupID = None
                f.groupStatus = None
                f.groupUpdateTime = None

    def not_suppress_heartbeat(self) -> bool:
        """True when heartbeats must be sent even for a no-heartbeat status (sub-status missed)."""
        return self.subStatus == lifecycle.SUB_MISSED

    # ------------------------------------------------------------------ events for PanDA
    def to_event_data(self, max_events: int | None = None) -> tuple[list[dict], list]:
        """([{eventRanges, sourceURL?, zipFile?}], [EventSpec]) for update_event_ranges."""
        data = []
        specs = []
        n_events = 0
        params = self.jobParams or {}
        for zip_id, group in self.zipEventMap.items():
            if max_events is not None and n_events > max_events:
                break
            ranges = []
            for event in group["events"]:
                ranges.append(event.to_data())
                specs.append(event)
                n_events += 1
            item: dict[str, Any] = {"eventRanges": ranges}
            if "sourceURL" in params:
                item["sourceURL"] = params["sourceURL"]
            if zip_id is not None:
                zip_spec = group["zip"]
                if zip_spec.status == lifecycle.FILE_FINISHED:
                    objstore = str(zip_spec.objstoreID)
                    if zip_spec.pathConvention is not None:
                        objstore += f"/{zip_spec.pathConvention}"
                    zip_info: dict[str, Any] = {"lfn": zip_spec.lfn, "objstoreID": objstore}
                    if zip_spec.fsize not in (None, 0):
                        zip_info["fsize"] = zip_spec.fsize
                    chksum = zip_spec.chksum
                    if chksum is not None:
                        if chksum.startswith("md:"):
                            zip_info["md5"] = chksum.split(":")[-1]
                        elif chksum.startswith("ad:"):
                            zip_info["adler32"] = chksum.split(":")[-1]
                        else:
                            zip_info["adler32"] = chksum
                    item["zipFile"] = zip_info
            data.append(item)
        return data, specs

    # ------------------------------------------------------------------ input files
    def get_input_file_attributes(self, skip_ready: bool = False) -> dict[str, dict[str, Any]]:
        """{lfn: {fsize, guid, checksum, scope, dataset, endpoint, attemptNr[, path]}} from jobParams.

        Files whose FileSpec is ready are skipped with ``skip_ready``; ``path`` is added once
        input paths were resolved (jobParams has inFilePaths). Empty and "NULL" lfns are dropped.
        """
        skip = set()
        attempts = {}
        paths = {}
        for f in self.inFiles:
            if skip_ready and f.status == lifecycle.FILE_READY:
                skip.add(f.lfn)
            attempts[f.lfn] = f.attemptNr
            paths[f.lfn] = f.path
        params = self.jobParams or {}
        lfns = _split(params, "inFiles")
        columns = zip(
            lfns,
            _split(params, "GUID"),
            _split(params, "fsize"),
            _split(params, "checksum"),
            _split(params, "scopeIn"),
            _split(params, "realDatasetsIn"),
            _split(params, "ddmEndPointIn"),
        )
        result: dict[str, dict[str, Any]] = {}
        for lfn, guid, fsize, chksum, scope, dataset, endpoint in columns:
            if lfn in skip:
                continue
            try:
                size: int | None = int(fsize)
            except ValueError:
                size = None
            result[lfn] = {
                "fsize": size,
                "guid": guid,
                "checksum": chksum,
                "scope": scope,
                "dataset": dataset,
                "endpoint": endpoint,
                "attemptNr": attempts.get(lfn, 0),
            }
        if "inFilePaths" in params:
            for lfn in lfns:
                if lfn in result and lfn in paths:
                    result[lfn]["path"] = paths[lfn]
        result.pop("", None)
        result.pop("NULL", None)
        return result

    def set_input_file_paths(self, in_files: dict[str, dict[str, Any]]) -> None:
        """Record resolved local paths ({lfn: {"path": ...}}) in jobParams and the FileSpecs."""
        paths = [in_files[lfn]["path"] for lfn in self.get_input_file_attributes() if lfn in in_files]
        self.jobParams["inFilePaths"] = ",".join(paths)
        self.force_update("jobParams")
        for f in self.inFiles:
            if f.lfn in in_files:
                f.path = in_files[f.lfn]["path"]

    def set_all_input_ready(self) -> None:
        """Mark every input FileSpec ready."""
        for f in self.inFiles:
            f.status = lifecycle.FILE_READY

    # ------------------------------------------------------------------ output files
    def get_output_file_attributes(self) -> dict[str, dict[str, Any]]:
        """{lfn: {scope, dataset, endpoint}} for outputs and the log (cached in jobParamsExtForOutput)."""
        if self.jobParamsExtForOutput is not None:
            return self.jobParamsExtForOutput
        params = self.jobParams
        lfns = _split(params, "outFiles")
        scopes = _split(params, "scopeOut")
        log_lfn = params.get("logFile")
        if log_lfn in lfns:
            # scopeOut has no entry for the log file; insert its scope at its place
            scopes.insert(lfns.index(log_lfn), params.get("scopeLog"))
        datasets = _split(params, "realDatasets")
        endpoints = _split(params, "ddmEndPointOut")
        out = {
            lfn: {"scope": scope, "dataset": dataset, "endpoint": endpoint}
            for lfn, scope, dataset, endpoint in zip(lfns, scopes, datasets, endpoints)
        }
        self.jobParamsExtForOutput = out
        return out

    def get_logfile_info(self) -> dict[str, Any]:
        """{lfn, guid} of the log file (cached in jobParamsExtForLog)."""
        if self.jobParamsExtForLog is not None:
            return self.jobParamsExtForLog
        info = {"lfn": self.jobParams["logFile"], "guid": self.jobParams["logGUID"]}
        self.jobParamsExtForLog = info
        return info

    def get_output_file_specs(self, skip_done: bool = False) -> Iterable:
        """Output FileSpecs (the set itself), or a list of the unfinished ones with ``skip_done``."""
        if not skip_done:
            return self.outFiles
        return [f for f in self.outFiles if f.status not in lifecycle.FILE_FINAL]

    # ------------------------------------------------------------------ file groups
    def set_groups_to_files(self, id_map: dict[str, dict[str, Any]]) -> None:
        """Assign transfer groups: ``{groupID: {"lfns": [...], "groupStatus": ...}}``."""
        now = naive_utcnow()
        group_of = {lfn: gid for gid, item in id_map.items() for lfn in item["lfns"]}
        for f in self.inFiles | self.outFiles:
            if f.lfn in group_of:
                gid = group_of[f.lfn]
                f.groupID = gid
                f.groupStatus = id_map[gid]["groupStatus"]
                f.groupUpdateTime = now

    def update_group_status_in_files(self, group_id: str, group_status: str) -> None:
        """Set the status of a transfer group on the files in it."""
        now = naive_utcnow()
        for f in self.inFiles | self.outFiles:
            if f.groupID == group_id:
                f.groupStatus = group_status
                f.groupUpdateTime = now

    def get_groups_of_input_files(self, skip_ready: bool = False) -> dict[Any, dict[str, Any]]:
        """{groupID: {groupUpdateTime, groupStatus}} of the input files."""
        return {
            f.groupID: {"groupUpdateTime": f.groupUpdateTime, "groupStatus": f.groupStatus}
            for f in self.inFiles
            if not (skip_ready and f.status == lifecycle.FILE_READY)
        }

    def get_groups_of_output_files(self) -> dict[Any, dict[str, Any]]:
        """{groupID: {groupUpdateTime, groupStatus}} of the output files."""
        return {f.groupID: {"groupUpdateTime": f.groupUpdateTime, "groupStatus": f.groupStatus} for f in self.outFiles}

    def get_input_file_specs(self, group_id: Any, skip_ready: bool = False) -> list:
        """Input FileSpecs of a group (ready/failed ones skipped with ``skip_ready``)."""
        return [
            f
            for f in self.inFiles
            if f.groupID == group_id and not (skip_ready and f.status in lifecycle.FILE_INPUT_SETTLED)
        ]

    # ------------------------------------------------------------------ times
    def set_start_time(self, force: bool = False) -> None:
        """Set startTime to now unless already set (or ``force``)."""
        lifecycle.stamp_start(self, force=force)

    def set_end_time(self, force: bool = False) -> None:
        """Set endTime to now unless already set (or ``force``)."""
        lifecycle.stamp_end(self, force=force)

    def reset_start_end_time(self) -> None:
        """Set startTime and endTime both to now."""
        lifecycle.stamp_both(self)

    # ------------------------------------------------------------------ workers
    def add_workspec_list(self, workspec_list: list) -> None:
        """Attach the WorkSpecs running this job (not stored in the job row)."""
        self.workspec_list = workspec_list

    def get_workspec_list(self) -> list:
        """The attached WorkSpecs."""
        return self.workspec_list

    # ------------------------------------------------------------------ pilot
    def set_pilot_error(self, error_code: int, error_dialog: str) -> None:
        """Record a pilot error unless one is recorded already."""
        if not self.has_attribute("pilotErrorCode"):
            self.set_one_attribute("pilotErrorCode", error_code)
        if not self.has_attribute("pilotErrorDiag"):
            self.set_one_attribute("pilotErrorDiag", error_dialog)

    def set_pilot_closed(self) -> None:
        """Flag that the pilot was closed."""
        self.pilotClosed = 1

    def is_pilot_closed(self) -> bool:
        """True if the pilot was closed."""
        return self.pilotClosed == 1

    def get_job_params(self, strip: bool) -> dict:
        """The job description for the pilot: jobParams with PanDA's ``secrets`` put back (from
        memory or :mod:`job_secrets`); with ``strip`` without the bulky input dataset/token fields."""
        params = self.jobParams
        if strip:
            params = {k: v for k, v in params.items() if k not in _STRIPPED_JOB_PARAMS}
        secrets = self.get_secrets()
        if secrets is not None:
            params = dict(params, secrets=secrets)
        return params

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state.pop("secrets", None)  # pickles (FIFOs, caches) never carry PanDA's secrets
        return state

    def get_secrets(self) -> Any:
        """PanDA's ``secrets`` of the job (decoded JSON), or None."""
        if self.secrets is None and self.PandaID is not None:
            from pandaharvester.harvestercore import job_secrets

            self.__dict__["secrets"] = job_secrets.load(self.PandaID)
        return self.secrets

    def get_pilot_type(self) -> str | None:
        """RC, ALRB, PT or PR from prodSourceLabel; None when there is none."""
        label = (self.jobParams or {}).get("prodSourceLabel")
        if label is None:
            return None
        if label in PILOT_TYPE_OF_PROD_SOURCE_LABEL:
            return PILOT_TYPE_OF_PROD_SOURCE_LABEL[label]
        return "PR" if label else None

    def manipulate_job_params_for_container(self) -> None:
        """Replace container image URLs in jobParams by the local paths of staged aux inputs."""
        updated = False
        params = self.jobParams
        for f in self.inFiles:
            for key, val in list(params.items()):
                if key == "container_name":
                    if val == f.url:
                        params[key] = f.path
                        updated = True
                elif key == "containerOptions" and isinstance(val, dict):
                    if val.get("containerImage", object()) == f.url:
                        val["containerImage"] = f.path
                        updated = True
        if updated:
            self.force_update("jobParams")
