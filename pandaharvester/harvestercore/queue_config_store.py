"""Versions of queue configs (configID history) and every DB call the queue config makes.

Two stores with one interface:

* :class:`MemoryConfigStore` — configIDs and history kept in the process (``update_db=False``
  or no DB); nothing is written anywhere.
* :class:`DBConfigStore` — each distinct config is dumped as a ``QueueConfigDumpSpec``
  (qcdump_table) with a configID from ``SEQ_configID``, the pq_table is refilled, and the
  reload timestamp is shared between processes through the cache table.

All DB access of the queue-config code lives here (the ``read_cache`` helper is also used by
the resolver and the resource-type mapper), so that the rest runs without a DB.
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from typing import Any, Iterable

from .log_utils import make_logger, setup_logger
from .queue_config import QueueConfig
from .time_utils import naive_utcnow

_logger = setup_logger("queue_config_mapper")

RELOAD_LOCK = "qconf_reload"
PQ_FILL_LOCK = "pq_table_fill"
LOCK_OWNER = "qconf_universal"
LAST_RELOAD_KEY = "_qconf_last_reload"
LAST_PQ_FILL_KEY = "_pq_table_last_fill"
UNIVERSAL_SUB_KEY = "_universal"
PQ_FILL_LOCK_INTERVAL = 120


def get_db_proxy() -> Any:
    """A DB proxy (the pool when present), imported lazily; raises ImportError without a DB layer."""
    try:
        from .db_proxy_pool import DBProxyPool as proxy_class
    except ImportError:
        from .db_proxy import DBProxy as proxy_class
    return proxy_class()


def _get_cache(proxy: Any, main_key: str, sub_key: str | None, fresh: bool) -> Any:
    """``proxy.get_cache``; ``fresh`` bypasses the proxy's in-process cache when it has one."""
    if fresh:
        try:
            return proxy.get_cache(main_key, sub_key, from_local_cache=False)
        except TypeError:  # a proxy without the from_local_cache keyword
            pass
    return proxy.get_cache(main_key, sub_key)


def read_cache(main_key: str, sub_key: str | None = None, fresh: bool = False) -> Any:
    """CacheSpec stored by the cacher under ``main_key`` (``.data`` holds the content), or None.

    Never raises: no DB layer, no DB file or no such entry all give None.
    """
    try:
        return _get_cache(get_db_proxy(), main_key, sub_key, fresh)
    except Exception as exc:  # the cache is optional for every caller
        make_logger(_logger, method_name="read_cache").debug(f"no cache {main_key}: {exc.__class__.__name__}: {exc}")
        return None


def dump_data(queue_config: QueueConfig) -> dict[str, Any]:
    """What is versioned: every attribute but the (volatile) queueStatus, deep-copied."""
    data = copy.deepcopy(vars(queue_config))
    data.pop("queueStatus", None)
    return data


def checksum_of(data: dict[str, Any]) -> str:
    """MD5 of the canonical JSON of a dump."""
    text = json.dumps(data, sort_keys=True, default=str)
    return hashlib.md5(text.encode()).hexdigest()


def config_from_dump(queue_name: str, config_id: int, data: dict[str, Any]) -> QueueConfig:
    """Rebuild a historical QueueConfig from its dump."""
    queue_config = QueueConfig(queue_name)
    queue_config.update_attributes(copy.deepcopy(data))
    queue_config.configID = config_id
    return queue_config


class MemoryConfigStore:
    """configIDs and history for one process, without a DB."""

    persistent = False

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}  # dumpUniqueName → configID
        self._history: dict[int, QueueConfig] = {}
        self._next_id = 1

    def assign_config_ids(self, queues: dict[str, QueueConfig]) -> None:
        """Give each config the configID of an identical earlier version, or a new one."""
        for name, queue_config in queues.items():
            data = dump_data(queue_config)
            data.pop("configID", None)
            unique_name = f"{name}_{checksum_of(data)}"
            if unique_name not in self._ids:
                self._ids[unique_name] = self._next_id
                self._history[self._next_id] = config_from_dump(name, self._next_id, data)
                self._next_id += 1
            queue_config.configID = self._ids[unique_name]

    def history(self) -> dict[int, QueueConfig]:
        """All versions seen by this process, by configID."""
        return dict(self._history)

    def last_reload_elsewhere(self) -> float | None:
        """Epoch of the last reload by another process (never known without a DB)."""
        return None

    def mark_reload(self, update_interval: float) -> None:
        """Nothing to share without a DB."""

    def fill_panda_queue_table(self, active_queue_names: Iterable[str], mapper: Any, refill_table: bool) -> None:
        """No pq_table without a DB."""


class DBConfigStore:
    """configIDs, history, pq_table and reload coordination through the Harvester DB."""

    persistent = True

    def __init__(self, proxy: Any | None = None) -> None:
        self.proxy = proxy if proxy is not None else get_db_proxy()
        self._dumps: dict[str, Any] = {}
        self._live: dict[str, dict[str, Any]] = {}  # queueName → current config data (secrets unmasked)

    def _log(self, method: str) -> Any:
        return make_logger(_logger, method_name=method)

    def _load_dumps(self) -> dict[str, Any]:
        dumps = self.proxy.get_queue_config_dumps() or {}
        if not isinstance(dumps, dict):  # accept a list of specs as well
            dumps = {spec.dumpUniqueName: spec for spec in dumps}
        return dict(dumps)

    def assign_config_ids(self, queues: dict[str, QueueConfig]) -> None:
        """Look up or add the dump of each config; set its configID."""
        from .queue_config_dump_spec import QueueConfigDumpSpec

        tmp_log = self._log("assign_config_ids")
        dumps = self._load_dumps()
        self._live = {name: vars(queue_config) for name, queue_config in queues.items()}
        for name, queue_config in queues.items():
            spec = QueueConfigDumpSpec()
            spec.queueName = name
            spec.set_data(vars(queue_config))
            if spec.dumpUniqueName in dumps:
                queue_config.configID = dumps[spec.dumpUniqueName].configID
                continue
            spec.creationTime = naive_utcnow()
            spec.configID = self.proxy.get_next_seq_number("SEQ_configID")
            if not self.proxy.add_queue_config_dump(spec):
                # another process added the same dump meanwhile: take its configID
                spec.configID = self.proxy.get_config_id_dump(spec)
                if spec.configID is None:
                    tmp_log.error(f"failed to get configID for {spec.dumpUniqueName}")
                    continue
            dumps[spec.dumpUniqueName] = spec
            queue_config.configID = spec.configID
        self._dumps = dumps

    def history(self) -> dict[int, QueueConfig]:
        """Every dumped version in the DB, by configID; the secrets the dumps have masked are taken
        from the queue's current config (a queue no longer configured keeps them masked)."""
        from .queue_config_dump_spec import restore_secrets

        return {spec.configID: config_from_dump(spec.queueName, spec.configID,
                                                restore_secrets(spec.data or {}, self._live.get(spec.queueName)))
                for spec in self._dumps.values() if spec.configID is not None}

    def last_reload_elsewhere(self) -> float | None:
        """Epoch of the last reload recorded by any process, or None."""
        spec = _get_cache(self.proxy, LAST_RELOAD_KEY, UNIVERSAL_SUB_KEY, fresh=True)
        try:
            return float(spec.data) if spec is not None else None
        except (TypeError, ValueError):
            return None

    def mark_reload(self, update_interval: float) -> None:
        """Record this reload for the other processes (one writer per interval, via a process lock)."""
        if self.proxy.get_process_lock(RELOAD_LOCK, LOCK_OWNER, update_interval):
            self.proxy.refresh_cache(LAST_RELOAD_KEY, UNIVERSAL_SUB_KEY, f"{time.time():.3f}")

    def fill_panda_queue_table(self, active_queue_names: Iterable[str], mapper: Any, refill_table: bool) -> None:
        """Refill pq_table from the active queues (one process at a time)."""
        tmp_log = self._log("fill_panda_queue_table")
        if not self.proxy.get_process_lock(PQ_FILL_LOCK, LOCK_OWNER, PQ_FILL_LOCK_INTERVAL):
            tmp_log.debug("another process is filling pq_table; skipped")
            return
        try:
            if self.proxy.fill_panda_queue_table(list(active_queue_names), mapper, refill_table=refill_table):
                self.proxy.refresh_cache(LAST_PQ_FILL_KEY, UNIVERSAL_SUB_KEY, f"{time.time():.3f}")
            else:
                tmp_log.warning("failed to fill pq_table")
        finally:
            self.proxy.release_process_lock(PQ_FILL_LOCK, LOCK_OWNER)
