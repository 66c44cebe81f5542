"""The contract of each plugin role as data: methods (required or optional), reply shapes, settable fields.

:data:`ROLES` maps a role name (``submitter``, ``monitor``, ``sweeper``, ``preparator``,
``stager``, ``messenger``, ``workermaker``, ``throttler``, ``zipper``, ``credmanager``,
``extractor``) to a :class:`RoleContract`; :func:`get_role` also takes the queue-config keys
(``workerMaker``, ``aux_preparator``, ``credmanagers``). Parameter lists come from the role's
Protocol in :mod:`.protocols`; reply kinds are checked by :mod:`.replies`, settable fields by
:mod:`.fields`.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass, field
from typing import Any

from . import protocols

# statuses of the (status, diag) replies
TRUE_FALSE_NONE = (True, False, None)
TRUE_FALSE = (True, False)


@dataclass(frozen=True)
class MethodContract:
    """One method of a role.

    ``reply`` is a reply kind of :mod:`.replies`; ``per_item`` says the reply has one entry per
    item of the first argument (a list of workers); ``alternatives`` are other names that
    satisfy the same need (the agents call the first one the plugin has); ``agent_kwargs``
    are keyword arguments this Harvester's agents pass beyond the original's parameters.
    """

    name: str
    reply: str
    required: bool = True
    per_item: bool = False
    statuses: tuple[Any, ...] = TRUE_FALSE_NONE
    alternatives: tuple[str, ...] = ()
    agent_kwargs: tuple[str, ...] = ()
    params: tuple[str, ...] = ()  # filled from the Protocol: positional parameters without default

    @property
    def names(self) -> tuple[str, ...]:
        """The method's name, then its alternatives."""
        return (self.name, *self.alternatives)

    def call_text(self) -> str:
        """``submit_workers(workspec_list)``: how Harvester calls it."""
        return f"{self.name}({', '.join(self.params)})"


@dataclass(frozen=True)
class RoleContract:
    """A role: its queue-config key, Protocol, methods and the spec fields its plugins may set."""

    role: str
    queue_key: str
    protocol: type
    methods: tuple[MethodContract, ...]
    fields: dict[str, frozenset[str]] = field(default_factory=dict)  # spec class name -> settable columns
    items: str = "worker"  # what the per-item replies are aligned with

    def method(self, name: str) -> MethodContract:
        """The contract of ``name`` (or of the method it is an alternative to)."""
        for contract in self.methods:
            if name == contract.name:
                return contract
        for contract in self.methods:
            if name in contract.alternatives:
                return contract
        known = ", ".join(m.name for m in self.methods)
        raise KeyError(f"{self.role} plugins have no method {name!r} in their contract (known: {known})")

    def may_set(self, spec_class: str) -> frozenset[str]:
        """Columns of a ``spec_class`` ("WorkSpec", "JobSpec", "FileSpec") this role may set."""
        return self.fields.get(spec_class, frozenset())


def _with_params(role: RoleContract) -> RoleContract:
    """The role with each method's ``params`` read from its Protocol."""
    methods = []
    for contract in role.methods:
        signature = inspect.signature(getattr(role.protocol, contract.name))
        params = tuple(name for name, p in signature.parameters.items()
                       if name != "self" and p.default is inspect.Parameter.empty)
        methods.append(MethodContract(**{**contract.__dict__, "params": params}))
    return RoleContract(**{**role.__dict__, "methods": tuple(methods)})


def _fields(**by_class: str) -> dict[str, frozenset[str]]:
    return {cls: frozenset(names.split()) for cls, names in by_class.items()}


_M = MethodContract
_WORK_DIAG = "diagMessage errorCode errorDiag workAttributes logFilesToUpload"
_FILE_GROUPS = "groupID groupStatus groupUpdateTime"
_FILE_TRANSFER = f"path fsize chksum objstoreID pathConvention fileAttributes attemptNr url {_FILE_GROUPS}"

_ROLE_LIST = (
    RoleContract("submitter", "submitter", protocols.SubmitterPlugin, (
        _M("submit_workers", "reply_list", per_item=True),
    ), _fields(WorkSpec=f"batchID submissionHost nodeID queueName computingElement nCore workParams nativeStatus "
                        f"nativeExitCode {_WORK_DIAG}",
               JobSpec="jobAttributes")),
    RoleContract("monitor", "monitor", protocols.MonitorPlugin, (
        _M("check_workers", "monitor_reply", per_item=True),
        _M("report_updated_workers", "worker_updates", required=False),
    ), _fields(WorkSpec=f"nativeStatus nativeExitCode nodeID computingElement startTime endTime {_WORK_DIAG}",
               JobSpec="jobAttributes")),
    RoleContract("sweeper", "sweeper", protocols.SweeperPlugin, (
        _M("kill_workers", "reply_list", per_item=True, statuses=TRUE_FALSE, alternatives=("kill_worker",)),
        _M("kill_worker", "reply", required=False, statuses=TRUE_FALSE),
        _M("sweep_worker", "reply", statuses=TRUE_FALSE),
    ), _fields(WorkSpec=f"nativeStatus {_WORK_DIAG}")),
    RoleContract("preparator", "preparator", protocols.PreparatorPlugin, (
        _M("trigger_preparation", "reply"),
        _M("check_stage_in_status", "reply", alternatives=("check_status",)),
        _M("resolve_input_paths", "reply"),  # None is no failure: only False stops the job
    ), _fields(JobSpec="jobParams jobAttributes", FileSpec=_FILE_TRANSFER), items="job"),
    RoleContract("stager", "stager", protocols.StagerPlugin, (
        _M("trigger_stage_out", "reply"),
        _M("check_stage_out_status", "reply", alternatives=("check_status",)),
        _M("zip_output", "reply", required=False),
    ), _fields(JobSpec="jobAttributes", FileSpec=f"status {_FILE_TRANSFER}"), items="job"),
    RoleContract("zipper", "zipper", protocols.ZipperPlugin, (
        _M("zip_output", "reply"),
        _M("async_zip_output", "reply", required=False),
        _M("post_zip_output", "reply", required=False),
    ), _fields(FileSpec=f"status {_FILE_TRANSFER}"), items="job"),
    RoleContract("messenger", "messenger", protocols.MessengerPlugin, tuple(
        _M(name, reply, required=False) for name, reply in (
            # as the agents read them: None is no failure (feed_*), no request, nothing reported
            ("setup_access_points", "any"), ("feed_jobs", "bool_or_none"), ("job_requested", "count"),
            ("kill_requested", "bool_or_none"), ("is_alive", "bool_or_none"),
            ("get_work_attributes", "dict_or_none"), ("get_files_to_stage_out", "dict_or_none"),
            ("events_requested", "dict_or_none"), ("feed_events", "bool_or_none"),
            ("events_to_update", "dict_or_none"), ("acknowledge_events_files", "any"),
            ("get_panda_ids", "list_or_none"), ("post_processing", "bool_or_none"), ("clean_up", "reply"))),
        _fields(WorkSpec=f"nativeStatus nJobs {_WORK_DIAG}", JobSpec="jobAttributes metaData outputFilesToReport",
                FileSpec=_FILE_TRANSFER)),
    RoleContract("workermaker", "workerMaker", protocols.WorkerMakerPlugin, (
        _M("make_worker", "workspec_or_none", agent_kwargs=("prod_source_label",)),
        _M("get_num_jobs_per_worker", "int", required=False),
        _M("get_num_workers_per_job", "int", required=False),
        _M("num_ready_resources", "int", required=False),
        _M("get_max_workers_per_job_in_total", "int_or_none", required=False),
        _M("get_max_workers_per_job_per_cycle", "int_or_none", required=False),
    ), _fields(WorkSpec="nCore minRamCount maxDiskCount maxWalltime ioIntensity resourceType jobType pilotType "
                        "workParams workAttributes creationTime nJobs"), items="job"),
    RoleContract("throttler", "throttler", protocols.ThrottlerPlugin, (
        _M("to_be_throttled", "reply", agent_kwargs=("queue_config_mapper",)),  # None: not throttled
    )),
    RoleContract("credmanager", "credmanagers", protocols.CredManagerPlugin, (
        _M("check_credential", "bool_or_none"),  # None: not valid, renewed
        _M("renew_credential", "reply_or_status", statuses=TRUE_FALSE),
        _M("check_credential_lifetime", "number_or_none", required=False),
    )),
    RoleContract("extractor", "extractor", protocols.ExtractorPlugin, (
        _M("get_aux_inputs", "aux_inputs"),
    ), _fields(JobSpec="jobParams"), items="job"),
)

ROLES: dict[str, RoleContract] = {role.role: _with_params(role) for role in _ROLE_LIST}

_ALIASES = {"workerMaker": "workermaker", "worker_maker": "workermaker", "aux_preparator": "preparator",
            "credmanagers": "credmanager", "cred_manager": "credmanager", "credential_manager": "credmanager"}


def get_role(name: str) -> RoleContract:
    """The contract of a role, by role name or queue-config key; KeyError naming the known roles."""
    key = _ALIASES.get(name, name)
    if key not in ROLES:
        key = _ALIASES.get(name.lower(), name.lower())
    try:
        return ROLES[key]
    except KeyError:
        raise KeyError(f"unknown plugin role {name!r}: use one of {', '.join(ROLES)}") from None


def role_names() -> list[str]:
    """Every role name, in the order of :data:`ROLES`."""
    return list(ROLES)


@functools.lru_cache(maxsize=None)
def method_contract(role: str, method: str) -> MethodContract | None:
    """The contract of ``method`` (or of the method it is an alternative to) for a plugin of
    ``role``, looked up once per (role, method) (the agents ask it at every plugin call); None
    when the role's contract has no such method (a hook of this Harvester's own, such as the
    messenger's ``get_unreadable_reports``)."""
    try:
        return get_role(role).method(method)
    except KeyError:
        get_role(role)  # an unknown role is the caller's mistake: say so
        return None


SPEC_CLASSES = ("WorkSpec", "JobSpec", "FileSpec")


def settable_fields_table() -> str:
    """The spec fields each role may set, as the Markdown table of the README's plugin section
    (``tests/test_plugin_contracts.py`` checks that the README holds this very text)."""
    lines = ["| role (queue-config key) | " + " | ".join(SPEC_CLASSES) + " |",
             "|---" * (len(SPEC_CLASSES) + 1) + "|"]
    for contract in ROLES.values():
        cells = [", ".join(f"`{name}`" for name in sorted(contract.may_set(cls))) or "—" for cls in SPEC_CLASSES]
        key = f" (`{contract.queue_key}`)" if contract.queue_key != contract.role else ""
        lines.append(f"| {contract.role}{key} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
