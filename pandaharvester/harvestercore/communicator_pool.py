"""A fixed pool of communicator instances shared by all agents.

``CommunicatorPool()`` builds ``[communicator] nConnections`` (fallback ``[pandacon]
nConnections``) instances of ``[communicator] className`` from ``[communicator] moduleName``
(default: ``PandaCommunicator``). Calling any communicator method on the pool borrows one
instance for the duration of the call, so at most ``nConnections`` PanDA calls are in flight
at any time, whatever the number of agent threads.
"""

from __future__ import annotations

import importlib
import queue
import threading
from typing import Any

from . import core_utils

_logger = core_utils.setup_logger("communicator_pool")

DEFAULT_CONNECTIONS = 5
DEFAULT_MODULE = "pandaharvester.harvestercommunicator.panda_communicator"
DEFAULT_CLASS = "PandaCommunicator"


def _n_connections() -> int:
    from pandaharvester.harvesterconfig import harvester_config

    for section_name in ("communicator", "pandacon"):
        section = getattr(harvester_config, section_name, None)
        value = getattr(section, "nConnections", None) if section is not None else None
        if value not in (None, ""):
            try:
                return max(1, int(value))
            except (TypeError, ValueError):
                from pandaharvester.errors import ConfigError

                raise ConfigError(f"[{section_name}] nConnections = {value!r} is not a number: "
                                  "set it to a positive integer") from None
    return DEFAULT_CONNECTIONS


def _communicator_class() -> type:
    from pandaharvester.harvesterconfig import harvester_config

    section = getattr(harvester_config, "communicator", None)
    module_name = getattr(section, "moduleName", None) or DEFAULT_MODULE
    class_name = getattr(section, "className", None) or DEFAULT_CLASS
    try:
        module = importlib.import_module(module_name)
        return getattr(module, class_name)
    except (ImportError, AttributeError) as exc:
        from pandaharvester.errors import PluginError

        raise PluginError(f"[communicator] moduleName = {module_name!r} / className = {class_name!r} "
                          f"cannot be loaded ({exc}): fix the names in panda_harvester.cfg") from exc


class CommunicatorMethod:
    """A pool method: borrows an instance, calls its method, gives the instance back."""

    def __init__(self, method_name: str, pool: "queue.Queue[Any]") -> None:
        self.methodName = method_name
        self.pool = pool

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        tmp_log = core_utils.make_logger(_logger, f"method={self.methodName}", method_name="call")
        sw = core_utils.get_stopwatch()
        con = self.pool.get()
        try:
            tmp_log.debug(f"got lock. qsize={self.pool.qsize()}{sw.get_elapsed_time()}")
            sw.reset()
            return getattr(con, self.methodName)(*args, **kwargs)
        finally:
            self.pool.put(con)
            tmp_log.debug("release lock" + sw.get_elapsed_time())


class CommunicatorPool:
    """Bounded pool of communicators; any attribute not defined here is a pooled method."""

    def __init__(self, n_connections: int | None = None, communicator_class: type | None = None) -> None:
        n = n_connections if n_connections is not None else _n_connections()
        factory = communicator_class if communicator_class is not None else _communicator_class()
        pool: queue.Queue[Any] = queue.Queue(n)
        for _ in range(n):
            pool.put(factory())
        object.__setattr__(self, "pool", pool)
        object.__setattr__(self, "nConnections", n)
        object.__setattr__(self, "_instances", list(pool.queue))
        object.__setattr__(self, "_methods_lock", threading.Lock())

    def __getattr__(self, name: str) -> CommunicatorMethod:
        # only called for names not found normally: communicator methods
        if name.startswith("__"):
            raise AttributeError(name)
        method = CommunicatorMethod(name, object.__getattribute__(self, "pool"))
        with object.__getattribute__(self, "_methods_lock"):
            object.__setattr__(self, name, method)
        return method

    def force_credential_renewal(self) -> None:
        """Make every instance, borrowed or not, re-read its credentials at its next request."""
        for con in self._instances:
            con.force_credential_renewal()
