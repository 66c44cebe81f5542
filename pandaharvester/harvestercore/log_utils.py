"""Harvester logging: one file per agent, greppable lines, object ids in every line.

Loggers are named ``panda.log.<name>``. Until :func:`configure_logging` is called (the master
does it with ``[master] logDir``), records propagate to Python's root logger, so plugins and
tests work without any setup. Once configured, each ``panda.log.<name>`` logger writes to
``<logDir>/panda-<name>.log`` at its level: ``[log_level] <name>``, else the default level
(panda_common.cfg ``[logger] log_level``, else INFO).

A line that is not emitted is never formatted: pass costly values as ``%s`` arguments, or test
``log.isEnabledFor(logging.DEBUG)`` before building a DEBUG line in a loop.

Line format::

    2026-11-25 11:40:00,123 panda.log.monitor: DEBUG check_workers <workerID=12> done
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
import threading
import traceback
from typing import Any, Protocol

LOGGER_PREFIX = "panda.log."
LINE_FORMAT = "%(asctime)s %(name)s: %(levelname)s %(message)s"

_lock = threading.RLock()
_state: dict[str, Any] = {"log_dir": None, "levels": {}, "default_level": logging.DEBUG, "suffix": ""}
_known: set[str] = set()


class DialogHook(Protocol):
    """What a logger hook receives: the DB's dialog store (``DBInterface``)."""

    def add_dialog_message(self, message: str, level: str, module_name: str, identifier: str | None = None) -> Any: ...


def _file_handler(name: str, log_dir: str) -> logging.Handler:
    path = os.path.join(log_dir, f"panda-{name}{_state['suffix']}.log")
    handler = logging.handlers.WatchedFileHandler(path, delay=True)
    handler.setFormatter(logging.Formatter(LINE_FORMAT))
    handler.set_name(f"harvester-file:{name}")
    return handler


def _attach(logger: logging.Logger, name: str) -> None:
    """Give ``logger`` its file handler and level when logging is configured."""
    log_dir = _state["log_dir"]
    level = _state["levels"].get(name, _state["default_level"])
    if level is not None:
        logger.setLevel(level)
    if log_dir is None:
        return
    for handler in list(logger.handlers):
        if handler.get_name() and handler.get_name().startswith("harvester-file:"):
            logger.removeHandler(handler)
            handler.close()
    logger.addHandler(_file_handler(name, log_dir))
    logger.propagate = False


def configure_logging(log_dir: str | None, levels: dict[str, Any] | None = None,
                      default_level: int | str | None = None, file_suffix: str = "") -> None:
    """Send every ``panda.log.<name>`` logger to ``<log_dir>/panda-<name><file_suffix>.log``.

    ``file_suffix``: ``-p<K>`` in worker process K of a multi-process instance (``[master]
    nProcesses``), so that each process has its own file per agent.

    ``levels`` maps logger names to levels (the cfg's ``[log_level]`` section); the others log
    at ``default_level``: INFO by default. ``log_dir=None`` goes back to the unconfigured state
    (records propagate to the root logger, DEBUG by default: the root's handlers choose).
    """
    if default_level is None:
        default_level = logging.INFO if log_dir is not None else logging.DEBUG
    with _lock:
        if log_dir is not None:
            os.makedirs(log_dir, exist_ok=True)
        _state["log_dir"] = log_dir
        _state["levels"] = {k: _to_level(v) for k, v in (levels or {}).items()}
        _state["default_level"] = _to_level(default_level)
        _state["suffix"] = file_suffix
        for name in _known:
            _attach(logging.getLogger(LOGGER_PREFIX + name), name)


def log_dir() -> str | None:
    """The configured log directory, or None before :func:`configure_logging`."""
    return _state["log_dir"]


def known_level(name: str) -> int | None:
    """Effective level of the Harvester logger ``panda.log.<name>``; None if this process has no such logger."""
    with _lock:
        if name not in _known:
            return None
    return logging.getLogger(LOGGER_PREFIX + name).getEffectiveLevel()


def _to_level(value: Any) -> int:
    if isinstance(value, int):
        return value
    level = logging.getLevelName(str(value).upper())
    if not isinstance(level, int):
        raise ValueError(f"unknown log level {value!r}: use DEBUG, INFO, WARNING, ERROR or CRITICAL")
    return level


def reopen_log_files() -> None:
    """Close every Harvester log file so the next record reopens it (SIGHUP, logrotate)."""
    with _lock:
        for name in _known:
            for handler in logging.getLogger(LOGGER_PREFIX + name).handlers:
                if isinstance(handler, logging.FileHandler):
                    handler.acquire()
                    try:
                        if handler.stream is not None:
                            handler.stream.close()
                            handler.stream = None
                    finally:
                        handler.release()


def do_log_rollover() -> None:
    """Rename every current log file to ``<file>.1`` (``--rotate_log`` before start)."""
    directory = _state["log_dir"]
    if directory is None:
        return
    reopen_log_files()
    for entry in os.listdir(directory):
        if entry.startswith("panda-") and entry.endswith(".log"):
            path = os.path.join(directory, entry)
            os.replace(path, path + ".1")


def setup_logger(name: str | None = None, log_level: Any = None) -> logging.Logger:
    """Return the ``panda.log.<name>`` logger; ``name`` defaults to the caller's module."""
    if name is None:
        module_name = sys._getframe(1).f_globals.get("__name__")
        name = module_name.split(".")[-1] if module_name else "harvester"
    logger = logging.getLogger(LOGGER_PREFIX + name)
    with _lock:
        if name not in _known:
            _known.add(name)
            _attach(logger, name)
        if log_level is not None:
            logger.setLevel(_to_level(log_level))
    return logger


class LogWrapper(logging.LoggerAdapter):
    """A logger that prefixes each line with a method name and an object token.

    With a ``hook`` (the DB interface), records at or above ``hook_level`` are also stored as
    dialog messages that the propagator sends to PanDA.
    """

    def __init__(self, logger: logging.Logger, prefix: str, hook: DialogHook | None = None,
                 hook_level: int = logging.WARNING):
        super().__init__(logger, {})
        self.prefix = prefix
        self.hook = hook
        self.hook_level = hook_level

    def process(self, msg: Any, kwargs: Any) -> tuple[str, Any]:
        return f"{self.prefix} {msg}", kwargs

    def log(self, level: int, msg: Any, *args: Any, **kwargs: Any) -> None:
        super().log(level, msg, *args, **kwargs)
        if self.hook is not None and level >= self.hook_level:
            try:
                text = f"{self.prefix} {msg % args if args else msg}"
                self.hook.add_dialog_message(text, logging.getLevelName(level), self.logger.name.split(".")[-1])
            except Exception:  # a broken dialog store must never break logging
                pass

    # LoggerAdapter's shortcuts go through self.log, so the hook sees them too.
    def debug(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        if self.isEnabledFor(logging.DEBUG):
            self.log(logging.DEBUG, msg, *args, **kwargs)

    def info(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        self.log(logging.INFO, msg, *args, **kwargs)

    def warning(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        self.log(logging.WARNING, msg, *args, **kwargs)

    def error(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        self.log(logging.ERROR, msg, *args, **kwargs)

    def critical(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        self.log(logging.CRITICAL, msg, *args, **kwargs)

    def exception(self, msg: Any, *args: Any, exc_info: Any = True, **kwargs: Any) -> None:
        self.log(logging.ERROR, msg, *args, exc_info=exc_info, **kwargs)


def make_logger(tmp_log: logging.Logger | logging.LoggerAdapter, token: Any = None,
                method_name: str | None = None, hook: DialogHook | None = None) -> LogWrapper:
    """Wrap ``tmp_log`` so each line reads ``<method> <token> message``."""
    if method_name is None:
        # the caller's function name; inspect.stack() would read the source of every frame
        method_name = sys._getframe(1).f_code.co_name
    prefix = f"{method_name} <{token}>" if token is not None else f"{method_name} :"
    base = tmp_log.logger if isinstance(tmp_log, logging.LoggerAdapter) else tmp_log
    if isinstance(tmp_log, LogWrapper):
        prefix = f"{tmp_log.prefix} {prefix}"
    return LogWrapper(base, prefix, hook=hook)


def ids_text(key: str, ids: Any) -> str:
    """``key=1 key=2 ...`` for a line about several objects: ``grep key=2`` finds it as it finds
    a line about that object alone."""
    return " ".join(f"{key}={i}" for i in ids)


def dump_error_message(tmp_log: Any, err_str: str | None = None, no_message: bool = False) -> str:
    """Log the current exception (or ``err_str``) with its traceback and return the text."""
    method = "" if isinstance(tmp_log, LogWrapper) else f"{sys._getframe(1).f_code.co_name} : "
    if err_str is None:
        err_type, err_value = sys.exc_info()[:2]
        name = err_type.__name__ if err_type else "Error"
        err_str = f"{method}{name} {err_value} " + traceback.format_exc()
    if not no_message:
        tmp_log.error(err_str)
    return err_str
