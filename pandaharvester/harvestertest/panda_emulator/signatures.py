"""The argument lists of the API v1 functions, checked the way the real server checks them.

The real server binds the request parameters to the Python function of the endpoint
(``request_validation`` in ``pandaserver/api/v1/common.py``): a wrong HTTP method, a missing
argument, an argument the function does not take, or a value of the wrong type gives an HTTP 200
reply with ``success: false`` and a message saying so, and nothing is applied. Values from a
query string or a form are strings and are cast to the declared type first; values from a JSON
body are checked as they are. ``pilot/update_jobs_bulk`` checks every job of ``job_list``
against the arguments of ``pilot/update_job`` in the same way.

A list argument in a query string is made of repeated keys (``job_ids=3&job_ids=4``), as on the
real server; JSON text or a comma-joined string there is refused with the real server's
"could not be casted to type List" message.

Leniencies of the emulator (documented in ``docs/emulator.md``): structured arguments of a JSON
body (lists, dicts, JSON strings) may come either as JSON values or as JSON strings; an integer
where a float is declared is accepted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

INT, FLOAT, STR, BOOL, JSON, INT_LIST, ANY, FILE = "int", "float", "str", "bool", "json", "list[int]", "any", "file"


MESSAGE_PROD_ROLE = "production or pilot role required"


@dataclass(frozen=True)
class Signature:
    """HTTP method and ``{argument: type}`` of one API function; ``required`` have no default.

    ``production``: the function needs the production role (checked before anything else).
    """

    method: str
    args: dict[str, str]
    required: frozenset[str] = frozenset()
    production: bool = False


def _sig(method: str, required: dict[str, str] | None = None, optional: dict[str, str] | None = None,
         production: bool = False) -> Signature:
    required = required or {}
    return Signature(method, {**required, **(optional or {})}, frozenset(required), production)


SIGNATURES: dict[str, Signature] = {
    "system/is_alive": _sig("GET"),
    "harvester/heartbeat": _sig("POST", {"harvester_id": STR}, {"data": JSON}),
    "pilot/acquire_jobs": _sig(
        "POST",
        {"site_name": STR},
        {
            "timeout": INT, "memory": INT, "disk_space": INT, "prod_source_label": STR, "node": STR,
            "computing_element": STR, "prod_user_id": STR, "get_proxy_key": BOOL, "task_id": INT, "n_jobs": INT,
            "background": BOOL, "resource_type": STR, "harvester_id": STR, "worker_id": INT, "scheduler_id": STR,
            "job_type": STR, "via_topic": BOOL, "remaining_time": ANY,
        },
    ),
    "pilot/update_jobs_bulk": _sig("POST", {"job_list": JSON}, {"harvester_id": STR}, production=True),
    "job/get_status": _sig("GET", {"job_ids": INT_LIST}, {"timeout": INT}),
    "event/acquire_event_ranges": _sig(
        "POST",
        {"job_id": INT, "jobset_id": INT},
        {"task_id": INT, "n_ranges": INT, "timeout": INT, "scattered": BOOL, "segment_id": INT},
        production=True,
    ),
    "event/update_event_ranges": _sig("POST", {"event_ranges": JSON}, {"timeout": INT, "version": INT},
                                      production=True),
    "event/get_available_event_range_count": _sig(
        "GET", {"job_id": INT, "jobset_id": INT, "task_id": INT}, {"timeout": INT}, production=True
    ),
    "harvester/acquire_commands": _sig("POST", {"harvester_id": STR, "n_commands": INT}, {"timeout": INT},
                                       production=True),
    "harvester/acknowledge_commands": _sig("POST", {"command_ids": JSON}, {"timeout": INT}, production=True),
    "harvester/update_workers": _sig("POST", {"harvester_id": STR, "workers": JSON}),
    "harvester/report_worker_statistics": _sig(
        "POST", {"harvester_id": STR, "panda_queue": STR, "statistics": JSON}
    ),
    "harvester/get_worker_statistics": _sig("GET"),
    "harvester/get_current_worker_id": _sig("GET", {"harvester_id": STR}),
    "harvester/update_service_metrics": _sig("POST", {"harvester_id": STR, "metrics": JSON}),
    "harvester/add_dialogs": _sig("POST", {"harvester_id": STR, "dialogs": JSON}),
    "statistics/active_job_stats_by_site": _sig("GET"),
    "statistics/active_job_detailed_stats_by_site": _sig("GET"),
    "metaconfig/get_resource_types": _sig("GET", production=True),
    "creds/get_proxy": _sig("GET", None, {"role": STR, "dn": STR}),
    "creds/get_token_key": _sig("GET", {"client_name": STR}),
    "creds/get_key_pair": _sig("GET", {"public_key_name": STR, "private_key_name": STR}),
    "file_server/upload_jedi_log": _sig("POST", {"file": FILE}, production=True),
    "file_server/update_jedi_log": _sig("POST", {"file": FILE}, production=True),
    "file_server/upload_hpo_checkpoint": _sig("POST", {"file": FILE}),
    "file_server/delete_hpo_checkpoint": _sig("POST", {"task_id": STR, "sub_id": STR}),
}

_NUMBER = {f: FLOAT for f in (
    "max_rss", "max_vmem", "max_swap", "max_pss", "avg_rss", "avg_vmem", "avg_swap", "avg_pss",
    "tot_rchar", "tot_wchar", "tot_rbytes", "tot_wbytes", "rate_rchar", "rate_wchar", "rate_rbytes", "rate_wbytes",
)}

# the arguments of pilot/update_job: what each job dict of update_jobs_bulk may hold
UPDATE_JOB = _sig(
    "POST",
    {"job_id": INT, "job_status": STR},
    {
        "job_output_report": STR, "node": STR, "cpu_consumption_time": INT, "cpu_consumption_unit": STR,
        "scheduler_id": STR, "pilot_id": STR, "site_name": STR, "pilot_log": STR, "meta_data": STR,
        "cpu_conversion_factor": FLOAT, "trans_exit_code": INT, "pilot_error_code": INT, "pilot_error_diag": STR,
        "exe_error_code": INT, "exe_error_diag": STR, "pilot_timing": STR, "start_time": STR, "end_time": STR,
        "n_events": INT, "n_input_files": INT, "batch_id": STR, "attempt_nr": INT, "job_metrics": STR,
        "stdout": STR, "job_sub_status": STR, "core_count": INT, **_NUMBER, "corrupted_files": STR,
        "mean_core_count": INT, "cpu_architecture_level": STR, "grid": STR, "source_site": STR,
        "destination_site": STR, "timeout": INT,
    },
)

for _module, _alias in (("creds", "credential"), ("file_server", "file")):
    for _name, _s in list(SIGNATURES.items()):
        if _name.startswith(_module + "/"):
            SIGNATURES[_alias + _name[len(_module):]] = _s


# how the real server names the declared types in its cast error (``List[int].__name__`` is "List")
_TYPE_NAMES = {INT_LIST: "List"}


def _cast(value: Any, kind: str) -> Any:
    """A query-string/form value (a string, or a list of strings from repeated keys) as ``kind``.

    As on the real server: a list argument is made of repeated keys (``job_ids=3&job_ids=4``; a
    single key gives a one-element list) and each element is cast on its own, so JSON text
    (``job_ids=[3, 4]``) or a comma-joined string cannot be cast; a scalar argument sent as
    repeated keys cannot be cast either.
    """
    if kind in (STR, ANY, FILE):
        return value
    if kind == INT_LIST:
        values = [value] if isinstance(value, str) else value
        return [int(float(v)) for v in values]
    if isinstance(value, list):
        raise TypeError("repeated keys for a scalar argument")
    if kind == INT:
        return int(float(value))
    if kind == FLOAT:
        return float(value)
    if kind == BOOL:
        return str(value).lower() in ("true", "1")
    return value  # JSON: the handlers decode JSON strings


def _cast_error(name: str, value: Any, kind: str) -> str:
    """The real server's message for a query-string value that cannot be cast to ``kind``."""
    shown = [value] if kind == INT_LIST and isinstance(value, str) else value
    return (f"Type error: '{name}' with value '{shown}' could not be casted to type {_TYPE_NAMES.get(kind, kind)} "
            f"from {_type_name(shown)}.")


def _type_ok(value: Any, kind: str) -> bool:
    if kind in (ANY, FILE, JSON):
        return True
    if kind == INT:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == FLOAT:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == STR:
        return isinstance(value, str)
    if kind == BOOL:
        # the real server turns JSON true/false into "True"/"False" before the check
        return isinstance(value, bool) or value in ("True", "False")
    if kind == INT_LIST:
        return isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    return True


def _type_name(value: Any) -> str:
    return type(value).__name__


def bind(sig: Signature, params: dict, typed: bool) -> tuple[dict | None, str]:
    """``(arguments, "")`` when ``params`` fit ``sig``, else ``(None, message as the real server words it)``.

    ``typed``: the values came from a JSON body (checked as they are), else from a query string
    or a form (cast first).
    """
    unexpected = [name for name in params if name not in sig.args]
    if unexpected:
        return None, f"Argument error: got an unexpected keyword argument '{unexpected[0]}'"
    missing = [name for name in sig.args if name in sig.required and name not in params]
    if missing:
        return None, f"Argument error: missing a required argument: '{missing[0]}'"
    out = {}
    for name, value in params.items():
        kind = sig.args[name]
        if value is None and name not in sig.required:
            out[name] = None
            continue
        if not typed:
            if value == "None" and name not in sig.required:
                out[name] = None
                continue
            try:
                value = _cast(value, kind)
            except (TypeError, ValueError):
                return None, _cast_error(name, value, kind)
        if kind == INT_LIST and isinstance(value, list) and not _type_ok(value, kind):
            return None, f"Type error: All elements in '{name}' must be int."
        if not _type_ok(value, kind):
            shown = "list" if kind == INT_LIST else kind
            return None, f"Type error: '{name}' must be of type {shown}, got {_type_name(value)}."
        out[name] = value
    return out, ""


def check_method(sig: Signature, method: str) -> str:
    """"" when ``method`` is the one of ``sig``, else the real server's message."""
    if method == sig.method:
        return ""
    return f"expecting {sig.method}, received {method}"
