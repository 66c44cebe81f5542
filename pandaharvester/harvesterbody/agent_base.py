"""The agent thread: one cycle, written once for every agent (as rq's worker or Airflow's executor).

An agent subclasses :class:`AgentBase`, names its cfg section and lists its :class:`Step` s:
for each, what to pick and what to do with it. The base class owns everything else::

    run()                                   the thread
      bootstrap()                           once
      loop:
        run_one_cycle()                     stopwatch, "done : took X sec", lockInterval warning,
                                            exception capture, a last flush
          run_cycle()                       for step in steps(): run_step(step)
            run_step(step)
              items = step.pick()           lock and read the rows (the DB picker)
              process_in_chunks(items)      per chunk of step.chunk_size items:
                step.relock(chunk)            lock the chunk again (optional)
                step.process(chunk)           plugin calls; DB writes queued in self.writes
                flush()                       the chunk's writes, one bulk call per kind
                step.after_chunk()            e.g. one log line per outcome
              flush()                       what is left
              step.release(items)           e.g. the site lock
            -> step.full(items)             a full batch: the next cycle starts at once
        wait_for_next_cycle(full)           single mode, stop event, or sleepTime
      teardown()                            once

The base also owns what every agent needs: ``locked_by`` (the owner written in the lock
columns), the DB proxy (``dbProxy``), the plugin factory (``pluginFactory``), the queue-config
look-up (:meth:`queue_config`), the typed cfg access (:meth:`cfg`, validated at start by the
master) and the per-chunk write batch (``writes``, :mod:`write_batch`). An agent whose cycle is
not made of picked rows (cacher, watcher, ...) overrides :meth:`run_cycle` instead.

A plugin call wrapped in :meth:`call_plugin` turns an exception into ``(False, "<Class>.<method>
raised <Type>: <message>")`` so that it ends up as a diagnostic on the worker or job, never as a
dead thread. Given the plugin's ``role``, it also checks the reply against the role's contract
(:meth:`check_reply`, the one place where replies are checked: a wrong shape is one ERROR line
naming plugin, queue, method and problem, and the call counts as failed), passes the keywords
this Harvester adds to the original's calls only to the plugins that take them, and watches the
specs of a bulk call (``submit_workers``, ``check_workers``, ``kill_workers``) for fields the
role may not set (one WARNING per call). Anything that still
escapes the loop (a plugin calling ``sys.exit``, an error in the base itself) ends the thread: it
is logged as CRITICAL in the agent's log and kept in ``fatalError``; the master, which watches its
threads, then stops harvester with a non-zero exit status instead of running on without this agent.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import socket
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from pandaharvester.errors import DBStorageError, PluginReplyError
from pandaharvester.harvesterbody import plugin_calls
from pandaharvester.harvesterbody.write_batch import WriteBatch
from pandaharvester.harvestercore import core_utils
from pandaharvester.harvestercore.plugin_contracts import FieldGuard, method_contract, reply_as_is, validate_reply
from pandaharvester.harvestercore.plugin_factory import PluginFactory

_MISSING = object()
# seconds between two lines of an agent about the same lasting DB storage condition
STORAGE_REPORT_EVERY = 60.0
# seconds a plugin call may last when neither the queue config nor [master] pluginCallTimeout says
DEFAULT_CALL_TIMEOUT = 3600.0


@dataclass(frozen=True)
class Step:
    """One kind of work of a cycle (see the module docstring for when each hook runs).

    ``pick()`` locks and returns the items; ``process(chunk)`` does the plugin calls for one
    chunk, queues its DB writes in ``agent.writes`` and returns the items it did not reach (they
    lead the next chunk); ``chunk_size`` None puts all items in one chunk.
    """

    name: str
    pick: Callable[[], Sequence[Any] | None]
    process: Callable[[list[Any]], Sequence[Any] | None]
    chunk_size: int | None = None
    relock: Callable[[list[Any]], list[Any]] | None = None
    after_chunk: Callable[[], None] | None = None
    release: Callable[[list[Any]], None] | None = None
    full: Callable[[list[Any]], bool] | None = None


class AgentBase(threading.Thread):
    """Base class of every agent thread (``ctor(single_mode)`` as in the original).

    Class attributes a subclass sets:

    - ``cfg_section``: cfg section holding ``sleepTime`` / ``lockInterval`` (e.g. ``"monitor"``);
      also the prefix of ``locked_by``.
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

    def __init__(self, single_mode: bool = False, queue_config_mapper: Any = None, communicator: Any = None) -> None:
        super().__init__(name=type(self).__name__, daemon=True)
        self.singleMode = single_mode
        self.stopEvent: threading.Event | None = threading.Event()
        self.hostname = socket.gethostname()
        self.os_pid = os.getpid()
        self.nCycles = 0
        # lock name -> the owner string it was taken with: a lock taken before the thread started
        # (``pre_execute``, in the master's thread) has another owner than get_pid() gives later
        self.heldProcessLocks: dict[str, str] = {}
        self.queueConfigMapper = queue_config_mapper
        self.communicator = communicator
        self.pluginFactory = PluginFactory()
        self.writes = WriteBatch()
        self._db_proxy: Any = None
        self._db_interface: Any = _MISSING
        self.fatalError: BaseException | None = None  # what ended the thread, if it did not stop as asked
        # [propagator] minMessageLevel, read once per cycle (make_logger runs per job and per worker)
        self._hook_level: int | None = None
        self._storage_reported: tuple[str, float] | None = None  # (condition, when) of the last line
        self._call_timeout: float | None = None  # [master] pluginCallTimeout, read once per cycle

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
    def dbProxy(self) -> Any:
        """The DB: the process's ``DBProxyPool``, made at first use (``db_proxy`` is the same)."""
        if self._db_proxy is None:
            from pandaharvester.harvestercore.db_proxy_pool import DBProxyPool

            self._db_proxy = DBProxyPool()
        return self._db_proxy

    @dbProxy.setter
    def dbProxy(self, value: Any) -> None:
        self._db_proxy = value

    db_proxy = dbProxy

    @property
    def queue_config_mapper(self) -> Any:
        """The same as ``queueConfigMapper`` (the name some agents of the original use)."""
        return self.queueConfigMapper

    @queue_config_mapper.setter
    def queue_config_mapper(self, value: Any) -> None:
        self.queueConfigMapper = value

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

    @property
    def locked_by(self) -> str:
        """``<cfg_section>-<get_pid()>``: the owner this thread writes in the lock columns of its rows."""
        return f"{self.cfg_section}-{self.get_pid()}"

    def cfg(self, key: str, default: Any = _MISSING) -> Any:
        """``[cfg_section] key``, checked against the cfg key table; ``default`` (else the table's)
        when absent. A bad value raises a ConfigError naming section, key and value (the master
        checks every value before the agents start)."""
        if not self.cfg_section:
            return None if default is _MISSING else default
        return self.cfg_value(self.cfg_section, key, default)

    @staticmethod
    def cfg_value(section: str, key: str, default: Any = _MISSING) -> Any:
        """:meth:`cfg` for another section (``[master] harvester_id``, ``[pandacon] cert_file``, ...)."""
        from pandaharvester.harvesterconfig import schema

        return schema.cfg_value(section, key) if default is _MISSING else schema.cfg_value(section, key, default)

    def sleep_time(self) -> float:
        """Seconds between cycles (``[cfg_section] sleepTime``)."""
        return self.cfg("sleepTime", self.default_sleep_time)

    def lock_interval(self) -> float | None:
        """``[cfg_section] lockInterval`` in seconds, or None when the agent has none."""
        return self.cfg("lockInterval", None)

    def queue_config(self, queue_name: str, config_id: int | None = None, *, exact: bool = False,
                     log: Any = None, consequence: str = "skipped") -> Any:
        """The config of ``queue_name``: its version ``config_id`` when known, else (unless
        ``exact``) the current one; None when there is none, with one error line on ``log``
        saying what follows (``consequence``)."""
        mapper = self.queueConfigMapper
        if exact and not mapper.has_queue(queue_name, config_id):
            config = None
        else:
            config = mapper.get_queue(queue_name, config_id)
        if config is None and log is not None:
            log.error(f"no queue config for queueName={queue_name} configID={config_id}: {consequence}")
        return config

    # ------------------------------------------------------------ the thread
    def run(self) -> None:
        """The thread body: bootstrap, cycles until stopped, teardown; a death is logged (see the module doc)."""
        try:
            try:
                self.bootstrap()
            except Exception:
                core_utils.dump_error_message(self._own_log("bootstrap"))
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
            self._own_log("run").critical(f"thread {self.name} died: {type(exc).__name__}: {exc}; the master "
                                          f"stops harvester", exc_info=(type(exc), exc, exc.__traceback__))
        except Exception:
            sys.excepthook(type(exc), exc, exc.__traceback__)

    def bootstrap(self) -> None:
        """Called once in the thread before the first cycle (override when needed)."""

    def teardown(self) -> None:
        """Called once in the thread after the last cycle (override when needed)."""

    def _own_log(self, method_name: str) -> core_utils.LogWrapper:
        """The agent's logger with this thread's id, no dialogs."""
        return self.make_logger(self.logger, f"id={self.get_pid()}", method_name=method_name, send_dialog=False)

    # ------------------------------------------------------------ the cycle
    def run_one_cycle(self) -> bool:
        """Run :meth:`run_cycle` once: timed, logged, exceptions caught; returns its answer."""
        watch = core_utils.get_stopwatch()
        log = self._own_log("run")
        more_work = False
        self._hook_level = _dialog_level()
        self._call_timeout = _default_call_timeout()
        try:
            more_work = bool(self.run_cycle())
        except DBStorageError as exc:
            self.report_storage_error(log, exc)
        except Exception:
            core_utils.dump_error_message(log)
        finally:
            try:
                self.flush()
            except DBStorageError as exc:
                self.report_storage_error(log, exc)
            except Exception:
                core_utils.dump_error_message(log)
            self._hook_level = self._call_timeout = None
        self.nCycles += 1
        log.debug(f"done{watch.get_elapsed_time()}")
        self.check_cycle_duration(watch.get_elapsed_seconds(), log)
        return more_work

    def report_storage_error(self, log: Any, exc: DBStorageError) -> None:
        """One ERROR line (no traceback) for a cycle the DB storage stopped (disk full, read-only, DB
        file deleted, ...): when the condition starts, then once a minute while it lasts."""
        now = time.monotonic()
        last = self._storage_reported
        if last is None or last[0] != exc.condition or now - last[1] >= STORAGE_REPORT_EVERY:
            self._storage_reported = (exc.condition, now)
            log.error(f"cycle stopped: {exc}")

    def run_cycle(self) -> bool | None:
        """One cycle: :meth:`run_step` for each of :meth:`steps`; True when one found a full batch."""
        full = False
        for step in self.steps():
            full = self.run_step(step) or full
        return full

    def steps(self) -> Sequence[Step]:
        """The agent's steps, in the order they run (override this, or :meth:`run_cycle`)."""
        raise NotImplementedError(f"{type(self).__name__} must implement run_cycle() or steps()")

    def run_step(self, step: Step) -> bool:
        """pick → process in chunks → flush → release (module docstring); True for a full batch."""
        items = list(step.pick() or [])
        try:
            self.process_in_chunks(items, step.process, step.chunk_size, step.relock, step.after_chunk, step.name)
        finally:
            self.flush()
            if step.release is not None:
                step.release(items)
        return bool(step.full(items)) if step.full is not None else False

    def process_in_chunks(self, items: Sequence[Any], process: Callable[[list[Any]], Sequence[Any] | None],
                          size: int | None = None, relock: Callable[[list[Any]], list[Any]] | None = None,
                          after_chunk: Callable[[], None] | None = None, name: str = "process") -> None:
        """The batch skeleton: for each chunk of ``size`` items (all when None) ``relock`` →
        ``process`` → :meth:`flush` → ``after_chunk``. The items ``process`` hands back lead the
        next chunk (all of them never: one item is always dropped, so the loop ends). A chunk
        that raises is logged; its rows stay locked until ``lockInterval`` and the next chunk goes on."""
        pending = list(items)
        size = size or len(pending) or 1
        while pending:
            chunk, pending = pending[:size], pending[size:]
            left: list[Any] = []
            try:
                work = relock(chunk) if relock is not None else chunk
                if work:
                    left = list(process(work) or ())
            except DBStorageError:
                raise  # the DB takes no writes: the cycle stops here (its rows are taken again later)
            except Exception:
                log = self._own_log(name)
                core_utils.dump_error_message(log)
                log.error(f"{len(chunk)} items not processed; their rows are taken again after "
                          f"[{self.cfg_section}] lockInterval")
            finally:
                self.flush()
                if after_chunk is not None:
                    after_chunk()
            if len(left) >= len(chunk):
                left = left[1:]
            pending = left + pending

    def flush(self) -> None:
        """Make the writes queued in ``self.writes`` (see :mod:`write_batch`)."""
        if len(self.writes):
            self.writes.flush(self.dbProxy, self._own_log("flush"))

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

    # ------------------------------------------------------------ plugins
    def call_plugin(self, tmp_log: Any, plugin: Any, method_name: str, *args: Any, default: Any = _MISSING,
                    role: str | None = None, queue: str | None = None, bad_items: list | None = None,
                    **kwargs: Any) -> tuple[bool, Any]:
        """Call ``plugin.<method_name>(*args, **kwargs)`` and capture any exception.

        Returns ``(True, reply)``, or ``(False, "<Class>.<method> raised <Type>: <msg>")``
        with the traceback logged. When the plugin lacks the method: ``(True, default)`` if a
        ``default`` is given, else ``(False, "<Class> has no method <method>")``.

        With ``role`` (a role of the plugin contracts, e.g. ``"submitter"``): the keywords the
        role's contract lists as this Harvester's additions (``prod_source_label``,
        ``queue_config_mapper``) go only to a method that takes them; a bulk call's specs (the
        first argument of a per-item method) are watched by a tracked
        :class:`~pandaharvester.harvestercore.plugin_contracts.FieldGuard`, which gives one
        WARNING line per call naming the fields set outside the role; and the reply is checked
        by :meth:`check_reply`: ``(True, normalised reply)``, or ``(False, <problem>)`` with the
        problem logged as one ERROR line (the caller handles it as any failed call).
        ``queue`` names the queue in those lines (default: the plugin's ``queueName``, else the
        ``computingSite`` of the first spec); ``bad_items``: see :meth:`check_reply`.
        """
        method = getattr(plugin, method_name, None)
        if method is None:
            if default is not _MISSING:
                return True, default
            return False, f"{type(plugin).__name__} has no method {method_name}"
        plan = _reply_plan(role, method_name) if role is not None else _NO_PLAN
        guard = None
        if plan[3]:  # keywords to filter or specs to watch
            contract = plan[0]
            for name in contract.agent_kwargs:
                if name in kwargs and not _takes_keyword(getattr(method, "__func__", method), name):
                    del kwargs[name]  # an older plugin of the original: called as the original did
            if contract.per_item and args and tmp_log.isEnabledFor(logging.WARNING):
                guard = FieldGuard(role, args[0], tracked=True)
        default_timeout = self._call_timeout if self._call_timeout is not None else _default_call_timeout()
        timeout = plugin_calls.resolve_timeout(plugin, role, default_timeout)
        try:
            if timeout > 0:
                where = queue or _queue_of(plugin, args)
                what = f"{type(plugin).__name__}.{method_name} on queue {where!r}" + (f" ({role} plugin)" if role else "")
                reply = plugin_calls.call(method, args, kwargs, timeout=timeout, what=what, log=tmp_log,
                                          key=(where, role, f"{type(plugin).__module__}.{type(plugin).__qualname__}"))
            else:
                reply = method(*args, **kwargs)
        except (plugin_calls.PluginCallTimeout, plugin_calls.PluginCallBlocked) as exc:
            tmp_log.error(str(exc))
            return False, str(exc)
        except Exception as exc:
            core_utils.dump_error_message(tmp_log)
            return False, f"{type(plugin).__name__}.{method_name} raised {type(exc).__name__}: {exc}"
        if guard is not None:
            line = guard.warning(plugin=plugin, method=method_name, queue=queue or _queue_of(plugin, args))
            if line is not None:
                tmp_log.warning(line)
        try:
            return True, self.check_reply(plugin, method_name, reply, args, role=role, queue=queue,
                                          bad_items=bad_items, plan=plan)
        except PluginReplyError as exc:
            tmp_log.error(str(exc))
            return False, str(exc)

    def check_reply(self, plugin: Any, method_name: str, reply: Any, args: tuple = (), *, role: str | None = None,
                    queue: str | None = None, bad_items: list | None = None,
                    plan: tuple | None = None) -> Any:
        """The one place where a plugin's reply is checked against its role's contract
        (:func:`~pandaharvester.harvestercore.plugin_contracts.validate_reply`): the reply
        normalised, or :class:`~pandaharvester.errors.PluginReplyError` naming the plugin, the
        queue, the method, what was wrong and what was expected. A per-item reply is matched
        with the first argument (the workers). A call without a role, or of a method outside
        the role's contract (a hook of this Harvester's own), is not checked. ``bad_items`` (a
        list; the monitor's ``check_workers``): an entry with an unknown status only adds its
        error there, and the agent handles that worker alone. ``plan``: what
        :meth:`call_plugin` already looked up for this role and method."""
        if plan is None:
            plan = _reply_plan(role, method_name) if role is not None else _NO_PLAN
        contract, checked, as_is = plan[:3]
        if not checked or (as_is is not None and as_is(reply)):
            return reply  # most replies: already of the contract's type, nothing to normalise
        items = args[0] if contract.per_item and args else None
        return validate_reply(role, method_name, reply, items=items, plugin=plugin,
                              queue=queue or _queue_of(plugin, args), bad_items=bad_items)

    # ------------------------------------------------------------ process locks
    def acquire_process_lock(self, lock_name: str, lock_interval: float) -> bool:
        """``get_process_lock(lock_name, self.get_pid(), lock_interval)``, remembered for release."""
        owner = self.get_pid()
        locked = bool(self.dbProxy.get_process_lock(lock_name, owner, lock_interval))
        if locked:
            self.heldProcessLocks[lock_name] = owner
        return locked

    def release_process_lock(self, lock_name: str) -> None:
        """Release one process lock this agent took with :meth:`acquire_process_lock`."""
        if lock_name in self.heldProcessLocks:
            owner = self.heldProcessLocks.pop(lock_name)
            try:
                self.dbProxy.release_process_lock(lock_name, owner)
            except Exception:
                core_utils.dump_error_message(self.logger)

    def release_process_locks(self) -> None:
        """Release every process lock this agent took with :meth:`acquire_process_lock`."""
        for lock_name, owner in sorted(self.heldProcessLocks.items()):
            try:
                self.dbProxy.release_process_lock(lock_name, owner)
            except Exception:
                core_utils.dump_error_message(self.logger)
        self.heldProcessLocks.clear()


class AgentHelper:
    """Base of a helper an agent owns (not a thread: the Submitter's WorkerMaker and
    WorkerAdjuster), which uses the agent's plugin factory, DB proxy and plugin calls
    (``self.agent.call_plugin``); made without an agent (as the original's were), it gets a bare
    :class:`AgentBase` of its own, never started."""

    def __init__(self, agent: AgentBase | None = None, queue_config_mapper: Any = None) -> None:
        self.agent = agent if agent is not None else AgentBase(queue_config_mapper=queue_config_mapper)

    @property
    def pluginFactory(self) -> Any:
        """The owning agent's plugin factory."""
        return self.agent.pluginFactory

    @property
    def dbProxy(self) -> Any:
        """The owning agent's DB proxy."""
        return self.agent.dbProxy


def _default_call_timeout() -> float:
    """``[master] pluginCallTimeout`` in seconds (0: plugin calls have no time limit)."""
    try:
        return float(AgentBase.cfg_value("master", "pluginCallTimeout", DEFAULT_CALL_TIMEOUT) or 0)
    except Exception:
        return DEFAULT_CALL_TIMEOUT


def _dialog_level() -> int:
    """Dialog threshold: ``[propagator] minMessageLevel`` (default WARNING)."""
    try:
        name = AgentBase.cfg_value("propagator", "minMessageLevel", "WARNING")
    except Exception:
        name = "WARNING"
    level = logging.getLevelName(str(name).upper())
    return level if isinstance(level, int) else logging.WARNING


_NO_PLAN: tuple = (None, False, None, False)


@functools.lru_cache(maxsize=None)
def _reply_plan(role: str, method: str) -> tuple:
    """(method contract or None, whether its reply is checked, the validator's fast-path test or
    None, whether the call has keywords to filter or specs to watch) of ``role``/``method``:
    looked up once, read at every plugin call."""
    contract = method_contract(role, method)
    if contract is None:
        return _NO_PLAN
    checked = contract.reply != "any"
    return (contract, checked, reply_as_is(role, method) if checked else None,
            bool(contract.agent_kwargs or contract.per_item))


def _queue_of(plugin: Any, args: tuple) -> str | None:
    """The queue of a plugin call: the plugin's ``queueName`` (set from the queue config), else
    the ``computingSite`` of the spec (or first spec of the list) it was called with."""
    queue = getattr(plugin, "queueName", None)
    if queue is None and args:
        first = args[0]
        if isinstance(first, (list, tuple)):
            first = first[0] if first else None
        queue = getattr(first, "computingSite", None)
    return queue


@functools.lru_cache(maxsize=1024)
def _takes_keyword(func: Callable[..., Any], name: str) -> bool:
    """Whether ``func`` (a plugin method's function) can be given the keyword ``name``."""
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):  # a builtin or C method: cannot tell, pass it
        return True
    param = params.get(name)
    if param is not None:
        return param.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
