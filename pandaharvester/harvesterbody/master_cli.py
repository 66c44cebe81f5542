"""Process plumbing of the master: options, the start-up checks, pid file, identity, daemon
context, logging, profiler.

Kept apart from :mod:`master` (which runs and stops the agents) so that both stay readable;
:func:`prepare_process` is the start-up sequence before the process detaches.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import grp
import logging
import os
import pwd
import signal
import socket
import sys
from dataclasses import dataclass
from typing import Any

from pandaharvester.harvestercore import core_utils
from pandaharvester.harvestercore.log_utils import LOGGER_PREFIX

EXIT_CONFIG = 78  # sysexits.h EX_CONFIG: the systemd unit does not restart on it


def parse_options(argv: list[str] | None = None) -> argparse.Namespace:
    """The original's command-line options (dest names kept)."""
    parser = argparse.ArgumentParser(prog="panda_harvester", description="PanDA Harvester master process")
    parser.add_argument("--pid", dest="pid", default=None, help="pid file name")
    parser.add_argument("--single", dest="singleMode", action="store_true", default=False,
                        help="single mode: every agent runs one cycle, then the process exits")
    parser.add_argument("--hostname_file", dest="hostNameFile", default=None,
                        help="file to record the host name where harvester is launched")
    parser.add_argument("--rotate_log", dest="rotateLog", action="store_true", default=False,
                        help="roll over the log files before launching harvester")
    parser.add_argument("--version", dest="showVersion", action="store_true", default=False,
                        help="show version information and exit")
    parser.add_argument("--profile_output", dest="profileOutput", default=None,
                        help="file name to save the results of the profiler")
    parser.add_argument("--profile_mode", dest="profileMode", default="s", choices=["s", "d", "t"],
                        help="profile mode: s (statistic), d (deterministic) or t (thread-aware)")
    parser.add_argument("--memory_logging", dest="memLogging", action="store_true", default=False,
                        help="add the memory usage of the process to every log message")
    parser.add_argument("--foreground", dest="foreground", action="store_true", default=False,
                        help="run in the foreground, not daemonised")
    # internal: how the master of a multi-process instance ([master] nProcesses > 1) starts its
    # worker processes (see processes.py); not for use on the command line
    parser.add_argument("--process_index", dest="processIndex", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--master_pid_file", dest="masterPidFile", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# ---------------------------------------------------------------- start-up
@dataclass
class Prepared:
    """What :func:`prepare_process` set up for the master's run."""

    log_dir: str
    identity: "Identity"
    pid_file: "PidFile | None"


def prepare_process(options: argparse.Namespace) -> Prepared | int:
    """The start-up before the process detaches, in this order: cfg checks (a problem: one line
    each on stderr, :data:`EXIT_CONFIG`), logging (then the cfg warnings), a pid file that is
    free, the identity to switch to, memory logging, GC tuning, the host-name file, log
    rotation. Returns what the run needs, or the exit status when the start is refused."""
    # files the daemon makes (logs, DB, pid file, worker directories) are never group/world-writable,
    # whatever the umask it was started with; the secret-carrying ones are made 0600/0700 explicitly
    os.umask(os.umask(0o022) | 0o022)
    problems, warnings = check_config()
    if problems:
        for line in problems:
            print(line, file=sys.stderr)
        return EXIT_CONFIG
    worker = options.processIndex is not None
    directory = configure_logging(f"-p{options.processIndex}" if worker else "")
    log = core_utils.setup_logger("master")
    for line in warnings:
        log.warning(line)
    pid_file = PidFile(options.pid) if options.pid else None
    refusal = pid_file.check_free() if pid_file is not None else None
    if refusal is not None:
        print(refusal, file=sys.stderr)
        return 1
    try:
        identity = resolve_identity()
    except Exception as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    if options.memLogging:
        enable_memory_logging()
    tune_gc()
    if options.hostNameFile is not None and not worker:
        with open(options.hostNameFile, "w") as stream:
            stream.write(socket.getfqdn())
    if options.rotateLog and not worker:
        core_utils.do_log_rollover()
    return Prepared(directory, identity, pid_file)


# ---------------------------------------------------------------- configuration helpers
def section_dict(name: str) -> dict[str, Any]:
    """All keys of cfg section ``name`` as a dict ({} when the section is absent)."""
    from pandaharvester.harvesterconfig import harvester_config

    config_dict = getattr(harvester_config, "config_dict", None)
    if isinstance(config_dict, dict) and name in config_dict:
        return dict(config_dict[name])
    try:
        section = getattr(harvester_config, name)
    except Exception:
        return {}
    for attr in ("as_dict", "to_dict", "items"):
        if callable(getattr(section, attr, None)):
            try:
                return dict(getattr(section, attr)())
            except Exception:
                pass
    return {k: v for k, v in vars(section).items() if not k.startswith("_")}


def log_dir() -> str:
    """Absolute ``[master] logDir``, else panda_common.cfg ``[logger] logdir``, else ``$PANDA_HOME/var/log/panda``."""
    from pandaharvester.harvesterconfig import panda_common, schema

    directory = schema.cfg_value("master", "logDir") or panda_common.read_logger_section().log_dir
    if not directory:
        directory = os.path.join(os.environ.get("PANDA_HOME", "/"), "var", "log", "panda")
    return os.path.abspath(str(directory))


def configure_logging(file_suffix: str = "") -> str:
    """One file per agent under :func:`log_dir` (``panda-<name><file_suffix>.log``); returns the directory.

    Levels: ``[log_level] <name>`` of panda_harvester.cfg per logger, else panda_common.cfg
    ``[logger] log_level`` (where the original reads it), else INFO.
    """
    from pandaharvester.harvesterconfig import panda_common

    directory = log_dir()
    default = panda_common.read_logger_section().log_level  # checked at start (check_config)
    core_utils.configure_logging(directory, section_dict("log_level"), default_level=default or logging.INFO,
                                 file_suffix=file_suffix)
    return directory


def check_config() -> tuple[list[str], list[str]]:
    """``(problems, warnings)`` of the cfg and of panda_common.cfg, one line each.

    Problems (a cfg that does not load, bad values, missing required keys, a credential file others may
    read: :mod:`credential_files`) must stop the start;
    warnings (features turned on that this Harvester does not implement, unknown keys) are logged.
    """
    from pandaharvester.errors import ConfigError
    from pandaharvester.harvesterconfig import credential_files, harvester_config, panda_common, schema

    try:
        harvester_config.ensure_loaded()
    except ConfigError as exc:
        return [str(exc)], []
    common = panda_common.read_logger_section()
    problems = schema.validate(harvester_config) + common.problems() + credential_files.problems(harvester_config)
    if not problems:  # the communicator's own refusals (a token to a plain http:// URL) before anything starts
        from pandaharvester.harvestercommunicator.settings import start_problems

        problems = start_problems()
    if not problems:
        from pandaharvester.harvesterbody.monitor_fifo import fifo_problems
        from pandaharvester.harvestercommunicator.settings import start_problems
        from pandaharvester.harvesterconfig import plugin_refs

        problems = plugin_refs.start_problems() + start_problems() + fifo_problems()
    return problems, schema.feature_warnings(harvester_config) + common.warnings()


def tune_gc() -> None:
    """Fewer cyclic-garbage passes for a long-running daemon that holds many objects.

    Everything made so far (modules, configuration) is frozen out of the collector's view, and a
    young collection runs every 50,000 net allocations instead of 700: at 100k live workers a
    monitor cycle otherwise spends about a fifth of its time in full collections over objects
    that reference counting frees anyway. Garbage is still collected, only less often.
    """
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def enable_memory_logging() -> None:
    """Append the process's resident memory to every Harvester log record."""
    import psutil

    process = psutil.Process()
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if record.name.startswith(LOGGER_PREFIX):
            record.msg = f"{record.msg} <rss={process.memory_info().rss / 2 ** 20:.1f}MiB>"
        return record

    logging.setLogRecordFactory(factory)


def open_log_streams() -> list[Any]:
    """Streams of the Harvester log handlers that are open now (kept open by the daemon)."""
    streams = []
    for name, logger in logging.Logger.manager.loggerDict.items():
        if name.startswith("panda") and isinstance(logger, logging.Logger):
            for handler in logger.handlers:
                stream = getattr(handler, "stream", None)
                if stream is not None and hasattr(stream, "fileno"):
                    streams.append(stream)
    return streams


# ---------------------------------------------------------------- pid file
class PidFileBusy(Exception):
    """The pid file belongs to a running instance."""


class PidFile:
    """The master's pid file: created exclusively, removed only by the process that wrote it."""

    def __init__(self, path: str) -> None:
        import daemon.pidfile

        self.path = os.path.abspath(path)
        self.lock = daemon.pidfile.TimeoutPIDLockFile(self.path, acquire_timeout=0)
        self.owner: int | None = None

    def check_free(self) -> str | None:
        """None when we may start; else the reason why not. A stale file (dead pid) is removed."""
        if not os.path.exists(self.path):
            return None
        pid = self.lock.read_pid()
        if pid is None:
            return (f"ERROR: cannot start: pid file {self.path} exists but holds no pid; "
                    "remove it if no Harvester instance is running")
        if not _pid_alive(pid):
            self.lock.break_lock()
            return None
        return (f"ERROR: cannot start: pid file {self.path} is held by running process {pid}; "
                "stop that instance first (or remove the file if that process is not Harvester)")

    def acquire(self) -> None:
        """Write our pid; raises :class:`PidFileBusy` when another process got there first."""
        import lockfile

        try:
            self.lock.acquire()
        except (lockfile.AlreadyLocked, lockfile.LockTimeout) as exc:
            raise PidFileBusy(f"ERROR: cannot start: pid file {self.path} was created by another process") from exc
        self.owner = os.getpid()
        core_utils.set_file_permission(self.path)

    def release(self) -> None:
        """Remove the pid file if this process wrote it."""
        if self.owner != os.getpid():
            return
        with contextlib.suppress(Exception):
            self.lock.release()
        self.owner = None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ---------------------------------------------------------------- identity and daemon context
@dataclass
class Identity:
    """uid/gid to switch to (None: stay as we are)."""

    uid: int | None = None
    gid: int | None = None


def resolve_identity() -> Identity:
    """``[master] uname/gname``; switched to only when running as root and they differ."""
    from pandaharvester.errors import ConfigError
    from pandaharvester.harvesterconfig import harvester_config

    if os.geteuid() != 0:
        return Identity()
    uname = getattr(harvester_config.master, "uname", None)
    gname = getattr(harvester_config.master, "gname", None)
    identity = Identity()
    try:
        if uname:
            uid = pwd.getpwnam(str(uname)).pw_uid
            identity.uid = uid if uid != os.geteuid() else None
        if gname:
            gid = grp.getgrnam(str(gname)).gr_gid
            identity.gid = gid if gid != os.getegid() else None
    except KeyError as exc:
        raise ConfigError(f"[master] uname={uname!r} / gname={gname!r}: no such user or group on this host; "
                          "set them to the account Harvester runs as") from exc
    return identity


def switch_identity(identity: Identity) -> None:
    """Drop privileges in the foreground (the daemon context does it when daemonising)."""
    if identity.gid is not None:
        os.setgid(identity.gid)
    if identity.uid is not None:
        os.setuid(identity.uid)


def daemon_context(identity: Identity, directory: str) -> Any:
    """A python-daemon context: detached, our uid/gid/umask, log streams kept open."""
    import daemon

    umask = os.umask(0)
    os.umask(umask)
    stdout = open(os.path.join(directory, "panda_harvester_stdout.log"), "a")
    stderr = open(os.path.join(directory, "panda_harvester_stderr.log"), "a")
    kwargs: dict[str, Any] = {}
    if identity.uid is not None:
        kwargs["uid"] = identity.uid
    if identity.gid is not None:
        kwargs["gid"] = identity.gid
    return daemon.DaemonContext(
        working_directory=os.getcwd(), umask=umask, stdout=stdout, stderr=stderr,
        files_preserve=open_log_streams(),
        signal_map={signal.SIGTSTP: None, signal.SIGTTIN: None, signal.SIGTTOU: None},
        **kwargs)


# ---------------------------------------------------------------- profiler
class Profiler:
    """cProfile (mode s) or pprofile (modes d, t, when installed) around the master's run."""

    def __init__(self, output: str | None, mode: str, logger: Any) -> None:
        self.output = output
        self.prof: Any = None
        if output is None:
            return
        if mode in ("d", "t"):
            try:
                import pprofile

                self.prof = pprofile.Profile() if mode == "d" else pprofile.ThreadProfile()
            except ImportError:
                logger.warning(f"--profile_mode {mode} needs pprofile (not installed): using cProfile")
        if self.prof is None:
            import cProfile

            self.prof = cProfile.Profile()

    def enable(self) -> None:
        if self.prof is not None:
            self.prof.enable()

    def dump(self) -> None:
        """Stop profiling and write the statistics (once)."""
        if self.prof is not None:
            prof, self.prof = self.prof, None
            prof.disable()
            prof.dump_stats(self.output)
