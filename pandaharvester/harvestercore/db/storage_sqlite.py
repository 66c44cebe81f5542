"""The storage under an SQLite DB file: what stopped the writes, said once, and the way back.

:class:`StorageWatch` (one per DB file, owned by the :class:`~.engine_sqlite.SQLiteEngine`)

- classifies an sqlite3 error that means the storage stopped taking writes into a
  :class:`~pandaharvester.errors.DBStorageError` with one of the conditions "disk full",
  "read-only", "disk I/O error" (an I/O error is looked into: a read-only filesystem, an
  unwritable file or a full disk is named as such), naming the file and what to do;
- notices a DB file deleted (or replaced by another file) underneath the running process: SQLite
  goes on writing into the file it opened, which disappears at exit, so the path's identity
  (device, inode) is checked at every write transaction (one ``stat``) and the writes are refused;
- reports a condition as one ERROR line when it starts and again every :data:`REPORT_EVERY`
  seconds while it lasts (with the count of refused writes), and one WARNING line with its
  duration when a write succeeds again;
- recovers (:meth:`recover`) from a consistent copy made with SQLite's backup API through a
  connection still open on the old file: a deleted file is put back in place, nothing lost; for a
  replaced one the copy is kept next to it and the new file is used, as a restart would. The
  caller gathers every connection of the process first (``DBProxyPool.restore``) and checks in
  /proc that no other process has the old file open (``docs/db.md``, "Storage failures").
"""

from __future__ import annotations

import errno
import os
import sqlite3
import threading
import time
from typing import Any, Sequence

from pandaharvester.errors import DBStorageError

from ..log_utils import setup_logger

_logger = setup_logger("db_proxy")

# seconds between two ERROR lines about the same lasting condition
REPORT_EVERY = 60.0

DISK_FULL = "disk full"
READ_ONLY = "read-only"
IO_ERROR = "disk I/O error"
DELETED = "database file deleted"
REPLACED = "database file replaced"

_RETRY = ("harvester keeps running, retries at every cycle and carries on by itself once a write succeeds "
          "(the rows of a failed write keep their state and are taken again)")


class StorageWatch:
    """The identity and the write condition of one SQLite DB file (see the module docstring)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.directory = os.path.dirname(os.path.abspath(path))
        self.identity: tuple[int, int] | None = None  # (st_dev, st_ino) of the file the connections opened
        self.condition: str | None = None
        self.since = 0.0
        self.failures = 0
        self._last_report = 0.0
        self._last_condition: str | None = None
        self._announced = False  # an ERROR line was written since the last "writable again"
        self._lock = threading.Lock()
        self.saved_copy: str | None = None  # the copy of a replaced file's state (see lost())

    # ------------------------------------------------------------ identity
    def remember(self) -> None:
        """Take the path's current file as the one the connections use."""
        st = os.stat(self.path)
        self.identity = (st.st_dev, st.st_ino)

    def lost(self) -> DBStorageError | None:
        """A DBStorageError when the file the connections opened is no longer at the path."""
        if self.identity is None:
            return None
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return self.error(DELETED, "the file is gone from its path")
        except OSError:
            return None  # cannot tell (e.g. the directory is unreadable): the writes will say
        if (st.st_dev, st.st_ino) != self.identity:
            return self.error(REPLACED, "another file is at its path now")
        return None

    # ------------------------------------------------------------ errors
    def classify(self, exc: BaseException) -> DBStorageError | None:
        """The DBStorageError for an sqlite3 error meaning the storage refused a write, else None."""
        if not isinstance(exc, sqlite3.Error):
            return None
        name = str(getattr(exc, "sqlite_errorname", "") or "")
        text = str(exc).lower()
        if name.startswith("SQLITE_FULL") or "database or disk is full" in text:
            return self.error(DISK_FULL, str(exc))
        if name.startswith("SQLITE_READONLY") or "readonly database" in text:
            return self.error(self._probe() or READ_ONLY, str(exc))
        if name.startswith("SQLITE_IOERR") or "disk i/o error" in text:
            return self.error(self._probe() or IO_ERROR, f"{exc}, {name}" if name else str(exc))
        return None

    def _probe(self) -> str | None:
        """What the filesystem says now: deleted, read-only (filesystem or file), disk full, or None."""
        if self.lost() is not None and not os.path.exists(self.path):
            return DELETED
        try:
            vfs = os.statvfs(self.directory)
        except OSError:
            return DELETED if not os.path.isdir(self.directory) else None
        if vfs.f_flag & os.ST_RDONLY:
            return READ_ONLY
        for path in (self.path, self.path + "-wal"):
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_APPEND))
            except FileNotFoundError:
                continue
            except OSError as exc:
                if exc.errno in (errno.EPERM, errno.EACCES, errno.EROFS):
                    return READ_ONLY
        if vfs.f_bavail == 0:
            return DISK_FULL
        return None

    def error(self, condition: str, detail: str) -> DBStorageError:
        """The one-line DBStorageError of ``condition``: file, condition, detail, what to do."""
        path, directory = self.path, self.directory
        if condition == DISK_FULL:
            todo = f"free space on the filesystem of {directory}; {_RETRY}"
        elif condition == READ_ONLY:
            todo = (f"make {path}, its -wal and -shm files and {directory} writable again (mount -o remount,rw, "
                    f"chattr -i, chmod u+w); {_RETRY}")
        elif condition == IO_ERROR:
            todo = (f"check the disk of {directory} (dmesg); {_RETRY}; a filesystem the kernel remounted read-only "
                    f"needs harvester stopped, the filesystem repaired and harvester started again")
        elif condition == DELETED:
            todo = ("the running state is only in the deleted file, which disappears when harvester exits; harvester "
                    f"restores it in place from its open connection (needs {directory} to exist, be writable and "
                    f"have space) at the next write, and carries on")
        else:
            todo = (f"harvester saves the state it had next to it ({path}.harvester-<pid>) and goes on with the new "
                    f"file, as a restart would (needs all of harvester's connections idle and no other process "
                    f"on the old file)")
        return DBStorageError(f"DB file {path}: {condition} ({detail}): writes stopped; {todo}",
                              path=path, condition=condition)

    # ------------------------------------------------------------ reporting
    def report(self, method: str, problem: DBStorageError) -> None:
        """One ERROR line when ``problem``'s condition starts, then every REPORT_EVERY s while it lasts.
        A condition that comes back within REPORT_EVERY of its last line (a nearly full disk: a small
        write fits, the next does not) goes on silently."""
        now = time.monotonic()
        with self._lock:
            self.failures += 1
            same = problem.condition == self._last_condition and now - self._last_report < REPORT_EVERY
            if problem.condition != self.condition and not same:
                self.condition, self.since, self._last_report = problem.condition, now, now
                self._last_condition, self._announced = problem.condition, True
                line = f"{method}: {problem}"
            elif now - self._last_report >= REPORT_EVERY:
                self.condition, self._last_report, self._announced = problem.condition, now, True
                line = (f"{method}: still {problem.condition} after {now - self.since:.0f} s "
                        f"({self.failures} writes refused so far): {problem}")
            else:
                self.condition = problem.condition
                return
        _logger.error(line)

    def ok(self) -> None:
        """A write was committed: end a reported condition (one WARNING line after an ERROR line)."""
        with self._lock:
            condition, failures, announced = self.condition, self.failures, self._announced
            if condition is None:
                return
            took = time.monotonic() - self.since
            self.condition, self._announced = None, False
            if announced:
                self.failures = 0
        if announced:
            _logger.warning(f"DB file {self.path}: writable again after {took:.1f} s of {condition}: {failures} "
                            f"writes were refused meanwhile, their rows are taken again")

    # ------------------------------------------------------------ restoring a deleted file
    def open_elsewhere(self) -> int:
        """How many descriptors other processes have open on the file the connections use (from /proc;
        -1 when it cannot tell). This process's own are not counted: SQLite keeps the descriptor of a
        closed connection open while others of the process hold locks on the file, so they say
        nothing; the pool gathers this process's connections itself."""
        if self.identity is None:
            return -1
        try:
            return _open_count(self.identity, others=True)
        except OSError:
            return -1

    def save_copy(self, con: Any) -> str | None:
        """A consistent copy of the state ``con`` sees at ``<path>.harvester-<pid>`` (made once);
        None when it cannot be written."""
        if self.saved_copy is None:
            target = f"{self.path}.harvester-{os.getpid()}"
            try:
                _unlink_quietly(target)
                _copy(con, target)
                self.saved_copy = target
            except (OSError, sqlite3.Error) as exc:
                _logger.error(f"DB file {self.path}: could not save the running state to {target}: {exc}")
        return self.saved_copy

    def recover(self, cons: Sequence[Any]) -> str:
        """The way back from a deleted or replaced file, given every connection open on the old one
        (``cons``; the caller checked there are no others): a consistent copy of the state from
        ``cons[0]`` (SQLite's backup API, integrity-checked, fsynced), all of ``cons`` closed (their
        last close removes the old -wal/-shm by name; those left are removed when they are still
        the old ones, so no file at the path ever meets them), then

        - deleted: the copy linked in place (never over a file someone put there meanwhile): the
          connections reopen on it and nothing is lost;
        - replaced: the copy is kept next to it (``<path>.harvester-<pid>``) and the connections
          reopen on the new file, as a restart would.

        Returns the one line saying what was done. OSError/sqlite3.Error when the copy cannot be
        made (nothing changed then: ``cons`` are still open)."""
        replaced = os.path.exists(self.path)
        target = f"{self.path}.harvester-{os.getpid()}" if replaced else f"{self.path}.restore-{os.getpid()}"
        _unlink_quietly(target)
        src = cons[0]
        try:
            src.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        except sqlite3.Error:
            pass  # the copy reads through the WAL anyway
        _copy(src, target)
        companions = {}
        for suffix in ("-wal", "-shm"):
            try:
                st = os.stat(self.path + suffix)
                if _open_count((st.st_dev, st.st_ino), own=True):
                    companions[suffix] = (st.st_dev, st.st_ino)
            except OSError:
                pass
        for con in cons:
            try:
                con.close()
            except sqlite3.Error:
                pass
        for suffix, identity in companions.items():
            try:
                st = os.stat(self.path + suffix)
            except OSError:
                continue
            if (st.st_dev, st.st_ino) == identity:
                _unlink_quietly(self.path + suffix)  # the old file's, left behind
        if replaced:
            self.saved_copy = target
            self.identity = None  # the next connection takes the file at the path
            return (f"DB file {self.path}: database file replaced by another file while harvester ran; the state "
                    f"harvester had is saved in {target}; harvester now uses the new file, as a restart would")
        try:
            os.link(target, self.path)  # never over a file someone put there meanwhile
        except OSError:
            self.saved_copy = target  # the state lives on in the copy only: never removed
            self.identity = None
            raise
        _unlink_quietly(target)
        _fsync_dir(self.directory)
        self.remember()
        return (f"DB file {self.path}: database file deleted underneath harvester; restored in place from the "
                f"open connection, nothing lost")


def _copy(src: Any, target: str) -> None:
    """``target`` (0600): a consistent, integrity-checked, fsynced copy of what ``src`` sees."""
    fd = os.open(target, os.O_CREAT | os.O_RDWR | os.O_EXCL, 0o600)
    os.close(fd)
    try:
        dst = sqlite3.connect(target, isolation_level=None)
        try:
            src.backup(dst)
            if dst.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                raise sqlite3.DatabaseError(f"the copy {target} failed its integrity check")
        finally:
            dst.close()
        fd = os.open(target, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        _unlink_quietly(target)
        raise


def _open_count(identity: tuple[int, int], own: bool = False, others: bool = False) -> int:
    """Descriptors open on the file ``identity`` (device, inode): in this process (``own``) or in
    the other processes /proc shows (``others``)."""
    me = str(os.getpid())
    pids = ["self"] if own else [p for p in os.listdir("/proc") if p.isdigit() and not (others and p == me)]
    found = 0
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                st = os.stat(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if (st.st_dev, st.st_ino) == identity:
                found += 1
    return found


def _fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
