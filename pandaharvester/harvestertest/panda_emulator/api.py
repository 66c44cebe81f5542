"""The ``/api/v1/<module>/<function>`` handlers.

Each handler takes (server state, request context, params) and returns the reply envelope
``{"success": bool, "message": str, "data": ...}``. Parameter names are the API v1 ones
(snake_case); the camelCase names older clients send are accepted as aliases. Before a handler
runs, :func:`dispatch` checks the HTTP method and binds the parameters to the function's
argument list as the real server does (:mod:`.signatures`).
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .instances import MESSAGE_DATABASE
from .signatures import MESSAGE_PROD_ROLE, SIGNATURES, UPDATE_JOB, bind, check_method

ALIASES = {
    "siteName": "site_name",
    "prodSourceLabel": "prod_source_label",
    "computingElement": "computing_element",
    "nJobs": "n_jobs",
    "schedulerID": "scheduler_id",
    "harvesterID": "harvester_id",
    "workerID": "worker_id",
    "pandaID": "job_id",
    "PandaID": "job_id",
    "jobsetID": "jobset_id",
    "taskID": "task_id",
    "nRanges": "n_ranges",
    "paramsList": "statistics",
    "ids": "job_ids",
    "resourceType": "resource_type",
    "jobType": "job_type",
    "nCommands": "n_commands",
    "commandIDs": "command_ids",
    "jobList": "job_list",
    "eventRanges": "event_ranges",
}
# aliases that only one endpoint takes
ENDPOINT_ALIASES = {"harvester/report_worker_statistics": {"siteName": "panda_queue"}}

# PanDA's standard definitions (single core: mincore = maxcore = 1)
RESOURCE_TYPES = [
    {"resource_name": "SCORE", "mincore": 1, "maxcore": 1, "minrampercore": None, "maxrampercore": 2000},
    {"resource_name": "SCORE_HIMEM", "mincore": 1, "maxcore": 1, "minrampercore": 2001, "maxrampercore": None},
    {"resource_name": "MCORE", "mincore": 2, "maxcore": None, "minrampercore": None, "maxrampercore": 2000},
    {"resource_name": "MCORE_HIMEM", "mincore": 2, "maxcore": None, "minrampercore": 2001, "maxrampercore": None},
]


class ParamError(ValueError):
    """A missing or malformed parameter (reply success:false)."""


@dataclass
class Context:
    """Who is calling and what came with the request."""

    identity: str
    production: bool
    host: str
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    method: str = "POST"
    typed: bool = True  # parameters came from a JSON body (else a query string or a form: strings)


def ok(data: Any = None, message: str = "") -> dict:
    """A success envelope."""
    return {"success": True, "message": message, "data": data}


def fail(message: str, data: Any = None) -> dict:
    """A failure envelope (HTTP 200, application-level failure)."""
    return {"success": False, "message": message, "data": data}


def normalise(params: dict, endpoint: str | None = None) -> dict:
    """Map camelCase aliases to the API v1 names of ``endpoint`` (explicit snake_case wins)."""
    sig = SIGNATURES.get(endpoint) if endpoint else None
    aliases = {**ALIASES, **ENDPOINT_ALIASES.get(endpoint or "", {})}
    out = dict(params)
    for old, new in aliases.items():
        if old in params and new not in params and (sig is None or new in sig.args):
            out[new] = out.pop(old)
    return out


def need(p: dict, name: str) -> Any:
    """A required parameter."""
    if p.get(name) in (None, ""):
        raise ParamError(f"missing parameter {name}")
    return p[name]


def as_int(p: dict, name: str, default: Any = None) -> Any:
    """An integer parameter (string forms accepted)."""
    value = p.get(name, default)
    if value in (None, ""):
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ParamError(f"parameter {name} must be an integer, got {value!r}") from None


def as_list(p: dict, name: str) -> list:
    """A list parameter of a JSON body: a JSON list, or (leniency) a JSON string of a list."""
    value = as_json(p, name)
    if not isinstance(value, list):
        raise ParamError(f"parameter {name} must be a list, got {type(value).__name__}")
    return value


def as_json(p: dict, name: str) -> Any:
    """A structured parameter sent either as JSON or as a JSON string."""
    value = need(p, name)
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise ParamError(f"parameter {name} is not valid JSON") from None
    return value


# ------------------------------------------------------------------ handlers
def is_alive(srv, ctx: Context, p: dict) -> dict:
    return ok(None)


def heartbeat(srv, ctx: Context, p: dict) -> dict:
    success, message = srv.instances.heartbeat(str(need(p, "harvester_id")), p.get("data"), ctx.identity, ctx.host)
    return ok(None) if success else fail(message)


def acquire_jobs(srv, ctx: Context, p: dict) -> dict:
    site = str(need(p, "site_name"))
    label = p.get("prod_source_label")
    if not ctx.production and label not in ("user",):
        return fail("no production/pilot role in VOMS FQANs or non pilot owner")
    harvester_id = p.get("harvester_id") or p.get("scheduler_id")
    if isinstance(harvester_id, str) and harvester_id.startswith("harvester-"):
        harvester_id = harvester_id[len("harvester-") :]
    jobs = srv.jobs.acquire(
        site,
        as_int(p, "n_jobs", 1),
        label,
        p.get("node"),
        harvester_id,
        p.get("worker_id"),
        p.get("resource_type"),
        p.get("job_type"),
    )
    if not jobs:
        return fail("No jobs in PanDA")
    return ok({"StatusCode": 0, "jobs": jobs})


def update_jobs_bulk(srv, ctx: Context, p: dict) -> dict:
    job_list = as_json(p, "job_list")
    if not isinstance(job_list, list):
        raise ParamError("job_list must be a list")
    # the real server calls pilot/update_job with each job dict as its arguments
    checked: list = []
    for job in job_list:
        if not isinstance(job, dict):
            checked.append(fail("a job report must be a JSON object"))
            continue
        args, error = bind(UPDATE_JOB, job, typed=True)
        checked.append(fail(error) if args is None else args)
    valid = [job for job in checked if "success" not in job]
    results = iter(srv.jobs.update_bulk(valid, p.get("harvester_id")))
    return ok([job if "success" in job else next(results) for job in checked])


def get_status(srv, ctx: Context, p: dict) -> dict:
    # job_ids is already a list of ints: bound from repeated query keys (signatures.bind)
    return ok(srv.jobs.status(p["job_ids"]))


def acquire_event_ranges(srv, ctx: Context, p: dict) -> dict:
    panda_id = as_int(p, "job_id")
    if panda_id is None:
        raise ParamError("missing parameter job_id")
    ranges = srv.jobs.acquire_event_ranges(panda_id, as_int(p, "n_ranges", 10))
    return ok({"StatusCode": 0, "eventRanges": ranges})


def update_event_ranges(srv, ctx: Context, p: dict) -> dict:
    items = as_json(p, "event_ranges")
    if not isinstance(items, list):
        raise ParamError("event_ranges must be a list")
    returns = srv.jobs.update_event_ranges(items)
    return ok({"StatusCode": 0, "Returns": returns})


def get_available_event_range_count(srv, ctx: Context, p: dict) -> dict:
    return ok(srv.jobs.available_event_ranges(as_int(p, "job_id"), as_int(p, "jobset_id"), as_int(p, "task_id")))


def acquire_commands(srv, ctx: Context, p: dict) -> dict:
    return ok(srv.instances.acquire_commands(str(need(p, "harvester_id")), as_int(p, "n_commands", 1)))


def acknowledge_commands(srv, ctx: Context, p: dict) -> dict:
    srv.instances.ack_commands(as_list(p, "command_ids"))
    return ok(None)


def update_workers(srv, ctx: Context, p: dict) -> dict:
    workers = as_json(p, "workers")
    if not isinstance(workers, list):
        raise ParamError("workers must be a list")
    return ok(srv.instances.update_workers(str(need(p, "harvester_id")), workers))


def report_worker_statistics(srv, ctx: Context, p: dict) -> dict:
    queue = need(p, "panda_queue")
    success, message = srv.instances.report_worker_stats(str(need(p, "harvester_id")), str(queue), p.get("statistics"))
    return ok(None, message) if success else fail(message)


def get_worker_statistics(srv, ctx: Context, p: dict) -> dict:
    return ok(srv.instances.worker_statistics())


def get_current_worker_id(srv, ctx: Context, p: dict) -> dict:
    value = srv.instances.current_worker_id(str(need(p, "harvester_id")))
    return fail(MESSAGE_DATABASE) if value is None else ok(value)


def update_service_metrics(srv, ctx: Context, p: dict) -> dict:
    srv.instances.add_service_metrics(str(need(p, "harvester_id")), as_json(p, "metrics"))
    return ok(None)


def add_dialogs(srv, ctx: Context, p: dict) -> dict:
    srv.instances.add_dialogs(str(need(p, "harvester_id")), as_json(p, "dialogs"))
    return ok(None)


def _job_stats(srv, detailed: bool) -> dict:
    rows = srv.store.query(
        "SELECT site, prod_source_label, resource_type, status, COUNT(*) AS n FROM jobs"
        " WHERE status IN ('defined','activated','sent','starting','running','transferring','holding')"
        " GROUP BY site, prod_source_label, resource_type, status"
    )
    out: dict = {}
    for r in rows:
        if detailed:
            node = (
                out.setdefault(r["site"], {}).setdefault(r["prod_source_label"], {}).setdefault(r["resource_type"], {})
            )
        else:
            node = out.setdefault(r["site"], {})
        node[r["status"]] = node.get(r["status"], 0) + r["n"]
    return out


def active_job_stats_by_site(srv, ctx: Context, p: dict) -> dict:
    data = _job_stats(srv, False)
    return ok(data) if data else fail("Database failure getting the job statistics", {})


def active_job_detailed_stats_by_site(srv, ctx: Context, p: dict) -> dict:
    data = _job_stats(srv, True)
    return ok(data) if data else fail("Database failure getting the job statistics", {})


def get_resource_types(srv, ctx: Context, p: dict) -> dict:
    # a bare list, as the real server answers (not wrapped in {"ResourceTypes": ...})
    return ok(RESOURCE_TYPES)


def _secret(srv, *parts: str) -> str:
    return hashlib.sha256("|".join((str(srv.seed),) + parts).encode()).hexdigest()


def get_proxy(srv, ctx: Context, p: dict) -> dict:
    if not ctx.production:
        return fail(MESSAGE_PROD_ROLE)
    role = p.get("role") or "production"
    body = _secret(srv, "proxy", str(role))
    return ok(
        {"user_proxy": f"-----BEGIN CERTIFICATE-----\nEMULATED-PROXY role={role} {body}\n-----END CERTIFICATE-----\n"}
    )


def get_token_key(srv, ctx: Context, p: dict) -> dict:
    if not ctx.production:
        return fail(MESSAGE_PROD_ROLE)
    return ok({"tokenKey": _secret(srv, "token_key", str(need(p, "client_name")))})


def get_key_pair(srv, ctx: Context, p: dict) -> dict:
    if not ctx.production:
        return fail(MESSAGE_PROD_ROLE)
    pub, priv = str(need(p, "public_key_name")), str(need(p, "private_key_name"))
    return ok({"public_key": _secret(srv, "pub", pub), "private_key": _secret(srv, "priv", priv)})


def _safe_name(name: str) -> str:
    base = Path(name or "upload").name
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in base) or "upload"


def _upload(ctx: Context) -> tuple[str, bytes]:
    if "file" not in ctx.files:
        raise ParamError("missing multipart field file")
    return ctx.files["file"]


def upload_jedi_log(srv, ctx: Context, p: dict) -> dict:
    # Harvester sends zlib-compressed chunks of a growing log here: they are decompressed and
    # appended (the real server stores the upload as it comes; see docs/emulator.md)
    name, raw = _upload(ctx)
    try:
        content = zlib.decompress(raw)
    except zlib.error:
        content = raw
    return _append_jedi_log(srv, name, content)


def update_jedi_log(srv, ctx: Context, p: dict) -> dict:
    name, raw = _upload(ctx)
    try:
        content = zlib.decompress(raw)
    except zlib.error:
        return fail(f"ERROR: cannot update file with {name}: not zlib-compressed")
    return _append_jedi_log(srv, name, content)


def _append_jedi_log(srv, name: str, content: bytes) -> dict:
    path = srv.cache_dir / "jedilog" / _safe_name(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as f:
        f.write(content)
    srv.record_upload("jedi_log", name, path, len(content))
    url = f"{srv.public_url}/cache/jedilog/{path.name}"
    return ok(url, url)


def upload_hpo_checkpoint(srv, ctx: Context, p: dict) -> dict:
    name, raw = _upload(ctx)
    # as on the real server, the file name is "<task_id>_<sub_id>"
    parts = Path(name or "").name.split("_")
    if len(parts) != 2 or not all(parts):
        return fail("Failed to extract task and sub IDs")
    path = srv.cache_dir / _safe_name(f"hpo_cp_{parts[0]}_{parts[1]}")
    path.write_bytes(raw)
    srv.record_upload("hpo_checkpoint", name, path, len(raw))
    return ok(str(path), f"Successfully placed at {path}")


def delete_hpo_checkpoint(srv, ctx: Context, p: dict) -> dict:
    name = _safe_name(f"hpo_cp_{need(p, 'task_id')}_{need(p, 'sub_id')}")
    path = srv.cache_dir / name
    if not path.exists():
        return fail(f"Failed to delete file due to {name} not found")
    path.unlink()
    return ok(None)


# (module, function) -> handler; modules "credential" and "file" are the names some clients use
ROUTES: dict[tuple[str, str], Callable[..., dict]] = {
    ("system", "is_alive"): is_alive,
    ("harvester", "heartbeat"): heartbeat,
    ("pilot", "acquire_jobs"): acquire_jobs,
    ("pilot", "update_jobs_bulk"): update_jobs_bulk,
    ("job", "get_status"): get_status,
    ("event", "acquire_event_ranges"): acquire_event_ranges,
    ("event", "update_event_ranges"): update_event_ranges,
    ("event", "get_available_event_range_count"): get_available_event_range_count,
    ("harvester", "acquire_commands"): acquire_commands,
    ("harvester", "acknowledge_commands"): acknowledge_commands,
    ("harvester", "update_workers"): update_workers,
    ("harvester", "report_worker_statistics"): report_worker_statistics,
    ("harvester", "get_worker_statistics"): get_worker_statistics,
    ("harvester", "get_current_worker_id"): get_current_worker_id,
    ("harvester", "update_service_metrics"): update_service_metrics,
    ("harvester", "add_dialogs"): add_dialogs,
    ("statistics", "active_job_stats_by_site"): active_job_stats_by_site,
    ("statistics", "active_job_detailed_stats_by_site"): active_job_detailed_stats_by_site,
    ("metaconfig", "get_resource_types"): get_resource_types,
    ("creds", "get_proxy"): get_proxy,
    ("creds", "get_token_key"): get_token_key,
    ("creds", "get_key_pair"): get_key_pair,
    ("file_server", "upload_jedi_log"): upload_jedi_log,
    ("file_server", "update_jedi_log"): update_jedi_log,
    ("file_server", "upload_hpo_checkpoint"): upload_hpo_checkpoint,
    ("file_server", "delete_hpo_checkpoint"): delete_hpo_checkpoint,
}
for (_m, _f), _h in list(ROUTES.items()):
    if _m == "creds":
        ROUTES[("credential", _f)] = _h
    if _m == "file_server":
        ROUTES[("file", _f)] = _h


def dispatch(srv, module: str, function: str, ctx: Context, params: dict) -> dict | None:
    """Run the handler for ``module/function``; None when there is no such endpoint.

    A wrong HTTP method or parameters that do not fit the function's arguments give a
    ``success: false`` reply worded as the real server words it, and nothing is applied.
    """
    handler = ROUTES.get((module, function))
    if handler is None:
        return None
    endpoint = f"{module}/{function}"
    sig = SIGNATURES[endpoint]
    if sig.production and not ctx.production:
        return fail(MESSAGE_PROD_ROLE)
    error = check_method(sig, ctx.method)
    if error:
        return fail(error)
    params = normalise(params, endpoint)
    args, error = bind(sig, {**params, **{name: True for name in ctx.files}}, ctx.typed)
    if args is None:
        return fail(error)
    try:
        return handler(srv, ctx, {k: v for k, v in args.items() if k not in ctx.files})
    except ParamError as exc:
        return fail(str(exc))
    except (ValueError, KeyError, TypeError) as exc:
        return fail(f"bad request: {exc}")
