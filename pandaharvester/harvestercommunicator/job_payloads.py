"""Per-job payloads for ``pilot/update_jobs_bulk`` and the normalisation of per-job replies."""

from __future__ import annotations

import json
from typing import Any

# the form the pilot API takes for start/end times of a job
JOB_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
FAILED_STATUS_CODE = 999

# jobAttributes reported by the pilot (camelCase, as JobSpec keeps them) -> the argument of
# pilot/update_job that takes the value, and its type. The server rejects a job update with an
# argument it does not know or a value of the wrong type, so nothing else is sent.
_PILOT_API_ARGS: dict[str, tuple[str, type]] = {
    "transExitCode": ("trans_exit_code", int), "pilotErrorCode": ("pilot_error_code", int),
    "pilotErrorDiag": ("pilot_error_diag", str), "exeErrorCode": ("exe_error_code", int),
    "exeErrorDiag": ("exe_error_diag", str), "node": ("node", str),
    "cpuConsumptionTime": ("cpu_consumption_time", int), "cpuConsumptionUnit": ("cpu_consumption_unit", str),
    "cpuConversionFactor": ("cpu_conversion_factor", float), "schedulerID": ("scheduler_id", str),
    "pilotID": ("pilot_id", str), "siteName": ("site_name", str), "pilotLog": ("pilot_log", str),
    "pilotTiming": ("pilot_timing", str), "startTime": ("start_time", str), "endTime": ("end_time", str),
    "nEvents": ("n_events", int), "nInputFiles": ("n_input_files", int), "batchID": ("batch_id", str),
    "attemptNr": ("attempt_nr", int), "jobMetrics": ("job_metrics", str), "stdout": ("stdout", str),
    "coreCount": ("core_count", int), "meanCoreCount": ("mean_core_count", int),
    "corruptedFiles": ("corrupted_files", str), "cpuArchitectureLevel": ("cpu_architecture_level", str),
    **{name: (arg, float) for name, arg in (
        ("maxRSS", "max_rss"), ("maxVMEM", "max_vmem"), ("maxSWAP", "max_swap"), ("maxPSS", "max_pss"),
        ("avgRSS", "avg_rss"), ("avgVMEM", "avg_vmem"), ("avgSWAP", "avg_swap"), ("avgPSS", "avg_pss"),
        ("totRCHAR", "tot_rchar"), ("totWCHAR", "tot_wchar"), ("totRBYTES", "tot_rbytes"),
        ("totWBYTES", "tot_wbytes"), ("rateRCHAR", "rate_rchar"), ("rateWCHAR", "rate_wchar"),
        ("rateRBYTES", "rate_rbytes"), ("rateWBYTES", "rate_wbytes"),
    )},
}
_ARG_TYPES = {arg: kind for arg, kind in _PILOT_API_ARGS.values()}


def _typed(value: Any, kind: type) -> Any:
    """``value`` as ``kind`` (JobSpec keeps reported integers as strings); ValueError if it is not one."""
    if kind is str:
        return value if isinstance(value, str) else str(value)
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    if kind is int:
        if isinstance(value, int):
            return value
        number = float(value)
        if number != int(number):
            raise ValueError("not an integer")
        return int(number)
    number = float(value)
    return int(number) if number == int(number) else number


def pilot_api_attributes(attributes: dict[str, Any], dropped: list | None = None) -> dict[str, Any]:
    """The pilot-reported job attributes as ``pilot/update_job`` arguments (names and types).

    Attributes the API has no argument for, or values of the wrong kind, are left out and, when
    ``dropped`` is given, appended to it as ``(name, value, reason)``.
    """
    out: dict[str, Any] = {}
    for name, value in attributes.items():
        if value is None:
            continue
        arg, kind = _PILOT_API_ARGS.get(name) or ((name, _ARG_TYPES[name]) if name in _ARG_TYPES else (None, None))
        if arg is None:
            if dropped is not None:
                dropped.append((name, value, "not an argument of pilot/update_job"))
            continue
        try:
            out[arg] = _typed(value, kind)
        except (TypeError, ValueError, OverflowError):
            if dropped is not None:
                dropped.append((name, value, f"not a valid {kind.__name__}"))
    return out


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


def job_update_dict(job_spec: Any, dropped: list | None = None) -> dict[str, Any]:
    """What PanDA is told about one job (the arguments of ``pilot/update_job``).

    Starts from ``job_spec.get_job_attributes_for_panda()`` translated to the API's argument
    names and types (see :func:`pilot_api_attributes`; what cannot be sent goes to ``dropped``)
    and adds identity and state. ``cancelled``/``missed`` are reported as ``failed`` (PanDA
    accepts no other final state from Harvester) with the sub status ``pilot_closed`` when the
    pilot closed the job, else the original state. Metadata and the output file report go with
    the final update only.
    """
    getter = getattr(job_spec, "get_job_attributes_for_panda", None)
    job_dict = pilot_api_attributes(dict(getter() or {}) if getter is not None else {}, dropped)
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
    if start_time is not None and "start_time" not in job_dict:
        job_dict["start_time"] = start_time.strftime(JOB_TIME_FORMAT)
    end_time = getattr(job_spec, "endTime", None)
    if end_time is not None and "end_time" not in job_dict:
        job_dict["end_time"] = end_time.strftime(JOB_TIME_FORMAT)
    n_core = getattr(job_spec, "nCore", None)
    if n_core is not None and "core_count" not in job_dict:
        job_dict["core_count"] = int(n_core)
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
