"""Several processes of one instance: ``[master] nProcesses = N > 1``.

The process started by ``panda_harvester`` (the one of the pid file, "the master") makes the
tables once (:func:`master.prepare_instance`: that also clears the process locks), then starts N
worker processes, ``python -m pandaharvester.harvesterbody.master --foreground --process_index K``
(K = 0..N-1), fresh interpreters that each run every agent thread against the same DB and the
same ``harvester_id``. They share the work as the threads of one process do: through the DB's
row locks (every picker locks the rows it returns in one transaction), and through the process
locks of ``lock_table`` for the work only one process may do (command manager, cacher, service
monitor, sweeper's disk clean-up, queue-config reload timestamp and pq_table fill). The master
runs no agent itself; it only supervises:

- Its signals go to every worker: SIGTERM/SIGINT/SIGUSR2 stop them (each finishes its cycles as
  a single-process master does), SIGHUP reopens the log files, SIGUSR1 logs the thread stacks.
  They are passed on as lines on each worker's standard input (its command pipe), so a worker
  that also got the signal itself (systemd signals the whole cgroup, a terminal the whole
  process group) does not take the second one for a repeated stop. A second stop signal to the
  master kills the workers (SIGKILL) and exits at once.
- A worker whose standard input reaches end of file (the master is gone, even by SIGKILL)
  stops: no orphan keeps working.
- A worker that exits while the instance is not stopping (an agent thread died in it, it was
  killed) makes the master stop the others and exit with status 1, as a dead agent thread does
  in a single process; a worker that does not stop within ``[master] stopTimeout`` + 30 s is
  killed.

Logs: worker K writes ``panda-<agent>-p<K>.log`` beside the master's ``panda-master.log``
(one directory, so ``grep ... panda-submitter-p*.log`` reads one agent across processes and
logrotate's ``*.log`` takes them all). ``--single`` always runs one process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

from pandaharvester.harvestercore import core_utils

_logger = core_utils.setup_logger("master")

# what a signal to the master becomes on the workers' command pipe, and back
COMMANDS = {signal.SIGTERM: b"stop", signal.SIGINT: b"stop", signal.SIGUSR2: b"stop",
            signal.SIGHUP: b"hup", signal.SIGUSR1: b"stacks"}
SIGNAL_OF = {b"stop": signal.SIGTERM, b"hup": signal.SIGHUP, b"stacks": signal.SIGUSR1}
EXTRA_STOP_TIME = 30  # seconds on top of [master] stopTimeout before a worker is killed
EXIT_WORKER_DIED = 1


def n_processes() -> int:
    """``[master] nProcesses`` (1 when unset)."""
    from pandaharvester.harvesterconfig import schema

    return int(schema.cfg_value("master", "nProcesses", 1) or 1)


def worker_command(options: Any, index: int, pid_path: str | None) -> list[str]:
    """The command line of worker process ``index``: the master's options that apply to it."""
    command = [sys.executable, "-m", "pandaharvester.harvesterbody.master", "--foreground",
               "--process_index", str(index)]
    if pid_path:
        command += ["--master_pid_file", pid_path]
    if options.memLogging:
        command.append("--memory_logging")
    if options.profileOutput:
        command += ["--profile_output", f"{options.profileOutput}.p{index}", "--profile_mode", options.profileMode]
    return command


class WorkerProcess:
    """One worker process and the write end of its command pipe."""

    def __init__(self, index: int, command: list[str]) -> None:
        self.index = index
        self.proc = subprocess.Popen(command, stdin=subprocess.PIPE)
        self.reported = False  # its exit was logged
        self.stop_sent = False

    @property
    def name(self) -> str:
        return f"worker process p{self.index} (pid {self.proc.pid})"

    def send(self, command: bytes) -> None:
        """One line on its command pipe (nothing when it is gone)."""
        stdin = self.proc.stdin
        if stdin is None or stdin.closed:
            return
        try:
            stdin.write(command + b"\n")
            stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            pass

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass


class Supervisor:
    """Starts the worker processes, passes signals on, stops them all together (module docstring)."""

    def __init__(self, options: Any, n: int, pid_path: str | None, stop_event: threading.Event) -> None:
        self.options = options
        self.n = n
        self.pid_path = pid_path
        self.stop_event = stop_event
        self.workers: list[WorkerProcess] = []
        self.failed = False
        self.handlers: Any = None

    def start(self) -> None:
        for index in range(self.n):
            worker = WorkerProcess(index, worker_command(self.options, index, self.pid_path))
            self.workers.append(worker)
            _logger.info(f"started {worker.name}")

    def forward(self, signum: int) -> None:
        """Pass a signal the master acted on to every worker (SignalHandlers' ``forward``)."""
        command = COMMANDS.get(signum)
        if command is None:
            return
        for worker in self.workers:
            if command == b"stop":
                if worker.stop_sent:
                    continue
                worker.stop_sent = True
            worker.send(command)

    def kill_all(self) -> None:
        """SIGKILL every worker still running (a forced exit)."""
        for worker in self.workers:
            worker.kill()

    def poll_signals(self) -> None:
        if self.handlers is not None:
            self.handlers.process_pending()

    def check_workers(self) -> None:
        """Log each worker that exited; one that ended while not stopping stops the instance."""
        for worker in self.workers:
            code = worker.proc.poll()
            if code is None or worker.reported:
                continue
            worker.reported = True
            if not self.stop_event.is_set():
                self.failed = True
                _logger.critical(f"{worker.name} exited with status {code} while harvester was not stopping "
                                 f"(see its panda-*-p{worker.index}.log): stopping all worker processes, harvester "
                                 f"exits with status {EXIT_WORKER_DIED} (systemd restarts it)")
                self.stop_event.set()
                self.forward(signal.SIGTERM)
            elif code != 0:
                self.failed = True
                _logger.error(f"{worker.name} exited with status {code} while stopping")
            else:
                _logger.info(f"{worker.name} stopped")

    def run(self) -> int:
        """Watch the workers until the stop, then wait for them all; returns the exit code."""
        while not self.stop_event.is_set():
            self.poll_signals()
            self.check_workers()
            self.stop_event.wait(0.2)
        self.forward(signal.SIGTERM)  # the workers not told yet (a stop after a worker died)
        from pandaharvester.harvesterconfig import schema

        timeout = float(schema.cfg_value("master", "stopTimeout", 300)) + EXTRA_STOP_TIME
        deadline = time.monotonic() + timeout
        while any(w.proc.poll() is None for w in self.workers) and time.monotonic() < deadline:
            self.poll_signals()
            self.check_workers()
            time.sleep(0.1)
        for worker in self.workers:
            if worker.proc.poll() is None:
                _logger.error(f"{worker.name} still running {timeout:.0f} s after the stop request: killed")
                self.failed = True
                worker.kill()
                worker.proc.wait(10)
        self.check_workers()
        for worker in self.workers:
            if worker.proc.stdin is not None:
                with contextlib.suppress(OSError):  # a command left unsent to a worker already gone
                    worker.proc.stdin.close()
        return EXIT_WORKER_DIED if self.failed else 0


def run_supervisor(options: Any, pid_file: Any) -> int:
    """The master of a multi-process instance, after the tables are made; returns the exit code."""
    from pandaharvester.harvesterbody.signals import SignalHandlers

    n = n_processes()
    stop_event = threading.Event()
    supervisor = Supervisor(options, n, pid_file.path if pid_file is not None else None, stop_event)

    def forced_exit() -> None:
        supervisor.kill_all()
        if pid_file is not None:
            pid_file.release()

    if threading.current_thread() is threading.main_thread():
        supervisor.handlers = SignalHandlers(stop_event, _logger, on_forced_exit=forced_exit,
                                             forward=supervisor.forward)
        supervisor.handlers.install()
    _logger.info(f"[master] nProcesses = {n}: starting {n} worker processes")
    try:
        supervisor.start()
        code = supervisor.run()
    except BaseException:
        supervisor.kill_all()
        raise
    _logger.info("terminated" + (f" with exit status {code}: a worker process died" if code else ""))
    return code


def listen_to_master(handlers: Any, logger: Any, fd: int = 0) -> threading.Thread:
    """In a worker process: act on the master's commands read from ``fd`` (standard input) as on
    the signals they stand for; at end of file (the master is gone) stop. Plain ``os.read`` on
    the descriptor: a buffered reader's lock held by this daemon thread would abort the
    interpreter's shutdown."""

    def listen() -> None:
        pending = b""
        try:
            while True:
                data = os.read(fd, 4096)
                if not data:
                    break
                pending += data
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    signum = SIGNAL_OF.get(line.strip())
                    if signum is not None:
                        handlers.queue(signum)
        except OSError:
            pass
        if not handlers.stop_event.is_set():
            logger.warning("the master process is gone (command pipe closed): stopping")
        handlers.queue(signal.SIGTERM)

    thread = threading.Thread(target=listen, name="MasterCommands", daemon=True)
    thread.start()
    return thread
