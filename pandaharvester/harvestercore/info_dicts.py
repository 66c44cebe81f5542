"""Dictionaries of PanDA/CRIC information that the cacher stores in the DB cache.

The original keeps them in ``harvestermisc.info_utils`` (which still re-exports them); they live
in the core because the queue-config mapper uses :class:`PandaQueuesDict` as its default resolver.

:class:`PandaQueuesDict` (the default queue-config resolver, ``[qconf] resolverModule/Class``)
holds ``panda_queues.json``: one entry per PanDA queue, keyed by PanDA resource name and
also reachable by queue nickname. Entries are refreshed from the cache at most every
``[qconf] resolverConfig.refreshPeriod`` seconds (default 300); when the cache is empty the
next access retries after 5 s.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any, Callable

from pandaharvester.harvestercore.core_utils import SingletonWithID
from pandaharvester.harvestercore.log_utils import make_logger, setup_logger

__all__ = ["DEFAULT_REFRESH_PERIOD", "RETRY_DELAY", "CachedDictBase", "PandaQueuesDict", "GridServicesDict"]

_logger = setup_logger("info_utils")  # the original's logger name (panda-info_utils.log)

DEFAULT_REFRESH_PERIOD = 300
RETRY_DELAY = 5


def _qconf(key: str, default: Any) -> Any:
    try:
        from pandaharvester.harvesterconfig import harvester_config

        return getattr(harvester_config.qconf, key, default)
    except Exception:
        return default


def _harvester_id() -> str | None:
    try:
        from pandaharvester.harvesterconfig import harvester_config

        return getattr(harvester_config.master, "harvester_id", None)
    except Exception:
        return None


def _default_cache_reader(main_key: str) -> Any:
    from pandaharvester.harvestercore.queue_config_store import read_cache

    return read_cache(main_key)


class CachedDictBase(dict, metaclass=SingletonWithID):
    """A dict filled from one DB cache entry, refreshed lazily on access.

    Keyword arguments: ``cacher_key`` (cache main key), ``cache_reader`` (``f(key)`` →
    CacheSpec or None, default the DB cache), ``refresh_period`` (seconds), ``id``
    (singleton key), ``harvester_id`` (default ``[master] harvester_id``). Every other
    keyword becomes an attribute, as for plugins.
    """

    default_cacher_key: str | None = None

    def __init__(self, **kwargs: Any) -> None:
        super().__init__()
        self.lock = threading.RLock()
        self.cacher_key = kwargs.pop("cacher_key", None) or self.default_cacher_key
        self.cache_reader: Callable[[str], Any] = kwargs.pop("cache_reader", None) or _default_cache_reader
        config = _qconf("resolverConfig", {}) or {}
        period = kwargs.pop("refresh_period", None)
        if period is None:
            period = config.get("refreshPeriod", DEFAULT_REFRESH_PERIOD)
        self.refresh_period = float(period)
        kwargs.pop("id", None)
        for key, value in kwargs.items():
            setattr(self, key, value)
        self.last_refresh_ts = 0.0
        self._refresh()

    def _is_fresh(self) -> bool:
        return self.last_refresh_ts + self.refresh_period > time.time()

    def _fill(self, data: dict[str, Any]) -> None:
        """Put the cached data into self; subclasses reshape it."""
        self.update(data)

    def _refresh(self) -> None:
        with self.lock:
            if self._is_fresh():
                return
            tmp_log = make_logger(_logger, f"cacher_key={self.cacher_key}", method_name="_refresh")
            data = None
            if self.cacher_key:
                try:
                    data = getattr(self.cache_reader(self.cacher_key), "data", None)
                except Exception as exc:
                    tmp_log.warning(f"failed to read cache ({exc.__class__.__name__}: {exc})")
            if not isinstance(data, dict):
                tmp_log.debug("no valid cached data; retrying soon")
                self.last_refresh_ts = time.time() - self.refresh_period + RETRY_DELAY
                return
            try:
                self.clear()
                self._fill(data)
            except Exception as exc:
                tmp_log.error(f"cannot use cached data ({exc.__class__.__name__}: {exc}); retrying soon")
                self.last_refresh_ts = time.time() - self.refresh_period + RETRY_DELAY
                return
            self.last_refresh_ts = time.time()

    def refresh(self, force: bool = False) -> None:
        """Re-read the cache now (``force``) or if the data is stale."""
        if force:
            self.last_refresh_ts = 0.0
        self._refresh()

    def __getitem__(self, key: Any) -> Any:
        self._refresh()
        return dict.__getitem__(self, key)

    def get(self, key: Any, default: Any = None) -> Any:
        self._refresh()
        return dict.get(self, key, default)

    def get_all_names(self) -> set[Any]:
        """All keys."""
        self._refresh()
        return set(self.keys())


class PandaQueuesDict(CachedDictBase):
    """PanDA queue (CRIC ``pandaqueue``) info by PanDA resource name, also reachable by nickname."""

    default_cacher_key = "panda_queues.json"
    per_core_attrs = ("maxrss", "minrss", "maxwdir")

    @staticmethod
    def has_value_in_catchall(queue_dict: dict[str, Any], key: str) -> bool:
        """Whether the comma-separated ``catchall`` field holds ``key`` or ``key=...``."""
        catchall = queue_dict.get("catchall") or ""
        return any(re.match(rf"^{re.escape(key)}(=|$)", item.strip()) for item in catchall.split(","))

    @classmethod
    def use_per_core_attr(cls, queue_dict: dict[str, Any]) -> bool:
        """Whether memory/disk figures of the queue are per core (``per_core_attr`` in catchall)."""
        return cls.has_value_in_catchall(queue_dict, "per_core_attr")

    def _fill(self, data: dict[str, Any]) -> None:
        for nickname, queue_dict in data.items():
            if not isinstance(queue_dict, dict):
                continue
            queue_dict = dict(queue_dict)
            if self.use_per_core_attr(queue_dict):
                cores = queue_dict.get("corecount") or 1
                for attr in self.per_core_attrs:
                    if isinstance(queue_dict.get(attr), (int, float)) and cores > 0:
                        queue_dict[attr] = queue_dict[attr] * cores
            resource = queue_dict.get("panda_resource")
            if resource and nickname == queue_dict.get("nickname"):
                self[resource] = queue_dict

    def _lookup(self, name: Any) -> dict[str, Any] | None:
        self._refresh()
        if dict.__contains__(self, name):
            return dict.__getitem__(self, name)
        for queue_dict in self.values():
            if queue_dict.get("nickname") == name:
                return queue_dict
        return None

    def __getitem__(self, name: Any) -> dict[str, Any]:
        found = self._lookup(name)
        if found is None:
            raise KeyError(name)
        return found

    def get(self, name: Any, default: Any = None) -> Any:
        found = self._lookup(name)
        return default if found is None else found

    def get_panda_queue_name(self, panda_resource: str) -> str | None:
        """Queue nickname of a PanDA resource (or of a nickname), else None."""
        found = self._lookup(panda_resource)
        return None if found is None else found.get("nickname")

    def _is_ours(self, queue_dict: dict[str, Any]) -> bool:
        harvester_id = getattr(self, "harvester_id", None) or _harvester_id()
        return queue_dict.get("pilot_manager") == "Harvester" and queue_dict.get("harvester") == harvester_id

    def get_queue_status(self, panda_resource: str) -> str | None:
        """CRIC status for auto-blacklisting; "offline" when the queue is not served by this instance."""
        found = self._lookup(panda_resource)
        if found is None:
            return None
        if not self._is_ours(found):
            return "offline"
        return found.get("status")

    def get_all_queue_names(self) -> set[str]:
        """Names of the queues assigned to this Harvester instance in CRIC."""
        self._refresh()
        return {name for name, queue_dict in self.items() if self._is_ours(queue_dict)}

    def is_ups_queue(self, panda_resource: str) -> bool:
        """Unified pilot streaming: unified capability with the pull_ups workflow."""
        found = self._lookup(panda_resource)
        return bool(found) and found.get("capability") == "ucore" and found.get("workflow") == "pull_ups"

    def is_grandly_unified_queue(self, panda_resource: str) -> bool:
        """Queue that runs both analysis and production."""
        found = self._lookup(panda_resource)
        if found is None:
            return False
        return "grandly_unified" in (found.get("catchall") or "") or found.get("type") == "unified"

    def get_harvester_params(self, panda_resource: str) -> dict[str, Any]:
        """The queue's CRIC ``params`` (may hold queue limits)."""
        found = self._lookup(panda_resource)
        return {} if found is None else (found.get("params") or {})

    def get_harvester_template(self, panda_resource: str) -> str | None:
        """CRIC ``harvester_template`` ("" if unset, None if the queue is unknown)."""
        found = self._lookup(panda_resource)
        return None if found is None else found.get("harvester_template", "")

    def get_type_workflow(self, panda_resource: str) -> tuple[str | None, str | None]:
        """(type, workflow), type "unified" reported as "production" (its templates are used)."""
        found = self._lookup(panda_resource)
        if found is None:
            return None, None
        pq_type = found.get("type")
        return ("production" if pq_type == "unified" else pq_type), found.get("workflow")

    def get_prorated_maxwdir_GiB(self, panda_resource: str, worker_corecount: int) -> float:
        """Work-dir size in GiB for a worker; prorated by cores on unified queues; 0 if unknown."""
        try:
            found = self._lookup(panda_resource)
            maxwdir = found["maxwdir"] / 1024
            if found.get("capability") == "ucore":
                return maxwdir * worker_corecount / found["corecount"]
            return maxwdir
        except Exception:
            return 0

    get_prorated_maxwdir_GB = get_prorated_maxwdir_GiB  # older name


class GridServicesDict(CachedDictBase):
    """Grid service (CE, SE, ...) info from CRIC by service name."""

    default_cacher_key = "grid_services.json"

    def _attr(self, service_name: str, attr: str) -> Any:
        found = self.get(service_name)
        return None if found is None else found.get(attr)

    def get_type(self, service_name: str) -> str | None:
        """Service type (CE, SE, ...)."""
        return self._attr(service_name, "type")

    def get_flavour(self, service_name: str) -> str | None:
        """Service flavour (HTCONDOR-CE, ARC-CE, ...)."""
        return self._attr(service_name, "flavour")

    def get_endpoint(self, service_name: str) -> str | None:
        """Service endpoint."""
        return self._attr(service_name, "endpoint")

    def get_state(self, service_name: str) -> str | None:
        """Service state (ACTIVE, DISABLED, ...)."""
        return self._attr(service_name, "state")
