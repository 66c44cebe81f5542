"""The agent thread: one loop, written once for every agent.

An agent subclasses :class:`AgentBase`, names its cfg section and implements
:meth:`AgentBase.run_cycle` ("what to pick and what to do with it"). The base class owns the
rest of the cycle::

    bootstrap()                       # once, in the thread
    while True:
        more = run_one_cycle()        # stopwatch, run_cycle(), "done : took X sec",
                                      # lockInterval warning, exception capture
        if wait_for_next_cycle(more): # single mode, stop event, or sleepTime;
            break                     # a full batch runs again at once
    teardown()

``run_cycle()`` returns True when it found a full batch (more work is waiting), so the next
cycle starts without sleeping. A plugin call wrapped in :meth:`AgentBase.call_plugin` turns an
exception into ``(False, "<Class>.<method> raised <Type>: <message>")`` so that it ends up as a
diagnostic on the worker or job, never as a dead thread. Anything that still escapes the loop
(a plugin calling ``sys.exit``, an error in the base itself) ends the thread: it is logged as
CRITICAL in the agent's log and kept in ``fatalError``; the master, which watches its threads,
then stops harvester with a non-zero exit status instead of running on without this agent.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
from typing import Any

from pandaharvester.harvestercore import core_utils

_MISSING = object()


class AgentBase(threading.Thread):
    """Base class of every agent thread (``ctor(single_mode)`` as in the original).

    Class attributes a subclass sets:

    - ``cfg_section``: cfg section holding ``sleepTime`` / ``lockInterval`` (e.g. ``"monitor"``).
    - ``log_name``: logger name (``panda.log.<log_name>``, file ``panda-<log_name>.log``);
      defaults to the last part of the subclass's module name.
    - ``default_sleep_time``: seconds between cycles when the cfg has no ``sleepTime``.
    - ``randomize_sleep``: sleep ``sleepTime`` ±20 % (spreads threads of the same agent).
    - ``batch_keys``: the ``[cfg_section]`` keys bounding the rows one cycle takes (named by the
      lockInterval warning).
    """

    cfg_section: str = ""
    log_name: str | None = None
    default_sleep_time: float = 60
    randomize_sleep: bool = True
    batch_keys: tuple[str, ...] = ("maxWorkers",)

    def __init__(self, single_mode: bool = False) -> None:
        super().__init__(name=type(self).__name__, daemon=True)
        self.singleMode = single_mode
        self.stopEvent: threading.Event | None = threading.Event()
        self.hostname = socket.gethostname()
        self.os_pid = os.getpid()
        self.nCycles = 0
        self.heldProcessLocks: set[str] = set()
        self._db_interface: Any = _MISSING
        self.fatalError: BaseException | None = None  # what ended the thread, if it did not stop as asked
        # [propagator] minMessageLevel, read once per cycle (make_logger runs per job and per worker)
        self._hook_level: int | None = None

    # ------------------------------------------------------------ original surface
    def set_stop_event(self, stop_event: threading.Event | None) -> None:
        """Use ``stop_event`` (shared by all agents of the master) to stop this thread."""
        self.stopEvent = stop_event

    def set_single_mode(self, single_mode: bool) -> None:
        """Run one cycle only (True) or loop until stopped (False)."""
        self.singleMode = single_mode

    def terminated(self, wait_interval: float, randomize: bool = True) -> bool:
        """Sleep ``wait_interval`` s on the stop event; True when the agent must stop.

        Always True at once in single mode (each agent runs one cycle).
        """
        if self.singleMode:
            return True
        return core_utils.sleep(wait_interval, self.stopEvent, randomize)

    def get_pid(self) -> str:
        """``<hostname>_<os pid>-<thread ident hex>``: owner string of locks (lockedBy)."""
        ident = self.ident if self.ident is not None else threading.get_ident()
        return f"{self.hostname}_{self.os_pid}-{format(ident, 'x')}"

    @property
    def dbInterface(self) -> Any:
        """The plugin-facing DB interface (dialog hook); None when the DB layer is absent."""
        if self._db_interface is _MISSING:
            try:
                from pandaharvester.harvestercore.db_interface import DBInterface

                self._db_interface = DBInterface()
            except Exception:
                self._db_interface = None
        return self._db_interface

    @dbInterface.setter
    def dbInterface(self, value: Any) -> None:
        self._db_interface = value

    def make_logger(self, base_log: Any, token: Any = None, method_name: str | None = None,
                    send_dialog: bool = True) -> core_utils.LogWrapper:
        """A logger whose lines read ``<method> <token> message``.

        With ``send_dialog`` the lines at or above ``[propagator] minMessageLevel`` are also
        stored as dialog messages that the propagator sends to PanDA.
        """
        if method_name is None:
            method_name = sys._getframe(1).f_code.co_name
        hook = self.dbInterface if send_dialog else None
        wrapper = core_utils.make_logger(base_log, token=token, method_name=method_name, hook=hook)
        if hook is not None:
            wrapper.hook_level = self._hook_level if self._hook_level is not None else _dialog_level()
        return wrapper

    # ------------------------------------------------------------ agent description
    @property
    def logger(self) -> logging.Logger:
        """The agent's own logger ``panda.log.<log_name>``."""
        name = self.log_name or type(self).__module__.rsplit(".", 1)[-1]
        return core_utils.setup_logger(name)

    def cfg(self, key: str, default: Any = None) -> Any:
        """``[cfg_section] key`` of the harvester cfg (checked against the cfg key table), or
        ``default`` when absent; a bad value raises a ConfigError naming section, key and value."""
        from pandaharvester.harvesterconfig import schema

        return schema.cfg_value(self.cfg_section, key, default) if self.cfg_section else default

    def sleep_time(self) -> float:
        """Seconds between cycles (``[cfg_section] sleepTime``)."""
        return self.cfg("sleepTime", self.default_sleep_time)

    def lock_interval(self) -> float | None:
        """``[cfg_section] lockInterval`` in seconds, or None when the agent has none."""
        return self.cfg("lockInterval", None)

    # ------------------------------------------------------------ the cycle
    def run(self) -> None:
        """The thread body: bootstrap, cycles until stopped, teardown; a death is logged (see the module doc)."""
        try:
            try:
                self.bootstrap()
            except Exception:
                core_utils.dump_error_message(self.make_logger(self.logger, f"id={self.get_pid()}",
                                                               method_name="bootstrap", send_dialog=False))
            while True:
                more_work = self.run_one_cycle()
                if self.wait_for_next_cycle(more_work):
                    break
            self.teardown()
        except BaseException as exc:  # noqa: B036 - the thread ends here either way: say why, where it is seen
            self.fatalError = exc
            self.log_death(exc)

    def log_death(self, exc: BaseException) -> None:
        """CRITICAL line with the traceback in the agent's own log (stderr if even that fails)."""
        try:
            log = self.make_logger(self.logger, f"id={self.get_pid()}", method_name="run", send_dialog=False)
            log.critical(f"thread {self.name} died: {type(exc).__name__}: {exc}; the master stops harvester",
                         exc_info=(type(exc), exc, exc.__traceback__))
        except Exception:
            sys.excepthook(type(exc), exc, exc.__traceback__)

    def bootstrap(self) -> None:
        """Called once in the thread before the first cycle (override when needed)."""

    def teardown(self) -> None:
        """Called once in the thread after the last cycle (override when needed)."""

    def run_cycle(self) -> bool | None:
        """One cycle of the agent; return True when a full batch was found (run again at once)."""
        raise NotImplementedError(f"{type(self).__name__} must implement run_cycle()")

    def run_one_cycle(self) -> bool:
        """Run :meth:`run_cycle` once: timed, logged, exceptions caught; returns its answer."""
        watch = core_utils.get_stopwatch()
        log = self.make_logger(self.logger, f"id={self.get_pid()}", method_name="run", send_dialog=False)
        more_work = False
        self._hook_level = _dialog_level()
        try:
            more_work = bool(self.run_cycle())
        except Exception:
            core_utils.dump_error_message(log)
        finally:
            self._hook_level = None
        self.nCycles += 1
        log.debug(f"done{watch.get_elapsed_time()}")
        self.check_cycle_duration(watch.get_elapsed_seconds(), log)
        return more_work

    def check_cycle_duration(self, elapsed: float, log: Any) -> None:
        """Warn when a cycle outlived the row locks it took (``lockInterval``)."""
        interval = self.lock_interval()
        if interval is not None and elapsed > float(interval):
            keys = " / ".join(self.batch_keys)
            log.warning(f"cycle took {elapsed:.1f} s > [{self.cfg_section}] lockInterval={interval} s: "
                        f"other threads may pick the same rows; raise [{self.cfg_section}] lockInterval "
                        f"or lower [{self.cfg_section}] {keys}")

    def wait_for_next_cycle(self, more_work: bool) -> bool:
        """Sleep until the next cycle; True when the thread must stop."""
        if self.singleMode:
            return True
        if more_work:
            return self.stopEvent is not None and self.stopEvent.is_set()
        return self.terminated(self.sleep_time(), randomize=self.randomize_sleep)

    def stop(self) -> None:
        """Ask this agent (and every agent sharing its stop event) to stop."""
        if self.stopEvent is not None:
            self.stopEvent.set()

    # ------------------------------------------------------------ helpers for agents
    def call_plugin(self, tmp_log: Any, plugin: Any, method_name: str, *args: Any,
                    default: Any = _MISSING, **kwargs: Any) -> tuple[bool, Any]:
        """Call ``plugin.<method_name>(*args, **kwargs)`` and capture any exception.

        Returns ``(True, result)``, or ``(False, "<Class>.<method> raised <Type>: <msg>")``
        with the traceback logged. When the plugin lacks the method: ``(True, default)`` if a
        ``default`` is given, else ``(False, "<Class> has no method <method>")``.
        """
        cls_name = type(plugin).__name__
        method = getattr(plugin, method_name, None)
        if method is None:
            if default is not _MISSING:
                return True, default
            return False, f"{cls_name} has no method {method_name}"
        try:
            return True, method(*args, **kwargs)
        except Exception as exc:
            core_utils.dump_error_message(tmp_log)
            return False, f"{cls_name}.{method_name} raised {type(exc).__name__}: {exc}"

    def _db(self) -> Any:
        return getattr(self, "dbProxy", None) or getattr(self, "db_proxy", None)

    def acquire_process_lock(self, lock_name: str, lock_interval: float) -> bool:
        """``get_process_lock(lock_name, self.get_pid(), lock_interval)``, remembered for release."""
        locked = bool(self._db().get_process_lock(lock_name, self.get_pid(), lock_interval))
        if locked:
            self.heldProcessLocks.add(lock_name)
        return locked

    def release_process_locks(self) -> None:
        """Release every process lock this agent took with :meth:`acquire_process_lock`."""
        db = self._db()
        for lock_name in sorted(self.heldProcessLocks):
            try:
                db.release_process_lock(lock_name, self.get_pid())
            except Exception:
                core_utils.dump_error_message(self.logger)
        self.heldProcessLocks.clear()


def _dialog_level() -> int:
    """Dialog threshold: ``[propagator] minMessageLevel`` (default WARNING)."""
    try:
        from pandaharvester.harvesterconfig import harvester_config

        name = getattr(getattr(harvester_config, "propagator", None), "minMessageLevel", "WARNING")
    except Exception:
        name = "WARNING"
    level = logging.getLevelName(str(name).upper())
    return level if isinstance(level, int) else logging.WARNING
