"""PanDA resource types (SCORE, MCORE, SCORE_HIMEM, MCORE_HIMEM, ...) and worker sizing.

Definitions come from the cache entry ``resource_types.json`` (filled by the cacher from
the PanDA server: a bare list of ``{resource_name, mincore, maxcore, minrampercore,
maxrampercore}``; the older ``{"ResourceTypes": [...]}`` wrapping is accepted too); when it
is absent the built-in PanDA defaults below are used, so the mapper always knows the basic
types. Data is re-read at most every 10 minutes.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any, Callable

from .core_utils import SingletonWithID
from .resource_type_constants import CAPABILITY_TAG, CRIC_CORE_TAG, CRIC_RAM_TAG, UNIFIED_QUEUE_TAG

CACHE_KEY = "resource_types.json"
RELOAD_INTERVAL = 600
HIGH_MEMORY_PER_CORE = 2000  # MB per core above which a type is "high memory"

# PanDA's standard definitions: name, mincore, maxcore, minrampercore, maxrampercore (MB)
DEFAULT_RESOURCE_TYPES: list[dict[str, Any]] = [
    {"resource_name": "SCORE", "mincore": 1, "maxcore": 1, "minrampercore": None, "maxrampercore": 2000},
    {"resource_name": "MCORE", "mincore": 2, "maxcore": None, "minrampercore": None, "maxrampercore": 2000},
    {"resource_name": "SCORE_HIMEM", "mincore": 1, "maxcore": 1, "minrampercore": 2001, "maxrampercore": None},
    {"resource_name": "MCORE_HIMEM", "mincore": 2, "maxcore": None, "minrampercore": 2001, "maxrampercore": None},
]


def _get(source: Any, key: str, default: Any = None) -> Any:
    """``source[key]`` for dicts, ``source.key`` for objects (e.g. a QueueConfig)."""
    if isinstance(source, dict):
        return source.get(key, default)
    return getattr(source, key, default)


class ResourceType:
    """One resource type: core range and RAM-per-core range (None = unbounded)."""

    def __init__(self, resource_type_dict: dict[str, Any]) -> None:
        self.resource_name: str = resource_type_dict["resource_name"]
        self.min_core: int | None = resource_type_dict["mincore"]
        self.max_core: int | None = resource_type_dict["maxcore"]
        self.min_ram_per_core: int | None = resource_type_dict["minrampercore"]
        self.max_ram_per_core: int | None = resource_type_dict["maxrampercore"]

    def match(self, core_count: int | None, ram_count: float | None) -> bool:
        """Whether ``core_count`` cores with ``ram_count`` MB in total fall in this type."""
        if not core_count or not ram_count:
            return False
        ram_per_core = ram_count / core_count
        return not (
            (self.max_core and core_count > self.max_core)
            or (self.min_core and core_count < self.min_core)
            or (self.max_ram_per_core and ram_per_core > self.max_ram_per_core)
            or (self.min_ram_per_core and ram_per_core < self.min_ram_per_core)
        )

    def __repr__(self) -> str:
        return (f"<ResourceType {self.resource_name} cores {self.min_core}-{self.max_core} "
                f"ram/core {self.min_ram_per_core}-{self.max_ram_per_core}>")


def resource_type_entries(data: Any) -> list | None:
    """The list of type definitions in ``data``: the real server's bare list, or the same list
    wrapped as ``{"ResourceTypes": [...]}`` (older servers and caches); None for anything else."""
    if isinstance(data, dict):
        data = data.get("ResourceTypes")
    return data if isinstance(data, list) else None


def _default_cache_reader(main_key: str) -> Any:
    from .queue_config_store import read_cache

    return read_cache(main_key)


class ResourceTypeMapper(metaclass=SingletonWithID):
    """Resource-type definitions and the worker sizes they imply.

    Keywords: ``cache_reader`` (``f(key)`` → CacheSpec or None; default the DB cache) and
    ``id`` (singleton key).
    """

    def __init__(self, cache_reader: Callable[[str], Any] | None = None, id: str | None = None) -> None:
        self.lock = threading.Lock()
        self.cache_reader = cache_reader or _default_cache_reader
        self.resource_types: dict[str, ResourceType] = {}
        self.last_update: float | None = None
        self.from_cache = False

    def load_data(self, force: bool = False) -> None:
        """(Re)read the definitions if older than 10 minutes (or ``force``)."""
        with self.lock:
            if not force and self.last_update is not None and time.monotonic() - self.last_update < RELOAD_INTERVAL:
                return
            try:
                cached = getattr(self.cache_reader(CACHE_KEY), "data", None)
            except Exception:
                cached = None
            cached = resource_type_entries(cached)
            entries = cached if cached else DEFAULT_RESOURCE_TYPES
            types: dict[str, ResourceType] = {}
            for entry in entries:
                try:
                    types[entry["resource_name"]] = ResourceType(entry)
                except (KeyError, TypeError):
                    continue
            self.resource_types = types or {e["resource_name"]: ResourceType(e) for e in DEFAULT_RESOURCE_TYPES}
            self.from_cache = entries is not DEFAULT_RESOURCE_TYPES and bool(types)
            self.last_update = time.monotonic()

    def is_valid_resource_type(self, resource_name: str) -> bool:
        """Whether ``resource_name`` is a known resource type."""
        self.load_data()
        return resource_name in self.resource_types

    def get_resource_type(self, resource_name: str) -> ResourceType | None:
        """The definition of ``resource_name``, or None."""
        self.load_data()
        return self.resource_types.get(resource_name)

    def calculate_worker_requirements(self, resource_name: str, queue_dict: Any) -> tuple[Any, Any]:
        """(cores, memory MB) to request for a worker of ``resource_name`` on a queue.

        ``queue_dict`` is the CRIC panda-queue dict (``corecount``, ``maxrss``,
        ``capability``). A non-unified queue gets its own (corecount, maxrss) (the original
        returns these two swapped; here the order is always cores, memory); on a unified
        queue the type's max cores (capped by the queue's) and max RAM per core (capped by the queue's) give the size; unknown type → (1, 1).
        """
        worker_cores, worker_memory = 1, 1
        self.load_data()
        resource_type = self.resource_types.get(resource_name)
        if resource_type is None:
            return worker_cores, worker_memory
        site_max_rss = _get(queue_dict, CRIC_RAM_TAG, 0) or 0
        site_core_count = _get(queue_dict, CRIC_CORE_TAG, 1) or 1
        if _get(queue_dict, CAPABILITY_TAG, "") != UNIFIED_QUEUE_TAG:
            return site_core_count, site_max_rss
        worker_cores = min(resource_type.max_core, site_core_count) if resource_type.max_core else site_core_count
        site_per_core = site_max_rss / site_core_count
        if resource_type.max_ram_per_core:
            worker_memory = min(resource_type.max_ram_per_core * worker_cores, site_per_core * worker_cores)
        else:
            worker_memory = site_per_core * worker_cores
        return worker_cores, int(math.ceil(worker_memory))

    def is_single_core_resource_type(self, resource_name: str) -> bool:
        """True when the type allows exactly one core."""
        resource_type = self.get_resource_type(resource_name)
        return resource_type is not None and resource_type.min_core == resource_type.max_core == 1

    def is_multi_core_resource_type(self, resource_name: str) -> bool:
        """True for a known type that is not single core."""
        return self.is_valid_resource_type(resource_name) and not self.is_single_core_resource_type(resource_name)

    def get_single_core_resource_types(self) -> list[str]:
        """Names of the single-core types."""
        self.load_data()
        return [name for name in self.resource_types if self.is_single_core_resource_type(name)]

    def get_multi_core_resource_types(self) -> list[str]:
        """Names of the multi-core types."""
        self.load_data()
        return [name for name in self.resource_types if not self.is_single_core_resource_type(name)]

    def get_all_resource_types(self) -> list[str]:
        """Names of all types."""
        self.load_data()
        return list(self.resource_types)

    def get_rtype_for_queue(self, queue_dict: Any) -> str:
        """The type a non-unified queue's (corecount, maxrss) falls in; "" for unified or no match."""
        self.load_data()
        if _get(queue_dict, CAPABILITY_TAG, "") == UNIFIED_QUEUE_TAG:
            return ""
        core_count = _get(queue_dict, CRIC_CORE_TAG, 1) or 1
        max_rss = _get(queue_dict, CRIC_RAM_TAG, 0) or 0
        for name, resource_type in self.resource_types.items():
            if resource_type.match(core_count, max_rss):
                return name
        return ""

    def is_high_memory_resource_type(self, resource_name: str) -> bool:
        """``*_HIMEM`` types, or types whose minimum RAM per core exceeds 2000 MB."""
        resource_type = self.get_resource_type(resource_name)
        if resource_type is None:
            return False
        return resource_name.endswith("_HIMEM") or (resource_type.min_ram_per_core or 0) > HIGH_MEMORY_PER_CORE
