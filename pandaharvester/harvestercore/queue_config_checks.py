"""Validation and normalisation of one resolved queue config.

Every function here works on a :class:`QueueConfig` whose attributes were already set from
the merged JSON, returns a list of :class:`QueueConfigError` (one per problem, naming the
queue and key) and fixes what the original fixes silently (limit clipping and the like).
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

from pandaharvester.errors import QueueConfigError

from .queue_config import (
    JOB_LIMIT_ATTRS,
    MANDATORY_PLUGINS,
    MAP_TYPES,
    MT_NoJob,
    PLUGIN_ROLES,
    PULL_ONLY_WORKER_LIMIT_ATTRS,
    QUEUE_LIMIT_ATTRS,
    RUN_MODES,
    TRUE_PILOT_NO_HEARTBEAT,
    QueueConfig,
    closest_name,
    parse_job_criteria,
)

_INT_KEYS = ("nNewWorkers", "maxSubmissionAttempts", "zipPerMB", "initEventsMultipler")
_BOOL_KEYS = ("useJobLateBinding", "truePilot", "allowJobMixture", "prefetchEvents")
_STR_KEYS = ("prodSourceLabel", "noHeartbeat", "resourceType", "jobType", "siteName", "siteFamily")
_OPTIONAL_STR_KEYS = ("queueStatus", "ddmEndpointIn", "templateQueueName", "pandaQueueName")

Warn = Callable[[str], None]


def _err(qc: QueueConfig, key: str | None, message: str, source: str | None) -> QueueConfigError:
    return QueueConfigError(message, queue_name=qc.queueName, key=key, source=source)


def _as_int(value: Any) -> tuple[bool, Any]:
    """(ok, value): ints pass, digit strings become ints, None passes; anything else fails."""
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return True, value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return True, int(value.strip())
    return False, value


def check_types(qc: QueueConfig, source: str | None, warn: Warn) -> list[QueueConfigError]:
    """Check the value types of the well-known keys; coerce digit strings to ints."""
    errors: list[QueueConfigError] = []
    for key in QUEUE_LIMIT_ATTRS:
        if not hasattr(qc, key):
            continue
        value = getattr(qc, key)
        if isinstance(value, float):
            # the original nullifies non-integer limits; keep that, but say so
            warn(f"queue {qc.queueName!r} key {key!r}: non-integer limit {value!r} ignored (set to None)")
            setattr(qc, key, None)
            continue
        ok, converted = _as_int(value)
        if not ok:
            errors.append(_err(qc, key, f"must be an integer (or null), got {type(value).__name__} {value!r}", source))
        else:
            setattr(qc, key, converted)
    for key in _INT_KEYS:
        value = getattr(qc, key, None)
        if key == "initEventsMultipler" and isinstance(value, float):
            continue
        ok, converted = _as_int(value)
        if not ok:
            errors.append(_err(qc, key, f"must be an integer, got {type(value).__name__} {value!r}", source))
        else:
            setattr(qc, key, converted)
    for key in _BOOL_KEYS:
        value = getattr(qc, key, None)
        if not isinstance(value, bool):
            errors.append(_err(qc, key, f"must be true or false, got {type(value).__name__} {value!r}", source))
    for key in _STR_KEYS:
        value = getattr(qc, key, None)
        if not isinstance(value, str):
            errors.append(_err(qc, key, f"must be a string, got {type(value).__name__} {value!r}", source))
    for key in _OPTIONAL_STR_KEYS:
        value = getattr(qc, key, None)
        if value is not None and not isinstance(value, str):
            errors.append(_err(qc, key, f"must be a string or null, got {type(value).__name__} {value!r}", source))
    errors += check_call_timeouts(qc, source)
    if qc.mapType not in MAP_TYPES:
        errors.append(_err(qc, "mapType", f"must be one of {', '.join(MAP_TYPES)}, got {qc.mapType!r}", source))
    if qc.runMode not in RUN_MODES:
        errors.append(_err(qc, "runMode", f"must be one of {', '.join(RUN_MODES)}, got {qc.runMode!r}", source))
    try:
        qc.getJobCriteria = parse_job_criteria(qc.getJobCriteria)
    except ValueError as exc:
        errors.append(_err(qc, "getJobCriteria", str(exc), source))
    return errors


def _bad_seconds(value: Any) -> bool:
    return isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or value != value


def check_call_timeouts(qc: QueueConfig, source: str | None) -> list[QueueConfigError]:
    """``pluginCallTimeout`` (queue) and each plugin's ``callTimeout``: seconds >= 0 (0: no limit) or null."""
    errors: list[QueueConfigError] = []
    value = getattr(qc, "pluginCallTimeout", None)
    if value is not None and _bad_seconds(value):
        errors.append(_err(qc, "pluginCallTimeout", f"must be a number of seconds >= 0 (0: no limit), "
                                                    f"got {type(value).__name__} {value!r}", source))
        return errors  # copied into every plugin dict: one error is enough
    for role, conf in sorted(vars(qc).items()):
        if isinstance(conf, dict) and conf.get("callTimeout") is not None and _bad_seconds(conf["callTimeout"]):
            errors.append(_err(qc, f"{role}.callTimeout", f"must be a number of seconds >= 0 (0: no limit), got "
                                                          f"{type(conf['callTimeout']).__name__} "
                                                          f"{conf['callTimeout']!r}", source))
    return errors


def check_plugins(qc: QueueConfig, source: str | None, import_check: bool) -> list[QueueConfigError]:
    """Each plugin role present must be a dict with module and name; mandatory roles must exist.

    With ``import_check`` every plugin class (roles, credmanagers and any other plugin
    dict) is imported, as the original does, so a typo is reported at load time.
    """
    errors: list[QueueConfigError] = []
    for role in PLUGIN_ROLES:
        if not hasattr(qc, role):
            if role in MANDATORY_PLUGINS:
                typo = next((key for key in vars(qc) if key not in PLUGIN_ROLES
                             and closest_name(key, [role]) is not None), None)
                hint = f"; {typo!r} looks like a typo of it" if typo else ""
                errors.append(_err(qc, role, f"mandatory plugin section {role!r} is missing "
                                             f"(add a dict with 'module' and 'name'){hint}", source))
            continue
        value = getattr(qc, role)
        if not isinstance(value, dict):
            errors.append(_err(qc, role, f"plugin section must be a dict with 'module' and 'name', "
                                         f"got {type(value).__name__} {value!r}", source))
            continue
        missing = [field for field in ("module", "name")
                   if not isinstance(value.get(field), str) or not value.get(field)]
        if missing:
            typos = [f"{key!r} looks like a typo of {close!r}" for key in value if key not in ("module", "name")
                     for close in [closest_name(key, missing)] if close is not None]
            hint = f"; {', '.join(typos)}" if typos else ""
            errors.append(_err(qc, role, f"plugin section lacks {' and '.join(repr(m) for m in missing)} "
                                         f"(dotted module path and class name){hint}", source))
    cred_managers = getattr(qc, "credmanagers", None)
    if cred_managers is not None:
        entries = cred_managers if isinstance(cred_managers, list) else None
        if entries is None or not all(isinstance(e, dict) and e.get("module") and e.get("name") for e in entries):
            errors.append(_err(qc, "credmanagers", "must be a list of dicts each with 'module' and 'name'", source))
    if errors or not import_check:
        return errors
    for role, value in sorted(vars(qc).items()):
        plugin_dicts = value if role == "credmanagers" and isinstance(value, list) else [value]
        for conf in plugin_dicts:
            if isinstance(conf, dict) and "module" in conf and "name" in conf:
                problem = import_problem(conf["module"], conf["name"])
                if problem:
                    errors.append(_err(qc, role, f"plugin {conf['module']}.{conf['name']} cannot be loaded: "
                                                 f"{problem}", source))
    return errors


def import_problem(module_name: str, class_name: str) -> str | None:
    """None when ``module_name.class_name`` can be imported, else a one-line reason."""
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any failure while importing a plugin module is a config problem
        return f"module {module_name!r} cannot be imported ({exc.__class__.__name__}: {exc})"
    if not hasattr(module, class_name):
        return f"module {module_name!r} has no class {class_name!r}"
    return None


def normalise_limits(qc: QueueConfig) -> None:
    """Make the worker/job limits consistent the way the original does.

    Negative limits become 0; NoJob queues drop job limits and jobful queues drop the
    pull-only worker ratio limits; nQueueLimitWorker is clipped to maxWorkers and merged
    with nQueueLimitWorkerMax (likewise for jobs); every *Min is clipped to its base.
    """
    dropped = JOB_LIMIT_ATTRS if qc.mapType == MT_NoJob else PULL_ONLY_WORKER_LIMIT_ATTRS
    for key in dropped:
        setattr(qc, key, None)
    for key in QUEUE_LIMIT_ATTRS:
        value = getattr(qc, key, None)
        if value is not None and value < 0:
            setattr(qc, key, 0)
    if getattr(qc, "maxWorkers", None) is None:
        qc.maxWorkers = 0

    def get(key: str) -> int | None:
        return getattr(qc, key, None)

    worker, worker_max = get("nQueueLimitWorker"), get("nQueueLimitWorkerMax")
    if worker is not None and worker_max is not None:
        qc.nQueueLimitWorker = qc.nQueueLimitWorkerMax = min(worker, worker_max, qc.maxWorkers)
    elif worker is not None:
        qc.nQueueLimitWorker = min(worker, qc.maxWorkers)
    elif worker_max is not None:
        qc.nQueueLimitWorker = qc.nQueueLimitWorkerMax = min(worker_max, qc.maxWorkers)
    if get("nQueueLimitWorkerMin") is not None and get("nQueueLimitWorker") is not None:
        qc.nQueueLimitWorkerMin = min(qc.nQueueLimitWorkerMin, qc.nQueueLimitWorker, qc.maxWorkers)
    for base in ("nQueueLimitWorkerCores", "nQueueLimitWorkerMemory", "nQueueLimitJobCores"):
        if get(base + "Min") is not None and get(base) is not None:
            setattr(qc, base + "Min", min(get(base + "Min"), get(base)))
    job, job_max = get("nQueueLimitJob"), get("nQueueLimitJobMax")
    if job is not None and job_max is not None:
        qc.nQueueLimitJob = qc.nQueueLimitJobMax = min(job, job_max)
    elif job_max is not None:
        qc.nQueueLimitJob = job_max
    if get("nQueueLimitJobMin") is not None and get("nQueueLimitJob") is not None:
        qc.nQueueLimitJobMin = min(qc.nQueueLimitJobMin, qc.nQueueLimitJob)


def apply_heartbeat_default(qc: QueueConfig) -> None:
    """True-pilot queues without an explicit noHeartbeat suppress heartbeats in all late states."""
    if qc.truePilot and qc.noHeartbeat == "":
        qc.noHeartbeat = TRUE_PILOT_NO_HEARTBEAT
