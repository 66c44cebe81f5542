"""Signal handling of the master process.

- SIGTERM, SIGINT, SIGUSR2 (the init script's and supervisord's stop signal): set the stop
  event; agents finish their current cycle and the master shuts down cleanly. A second stop
  signal while stopping exits at once (after removing the pid file).
- SIGHUP: close every Harvester log file so the next line reopens it (log rotation).
- SIGUSR1: write the stack of every thread to the master log.

The handlers themselves only queue the signal: logging or taking locks inside a handler can
re-enter a half-written log stream. The master's main loop calls :meth:`process_pending`
(several times a second) to act on them.

In a multi-process instance (``[master] nProcesses > 1``, :mod:`processes`) the master passes
each signal it acts on to its worker processes (``forward``), which get it through their command
pipe (:meth:`SignalHandlers.queue`: acted on as the signal, never counted as a repeated stop).
"""

from __future__ import annotations

import collections
import os
import signal
import sys
import threading
import traceback
from typing import Any, Callable

from pandaharvester.harvestercore import core_utils

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR2)


def format_thread_stacks() -> str:
    """The current stack of every thread of this process, as text."""
    names = {thread.ident: thread.name for thread in threading.enumerate()}
    parts = []
    for ident, frame in sys._current_frames().items():
        parts.append(f"--- thread {names.get(ident, '?')} (ident={ident:x})\n"
                     + "".join(traceback.format_stack(frame)))
    return "\n".join(parts)


class SignalHandlers:
    """Installs the master's handlers (main thread only) and acts on queued signals."""

    def __init__(self, stop_event: threading.Event, logger: Any,
                 on_forced_exit: Callable[[], None] | None = None,
                 forward: Callable[[int], None] | None = None) -> None:
        self.stop_event = stop_event
        self.logger = logger
        self.on_forced_exit = on_forced_exit
        self.forward = forward
        self.pending: collections.deque[int] = collections.deque()
        self.stop_requested = False

    def install(self) -> None:
        """Register the handlers for the stop signals, SIGHUP and SIGUSR1."""
        for sig in STOP_SIGNALS + (signal.SIGHUP, signal.SIGUSR1):
            signal.signal(sig, self.handle)

    def handle(self, signum: int, _frame: Any) -> None:
        """The handler proper: queue the signal; a repeated stop signal exits now."""
        if signum in STOP_SIGNALS:
            if self.stop_requested:
                os.write(2, f"got {signal.Signals(signum).name} again while stopping: exiting at once\n".encode())
                if self.on_forced_exit is not None:
                    self.on_forced_exit()
                os._exit(1)
            self.stop_requested = True
        self.pending.append(signum)

    def queue(self, signum: int) -> None:
        """Act on ``signum`` at the next :meth:`process_pending` as if it had been received (the
        worker processes' command pipe); a stop queued so is not a first stop signal, so a real
        one after it still stops cleanly."""
        self.pending.append(signum)

    def process_pending(self) -> None:
        """Act on the queued signals (called from the main loop, outside the handler)."""
        while self.pending:
            signum = self.pending.popleft()
            name = signal.Signals(signum).name
            if signum in STOP_SIGNALS:
                self.logger.info(f"got {name}: stopping after the current cycles")
                self.stop_event.set()
            elif signum == signal.SIGHUP:
                core_utils.reopen_log_files()
                self.logger.info("got SIGHUP: reopened log files")
            elif signum == signal.SIGUSR1:
                self.logger.info("got SIGUSR1: stacks of all threads\n" + format_thread_stacks())
            if self.forward is not None:
                self.forward(signum)
