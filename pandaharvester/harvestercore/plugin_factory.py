"""Builds plugin instances from queue-config plugin dicts.

``{"module": "pandaharvester.harvestersubmitter.dummy_submitter", "name": "DummySubmitter",
"sleepTime": 5}`` gives ``DummySubmitter(sleepTime=5, dbInterface=DBInterface())``. Classes are
imported once and cached by ``"<module>.<name>"``; every call makes a new instance, as in the
original, so per-queue attributes never leak from one queue to another.
"""

from __future__ import annotations

import importlib
import threading
from typing import Any

from pandaharvester.errors import PluginError

from . import log_utils

_logger = log_utils.setup_logger("plugin_factory")

# keys of a plugin dict that are for the factory, not for the plugin's constructor
_FACTORY_KEYS = ("module", "name", "_role")


class PluginFactory:
    """Imports plugin classes by dotted name and instantiates them with the queue-config keys."""

    def __init__(self, no_db: bool = False) -> None:
        self.classMap: dict[str, type] = {}
        self.noDB = no_db
        self._lock = threading.Lock()

    @staticmethod
    def get_plugin_key(plugin_conf: dict[str, Any]) -> str:
        """The cache key of a plugin dict: ``"<module>.<name>"``."""
        return f"{plugin_conf['module']}.{plugin_conf['name']}"

    def get_plugin(self, plugin_conf: dict[str, Any] | None, role: str | None = None) -> Any:
        """A new instance of the plugin described by ``plugin_conf`` (None if module/name unset).

        ``role`` (or the key ``_role``) names the plugin's job, e.g. "submitter", for error
        messages. Raises :class:`PluginError` naming the queue, role and dotted path when the
        module or class cannot be loaded or the constructor fails.
        """
        if plugin_conf is None:
            return None
        module_name = plugin_conf.get("module")
        class_name = plugin_conf.get("name")
        if module_name is None or class_name is None:
            return None
        role = role or plugin_conf.get("_role")
        cls = self._get_class(module_name, class_name, plugin_conf.get("queueName"), role)
        args = {key: value for key, value in plugin_conf.items() if key not in _FACTORY_KEYS}
        if not self.noDB:
            db_interface = self._make_db_interface()
            if db_interface is not None:
                args["dbInterface"] = db_interface
        try:
            impl = cls(**args)
        except Exception as exc:
            raise PluginError(
                f"{self._where(plugin_conf.get('queueName'), role)}: {module_name}.{class_name}"
                f"({', '.join(sorted(args))}) failed in its constructor: {type(exc).__name__}: {exc}. "
                "Check the plugin's keys in the queue config."
            ) from exc
        # middleware (herder) wrappers also get the un-wrapped plugin for their bare functions
        if "original_config" in plugin_conf and "bareFunctions" in plugin_conf:
            impl.bare_impl = self.get_plugin(plugin_conf["original_config"], role=role)
        return impl

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _where(queue_name: str | None, role: str | None) -> str:
        parts = []
        if queue_name:
            parts.append(f"queue {queue_name!r}")
        parts.append(f"{role} plugin" if role else "plugin")
        return " ".join(parts)

    def _get_class(self, module_name: str, class_name: str, queue_name: str | None, role: str | None) -> type:
        key = f"{module_name}.{class_name}"
        cls = self.classMap.get(key)
        if cls is not None:
            return cls
        tmp_log = log_utils.make_logger(_logger, method_name="get_plugin")
        where = self._where(queue_name, role)
        tmp_log.debug(f"importing {module_name} for {where}")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                hint = "check the 'module' value in the queue config (a dotted Python module path)"
            else:
                hint = f"the module needs {exc.name!r}, which is not installed"
            raise PluginError(f"{where}: cannot import module {module_name!r} for {key}: {exc}; {hint}") from exc
        except Exception as exc:
            raise PluginError(
                f"{where}: importing module {module_name!r} for {key} failed: {type(exc).__name__}: {exc}; "
                "fix the module or its dependencies"
            ) from exc
        cls = getattr(module, class_name, None)
        if cls is None:
            raise PluginError(
                f"{where}: module {module_name!r} has no class {class_name!r} ({key}); "
                "check the 'name' value in the queue config"
            )
        with self._lock:
            self.classMap[key] = cls
        return cls

    @staticmethod
    def _make_db_interface() -> Any:
        try:
            from pandaharvester.harvestercore.db_interface import DBInterface
        except ImportError as exc:
            log_utils.make_logger(_logger, method_name="get_plugin").debug(
                f"no DBInterface available ({exc}); plugins get no dbInterface")
            return None
        return DBInterface()
