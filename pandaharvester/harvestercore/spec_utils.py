"""Helpers that work on specs: job state from workers, output file reports, pool file catalogs.

Re-exported by :mod:`core_utils` under the original's names.
"""

from __future__ import annotations

import math
import uuid
from typing import Any, Iterable, Mapping
from xml.sax.saxutils import quoteattr

from . import lifecycle
from .event_spec import EventSpec
from .file_spec import FileSpec
from .job_spec import JobSpec
from .work_spec import WorkSpec

__all__ = ["update_job_attributes_with_workers", "get_output_file_report", "make_pool_file_catalog"]


# ---------------------------------------------------------------------- job state from workers
def _output_file_attributes(jobspec: JobSpec) -> dict:
    """The job's {lfn: {scope, ...}} output map, or {} when jobParams cannot provide one."""
    try:
        return jobspec.get_output_file_attributes() or {}
    except (KeyError, TypeError, AttributeError, ValueError):
        return {}


def _add_output_files(jobspec: JobSpec, files_to_stage_out_list: Mapping[Any, Mapping]) -> None:
    """Attach FileSpecs for the files workers reported for this job.

    ``files_to_stage_out_list`` is ``{workerID: {PandaID: {lfn: [{path, fsize, type, ...}]}}}``.
    """
    out_attrs = None
    panda_id = jobspec.PandaID
    for worker_id, per_job in files_to_stage_out_list.items():
        if not per_job or panda_id not in per_job:
            continue
        if out_attrs is None:
            out_attrs = _output_file_attributes(jobspec)
        for lfn, attrs_list in per_job[panda_id].items():
            for attrs in attrs_list:
                f = FileSpec()
                f.lfn = lfn
                f.PandaID = panda_id
                f.taskID = jobspec.taskID
                f.path = attrs["path"]
                f.fsize = attrs["fsize"]
                f.fileType = attrs["type"]
                f.fileAttributes = attrs
                f.workerID = worker_id
                if "isZip" in attrs:
                    f.isZip = attrs["isZip"]
                if "chksum" in attrs:
                    f.chksum = attrs["chksum"]
                if "eventRangeID" in attrs:
                    f.eventRangeID = attrs["eventRangeID"]
                    # the input file id (third field of the range id) tells where the output came from
                    parts = str(f.eventRangeID).split("-")
                    f.provenanceID = parts[2] if len(parts) > 2 else None
                if lfn in out_attrs:
                    f.scope = out_attrs[lfn]["scope"]
                jobspec.add_out_file(f)


def _add_events(jobspec: JobSpec, events_to_update_list: Iterable[Mapping]) -> None:
    """Attach EventSpecs for the event updates workers reported for this job."""
    panda_id = jobspec.PandaID
    for per_job in events_to_update_list:
        if not per_job or panda_id not in per_job:
            continue
        for data in per_job[panda_id]:
            event = EventSpec()
            event.from_data(data, panda_id)
            jobspec.add_event(event, None)


def _update_from_one_worker(jobspec_list: list[JobSpec], workspec: WorkSpec, files_to_stage_out_list: Mapping,
                            events_to_update_list: Iterable[Mapping]) -> None:
    """OneToOne / ManyToOne: each job follows the single worker that runs it."""
    n_jobs = len(jobspec_list)
    for jobspec in jobspec_list:
        jobspec.set_attributes(workspec.workAttributes)
        # metaData now lives in the job; do not keep a second copy in the worker
        work_attrs = workspec.workAttributes
        if isinstance(work_attrs, dict) and isinstance(work_attrs.get(jobspec.PandaID), dict):
            work_attrs[jobspec.PandaID].pop("metaData", None)
        lifecycle.stamp_job_from_worker(jobspec, workspec.status, workspec.pilot_closed)
        if workspec.nCore is not None and jobspec.nCore is None:
            try:
                jobspec.nCore = max(int(workspec.nCore / n_jobs), 1)
            except (TypeError, ValueError, ZeroDivisionError):
                pass
        if not jobspec.has_attribute("batchID") and workspec.batchID is not None:
            jobspec.set_one_attribute("batchID", workspec.batchID)
        _add_output_files(jobspec, files_to_stage_out_list)
        _add_events(jobspec, events_to_update_list)
        jobspec.status, jobspec.subStatus = workspec.convert_to_job_status(jobspec.get_job_status_from_attributes())
        if workspec.pilot_closed:
            jobspec.set_pilot_closed()
        if workspec.new_status:
            jobspec.trigger_propagation()


def _update_from_many_workers(jobspec: JobSpec, workspec_list: list[WorkSpec], files_to_stage_out_list: Mapping,
                              events_to_update_list: Iterable[Mapping]) -> None:
    """OneToMany: one job run by several workers; it ends when all of them ended."""
    all_done = True
    live_cores = 0
    core_seconds = 0.0
    for workspec in workspec_list:
        if workspec.new_status:
            jobspec.trigger_propagation()
        if workspec.status == WorkSpec.ST_running:
            jobspec.set_start_time()
            live_cores += workspec.nCore or 0
        if workspec.is_final_status():
            if workspec.startTime is not None and workspec.endTime is not None:
                core_seconds += (workspec.nCore or 0) * (workspec.endTime - workspec.startTime).total_seconds()
        else:
            all_done = False
    if all_done:
        jobspec.set_end_time()
        if jobspec.startTime is not None:
            # time-averaged number of cores over the job's life
            duration = (jobspec.endTime - jobspec.startTime).total_seconds()
            if duration > 0:
                jobspec.nCore = int(math.ceil(core_seconds / duration))
        jobspec.moreWorkers = 0
    else:
        jobspec.nCore = live_cores
    _add_output_files(jobspec, files_to_stage_out_list)
    _add_events(jobspec, events_to_update_list)
    worker_status = lifecycle.combined_worker_status([w.status for w in workspec_list], jobspec.status)
    jobspec.status, jobspec.subStatus = workspec_list[0].convert_to_job_status(worker_status)


def update_job_attributes_with_workers(map_type: str, jobspec_list: list[JobSpec], workspec_list: list[WorkSpec],
                                       files_to_stage_out_list: Mapping, events_to_update_list: Iterable[Mapping]) -> bool:
    """Bring jobs up to date with the workers running them (called by the monitor).

    Sets job attributes reported by the worker, start/end times, core count, status/sub-status,
    and attaches output FileSpecs (``{workerID: {PandaID: {lfn: [attrs]}}}``) and EventSpecs
    (list of ``{PandaID: [event dicts]}``). Returns True.
    """
    events_to_update_list = list(events_to_update_list or [])
    files_to_stage_out_list = files_to_stage_out_list or {}
    if map_type in (WorkSpec.MT_OneToOne, WorkSpec.MT_MultiJobs):
        if workspec_list:
            _update_from_one_worker(jobspec_list, workspec_list[0], files_to_stage_out_list, events_to_update_list)
    elif map_type == WorkSpec.MT_MultiWorkers:
        if jobspec_list and workspec_list:
            _update_from_many_workers(jobspec_list[0], workspec_list, files_to_stage_out_list, events_to_update_list)
    return True


# ---------------------------------------------------------------------- XML reports
def get_output_file_report(jobspec: JobSpec) -> str:
    """The output file report (PoolFileCatalog XML) PanDA expects with a finished job.

    The report the payload made (outputFilesToReport) wins; otherwise one is built from the
    finished output FileSpecs, plus empty entries for inputs the payload skipped
    (job attribute ``skippedInputs``).
    """
    if jobspec.outputFilesToReport is not None:
        return jobspec.outputFilesToReport
    lines = [
        '<?xml version="1.0" encoding="UTF-8" standalone="no" ?>',
        "<!-- ATLAS file meta-data catalog -->",
        '<!DOCTYPE POOLFILECATALOG SYSTEM "InMemory">',
        "<POOLFILECATALOG>",
    ]
    for f in jobspec.outFiles:
        if f.status != lifecycle.FILE_FINISHED:
            continue
        attrs = f.fileAttributes or {}
        if "guid" in attrs:
            guid = attrs["guid"]
        elif f.fileType == "log":
            guid = jobspec.get_logfile_info()["guid"]
        else:
            guid = str(uuid.uuid4())
        chksum = f.chksum
        if chksum is not None and ":" in chksum:
            chksum = chksum.split(":")[-1]
        lines += _catalog_entry(guid, f.lfn, f.fsize, chksum)
    for lfn in jobspec.get_one_attribute("skippedInputs") or []:
        lines += _catalog_entry("", lfn, 0, "")
    lines.append("</POOLFILECATALOG>")
    return "\n".join(lines) + "\n"


def _catalog_entry(guid: Any, lfn: Any, fsize: Any, chksum: Any) -> list[str]:
    return [
        f"  <File ID={quoteattr(str(guid))}>",
        "    <logical>",
        f"      <lfn name={quoteattr(str(lfn))}/>",
        "    </logical>",
        f'    <metadata att_name="fsize" att_value={quoteattr(str(fsize))}/>',
        f'    <metadata att_name="adler32" att_value={quoteattr("" if chksum is None else str(chksum))}/>',
        "  </File>",
    ]


def make_pool_file_catalog(jobspec_list: Iterable[JobSpec]) -> str:
    """PoolFileCatalog XML listing the input files of the jobs (each lfn once, by guid)."""
    lines = [
        '<?xml version="1.0" ?>',
        '<!DOCTYPE POOLFILECATALOG  SYSTEM "InMemory">',
        "<POOLFILECATALOG>",
    ]
    seen: set[str] = set()
    for jobspec in jobspec_list:
        for lfn, attrs in jobspec.get_input_file_attributes().items():
            if lfn in seen:
                continue
            seen.add(lfn)
            lines += [
                f"  <File ID={quoteattr(str(attrs['guid']))}>",
                "    <physical>",
                f'      <pfn filetype="ROOT_All" name={quoteattr(lfn)}/>',
                "    </physical>",
                "    <logical/>",
                "  </File>",
            ]
    lines.append("</POOLFILECATALOG>")
    return "\n".join(lines)


_FALSE_FLAGS = (None, False, 0, "", "0", "False", "false", "NULL", "None")


def job_param_flag(jobspec: JobSpec, key: str) -> bool:
    """Whether the job parameter ``key`` (``eventService``, ``cloneJob``, ``isHPO``) is set.

    PanDA may send such a flag as a bool, a number or a string, and may send it as false; the
    original tested the key's presence only, which turns every job into an event-service job
    when a server sends ``"eventService": false``.
    """
    return (jobspec.jobParams or {}).get(key) not in _FALSE_FLAGS
