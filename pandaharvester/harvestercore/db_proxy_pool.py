"""``DBProxyPool``: a process-wide pool of ``[db] nConnections`` DBProxy objects.

Any method call on the pool borrows one proxy for the duration of the call (``DBProxyMethod``),
so many agent threads share a bounded number of connections and each connection is used by one
thread at a time. Agents import it as ``DBProxyPool as DBProxy``. The pool is a singleton per
(DB file, read-only flag, process): a cfg pointing at another file gets its own pool, and a
forked child never reuses its parent's connections.

A DB file deleted (or replaced) underneath the running process is dealt with here
(:meth:`DBProxyPool.restore`): every proxy of the pool is gathered, a copy of the state is made
from one of their connections (still open on the old file), all are closed, the copy is put back
in place (deleted; nothing lost) or kept next to the new file (replaced), the connections reopen
and the call that found it runs again. It is done only when nothing else (another pool, another
process) has the old file open; otherwise the writes stay refused (``docs/db.md``).
"""

from __future__ import annotations

import os
import queue
import threading
import time
from typing import Any

from pandaharvester.errors import DBStorageError

from .db.engine import DBSettings, settings_from_config
from .db_proxy import DBProxy
from .log_utils import setup_logger

_logger = setup_logger("db_proxy_pool")

DELETED, REPLACED = "database file deleted", "database file replaced"


class DBProxyMethod:
    """A callable that runs ``method_name`` on a proxy borrowed from the pool."""

    def __init__(self, method_name: str, pool: "DBProxyPool"):
        self.methodName = method_name
        self.pool = pool

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        proxy = self.pool.get()
        try:
            try:
                return getattr(proxy, self.methodName)(*args, **kwargs)
            except DBStorageError as exc:
                if exc.condition not in (DELETED, REPLACED) or not self.pool.restore(proxy, exc):
                    raise
            return getattr(proxy, self.methodName)(*args, **kwargs)  # on the restored file
        finally:
            self.pool.put(proxy)


def _reopen_if_closed(proxy: DBProxy) -> None:
    """A proxy whose connection a failed recovery closed gets a new one (when one can be made)."""
    try:
        proxy._con.total_changes
    except Exception:  # sqlite3.ProgrammingError: closed
        try:
            proxy._reconnect()
        except Exception as exc:  # noqa: BLE001 - the next call says it again
            _logger.error(f"reopening a connection failed: {exc}")


class _Held(threading.local):
    """Proxies the current thread has borrowed and not yet given back."""

    count = 0


class DBProxyPool:
    """Singleton pool of DBProxy objects; attribute access gives a :class:`DBProxyMethod`."""

    _instances: dict[tuple[Any, ...], "DBProxyPool"] = {}
    _lock = threading.Lock()

    def __new__(cls, read_only: bool = False, settings: DBSettings | None = None) -> "DBProxyPool":
        settings = settings or settings_from_config()
        key = settings.identity() + (bool(read_only), os.getpid())
        with cls._lock:
            instance = cls._instances.get(key)
            if instance is None:
                instance = object.__new__(cls)
                instance._setup(settings, read_only)
                cls._instances[key] = instance
            return instance

    def __init__(self, read_only: bool = False, settings: DBSettings | None = None):
        # all set up once in __new__
        pass

    def _setup(self, settings: DBSettings, read_only: bool) -> None:
        self.settings = settings
        self.read_only = read_only
        self.size = max(1, int(settings.n_connections))
        self.pool: queue.LifoQueue[DBProxy] = queue.LifoQueue()
        self._made = 0
        self._made_lock = threading.Lock()
        self._restore_lock = threading.Lock()
        self._held = _Held()
        self._extra: set[int] = set()  # ids of the proxies made beyond the size (closed when given back)

    def get(self) -> DBProxy:
        """Borrow a proxy (made on demand up to the pool size, else wait for one).

        A thread that already holds one (a DB call made inside another, e.g. ``make_tables`` loading
        the queue config) never waits for its own: it gets an extra proxy, closed when given back,
        so that ``[db] nConnections = 1`` cannot deadlock the start."""
        proxy = self._get()
        self._held.count += 1
        return proxy

    def _get(self) -> DBProxy:
        try:
            return self.pool.get_nowait()
        except queue.Empty:
            pass
        with self._made_lock:
            if self._made < self.size:
                self._made += 1
                try:
                    return DBProxy(read_only=self.read_only, settings=self.settings)
                except Exception:
                    self._made -= 1
                    raise
        if self._held.count:
            proxy = DBProxy(read_only=self.read_only, settings=self.settings)
            self._extra.add(id(proxy))
            return proxy
        return self.pool.get()

    def put(self, proxy: DBProxy) -> None:
        """Give a proxy back (an open transaction left by a raw execute() is rolled back)."""
        self._held.count = max(0, self._held.count - 1)
        if proxy._depth:
            _logger.warning("a proxy came back with an open transaction; rolled back")
            proxy.rollback()
        if id(proxy) in self._extra:
            self._extra.discard(id(proxy))
            proxy.close()
            return
        self.pool.put(proxy)

    def restore(self, proxy: DBProxy, exc: DBStorageError) -> bool:
        """Put the deleted DB file back from the pool's connections (see the module docstring);
        True when done (or done meanwhile by another thread), False when it cannot be now."""
        storage = getattr(proxy.engine, "storage", None)
        if storage is None:
            return False
        if not self._restore_lock.acquire(blocking=False):
            return False  # another thread is at it and needs this proxy back: this call fails, the next works
        held: list[DBProxy] = []
        try:
            if storage.lost() is None:
                return True
            deadline = time.monotonic() + float(self.settings.busy_timeout)
            while len(held) + 1 < self._made:
                held.append(self.pool.get(timeout=max(deadline - time.monotonic(), 0.01)))
            proxies = [proxy] + held
            others = storage.open_elsewhere()
            if others != 0:
                who = "/proc cannot tell whether other processes" if others < 0 else f"{others} descriptors of other processes"
                saved = storage.save_copy(proxy._con)
                keep = f"harvester's state is saved in {saved}: stop harvester, put it at {storage.path}, start " \
                       f"harvester again" if saved else "stop harvester and start it again"
                _logger.error(f"DB file {storage.path}: {exc.condition}, not recovered: {who} have the old file "
                              f"open (harvester's other processes?); {keep}")
                return False
            line = storage.recover([p._con for p in proxies])
            for p in proxies:
                p._reconnect()
            _logger.error(f"{line}; {len(proxies)} connections reopened")
            return True
        except queue.Empty:
            _logger.error(f"DB file {storage.path}: {exc.condition}, not recovered yet: {self._made - len(held) - 1}"
                          f" connections stayed busy for {self.settings.busy_timeout} s; tried again at the next write")
            return False
        except Exception as err:  # noqa: BLE001 - any failure leaves the writes refused, said once here
            _logger.error(f"DB file {storage.path}: {exc.condition}, recovering failed ({type(err).__name__}: "
                          f"{err}); tried again at the next write")
            for p in [proxy] + held:
                _reopen_if_closed(p)
            return False
        finally:
            for p in held:
                self.pool.put(p)
            self._restore_lock.release()

    def __getattr__(self, name: str) -> DBProxyMethod:
        if name.startswith("__"):
            raise AttributeError(name)
        if not callable(getattr(DBProxy, name, None)):
            raise AttributeError(f"DBProxy has no method {name!r}")
        return DBProxyMethod(name, self)

    @classmethod
    def reset(cls) -> None:
        """Close every pooled connection and forget the pools (tests, re-configuration)."""
        with cls._lock:
            for instance in cls._instances.values():
                while True:
                    try:
                        instance.pool.get_nowait().close()
                    except queue.Empty:
                        break
            cls._instances.clear()
