"""The Harvester master process: ``python -m pandaharvester.harvesterbody.master`` / ``panda_harvester``.

Before anything else the cfg is checked (:func:`master_cli.check_config`): a value that does
not fit (``[monitor] sleepTime = abc``), a missing required key (``[master] harvester_id``)
stops the start with one line per problem on stderr and exit status 78 (EX_CONFIG; the systemd
unit does not restart on it). Then the master prepares the DB, starts every agent thread in the
original's order and waits for the stop event (SIGTERM/SIGINT/SIGUSR2); then the agents finish
their current cycle, the master releases its process locks, closes the DB connections and
removes the pid file. An agent thread that dies (or ends while harvester is not stopping) is
logged in its own log and in the master's; the master then stops the other agents and exits
with status 1, so that systemd restarts it.

Which agents start, in which order and how: :mod:`agent_registry`. The process plumbing
(options, pid file, identity, daemon context, logging, profiler): :mod:`master_cli`.

With ``[master] nProcesses = N > 1`` this process (the one of the pid file) makes the tables,
then starts N worker processes that each run every agent thread, and supervises them
(:mod:`processes`); N = 1 (the default) runs the agents here.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from typing import Any

from pandaharvester import commit_timestamp, panda_pkg_info
from pandaharvester.harvesterbody import master_cli
from pandaharvester.harvesterbody.agent_registry import AGENT_REGISTRY, AgentEntry, _cfg, start_agent
from pandaharvester.harvestercore import core_utils

_logger = core_utils.setup_logger("master")

EXIT_AGENT_DIED = 1
EXIT_CONFIG = master_cli.EXIT_CONFIG  # a bad cfg (sysexits.h EX_CONFIG)


def make_tables(db_proxy: Any, queue_config_mapper: Any, communicator_pool: Any, owner: str) -> None:
    """Create/upgrade the tables and clear the process locks (``DBProxy.make_tables``), serialised
    between instances by process lock "master" (held until :meth:`Master.shutdown`)."""
    from pandaharvester.harvestercore.process_lock_spec import ProcessLockSpec

    # the lock table must exist before the lock serialising the rest can be taken
    db_proxy.make_table(ProcessLockSpec, "lock_table")
    locked = False
    for _ in range(10):
        locked = db_proxy.get_process_lock("master", owner, 3)
        if locked:
            break
        time.sleep(0.5)
    if not locked:
        _logger.warning("could not get process lock 'master' in 5 s: making tables anyway")
    db_proxy.make_tables(queue_config_mapper, communicator_pool)


def prepare_instance() -> None:
    """What the master of a multi-process instance does before it starts its worker processes:
    the tables made (and the process locks cleared) once, then every DB connection closed."""
    from pandaharvester.harvestercore.communicator_pool import CommunicatorPool
    from pandaharvester.harvestercore.db_proxy_pool import DBProxyPool
    from pandaharvester.harvestercore.queue_config_mapper import QueueConfigMapper

    owner = core_utils.get_pid()
    db_proxy = DBProxyPool()
    try:
        make_tables(db_proxy, QueueConfigMapper(), CommunicatorPool(), owner)
        db_proxy.release_process_lock("master", owner)
    finally:
        DBProxyPool.reset()


class Master:
    """Creates the shared resources, the DB tables, and runs the agent threads."""

    def __init__(self, single_mode: bool = False, stop_event: threading.Event | None = None,
                 daemon_mode: bool = True, pid_file: str | None = None, process_index: int | None = None) -> None:
        from pandaharvester.harvestercore.communicator_pool import CommunicatorPool
        from pandaharvester.harvestercore.db_proxy_pool import DBProxyPool
        from pandaharvester.harvestercore.queue_config_mapper import QueueConfigMapper

        self.singleMode = single_mode
        self.stopEvent = stop_event if stop_event is not None else threading.Event()
        self.daemonMode = daemon_mode
        self.pidFile = pid_file
        # worker process K of a multi-process instance: the master process made the tables
        self.processIndex = process_index
        self.threads: list[Any] = []
        self.deadAgents: list[Any] = []  # agent threads that died: the master exits non-zero
        self.signalHandlers: Any = None  # set by run_master: queued signals are acted on in the waits
        self.lockOwner = core_utils.get_pid()
        self.communicatorPool = CommunicatorPool()
        self.queueConfigMapper = QueueConfigMapper()
        self.dbProxy = DBProxyPool()
        if process_index is None:
            self.make_tables()
        self.release_dead_locks()

    def make_tables(self) -> None:
        """Create/upgrade the tables, serialised between instances by process lock "master"."""
        make_tables(self.dbProxy, self.queueConfigMapper, self.communicatorPool, self.lockOwner)

    def release_dead_locks(self) -> None:
        """Before any agent runs: free the rows locked by this host's dead processes (a crash), so
        that they need not wait for ``lockInterval`` (:mod:`harvestercore.db.lock_recovery`)."""
        if not _cfg("master", "releaseDeadLocksAtStart", True):
            return
        import socket

        hostname = socket.gethostname()
        released = self.dbProxy.release_dead_locks(hostname)
        if released:
            _logger.info(f"released {sum(released.values())} row locks of dead processes of {hostname}: "
                         + ", ".join(f"{name}={n}" for name, n in sorted(released.items())))

    # ------------------------------------------------------------ starting agents
    def resource(self, name: str) -> Any:
        """A constructor argument named in the registry."""
        return {"communicator": self.communicatorPool, "queue_config_mapper": self.queueConfigMapper,
                "pid_file": self.pidFile}[name]

    def start_agent(self, entry: AgentEntry) -> list[Any]:
        """Start the thread(s) of one registry entry; [] when disabled or unavailable."""
        resources = {name: self.resource(name) for name in entry.args}
        return start_agent(entry, resources, self.singleMode, self.stopEvent,
                           several_processes=self.processIndex is not None)

    def force_credential_renewal(self) -> None:
        """Make every communicator reload its credentials (after the CredManager's first run)."""
        try:
            self.communicatorPool.force_credential_renewal()
        except Exception:
            core_utils.dump_error_message(_logger)

    def start(self) -> None:
        """Start all agents in the original's order, then wait for the stop event (or one cycle)."""
        for entry in AGENT_REGISTRY:
            self.threads += self.start_agent(entry)
            if entry.then is not None:
                getattr(self, entry.then)()
        if not self.daemonMode:
            return
        if not self.singleMode:
            while not self.stopEvent.is_set():
                self.poll_signals()
                self.check_agents()
                self.stopEvent.wait(0.2)
        self.join_agents()
        self.check_agents()

    def check_agents(self) -> None:
        """Log each agent thread that died, or ended while harvester was not stopping, and stop harvester."""
        stopping = self.stopEvent.is_set() or self.singleMode
        for thread in self.threads:
            if thread.is_alive() or thread in self.deadAgents:
                continue
            error = getattr(thread, "fatalError", None)
            if error is None and stopping:
                continue  # ended as asked
            self.deadAgents.append(thread)
            reason = f"{type(error).__name__}: {error}" if error is not None else "it ended without a stop request"
            log_name = getattr(getattr(thread, "logger", None), "name", "").rsplit(".", 1)[-1]
            where = f"; traceback in panda-{log_name}.log" if error is not None and log_name else ""
            _logger.critical(f"agent thread {thread.name} died ({reason}{where}): stopping all agents, harvester "
                             f"exits with status {EXIT_AGENT_DIED} (systemd restarts it)")
        if self.deadAgents and not self.stopEvent.is_set():
            self.stopEvent.set()

    def exit_code(self) -> int:
        """0, or :data:`EXIT_AGENT_DIED` when an agent thread died."""
        return EXIT_AGENT_DIED if self.deadAgents else 0

    def poll_signals(self) -> None:
        """Act on signals queued by the handlers (stop, SIGHUP, SIGUSR1)."""
        if self.signalHandlers is not None:
            self.signalHandlers.process_pending()

    # ------------------------------------------------------------ stopping
    def join_agents(self, timeout: float | None = None) -> list[Any]:
        """Wait for the agents to finish their cycle; returns those still running after ``timeout``."""
        if timeout is None:
            timeout = float(_cfg("master", "stopTimeout", 300))
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            while thread.is_alive() and time.monotonic() < deadline:
                self.poll_signals()
                thread.join(min(0.2, max(0.0, deadline - time.monotonic())))
        self.poll_signals()
        alive = [thread for thread in self.threads if thread.is_alive()]
        for thread in alive:
            _logger.warning(f"{thread.name} still busy {timeout:.0f} s after the stop request: abandoned")
        return alive

    def shutdown(self) -> None:
        """Release process locks and close the DB connections (after the agents stopped); log
        the PanDA call counters of the process."""
        self.stopEvent.set()
        from pandaharvester.harvestercommunicator.http_client import COUNTERS

        _logger.info(f"PanDA calls: {COUNTERS.line()}")
        for thread in self.threads:
            if not thread.is_alive() and hasattr(thread, "release_process_locks"):
                thread.release_process_locks()
        try:
            self.dbProxy.release_process_lock("master", self.lockOwner)
        except Exception:
            core_utils.dump_error_message(_logger)
        # every pooled connection (a method call on the pool itself would close just one)
        try:
            type(self.dbProxy).reset()
        except Exception:
            core_utils.dump_error_message(_logger)


def run_master(options: Any, daemon_mode: bool, pid_file: Any) -> int:
    """Run the master in this process (already daemonised if required); returns the exit code.

    With ``[master] nProcesses > 1`` (and not ``--single``): the tables, then the worker
    processes under :func:`processes.run_supervisor`."""
    from pandaharvester.harvesterbody import processes
    from pandaharvester.harvesterbody.signals import SignalHandlers

    index = getattr(options, "processIndex", None)  # worker process K of a multi-process instance
    _logger.info(f"start : version = {panda_pkg_info.release_version}, last_commit = {commit_timestamp.timestamp}"
                 + (f", worker process {index}" if index is not None else ""))
    if daemon_mode and index is None and not options.singleMode and processes.n_processes() > 1:
        try:
            prepare_instance()
        except Exception as exc:
            core_utils.dump_error_message(_logger)
            print(f"ERROR: harvester failed to start: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
        return processes.run_supervisor(options, pid_file)
    stop_event = threading.Event()
    profiler = master_cli.Profiler(options.profileOutput, options.profileMode, _logger)

    def forced_exit() -> None:
        profiler.dump()
        if pid_file is not None:
            pid_file.release()

    handlers = None
    if daemon_mode and threading.current_thread() is threading.main_thread():
        handlers = SignalHandlers(stop_event, _logger, on_forced_exit=forced_exit)
        handlers.install()
        if index is not None:
            processes.listen_to_master(handlers, _logger)
    try:
        master = Master(single_mode=options.singleMode, stop_event=stop_event, daemon_mode=daemon_mode,
                        pid_file=pid_file.path if pid_file is not None else getattr(options, "masterPidFile", None),
                        process_index=index)
    except Exception as exc:
        core_utils.dump_error_message(_logger)
        print(f"ERROR: harvester failed to start: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    master.signalHandlers = handlers
    profiler.enable()
    try:
        master.start()
    finally:
        profiler.dump()
        if daemon_mode:
            master.shutdown()
    if daemon_mode:
        code = master.exit_code()
        _logger.info("terminated" + (f" with exit status {code}: an agent thread died" if code else ""))
        return code
    return 0


def main(daemon_mode: bool = True, argv: list[str] | None = None) -> int:
    """Entry point of ``panda_harvester``; returns the process exit code."""
    options = master_cli.parse_options(argv)
    if options.showVersion:
        print(f"Version : {panda_pkg_info.release_version}")
        print(f"Last commit : {commit_timestamp.timestamp}")
        return 0
    prepared = master_cli.prepare_process(options)
    if isinstance(prepared, int):
        return prepared
    detach = daemon_mode and not options.foreground
    context = master_cli.daemon_context(prepared.identity, prepared.log_dir) if detach else contextlib.nullcontext()
    with context:
        if not detach:
            master_cli.switch_identity(prepared.identity)
        pid_file = prepared.pid_file
        if pid_file is not None:
            try:
                pid_file.acquire()
            except master_cli.PidFileBusy as exc:
                print(exc, file=sys.stderr)
                return 1
        try:
            return run_master(options, daemon_mode, pid_file)
        finally:
            if pid_file is not None:
                pid_file.release()


if __name__ == "__main__":
    sys.exit(main())
else:
    from pandaharvester.harvesterbody import uwsgi_app as _uwsgi_app

    if _uwsgi_app.under_uwsgi(__name__):  # this file is uWSGI's wsgi-file: run this worker's agents
        _uwsgi_app.start()
        application = _uwsgi_app.application
