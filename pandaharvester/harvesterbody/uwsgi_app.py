"""Harvester under uWSGI, as the original runs it: ``uwsgi --ini panda_harvester-uwsgi.ini``.

The ini (``templates/panda/panda_harvester-uwsgi.ini.rpmnew.template``) names
``pandaharvester/harvesterbody/master.py`` as its ``wsgi-file`` with ``lazy-apps = true`` and
``processes = N``: uWSGI's master (not Python) forks N workers, and each loads that file, which
then calls :func:`start` here: the agent threads of this instance start in every uWSGI worker,
and the workers share the work through the DB's row locks and process locks exactly as the
worker processes of ``[master] nProcesses`` do (:mod:`processes`). What differs:

- uWSGI's master owns the processes: its ``safe-pidfile``, its signals and ``master-fifo``
  (``q`` stops gracefully, ``r`` reloads); a worker that dies is started again by uWSGI (not
  the whole instance stopped). At a worker's exit (``uwsgi.atexit``) its agents are asked to
  stop and get ``[master] stopTimeout`` (bounded by uWSGI's mercy) to finish their cycle.
- Worker K (``uwsgi.worker_id() - 1``) logs to ``panda-<agent>-p<K>.log``, as with nProcesses.
- The tables are made (and the process locks cleared) by worker 1 only, once per start of the
  uWSGI master (``uwsgi.started_on``, recorded in the cache table); the other workers wait for
  it (up to 60 s) before they start their agents, and a worker started again by uWSGI does not
  make them again.
- ``sys.executable`` (the uwsgi binary in a uWSGI worker) is set to the environment's Python,
  which plugins start their helper processes with.
- :data:`application` answers every HTTP request with the instance's name and the worker's
  pid (the original served its HTTP messenger there; this Harvester has none).
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any, Callable, Iterable

from pandaharvester.harvestercore import core_utils

_logger = core_utils.setup_logger("master")

TABLES_KEY = "_uwsgi_tables_made"
UNIVERSAL_SUB_KEY = "_universal"
TABLES_WAIT = 60.0
_state: dict[str, Any] = {"master": None}


def under_uwsgi(module_name: str) -> bool:
    """Whether ``master.py`` was loaded by uWSGI as its ``wsgi-file`` (not imported, not run)."""
    if module_name in ("__main__", "pandaharvester.harvesterbody.master"):
        return False
    try:
        import uwsgi  # noqa: F401 - only exists inside a uWSGI process
    except ImportError:
        return False
    return True


def _tables(uwsgi: Any, index: int) -> None:
    """Worker 1 makes the tables once per uWSGI start; the others wait for it."""
    from pandaharvester.harvestercore.db_proxy_pool import DBProxyPool

    from pandaharvester.harvesterbody.master import prepare_instance

    stamp = f"{float(uwsgi.started_on):.0f}"
    proxy = DBProxyPool()

    def made() -> bool:
        try:
            spec = proxy.get_cache(TABLES_KEY, UNIVERSAL_SUB_KEY, from_local_cache=False)
        except Exception:
            return False  # no cache table yet
        return spec is not None and str(spec.data) == stamp

    if index == 0:
        if not made():
            prepare_instance()
            DBProxyPool().refresh_cache(TABLES_KEY, UNIVERSAL_SUB_KEY, stamp)
        return
    deadline = time.monotonic() + TABLES_WAIT
    while not made() and time.monotonic() < deadline:
        time.sleep(0.5)
    if not made():
        _logger.warning(f"uWSGI worker {index + 1}: worker 1 did not make the tables in {TABLES_WAIT:.0f} s; "
                        "starting the agents anyway")


def _python_executable() -> None:
    """``sys.executable`` is the uwsgi binary here: point it at the environment's Python, which
    plugins start their helpers with (the dummy pilot, ``python -m`` tools)."""
    import sys

    if os.path.basename(sys.executable or "").startswith("uwsgi"):
        for name in (f"python{sys.version_info[0]}.{sys.version_info[1]}", f"python{sys.version_info[0]}", "python"):
            candidate = os.path.join(sys.prefix, "bin", name)
            if os.access(candidate, os.X_OK):
                sys.executable = candidate
                return


def start() -> None:
    """Start this uWSGI worker's agents (called when uWSGI loads ``master.py``)."""
    import uwsgi

    from pandaharvester.harvesterbody import master_cli
    from pandaharvester.harvesterbody.master import Master

    index = int(uwsgi.worker_id()) - 1
    _python_executable()
    problems, warnings = master_cli.check_config()
    if problems:
        for line in problems:
            print(line, flush=True)
        raise SystemExit(master_cli.EXIT_CONFIG)
    master_cli.configure_logging(f"-p{index}")
    for line in warnings:
        _logger.warning(line)
    _logger.info(f"start under uWSGI: worker {index + 1} of {uwsgi.numproc} (pid {os.getpid()})")
    _tables(uwsgi, index)
    stop_event = threading.Event()
    pid_file = uwsgi.opt.get("safe-pidfile") or uwsgi.opt.get("pidfile")
    if isinstance(pid_file, bytes):
        pid_file = pid_file.decode()
    master = Master(stop_event=stop_event, daemon_mode=False, pid_file=pid_file, process_index=index)
    master.start()  # daemon_mode False: the agents run, start() returns at once
    _state["master"] = master
    uwsgi.atexit = stop


def stop() -> None:
    """uWSGI's atexit hook: the agents stop after their current cycle, locks released, DB closed."""
    master = _state.get("master")
    if master is None:
        return
    _logger.info("uWSGI worker exiting: stopping the agents")
    master.stopEvent.set()
    master.join_agents()
    master.shutdown()
    _logger.info("terminated")


def application(environ: dict, start_response: Callable[..., Any]) -> Iterable[bytes]:
    """The WSGI application uWSGI serves: who answered (instance, worker pid)."""
    from pandaharvester.harvesterconfig import schema

    body = f"PanDA Harvester {schema.cfg_value('master', 'harvester_id', '')} worker pid {os.getpid()}\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
