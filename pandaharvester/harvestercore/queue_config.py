"""The resolved configuration of one queue, and the vocabulary of the queue-config JSON.

A :class:`QueueConfig` is a plain object: every key of the queue's JSON entry (after
templates and overlays are applied) becomes an attribute; the constructor only sets the
defaults that every agent may rely on. Building, validating and versioning configs is done
by :mod:`queue_config_builder` and :mod:`queue_config_mapper`.

This module imports no spec and no DB code so that it loads anywhere (admin tools, pickles).
"""

from __future__ import annotations

from typing import Any, Iterable

from pandaharvester.harvesterconfig._section import mask_value  # the cfg's secret masking

from . import core_utils

# map types (the values of WorkSpec.MT_*; repeated here so this module stays import-light)
MT_NoJob = "NoJob"
MT_OneToOne = "OneToOne"
MT_MultiJobs = "ManyToOne"
MT_MultiWorkers = "OneToMany"
MAP_TYPES = (MT_NoJob, MT_OneToOne, MT_MultiJobs, MT_MultiWorkers)

# catch-all resource/job type (PandaQueueSpec.RT_catchall / JT_catchall)
RT_catchall = "ANY"
JT_catchall = "ANY"

RUN_MODES = ("self", "slave")

# plugin roles: a queue must define the mandatory ones
MANDATORY_PLUGINS = ("messenger", "monitor", "preparator", "stager", "submitter", "sweeper", "workerMaker")
OPTIONAL_PLUGINS = ("throttler", "zipper", "aux_preparator", "extractor")
PLUGIN_ROLES = MANDATORY_PLUGINS + OPTIONAL_PLUGINS
# keys whose dicts are merged key by key (rather than replaced) when a queue overlays its template
UPDATABLE_PLUGIN_ATTRS = frozenset(("common",) + PLUGIN_ROLES)

# worker/job limits: integers; the adjuster treats None as "no limit"
QUEUE_LIMIT_ATTRS = (
    "maxWorkers",
    "maxNewWorkersPerCycle",
    "nQueueLimitWorker",
    "nQueueLimitWorkerMax",
    "nQueueLimitWorkerRatio",
    "nQueueLimitWorkerMin",
    "nQueueLimitWorkerCores",
    "nQueueLimitWorkerCoresRatio",
    "nQueueLimitWorkerCoresMin",
    "nQueueLimitWorkerMemory",
    "nQueueLimitWorkerMemoryRatio",
    "nQueueLimitWorkerMemoryMin",
    "nQueueLimitJob",
    "nQueueLimitJobMax",
    "nQueueLimitJobRatio",
    "nQueueLimitJobMin",
    "nQueueLimitJobCores",
    "nQueueLimitJobCoresRatio",
    "nQueueLimitJobCoresMin",
)
# limits that make no sense without jobs (dropped for NoJob queues)
JOB_LIMIT_ATTRS = ("nQueueLimitJob", "nQueueLimitJobRatio", "nQueueLimitJobMax", "nQueueLimitJobMin")
# ratio-style worker limits only used by pull (NoJob) queues
PULL_ONLY_WORKER_LIMIT_ATTRS = ("nQueueLimitWorkerRatio", "nQueueLimitWorkerMin")

# noHeartbeat given to true-pilot queues that do not set it
TRUE_PILOT_NO_HEARTBEAT = "running,transferring,finished,failed"

# resource types a pseudo-queue name "PQ/<type>" usually carries
PSEUDO_QUEUE_RESOURCE_TYPES = ("SCORE", "SCORE_HIMEM", "MCORE", "MCORE_HIMEM")


def split_pseudo_queue_name(queue_name: str) -> tuple[str, str | None]:
    """``"PQ/MCORE"`` → ``("PQ", "MCORE")``; a plain name → ``(name, None)``."""
    site_name = queue_name.split("/")[0]
    if site_name == queue_name:
        return site_name, None
    return site_name, queue_name.split("/")[-1]


class QueueConfig:
    """Configuration of one queue: defaults below, overridden by the JSON keys."""

    def __init__(self, queue_name: str) -> None:
        self.queueName = queue_name
        self.pandaQueueName: str | None = None
        self.prodSourceLabel = "managed"
        self.mapType = MT_OneToOne
        self.useJobLateBinding = False
        self.zipPerMB: int | None = None
        self.siteName = ""
        self.siteFamily = ""
        self.maxWorkers = 0
        self.nNewWorkers = 0
        self.maxNewWorkersPerCycle = 0
        self.noHeartbeat = ""
        self.runMode = "self"
        self.resourceType = RT_catchall
        self.jobType = JT_catchall
        self.getJobCriteria: dict[str, str] | None = None
        self.ddmEndpointIn: str | None = None
        self.allowJobMixture = False
        self.maxSubmissionAttempts = 3
        self.truePilot = False
        self.queueStatus: str | None = None
        self.prefetchEvents = True
        self.uniqueName: str | None = None
        self.configID: int | None = None
        self.initEventsMultipler = 2

    # ------------------------------------------------------------ heartbeat suppression
    def get_no_heartbeat_status(self) -> list[str]:
        """Worker/job statuses for which no heartbeat is sent (from ``noHeartbeat``)."""
        return [item.strip() for item in (self.noHeartbeat or "").split(",") if item.strip()]

    def is_no_heartbeat_status(self, status: str) -> bool:
        """True when heartbeats are suppressed in ``status``."""
        return status in self.get_no_heartbeat_status()

    # ------------------------------------------------------------ labels and names
    def get_source_label(self, job_type: str | None = None, is_gu: bool | None = None) -> str:
        """prodSourceLabel to ask PanDA for.

        User/panda job types always map to "user"; a grandly unified queue asks for
        "unified" (PanDA then picks the label); otherwise the queue's own label.
        """
        if job_type in ("user", "panda"):
            return "user"
        if is_gu:
            return "unified"
        return self.prodSourceLabel

    def set_unique_name(self) -> None:
        """Set ``uniqueName`` (the pq_table key) from queue name, resource type and label."""
        self.uniqueName = core_utils.get_unique_queue_name(self.queueName, self.resourceType, self.prodSourceLabel)

    def update_attributes(self, data: dict[str, Any]) -> None:
        """Set every ``key: value`` of ``data`` as an attribute."""
        for key, value in data.items():
            setattr(self, key, value)

    def get_synchronization_level(self) -> int | None:
        """1 when job and worker states are synchronised by Harvester itself, else None."""
        if self.mapType == MT_NoJob or self.truePilot or self.is_no_heartbeat_status("finished"):
            return 1
        return None

    # ------------------------------------------------------------ plugins
    def plugin_roles(self) -> list[str]:
        """Names of the attributes holding a plugin dict (``module`` + ``name``)."""
        return sorted(key for key, value in vars(self).items() if is_plugin_dict(value))

    def to_dict(self) -> dict[str, Any]:
        """A shallow dict of the attributes (what is dumped as the config's version)."""
        return dict(vars(self))

    def __str__(self) -> str:
        """Readable dump (``qconf dump``); values of keys such as password/token are masked."""
        lines = [self.queueName, "-" * len(self.queueName)]
        items = sorted((key, mask_value(key, value)) for key, value in vars(self).items())
        lines += [f" {key} = {value}" for key, value in items if not isinstance(value, dict)]
        for key, value in items:
            if isinstance(value, dict):
                lines.append(f" {key} :")
                lines += [f"  {sub_key} = {value[sub_key]}" for sub_key in sorted(value, key=str)]
        return "\n".join(lines) + "\n"

    def __repr__(self) -> str:
        return f"<QueueConfig {self.queueName} configID={self.configID}>"


# keys of a queue entry that this Harvester (or the original) reads; any other key is kept as an
# attribute (plugins may read it), and one close to a known key gets a "did you mean" warning
KNOWN_QUEUE_KEYS = frozenset(QUEUE_LIMIT_ATTRS + PLUGIN_ROLES + (
    "queueName", "pandaQueueName", "prodSourceLabel", "mapType", "useJobLateBinding", "zipPerMB", "siteName",
    "siteFamily", "maxWorkers", "nNewWorkers", "maxNewWorkersPerCycle", "noHeartbeat", "runMode", "resourceType",
    "jobType", "getJobCriteria", "ddmEndpointIn", "allowJobMixture", "maxSubmissionAttempts", "truePilot",
    "queueStatus", "prefetchEvents", "uniqueName", "configID", "initEventsMultipler", "common", "credmanagers",
    "templateQueueName", "isTemplateQueue", "walltimeLimit", "prodSourceLabelRandomWeightsPermille",
    "scatteredEvents", "maxtime",
))


def closest_name(name: str, known: Iterable[str]) -> str | None:
    """The name of ``known`` closest to ``name`` (case ignored), None when none is close."""
    import difflib

    by_lower = {k.lower(): k for k in known}
    match = difflib.get_close_matches(str(name).lower(), list(by_lower), n=1)
    return by_lower[match[0]] if match else None


def is_plugin_dict(value: Any) -> bool:
    """A plugin section is a dict naming a ``module`` and a class ``name``."""
    return isinstance(value, dict) and "module" in value and "name" in value


def parse_job_criteria(value: Any) -> dict[str, str] | None:
    """``"k=v,k2=v2"`` → ``{"k": "v", "k2": "v2"}``; empty → None; a dict is kept.

    Raises ValueError naming the item that is not ``key=value``.
    """
    if value is None:
        return None
    if isinstance(value, dict):
        return {str(k): v for k, v in value.items()} or None
    if not isinstance(value, str):
        raise ValueError(f"expected a string 'key=value,key2=value2', got {type(value).__name__} {value!r}")
    criteria: dict[str, str] = {}
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, val = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"item {item!r} of {value!r} is not 'key=value'")
        criteria[key.strip()] = val.strip()
    return criteria or None


def names_in(queue_list: Iterable[str] | str | None) -> list[str]:
    """Normalise a ``queueList`` setting (list, or whitespace/comma separated text) to a list."""
    if queue_list is None:
        return []
    if isinstance(queue_list, str):
        return [item for item in queue_list.replace(",", " ").split() if item]
    return [str(item).strip() for item in queue_list if str(item).strip()]
