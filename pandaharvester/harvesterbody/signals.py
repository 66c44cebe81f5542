"""Signal handling of the master process.

- SIGTERM, SIGINT, SIGUSR2 (the init script's and supervisord's stop signal): set the stop
  event; agents finish their current cycle and the master shuts down cleanly. A second stop
  signal while stopping exits at once (after removing the pid file).
- SIGHUP: close every Harvester log file so the next line reopens it (log rotation).
- SIGUSR1: write the stack of every thread to the master log.
"""

from __future__ import annotations

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
    """Installs the master's handlers; must be created in the main thread."""

    def __init__(self, stop_event: threading.Event, logger: Any,
                 on_forced_exit: Callable[[], None] | None = None) -> None:
        self.stop_event = stop_event
        self.logger = logger
        self.on_forced_exit = on_forced_exit

    def install(self) -> None:
        """Register the handlers for the stop signals, SIGHUP and SIGUSR1."""
        for sig in STOP_SIGNALS:
            signal.signal(sig, self.handle_stop)
        signal.signal(signal.SIGHUP, self.handle_hup)
        signal.signal(signal.SIGUSR1, self.handle_usr1)

    def handle_stop(self, signum: int, _frame: Any) -> None:
        """First stop signal: set the stop event. Second one: exit now."""
        name = signal.Signals(signum).name
        if self.stop_event.is_set():
            self.logger.warning(f"got {name} again while stopping: exiting at once")
            if self.on_forced_exit is not None:
                self.on_forced_exit()
            os._exit(1)
        self.logger.info(f"got {name}: stopping after the current cycles")
        self.stop_event.set()

    def handle_hup(self, _signum: int, _frame: Any) -> None:
        """Reopen the log files (after logrotate moved them)."""
        core_utils.reopen_log_files()
        self.logger.info("got SIGHUP: reopened log files")

    def handle_usr1(self, _signum: int, _frame: Any) -> None:
        """Dump the stack of every thread to the master log."""
        self.logger.info("got SIGUSR1: stacks of all threads\n" + format_thread_stacks())
