"""Which agents the master starts, in which order, and how (:data:`AGENT_REGISTRY`).

Each :class:`AgentEntry` names the agent's module and class, its cfg section, the master's
resources its constructor takes, and how many threads it gets. Agents are imported lazily: an
agent whose module does not exist (yet) is logged and skipped. :func:`start_agent` makes and
starts the threads of one entry; the master (:mod:`master`) watches and stops them.
"""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass, field
from typing import Any

from pandaharvester.harvestercore import core_utils

_logger = core_utils.setup_logger("master")

AGENT_PACKAGE = "pandaharvester.harvesterbody"


@dataclass(frozen=True)
class AgentEntry:
    """How the master starts one agent.

    ``args`` name the master's resources passed positionally to the agent's constructor
    (``communicator``, ``queue_config_mapper``, ``pid_file``); ``single_mode`` is always
    passed as a keyword. ``threaded``: one thread per ``[section] nThreads``.
    ``pre_execute``: kwargs of ``execute()`` run once in the master before the thread starts;
    ``pre_execute_shared``: the kwargs instead in a worker process of a multi-process instance
    (``[master] nProcesses > 1``), where the pre-execution must take the agent's process lock so
    that it runs in one process only.
    ``enabled_by``: a ``[section]`` key that must be true. ``then``: a master method run after.
    """

    module: str
    cls: str
    section: str
    args: tuple[str, ...] = ()
    threaded: bool = False
    pre_execute: dict[str, Any] | None = None
    pre_execute_shared: dict[str, Any] | None = None
    enabled_by: str | None = None
    then: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


AGENT_REGISTRY: tuple[AgentEntry, ...] = (
    AgentEntry("cred_manager", "CredManager", "credmanager", ("queue_config_mapper",), pre_execute={},
               then="force_credential_renewal"),
    AgentEntry("command_manager", "CommandManager", "commandmanager", ("communicator", "queue_config_mapper")),
    AgentEntry("cacher", "Cacher", "cacher", ("communicator",), pre_execute={"force_update": True, "skip_lock": True},
               pre_execute_shared={"force_update": True}),
    AgentEntry("watcher", "Watcher", "watcher"),
    AgentEntry("job_fetcher", "JobFetcher", "jobfetcher", ("communicator", "queue_config_mapper"), threaded=True),
    AgentEntry("propagator", "Propagator", "propagator", ("communicator", "queue_config_mapper"), threaded=True),
    AgentEntry("monitor", "Monitor", "monitor", ("queue_config_mapper",), threaded=True),
    AgentEntry("preparator", "Preparator", "preparator", ("communicator", "queue_config_mapper"), threaded=True),
    AgentEntry("submitter", "Submitter", "submitter", ("queue_config_mapper",), threaded=True),
    AgentEntry("stager", "Stager", "stager", ("queue_config_mapper",), threaded=True),
    AgentEntry("event_feeder", "EventFeeder", "eventfeeder", ("communicator", "queue_config_mapper"), threaded=True),
    AgentEntry("sweeper", "Sweeper", "sweeper", ("queue_config_mapper",), threaded=True),
    AgentEntry("file_syncer", "FileSyncer", "file_syncer", ("queue_config_mapper",), pre_execute={}),
    AgentEntry("service_monitor", "ServiceMonitor", "service_monitor", ("pid_file",), enabled_by="active"),
)


def load_agent_class(entry: AgentEntry) -> type | None:
    """The agent class of ``entry``, or None (logged) when its module does not exist."""
    name = f"{AGENT_PACKAGE}.{entry.module}"
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        _logger.warning(f"agent module {name} is not available: {entry.cls} skipped")
        return None
    return getattr(module, entry.cls)


def _cfg(section: str, key: str, default: Any = None) -> Any:
    from pandaharvester.harvesterconfig import schema

    return schema.cfg_value(section, key, default)


def start_agent(entry: AgentEntry, resources: dict[str, Any], single_mode: bool,
                stop_event: threading.Event, several_processes: bool = False) -> list[Any]:
    """Make and start the thread(s) of one registry entry (``resources``: the constructor
    arguments by name); [] when disabled or unavailable. ``several_processes``: this is a worker
    process of a multi-process instance (``pre_execute_shared`` applies)."""
    if entry.enabled_by is not None and not _cfg(entry.section, entry.enabled_by, False):
        _logger.info(f"{entry.cls} disabled ([{entry.section}] {entry.enabled_by} is not True)")
        return []
    agent_class = load_agent_class(entry)
    if agent_class is None:
        return []
    n_threads = int(_cfg(entry.section, "nThreads", 1)) if entry.threaded else 1
    pre_execute = entry.pre_execute
    if several_processes and entry.pre_execute_shared is not None:
        pre_execute = entry.pre_execute_shared
    started = []
    for index in range(n_threads):
        thread = agent_class(*[resources[arg] for arg in entry.args], single_mode=single_mode, **entry.extra)
        if n_threads > 1:
            thread.name = f"{entry.cls}-{index + 1}"
        thread.set_stop_event(stop_event)
        if pre_execute is not None:
            try:
                thread.execute(**pre_execute)
            except Exception:
                core_utils.dump_error_message(_logger, f"pre-execution of {entry.cls} failed")
        thread.start()
        started.append(thread)
    _logger.info(f"started {entry.cls} x{len(started)}")
    return started
