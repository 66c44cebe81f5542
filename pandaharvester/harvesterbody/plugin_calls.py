"""Plugin calls with a time limit: a hung plugin call is abandoned, never a hung agent.

:meth:`AgentBase.call_plugin <pandaharvester.harvesterbody.agent_base.AgentBase.call_plugin>`
runs a plugin method through :func:`call` when the plugin's time limit (:func:`resolve_timeout`:
the plugin dict's ``callTimeout``, else the queue's ``pluginCallTimeout``, else ``[master]
pluginCallTimeout``) is above 0. The method then runs on a helper thread of the calling thread
(one per agent thread, reused call after call: a hand-off costs about 30 µs) while the caller
waits at most that many seconds:

- the call returns or raises in time: the same reply or exception as an inline call (an
  exception that is not an ``Exception``, e.g. ``SystemExit``, is raised again in the agent
  thread, which then ends as before);
- it does not: :class:`PluginCallTimeout` (one ERROR line naming plugin, method, queue and
  limit). The call is *abandoned*: its helper thread (a daemon thread, named
  ``<agent thread>-plugin-abandoned``) keeps running, since Python cannot stop a thread; the
  agent gets a new helper for its next call and goes on with its other queues. When the
  abandoned call returns, its reply (or exception) is discarded with one WARNING line, and
  its thread ends. A daemon thread never delays the exit of harvester.
- while an abandoned call of a plugin class for a queue and role has not returned, that
  plugin is not called again there: :class:`PluginCallBlocked` at once (one ERROR line), so
  threads do not pile up on a hung batch system and the other queues lose no time.

Both errors are handled by ``call_plugin`` as a plugin that raised: ``(False, message)``, which
the agents turn into the workers' or jobs' ``diagMessage`` (and a failed submission, an
unchecked worker, ...). :func:`stats` counts the abandoned, blocked and late calls of the
process; :func:`still_running` lists the abandoned calls not yet returned.
"""

from __future__ import annotations

import _thread
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

# seconds an idle helper thread waits for work before it checks that its agent thread still lives
_IDLE_CHECK = 5.0

_lock = threading.Lock()
_hung: dict[tuple, "_Abandoned"] = {}  # (queue, role, plugin class) -> the abandoned call not yet returned
_stats = {"abandoned": 0, "blocked": 0, "late_returns": 0}
_local = threading.local()


class PluginCallTimeout(Exception):
    """A plugin call did not return within its time limit and was abandoned."""


class PluginCallBlocked(Exception):
    """A plugin was not called: its previous, abandoned call for the same queue and role still runs."""


@dataclass
class _Abandoned:
    what: str
    thread_name: str
    started: float
    timeout: float


class _Call:
    """One call handed to a helper thread; ``done`` is released when it ends in time."""

    __slots__ = ("func", "args", "kwargs", "reply", "error", "done", "finished", "abandoned", "key", "log",
                 "started")

    def __init__(self, func: Callable[..., Any], args: tuple, kwargs: dict) -> None:
        self.func, self.args, self.kwargs = func, args, kwargs
        self.reply: Any = None
        self.error: BaseException | None = None
        self.done = _thread.allocate_lock()
        self.done.acquire()
        self.finished = False
        self.abandoned: _Abandoned | None = None
        self.key: tuple | None = None
        self.log: Any = None
        self.started = time.monotonic()

    def run(self) -> None:
        try:
            self.reply = self.func(*self.args, **self.kwargs)
        except BaseException as exc:  # noqa: B036 - handed to the caller (or discarded when abandoned)
            self.error = exc
        with _lock:
            self.finished = True
            abandoned = self.abandoned
            if abandoned is not None and _hung.get(self.key) is abandoned:  # (not forgotten by reset())
                _stats["late_returns"] += 1
                del _hung[self.key]
        if abandoned is None:
            self.done.release()
            return
        outcome = ("returned" if self.error is None
                   else f"raised {type(self.error).__name__}: {self.error}")
        elapsed = time.monotonic() - self.started
        try:
            self.log.warning(f"abandoned call {abandoned.what} {outcome} after {elapsed:.1f} s "
                             f"(limit {abandoned.timeout:g} s): its reply is discarded; the plugin is called "
                             f"again from the next cycle")
        except Exception:
            pass
        self.args = self.kwargs = self.reply = self.error = None  # what the discarded call held


class _Runner:
    """The helper thread of one calling thread: runs its timed plugin calls one after the other."""

    def __init__(self, owner: threading.Thread) -> None:
        self.owner = owner
        self.jobs: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self.abandoned = False
        self.thread = threading.Thread(target=self.loop, name=f"{owner.name}-plugin", daemon=True)
        self.thread.start()

    def loop(self) -> None:
        while True:
            try:
                call = self.jobs.get(timeout=_IDLE_CHECK)
            except queue.Empty:
                if not self.owner.is_alive():
                    return  # the agent thread ended: nobody will hand work here again
                continue
            if call is None:
                return
            call.run()
            if self.abandoned:
                return  # its caller has a new helper already


def _runner() -> _Runner:
    runner = getattr(_local, "runner", None)
    if runner is None or not runner.thread.is_alive():
        runner = _local.runner = _Runner(threading.current_thread())
    return runner


def call(func: Callable[..., Any], args: tuple, kwargs: dict, *, timeout: float, key: tuple, what: str,
         log: Any) -> Any:
    """``func(*args, **kwargs)`` with at most ``timeout`` seconds (see the module docstring).

    ``key`` (queue, role, plugin class) names what is not called again while a call hangs;
    ``what`` (e.g. ``"DummyMonitor.check_workers on queue 'Q' (monitor plugin)"``) is used in
    the messages; ``log`` gets the WARNING when an abandoned call returns late.
    """
    hung = _hung.get(key)
    if hung is not None:
        with _lock:
            _stats["blocked"] += 1
        age = time.monotonic() - hung.started
        raise PluginCallBlocked(f"{what} not called: its previous call, abandoned after {hung.timeout:g} s, "
                                f"still runs after {age:.0f} s (thread {hung.thread_name}); it is called again "
                                f"once that call returns")
    runner = _runner()
    job = _Call(func, args, kwargs)
    job.key, job.log = key, log
    runner.jobs.put(job)
    if not job.done.acquire(timeout=timeout):
        with _lock:
            if not job.finished:
                runner.abandoned = True
                _local.runner = None
                name = f"{runner.thread.name}-abandoned"
                try:
                    runner.thread.name = name
                except Exception:
                    pass
                job.abandoned = _hung[key] = _Abandoned(what, name, job.started, timeout)
                _stats["abandoned"] += 1
                count = _stats["abandoned"]
        if job.abandoned is not None:
            raise PluginCallTimeout(f"{what} did not return within {timeout:g} s (callTimeout): call abandoned, "
                                    f"its thread keeps running as a daemon thread and its reply will be discarded; "
                                    f"not called again there until it returns (abandoned calls so far: {count})")
        job.done.acquire()  # it ended just at the limit: take its reply
    if job.error is not None:
        error, job.error = job.error, None
        raise error
    return job.reply


def resolve_timeout(plugin: Any, role: str | None, default: float) -> float:
    """The time limit of a call of ``plugin`` in seconds (0: none).

    ``callTimeout`` of the plugin (its queue-config dict's key, or the queue's
    ``pluginCallTimeout``, which the queue-config builder copies into each plugin dict), else
    ``default`` (``[master] pluginCallTimeout``), except for the messenger: its hooks are
    called several times per worker and check, so they run inline unless the queue config
    gives it a limit.
    """
    value = getattr(plugin, "callTimeout", None)
    if value is None:
        return 0.0 if role == "messenger" else float(default or 0)
    try:
        return max(float(value), 0.0)
    except (TypeError, ValueError):
        return float(default or 0)


def stats() -> dict[str, int]:
    """Counts of this process: ``abandoned`` calls, calls ``blocked`` by a hung one, ``late_returns``
    of abandoned calls, and ``hung`` (abandoned calls still running)."""
    with _lock:
        return dict(_stats, hung=len(_hung))


def still_running() -> list[str]:
    """One line per abandoned call that has not returned yet."""
    now = time.monotonic()
    with _lock:
        entries = list(_hung.values())
    return [f"{entry.what}: running for {now - entry.started:.0f} s on thread {entry.thread_name}"
            for entry in entries]


def reset() -> None:
    """Forget the hung calls and the counts (tests); abandoned threads still running are left alone."""
    with _lock:
        _hung.clear()
        for name in _stats:
            _stats[name] = 0
