"""Queue configuration: the process-wide map from queue name (or configID) to :class:`QueueConfig`.

``QueueConfigMapper()`` is a singleton per ``id`` keyword (as the original's SingletonWithID);
every accessor calls :meth:`QueueConfigMapper.load_data`, which reloads at most every
``[qconf] checkInterval`` seconds, and only when ``updateInterval`` has passed, the local
file changed, or another process reloaded. A bad queue is reported in ``mapper.errors`` (one
:class:`~pandaharvester.errors.QueueConfigError` per problem) and left out; the others load.
On a reload, a queue that was good before keeps its last good config while its new one is
bad (or its source unreadable), so its workers are still looked after (``mapper.kept_previous``).

The sources, the layering rules and the DB calls live in ``queue_config_loader``,
``queue_config_builder`` and ``queue_config_store``.
"""

from __future__ import annotations

import functools
import importlib
import threading
import time
from typing import Any, Callable

from pandaharvester.errors import QueueConfigError

from .core_utils import SingletonWithID
from .log_utils import make_logger, setup_logger
from .queue_config import (  # noqa: F401  (QueueConfig re-exported)
    MANDATORY_PLUGINS,
    MT_NoJob,
    QUEUE_LIMIT_ATTRS,
    UPDATABLE_PLUGIN_ATTRS,
    QueueConfig,
)
from .queue_config_builder import QueueBuilder, Resolver
from .queue_config_loader import QueueConfigSettings, file_signature, load_sources, resolve_config_path
from .queue_config_store import DBConfigStore, MemoryConfigStore, read_cache

__all__ = ["QueueConfig", "QueueConfigMapper", "QueueConfigSettings"]

_logger = setup_logger("queue_config_mapper")


class QueueConfigMapper(metaclass=SingletonWithID):
    """Resolved queue configs of this instance, reloaded periodically.

    Keyword arguments (all optional; the defaults give the original's behaviour):

    * ``update_db`` — version configs in the DB and refill pq_table (falls back to an
      in-memory history, with a warning, when the DB layer is not importable);
    * ``id`` — singleton key: another id gives another, independent mapper (tests);
    * ``check_plugins`` — import every plugin class at load time and leave out queues whose
      plugin cannot be imported (default True, as the original);
    * ``settings`` — a fixed :class:`QueueConfigSettings` instead of reading ``[qconf]``;
    * ``resolver`` — a PanDA-queue resolver instead of ``[qconf] resolverModule/Class``;
    * ``cache_reader`` — ``f(main_key, sub_key=None)`` → CacheSpec or None (default: the DB cache);
    * ``store`` — a configID store (``MemoryConfigStore``/``DBConfigStore``).
    """

    # the original's class attributes
    mandatory_attrs = set(MANDATORY_PLUGINS)
    queue_limit_attrs = set(QUEUE_LIMIT_ATTRS)
    updatable_plugin_attrs = set(UPDATABLE_PLUGIN_ATTRS)

    def __init__(self, update_db: bool = True, *, id: str | None = None, check_plugins: bool = True,
                 settings: QueueConfigSettings | None = None, resolver: Resolver | None = None,
                 cache_reader: Callable[..., Any] | None = None, store: Any | None = None) -> None:
        self.lock = threading.RLock()
        self.toUpdateDB = update_db
        self.check_plugins = check_plugins
        self._fixed_settings = settings
        self._fixed_resolver = resolver
        self.cache_reader = cache_reader or functools.partial(read_cache, fresh=True)
        self.store = store if store is not None else self._make_store(update_db)
        self.queueConfig: dict[str, QueueConfig] = {}
        self.activeQueues: dict[str, QueueConfig] = {}
        self.queueConfigWithID: dict[int, QueueConfig] = {}
        self.errors: list[QueueConfigError] = []
        self.kept_previous: list[str] = []  # queues running on their last good config
        self.origins: dict[str, str] = {}
        self.lastUpdate: float | None = None  # epoch of the last reload by this process
        self._last_update_mono: float | None = None
        self._last_check_mono: float | None = None
        self._local_signature: tuple[int, int] | None = None
        self._clock: Callable[[], float] = time.monotonic

    @classmethod
    def reset(cls, id: str | None = None) -> None:
        """Forget the singleton instance(s) so that the next call builds a fresh mapper."""
        with cls._instances_lock:
            if id is None:
                cls._instances.clear()
            else:
                cls._instances.pop(str(id), None)

    @staticmethod
    def _make_store(update_db: bool) -> Any:
        if not update_db:
            return MemoryConfigStore()
        try:
            return DBConfigStore()
        except Exception as exc:  # no DB layer yet, or DB cannot be opened
            make_logger(_logger, method_name="__init__").warning(
                f"DB not available ({exc.__class__.__name__}: {exc}); queue config versions kept in memory")
            return MemoryConfigStore()

    # ------------------------------------------------------------ settings and resolver
    @property
    def settings(self) -> QueueConfigSettings:
        """The ``[qconf]`` settings in force (read afresh unless fixed at construction)."""
        return self._fixed_settings or QueueConfigSettings.from_harvester_config()

    def _get_resolver(self, settings: QueueConfigSettings, tmp_log: Any) -> Resolver | None:
        if self._fixed_resolver is not None:
            return self._fixed_resolver
        if not (settings.resolver_module and settings.resolver_class):
            return None
        try:
            module = importlib.import_module(settings.resolver_module)
            return getattr(module, settings.resolver_class)()
        except Exception as exc:
            tmp_log.error(f"cannot make resolver {settings.resolver_module}.{settings.resolver_class} "
                          f"({exc.__class__.__name__}: {exc}); dynamic queues and auto-blacklisting disabled")
            return None

    # ------------------------------------------------------------ loading
    def _reload_due(self, settings: QueueConfigSettings, now: float) -> bool:
        if self._last_update_mono is None or now - self._last_update_mono >= settings.update_interval:
            return True
        if settings.config_file:
            if file_signature(resolve_config_path(settings.config_file)) != self._local_signature:
                return True
        try:
            elsewhere = self.store.last_reload_elsewhere()
        except Exception:
            elsewhere = None
        return elsewhere is not None and self.lastUpdate is not None and elsewhere > self.lastUpdate

    def load_data(self, refill_table: bool = False, force: bool = False) -> None:
        """Reload the queue configs if due (see the class docstring); ``force`` reloads now."""
        tmp_log = make_logger(_logger, method_name="load_data")
        settings = self.settings
        with self.lock:
            now = self._clock()
            checked_recently = (self._last_check_mono is not None
                                and now - self._last_check_mono < settings.check_interval)
            if not force and checked_recently:
                return
            self._last_check_mono = now
            if not force and not self._reload_due(settings, now):
                return
            self._reload(settings, tmp_log)
            self._last_update_mono = self._clock()
            self._last_check_mono = self._last_update_mono
        if self.store.persistent:
            try:
                self.store.fill_panda_queue_table(self.activeQueues.keys(), self, refill_table)
            except Exception as exc:
                tmp_log.warning(f"failed to fill pq_table ({exc.__class__.__name__}: {exc})")
        tmp_log.debug("done")

    def _reload(self, settings: QueueConfigSettings, tmp_log: Any) -> None:
        if self.store.persistent:
            try:
                self.store.mark_reload(settings.update_interval)
            except Exception as exc:
                tmp_log.warning(f"failed to record reload time ({exc.__class__.__name__}: {exc})")
        loaded = load_sources(settings, self.cache_reader)
        self._local_signature = loaded.local_signature
        for warning in loaded.warnings:
            tmp_log.warning(warning)
        resolver = self._get_resolver(settings, tmp_log)
        builder = QueueBuilder(resolver=resolver, dynamic=settings.dynamic,
                               default_template=settings.default_template_queue_name,
                               import_check=self.check_plugins, warn=tmp_log.warning, debug=tmp_log.debug)
        result = builder.build(loaded.remote, loaded.local, loaded.remote_source, loaded.local_source)
        errors = loaded.errors + result.errors
        for error in errors:
            tmp_log.error(str(error))
        queues = result.queues
        self._set_status(queues, settings, resolver)
        try:
            self.store.assign_config_ids(queues)
            history = self.store.history()
        except Exception as exc:  # a DB problem must not lose the queues themselves
            tmp_log.error(f"cannot version queue configs ({exc.__class__.__name__}: {exc}); configIDs not set")
            history = self.queueConfigWithID
        kept = self._keep_previous(queues, errors, tmp_log)
        active = {name: qc for name, qc in queues.items() if self._is_active(qc, settings, resolver, tmp_log)}
        self.queueConfig = queues
        self.activeQueues = active
        self.queueConfigWithID = history
        self.errors = errors
        self.kept_previous = kept
        self.origins = result.origins
        self.lastUpdate = time.time()
        tmp_log.debug(f"loaded {len(queues)} queues ({len(active)} active, {len(errors)} errors)")

    def _keep_previous(self, queues: dict[str, QueueConfig], errors: list[QueueConfigError], tmp_log: Any
                       ) -> list[str]:
        """Put back the last good config of queues this load could not build; their names.

        A queue whose new definition is invalid keeps its previous version; when a whole
        source failed (unreadable file, bad JSON, wrong top level) every queue it may have
        held is kept. Queues simply removed from a readable config are not kept.
        """
        if not self.queueConfig or not errors:
            return []
        source_failed = any(error.queue_name is None for error in errors)
        bad_names = {error.queue_name for error in errors if error.queue_name is not None}
        kept = []
        for name, previous in self.queueConfig.items():
            if name in queues or not (source_failed or name in bad_names):
                continue
            queues[name] = previous
            kept.append(name)
            tmp_log.error(f"queue {name!r}: the new configuration could not be loaded (see the errors above); "
                          f"keeping the previous one (configID={previous.configID}) until it is fixed")
        return kept

    @staticmethod
    def _set_status(queues: dict[str, QueueConfig], settings: QueueConfigSettings, resolver: Any) -> None:
        for name, qc in queues.items():
            if qc.queueStatus is None and settings.auto_blacklist and resolver is not None:
                try:
                    qc.queueStatus = resolver.get_queue_status(name)
                except Exception:
                    qc.queueStatus = None
            qc.queueStatus = (qc.queueStatus or "online").lower()

    def _is_active(self, qc: QueueConfig, settings: QueueConfigSettings, resolver: Any, tmp_log: Any) -> bool:
        if qc.queueStatus == "offline":
            tmp_log.debug(f"{qc.queueName} inactive: offline")
            return False
        if settings.pilot_version is not None:
            info = self._panda_queue_info(resolver, qc.siteName)
            if info is not None and str(info.get("pilot_version")) != settings.pilot_version:
                tmp_log.debug(f"{qc.queueName} inactive: pilot version differs from {settings.pilot_version}")
                return False
        names = settings.queue_list
        if "ALL" not in names and "DYNAMIC" not in names and qc.queueName not in names:
            tmp_log.debug(f"{qc.queueName} inactive: not in [qconf] queueList")
            return False
        return True

    @staticmethod
    def _panda_queue_info(resolver: Any, site_name: str) -> dict[str, Any] | None:
        if resolver is None or not hasattr(resolver, "get"):
            from .info_dicts import PandaQueuesDict

            resolver = PandaQueuesDict()
        try:
            info = resolver.get(site_name)
        except Exception:
            return None
        return info if isinstance(info, dict) else None

    # ------------------------------------------------------------ accessors
    def has_queue(self, queue_name: str, config_id: int | None = None) -> bool:
        """Whether the queue (or, with ``config_id``, that config version) is known."""
        self.load_data()
        if config_id is not None:
            return config_id in self.queueConfigWithID
        return queue_name in self.queueConfig

    def get_queue(self, queue_name: str, config_id: int | None = None) -> QueueConfig | None:
        """Config of a queue: the version ``config_id`` if known, else the current one, else None."""
        self.load_data()
        if config_id is not None and config_id in self.queueConfigWithID:
            return self.queueConfigWithID[config_id]
        return self.queueConfig.get(queue_name)

    def get_all_queues(self) -> dict[str, QueueConfig]:
        """Every valid queue, active or not."""
        self.load_data()
        return self.queueConfig

    def get_active_queues(self) -> dict[str, QueueConfig]:
        """Queues this instance works on (not offline, in queueList, matching pilot version)."""
        self.load_data()
        return self.activeQueues

    def get_active_ups_queues(self) -> list[str]:
        """Names of active unified-pilot-streaming queues (runMode slave, mapType NoJob)."""
        return [name for name, qc in self.get_active_queues().items()
                if qc.runMode == "slave" and qc.mapType == MT_NoJob]

    def get_all_queues_with_config_ids(self) -> dict[int, QueueConfig]:
        """Every known config version, by configID."""
        self.load_data()
        return self.queueConfigWithID
