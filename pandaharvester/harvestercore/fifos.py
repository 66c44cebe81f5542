"""FIFOs in front of the agents: priority queues of pickled objects ordered by a score.

The original's classes and interface: :class:`FIFOBase` (``put``, ``putbyid``, ``get``,
``getlast``, ``getmany``, ``peek``, ``peeklast``, ``peekbyid``, ``peekmany``, ``size``,
``clear``, ``delete``/``release``, ``restore``, ``update``), :class:`MonitorFIFO` (``populate``,
``to_check_workers``), :class:`MonitorEventFIFO`, :class:`ManagementFIFO` and
:class:`BenchmarkFIFO`. A dequeued object is a :data:`FifoObject` ``(id, item, score)``; the
lowest score comes first. A *protective* get moves the object to a temporary space instead of
removing it: :meth:`FIFOBase.release` (or ``delete``) then drops it once its work is done, and
:meth:`FIFOBase.restore` puts it back (e.g. at start, after a crash).

The backend is a plugin (``harvesterfifo``): ``[<section>] fifoModule``/``fifoClass`` when the
FIFO's own section sets them, else ``[fifo] fifoModule``/``fifoClass``; the section's keys are
passed to its constructor (as the original does) with ``titleName``. Items are pickled with
the highest protocol, as in the original.
"""

from __future__ import annotations

import calendar
import collections
import importlib
import logging
import os
import pickle
import socket
import threading
import time
from typing import Any, Iterable

from pandaharvester.errors import ConfigError
from pandaharvester.harvestercore import log_utils

FifoObject = collections.namedtuple("FifoObject", ["id", "item", "score"])

_logger = log_utils.setup_logger("fifos")

# backends shipped with this Harvester (named by the error line of a bad fifoModule)
KNOWN_BACKENDS = ("pandaharvester.harvesterfifo.sqlite_fifo.SqliteFifo",
                  "pandaharvester.harvesterfifo.mysql_fifo.MysqlFifo",
                  "pandaharvester.harvesterfifo.redis_fifo.RedisFifo")
# score offset of the objects put at the head of the monitor FIFO (post-processing first)
HEAD_OFFSET = 2 ** 32


def _section(name: str) -> Any:
    from pandaharvester.harvesterconfig import harvester_config

    return getattr(harvester_config, name, None)


def _section_dict(section: Any) -> dict[str, Any]:
    return dict(vars(section)) if section is not None else {}


def make_backend(title: str, module_name: str, class_name: str, where: str, conf: dict[str, Any]) -> Any:
    """The backend ``module_name.class_name(**conf, titleName=title)``; a :class:`ConfigError`
    naming ``where`` (the section holding fifoModule/fifoClass) and the value when it cannot be
    imported or started."""
    hint = "use one of " + ", ".join(KNOWN_BACKENDS)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise ConfigError(f"{where} fifoModule = {module_name!r}: no such module; {hint}") from None
        raise ConfigError(f"{where} fifoModule = {module_name!r}: the module needs {exc.name!r}, which is not "
                          f"installed (pip install the matching extra, e.g. 'pandaharvester[redis]')") from None
    cls = getattr(module, class_name, None)
    if cls is None:
        raise ConfigError(f"{where} fifoClass = {class_name!r}: module {module_name} has no such class; {hint}")
    args = dict(conf)
    args["titleName"] = title
    try:
        return cls(**args)
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"{where} fifoModule = {module_name!r}, fifoClass = {class_name!r}: the {title} FIFO "
                          f"backend failed to start: {type(exc).__name__}: {exc}") from exc


class FIFOBase:
    """A FIFO of pickled objects over a backend plugin (``self.fifo``); see the module docstring."""

    titleName = "base"

    def __init__(self, **kwarg: Any) -> None:
        for key, value in kwarg.items():
            setattr(self, key, value)
        self.hostname = socket.gethostname()
        self.os_pid = os.getpid()
        self.fifoName = f"{self.titleName}_fifo"
        self.enabled = False
        self.fifo: Any = None
        self._db_proxy: Any = None

    # ------------------------------------------------------------ original helpers
    def get_pid(self) -> str:
        """``<hostname>_<pid>-<thread id hex>``."""
        return f"{self.hostname}_{self.os_pid}-{format(threading.get_ident(), 'x')}"

    def make_logger(self, base_log: Any, token: Any = None, method_name: str | None = None,
                    send_dialog: bool = True) -> log_utils.LogWrapper:
        """A logger whose lines read ``<method> <token> message`` (no dialogs: FIFO lines are not for PanDA)."""
        return log_utils.make_logger(base_log, token=token, method_name=method_name)

    @property
    def dbProxy(self) -> Any:
        """The process's DB proxy, made at first use (only ``populate`` needs it)."""
        if self._db_proxy is None:
            from pandaharvester.harvestercore.db_proxy_pool import DBProxyPool

            self._db_proxy = DBProxyPool()
        return self._db_proxy

    @dbProxy.setter
    def dbProxy(self, value: Any) -> None:
        self._db_proxy = value

    def _initialize_fifo(self, force_enable: bool = False) -> None:
        """Enable the FIFO from ``[<titleName>] fifoEnable`` (or ``force_enable``) and make its backend."""
        self.config = _section(self.titleName)
        if not (force_enable or getattr(self.config, "fifoEnable", False)):
            self.enabled = False
            return
        self.enabled = True
        conf = _section_dict(self.config)
        if "fifoModule" in conf and "fifoClass" in conf:
            where, module_name, class_name = f"[{self.titleName}]", conf["fifoModule"], conf["fifoClass"]
        else:
            fifo_section = _section("fifo")
            module_name = getattr(fifo_section, "fifoModule", None)
            class_name = getattr(fifo_section, "fifoClass", None)
            where = "[fifo]"
            if module_name is None or class_name is None:
                raise ConfigError(f"[{self.titleName}] fifoEnable = True but neither [{self.titleName}] nor [fifo] "
                                  f"sets fifoModule and fifoClass: add them under [fifo] (see "
                                  f"etc/panda_harvester.cfg.rpmnew)")
        self.fifo = make_backend(self.titleName, module_name, class_name, where, conf)

    # ------------------------------------------------------------ encoding
    def encode(self, item: Any) -> bytes:
        """The stored form of an object (pickle, highest protocol, as the original)."""
        return pickle.dumps(item, -1)

    def decode(self, item_serialized: bytes) -> Any:
        """The object of a stored form."""
        return pickle.loads(item_serialized)

    def _debug(self, method: str, text: str) -> None:
        if _logger.isEnabledFor(logging.DEBUG):
            log_utils.make_logger(_logger, f"id={self.fifoName}-{self.get_pid()}", method_name=method).debug(text)

    def _as_object(self, record: tuple | None, decode: bool) -> FifoObject | None:
        if record is None:
            return None
        obj_id, item, score = record
        if decode and item is not None:
            item = self.decode(item)
        return FifoObject(obj_id, item, score)

    def _as_peeked(self, record: tuple | None, decode: bool) -> FifoObject | None:
        if record is None:
            return None
        obj_id, item, score = record
        if item is None and score is None:
            return FifoObject(None, None, None)
        if score is None:
            score = time.time()
        if decode and item is not None:
            item = self.decode(item)
        return FifoObject(obj_id, item, score)

    # ------------------------------------------------------------ interface
    def size(self) -> int:
        """Number of objects waiting (those in the temporary space not counted)."""
        n = self.fifo.size()
        self._debug("size", f"size={n}")
        return n

    def put(self, item: Any, score: float | None = None, encode_item: bool = True) -> bool:
        """Enqueue ``item`` with ``score`` (default: now, as a Unix time)."""
        if score is None:
            score = time.time()
        ok = self.fifo.put(self.encode(item) if encode_item else item, score)
        self._debug("put", f"score={score}")
        return ok

    def putbyid(self, id: Any, item: Any, score: float | None = None, encode_item: bool = True) -> bool:
        """Enqueue ``item`` under the unique ``id``; False when an object of that id exists."""
        if score is None:
            score = time.time()
        ok = self.fifo.putbyid(id, self.encode(item) if encode_item else item, score)
        self._debug("putbyid", f"id={id} score={score} put={ok}")
        return ok

    def get(self, timeout: float | None = None, protective: bool = False, decode_item: bool = True
            ) -> FifoObject | None:
        """Dequeue the object of lowest score, waiting up to ``timeout`` s (None: do not wait);
        None when there is none. ``protective``: keep it in the temporary space until
        :meth:`release` or :meth:`restore`."""
        obj = self._as_object(self.fifo.get(timeout, protective), decode_item)
        self._debug("get", f"protective={protective} got={obj is not None}")
        return obj

    def getlast(self, timeout: float | None = None, protective: bool = False, decode_item: bool = True
                ) -> FifoObject | None:
        """:meth:`get` for the object of highest score."""
        obj = self._as_object(self.fifo.getlast(timeout, protective), decode_item)
        self._debug("getlast", f"protective={protective} got={obj is not None}")
        return obj

    def getmany(self, mode: str = "first", minscore: float | None = None, maxscore: float | None = None,
                count: int | None = None, protective: bool = False, temporary: bool = False,
                decode_item: bool = True) -> list[FifoObject]:
        """Dequeue up to ``count`` objects with ``minscore <= score <= maxscore``, lowest first
        (``mode="last"``: highest first); ``temporary``: from the temporary space instead."""
        records = self.fifo.getmany(mode, minscore, maxscore, count, protective, temporary)
        objs = [self._as_object(r, decode_item) for r in records]
        self._debug("getmany", f"mode={mode} minscore={minscore} maxscore={maxscore} count={count} "
                               f"protective={protective} temporary={temporary} got={len(objs)}")
        return objs  # type: ignore[return-value]

    def peek(self, skip_item: bool = False, decode_item: bool = False) -> FifoObject | None:
        """The object of lowest score without dequeuing it (its item as stored unless ``decode_item``)."""
        return self._as_peeked(self.fifo.peek(skip_item=skip_item), decode_item)

    def peeklast(self, skip_item: bool = False, decode_item: bool = False) -> FifoObject | None:
        """:meth:`peek` for the object of highest score."""
        return self._as_peeked(self.fifo.peeklast(skip_item=skip_item), decode_item)

    def peekbyid(self, id: Any, temporary: bool = False, skip_item: bool = False,
                 decode_item: bool = False) -> FifoObject | None:
        """The object ``id`` (in the temporary space with ``temporary``) without dequeuing it."""
        return self._as_peeked(self.fifo.peekbyid(id, temporary, skip_item=skip_item), decode_item)

    def peekmany(self, mode: str = "first", minscore: float | None = None, maxscore: float | None = None,
                 count: int | None = None, skip_item: bool = False, decode_item: bool = False
                 ) -> list[FifoObject]:
        """:meth:`getmany` without dequeuing."""
        records = self.fifo.peekmany(mode, minscore, maxscore, count, skip_item)
        return [self._as_peeked(r, decode_item) for r in records]  # type: ignore[misc]

    def delete(self, ids: list | tuple) -> int:
        """Remove the objects ``ids`` (waiting or temporary); the number removed."""
        n = self.fifo.delete(ids)
        self._debug("release", f"released {n} objects")
        return n

    def release(self, ids: list | tuple) -> int:
        """Drop protectively dequeued objects whose work is done (same as :meth:`delete`)."""
        return self.delete(ids)

    def restore(self, ids: list | tuple | None = None) -> Any:
        """Put objects of the temporary space back in the queue (all with ``ids=None``)."""
        ret = self.fifo.restore(ids)
        self._debug("restore", "restored all objects" if ids is None else f"restored {len(ids)} objects")
        return ret

    def update(self, id: Any, item: Any = None, score: float | None = None, temporary: int | None = None,
               cond_score: str | None = "gt") -> bool:
        """Change the object ``id``: its item (as stored), score, and space (``temporary`` 0/1).
        ``cond_score`` ``gt``/``ge``/``lt``/``le``: only when the new score is greater (...) than
        the current one. True when changed."""
        ok = self.fifo.update(id, item, score, temporary, cond_score)
        self._debug("update", f"id={id} cond_score={cond_score} score={score} temporary={temporary}: {ok}")
        return ok

    def clear(self) -> None:
        """Remove every object (waiting and temporary)."""
        self.fifo.clear()


class SpecialFIFOBase(FIFOBase):
    """A FIFO that is not an agent's: always enabled, backend from ``[fifo]``."""

    def __init__(self, **kwarg: Any) -> None:
        super().__init__(**kwarg)
        fifo_section = _section("fifo")
        module_name = getattr(fifo_section, "fifoModule", None)
        class_name = getattr(fifo_section, "fifoClass", None)
        if module_name is None or class_name is None:
            raise ConfigError(f"the {self.titleName} FIFO needs [fifo] fifoModule and fifoClass: add them to "
                              f"panda_harvester.cfg (see etc/panda_harvester.cfg.rpmnew)")
        self.fifo = make_backend(self.titleName, module_name, class_name, "[fifo]", {})
        self.enabled = True


class BenchmarkFIFO(SpecialFIFOBase):
    """The FIFO of ``harvester-admin fifo benchmark``."""

    titleName = "benchmark"


class ManagementFIFO(SpecialFIFOBase):
    """A FIFO for management messages between processes."""

    titleName = "management"


class MonitorFIFO(FIFOBase):
    """The monitor's FIFO: objects ``(queueName, [[WorkSpec, ...], ...])`` scored by their next check time."""

    titleName = "monitor"

    def __init__(self, **kwarg: Any) -> None:
        super().__init__(**kwarg)
        self._initialize_fifo()

    def populate(self, seconds_ago: float = 0, clear_fifo: bool = False) -> int:
        """Fill the FIFO from the DB with the active workers not modified for ``seconds_ago`` s
        (at most ``[monitor] fifoMaxWorkersToPopulate``, ``fifoMaxWorkersPerChunk`` per object,
        one queue per object, scored by their modificationTime); the number of workers put."""
        if clear_fifo:
            self.fifo.clear()
        max_workers = int(getattr(self.config, "fifoMaxWorkersToPopulate", 2 ** 32))
        per_chunk = int(getattr(self.config, "fifoMaxWorkersPerChunk", 500))
        workers = self.dbProxy.get_active_workers(max_workers, seconds_ago) or []
        now = time.time()
        n_put = 0
        for queue_name, chunk, score in _chunks_by_queue(workers, per_chunk, now):
            for work_spec in chunk:
                work_spec.set_work_params({"lastCheckAt": now})
            self.put((queue_name, [[w] for w in chunk]), score)
            n_put += len(chunk)
        return n_put

    def to_check_workers(self, check_interval: float | None = None) -> tuple[bool, float | None]:
        """Whether the first object is due: ``(True, seconds overdue)``, ``(True, None)`` for an
        object put at the head, ``(False, seconds overdue (negative) or None when empty)``."""
        peeked = self.peek(skip_item=True)
        if peeked is None or peeked.score is None:
            return False, None
        overhead = time.time() - peeked.score
        if overhead <= 0:
            return False, overhead
        if peeked.score < 0:
            return True, None
        return True, overhead


class MonitorEventFIFO(SpecialFIFOBase):
    """Worker-update events reported by the event-based monitor plugins: id workerID, score the
    update time. Enabled with ``[monitor] fifoEnable`` and ``eventBasedEnable``."""

    titleName = "monitorEvent"

    def __init__(self, **kwarg: Any) -> None:
        self.config = _section("monitor")
        enabled = bool(getattr(self.config, "fifoEnable", False) and getattr(self.config, "eventBasedEnable", False))
        super().__init__(**kwarg)
        self.enabled = enabled


def _chunks_by_queue(workers: Iterable[Any], per_chunk: int, now: float) -> Iterable[tuple[str, list[Any], float]]:
    """Consecutive workers of one queue in chunks of ``per_chunk``, each with the score of its
    first worker (modificationTime as a Unix time, else ``now``)."""
    current: list[Any] = []
    queue = None
    for work_spec in workers:
        if current and (work_spec.computingSite != queue or len(current) >= per_chunk):
            yield queue, current, _score_of(current[0], now)
            current = []
        queue = work_spec.computingSite
        current.append(work_spec)
    if current:
        yield queue, current, _score_of(current[0], now)


def _score_of(work_spec: Any, now: float) -> float:
    try:
        return float(calendar.timegm(work_spec.modificationTime.utctimetuple()))
    except (AttributeError, TypeError, ValueError):
        return now
