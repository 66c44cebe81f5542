"""The dummy "batch system": each batch job is a local pilot process (``harvestertest/dummy_pilot.py``).

As a batch system, in three parts:

- submit: :func:`start_pilot` starts the pilot detached (own session and process group) in the
  worker's access point and records its identity (PID, process group, process start time) in
  ``dummy_pilot_process.json`` there;
- status: :func:`read_process_record` and :func:`pilot_is_alive` (same PID *and* start time, so
  a process that reused the PID is not taken for the pilot); the pilot's own final status is in
  ``dummy_pilot_status.json``;
- cancel: :func:`terminate_pilots` (SIGTERM to all, SIGKILL after a grace period, in bulk);
  the sweeper leaves ``dummy_pilot_killed.json`` first, the batch system's record that
  Harvester removed the job, so the monitor reports it cancelled.

``DummySubmitter``, ``DummyMonitor`` and ``DummySweeper`` share these; the old names in
``harvestersubmitter.dummy_submitter`` still work.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import psutil

__all__ = ["PROCESS_FILE", "KILLED_FILE", "STATUS_FILE", "CONFIG_FILE", "STDOUT_FILE", "STDERR_FILE",
           "DEFAULT_PILOT_MODULE", "reap_children", "read_json", "write_json", "read_process_record",
           "process_create_time", "pilot_is_alive", "terminate_pilot", "terminate_pilots", "pilot_script_path",
           "start_pilot"]

PROCESS_FILE = "dummy_pilot_process.json"
KILLED_FILE = "dummy_pilot_killed.json"  # the "batch system's" record that Harvester removed the job
STATUS_FILE = "dummy_pilot_status.json"
CONFIG_FILE = "dummy_pilot_conf.json"
STDOUT_FILE = "dummy_pilot.stdout"
STDERR_FILE = "dummy_pilot.stderr"
DEFAULT_PILOT_MODULE = "pandaharvester.harvestertest.dummy_pilot"

# pilots started by this process, kept so that finished ones are reaped (no zombies)
_children: dict[int, subprocess.Popen] = {}
_children_lock = threading.Lock()


# ---------------------------------------------------------------------------- files
def read_json(path: str) -> Any:
    """Parsed JSON of ``path``; None if missing. Raises ValueError if it does not parse."""
    try:
        with open(path) as stream:
            text = stream.read()
    except FileNotFoundError:
        return None
    return json.loads(text)


def write_json(path: str, data: Any) -> None:
    """Atomic JSON write (temporary file + ``os.replace``)."""
    tmp = f"{path}.tmp.{os.getpid()}.{threading.get_ident()}"
    text = json.dumps(data)  # one write: json.dump writes every fragment separately
    with open(tmp, "w") as stream:
        stream.write(text)
    os.replace(tmp, path)


def read_process_record(access_point: str) -> dict | None:
    """The pilot identity written at submission, or None. Raises ValueError if corrupt."""
    return read_json(os.path.join(access_point, PROCESS_FILE))


# ---------------------------------------------------------------------------- submit
def pilot_script_path(module_name: str = DEFAULT_PILOT_MODULE) -> str:
    """File path of the pilot script (it is run by path, so it needs no package on sys.path)."""
    spec = importlib.util.find_spec(module_name)
    if spec is None or not spec.origin:
        raise FileNotFoundError(f"pilot module {module_name!r} not found; check the submitter's pilotModule")
    return spec.origin


def start_pilot(access_point: str, config_path: str, pilot_module: str, host: str, fail: bool) -> dict:
    """Start the pilot detached in ``access_point`` and write its process record there; the record."""
    stdout_path = os.path.join(access_point, STDOUT_FILE)
    stderr_path = os.path.join(access_point, STDERR_FILE)
    command = [sys.executable, pilot_script_path(pilot_module), "--access-point", access_point,
               "--config", config_path]
    with open(stdout_path, "ab") as out, open(stderr_path, "ab") as err:
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=err, cwd=access_point,
                                start_new_session=True, close_fds=True)
    with _children_lock:
        _children[proc.pid] = proc
    record = {"pid": proc.pid, "pgid": proc.pid, "createTime": process_create_time(proc.pid),
              "submitTime": time.time(), "host": host, "instant": False,
              "stdout": stdout_path, "stderr": stderr_path, "fail": fail}
    write_json(os.path.join(access_point, PROCESS_FILE), record)
    return record


# ---------------------------------------------------------------------------- status
def reap_children() -> None:
    """Collect the exit status of pilots started here that have ended."""
    with _children_lock:
        for pid, proc in list(_children.items()):
            if proc.poll() is not None:
                del _children[pid]


def process_create_time(pid: int) -> float | None:
    """Start time (epoch) of process ``pid``, None if it does not exist."""
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied, ProcessLookupError):
        return None


def pilot_is_alive(record: dict | None) -> bool:
    """True while the recorded pilot runs (same PID *and* start time, not a zombie)."""
    if not record or record.get("instant") or not record.get("pid"):
        return False
    reap_children()
    pid = int(record["pid"])
    try:
        proc = psutil.Process(pid)
        if record.get("createTime") is not None and abs(proc.create_time() - float(record["createTime"])) > 1.0:
            return False  # the PID now belongs to another process
        return proc.status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


# ---------------------------------------------------------------------------- cancel
def terminate_pilot(record: dict | None, grace_period: float = 3.0) -> tuple[bool, str]:
    """SIGTERM then (after ``grace_period`` s) SIGKILL the pilot's process group. Idempotent."""
    return terminate_pilots([record], grace_period)[0]


def _signal_pilot(record: dict, sig: signal.Signals) -> str | None:
    """Send ``sig`` to the pilot's process group; an error message, or None (sent, or already gone)."""
    pid = int(record["pid"])
    pgid = int(record.get("pgid") or pid)
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass
    except PermissionError as exc:
        return f"cannot signal process group {pgid} of pilot PID={pid}: {exc}"
    return None


def terminate_pilots(records: list[dict | None], grace_period: float = 3.0) -> list[tuple[bool, str]]:
    """Bulk kill, as a batch system's: SIGTERM every live pilot at once, wait up to ``grace_period`` s
    for all of them, then SIGKILL the survivors. One ``(ok, diag)`` per record, in order."""
    results: list[tuple[bool, str] | None] = [None] * len(records)
    live: dict[int, dict] = {}
    for index, record in enumerate(records):
        if pilot_is_alive(record):
            live[index] = record  # type: ignore[assignment]
        else:
            results[index] = (True, "already gone")
    for sig, wait in ((signal.SIGTERM, grace_period), (signal.SIGKILL, 5.0)):
        for index in list(live):
            error = _signal_pilot(live[index], sig)
            if error is not None:
                results[index] = (False, error)
                del live[index]
        deadline = time.monotonic() + wait
        while live:
            for index in list(live):
                if not pilot_is_alive(live[index]):
                    results[index] = (True, f"pilot PID={live.pop(index)['pid']} ended after {sig.name}")
            if not live or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
    for index, record in live.items():
        results[index] = (False, f"pilot PID={record['pid']} still alive after SIGKILL")
    return [result or (False, "pilot state unknown") for result in results]
