"""Releasing, at start, the row locks of this host's dead processes.

An agent locks its rows by writing its owner string (``AgentBase.locked_by``:
``<cfg section>-<hostname>_<os pid>-<thread hex>``, or ``<hostname>_<os pid>-<thread hex>``)
into a lock column; the lock expires after the agent's ``lockInterval`` (600 s by default).
After a crash (``kill -9``, OOM killer, power cut) every row the dead process held would sit
still for that long. A lock is safe to release early only when its owner cannot write again:
the owner ran on this host and its process is gone. So at start, before any agent runs, the
master releases the locks whose owner names this host and a process id that

- is this very process (nothing here has locked a row yet: the lock is a previous run's that
  had the same pid, as in a container where the daemon is always pid 1), or
- no longer exists (or is a zombie).

A live process of this host (another process of the instance, ``[master] nProcesses``) keeps its
locks, and so does a pid reused by an unrelated process (released by ``lockInterval`` as
before): no row is ever given to two live lockers. Locks of other hosts are never touched.
Hostnames must therefore be unique among the instances sharing one database (the owner strings
already rely on that). ``[master] releaseDeadLocksAtStart = False`` turns this off.
"""

from __future__ import annotations

import os
import re
from typing import Callable

from .base import DBModule, chunks, db_method, in_binds

# every (table, column) holding an owner string
LOCK_COLUMNS: tuple[tuple[str, str], ...] = (
    ("job_table", "lockedBy"),
    ("job_table", "propagatorLock"),
    ("job_table", "stagerLock"),
    ("work_table", "lockedBy"),
    ("work_table", "eventFeedLock"),
    ("pq_table", "lockedBy"),
)


def owner_pattern(hostname: str) -> re.Pattern[str]:
    """Owner strings of ``hostname``'s threads; group ``pid`` is the os process id."""
    return re.compile(rf"^(?:[A-Za-z0-9_]+-)?{re.escape(hostname)}_(?P<pid>\d+)-[0-9a-f]+$")


def owner_pid(owner: str, pattern: re.Pattern[str]) -> int | None:
    """The process id in ``owner`` when it names the pattern's host, else None."""
    match = pattern.match(owner)
    return int(match.group("pid")) if match else None


def pid_is_dead(pid: int, own_pid: int | None = None) -> bool:
    """True when no live process can still hold a lock written by ``pid``: it is ``own_pid``
    (the caller, which has not locked anything yet), gone, or a zombie."""
    if pid == (os.getpid() if own_pid is None else own_pid):
        return True
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, another user's
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return False


class LockRecoveryMixin(DBModule):
    """Releases the lock columns of :data:`LOCK_COLUMNS` held by dead processes of one host."""

    @db_method(dict)
    def release_dead_locks(self, hostname: str, is_dead: Callable[[int], bool] = pid_is_dead) -> dict[str, int]:
        """Set to NULL every lock column owned by a dead process of ``hostname`` (see the module
        docstring); returns ``{"<table>.<column>": rows released}`` for the columns with any."""
        pattern = owner_pattern(hostname)
        released: dict[str, int] = {}
        with self._tx():
            for table, column in LOCK_COLUMNS:
                owners = [row[0] for row in self._exec(
                    f"SELECT DISTINCT {column} FROM {table} WHERE {column} IS NOT NULL").fetchall()]
                dead = []
                for owner in owners:
                    pid = owner_pid(str(owner), pattern)
                    if pid is not None and is_dead(pid):
                        dead.append(owner)
                count = 0
                for chunk in chunks(dead):
                    varmap: dict = {}
                    binds = in_binds("o", chunk, varmap)
                    count += self._exec(f"UPDATE {table} SET {column}=NULL WHERE {column} IN ({binds})",
                                        varmap).rowcount
                if count:
                    released[f"{table}.{column}"] = count
        return released
