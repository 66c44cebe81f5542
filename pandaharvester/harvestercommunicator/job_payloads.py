"""Per-job payloads for ``pilot/update_jobs_bulk`` and the normalisation of per-job replies."""

from __future__ import annotations

import json
from typing import Any

# the form the pilot API takes for start/end times of a job
JOB_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
FAILED_STATUS_CODE = 999


def _output_file_report(job_spec: Any) -> Any:
    report = getattr(job_spec, "outputFilesToReport", None)
    if report is not None:
        return report
    try:
        from pandaharvester.harvestercore import spec_utils
    except ImportError:
        return None
    maker = getattr(spec_utils, "get_output_file_report", None)
    if maker is None:
        return None
    try:
        return maker(job_spec)
    except Exception:
        return None


def job_update_dict(job_spec: Any) -> dict[str, Any]:
    """What PanDA is told about one job (snake_case keys of the pilot API).

    Starts from ``job_spec.get_job_attributes_for_panda()`` and adds identity and state.
    ``cancelled``/``missed`` are reported as ``failed`` (PanDA accepts no other final state from
    Harvester) with the sub status ``pilot_closed`` when the pilot closed the job, else the
    original state. Metadata and the output file report go with the final update only.
    """
    getter = getattr(job_spec, "get_job_attributes_for_panda", None)
    job_dict = dict(getter() or {}) if getter is not None else {}
    status = job_spec.get_status()
    job_dict["job_id"] = job_spec.PandaID
    job_dict["site_name"] = job_spec.computingSite
    job_dict["job_status"] = status
    job_dict["job_sub_status"] = job_spec.subStatus
    job_dict["attempt_nr"] = job_spec.attemptNr
    if status in ("cancelled", "missed"):
        job_dict["job_sub_status"] = "pilot_closed" if job_spec.is_pilot_closed() else status
        job_dict["job_status"] = "failed"
    start_time = getattr(job_spec, "startTime", None)
    if start_time is not None and "start_time" not in job_dict and "startTime" not in job_dict:
        job_dict["start_time"] = start_time.strftime(JOB_TIME_FORMAT)
    end_time = getattr(job_spec, "endTime", None)
    if end_time is not None and "end_time" not in job_dict and "endTime" not in job_dict:
        job_dict["end_time"] = end_time.strftime(JOB_TIME_FORMAT)
    n_core = getattr(job_spec, "nCore", None)
    if n_core is not None and "core_count" not in job_dict and "coreCount" not in job_dict:
        job_dict["core_count"] = n_core
    if job_spec.is_final_status() and job_spec.status == status:
        meta_data = getattr(job_spec, "metaData", None)
        if meta_data is not None:
            job_dict["meta_data"] = json.dumps(meta_data)
        report = _output_file_report(job_spec)
        if report is not None:
            job_dict["job_output_report"] = report
    return job_dict


def failed_job_result(error: str) -> dict[str, Any]:
    """The per-job result when a job could not be updated."""
    return {"StatusCode": FAILED_STATUS_CODE, "ErrorDiag": error, "command": None}


def normalise_job_result(item: Any) -> dict[str, Any]:
    """One per-job reply as ``{"StatusCode", "ErrorDiag", "command", ...}``.

    Accepts the API v1 form ``{"success": bool, "message": str, "data": {...}}``, a plain dict
    with ``StatusCode``, and the legacy ``{"content": "<json>"}`` form.
    """
    if isinstance(item, str):
        try:
            item = json.loads(item)
        except ValueError:
            return failed_job_result(f"failed to decode the reply {item[:200]!r}")
    if not isinstance(item, dict):
        return failed_job_result(f"unexpected reply {str(item)[:200]!r}")
    if "content" in item and "StatusCode" not in item and "success" not in item:
        return normalise_job_result(item["content"])
    if "StatusCode" in item:
        result = dict(item)
    elif "success" in item:
        inner = item.get("data")
        result = dict(inner) if isinstance(inner, dict) else {}
        if item.get("success"):
            result.setdefault("StatusCode", 0)
        else:
            if not result.get("StatusCode"):
                result["StatusCode"] = FAILED_STATUS_CODE
            result.setdefault("ErrorDiag", item.get("message") or "")
    else:
        return failed_job_result(f"unexpected reply {str(item)[:200]!r}")
    result.setdefault("ErrorDiag", "")
    result.setdefault("command", None)
    return result
