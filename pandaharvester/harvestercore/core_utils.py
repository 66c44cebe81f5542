"""Helpers that agents and plugins call, under the original's names.

This module is a facade: logging lives in :mod:`log_utils`, times in :mod:`time_utils`,
helpers that work on specs in :mod:`spec_utils`. It keeps ``core_utils.<name>`` working for
plugins written for the original.
"""

from __future__ import annotations

import base64
import fcntl
import functools
import hashlib
import hmac
import os
import pickle
import random
import socket
import threading
import time
import zlib
from contextlib import contextmanager
from typing import Any, Iterable, Iterator

from .log_utils import (  # noqa: F401  (re-exported names)
    LogWrapper,
    configure_logging,
    do_log_rollover,
    dump_error_message,
    make_logger,
    reopen_log_files,
    setup_logger,
)
from .time_utils import (  # noqa: F401
    aware_utcfromtimestamp,
    aware_utcnow,
    naive_utcfromtimestamp,
    naive_utcnow,
)


# ---------------------------------------------------------------- waiting and timing
def sleep(interval: float, stop_event: threading.Event | None, randomize: bool = True) -> bool:
    """Wait ``interval`` seconds (±20 % when ``randomize``); True when ``stop_event`` is set.

    Waits on the event itself, so a stop request ends the wait at once (sub-second).
    """
    if randomize and interval > 0:
        interval = random.uniform(interval * 0.8, interval * 1.2)
    if stop_event is None:
        time.sleep(max(interval, 0))
        return False
    return stop_event.wait(max(interval, 0))


class StopWatch:
    """Measures elapsed time; ``get_elapsed_time()`` gives the ``" : took X sec"`` suffix."""

    def __init__(self) -> None:
        self.reset()

    def get_elapsed_time(self) -> str:
        return f" : took {self.get_elapsed_seconds():.3f} sec"

    def get_elapsed_seconds(self) -> float:
        return time.monotonic() - self.start_time

    def get_elapsed_time_in_sec(self, precise: bool = False) -> float | int:
        """Elapsed seconds: whole seconds, or with ``precise`` the fraction too (original API)."""
        elapsed = self.get_elapsed_seconds()
        return elapsed if precise else int(elapsed)

    def reset(self) -> None:
        self.start_time = time.monotonic()
        # wall-clock start (naive UTC), the attribute name the original exposes
        self.startTime = naive_utcnow()


def get_stopwatch() -> StopWatch:
    return StopWatch()


def retry_period_sec(nth_retry: int, increment: float = 1, max_retries: int | None = None,
                     max_seconds: float | None = None, min_seconds: float = 1) -> float | bool:
    """Seconds to wait before retry number ``nth_retry`` (1, 2, ...): linear back-off.

    The first retry waits ``max(min_seconds, 1)``, each further one ``increment`` more, capped
    at ``max_seconds``. Returns False once ``nth_retry`` exceeds ``max_retries`` (None or 0:
    no limit), so callers can stop retrying.
    """
    if max_retries and nth_retry > max_retries:
        return False
    seconds = max(min_seconds, 1) + (max(nth_retry, 1) - 1) * increment
    if max_seconds:
        seconds = min(seconds, max_seconds)
    return seconds


# ---------------------------------------------------------------- identity
def get_pid() -> str:
    """``<hostname>_<os pid>-<thread ident hex>``: the owner string used in locks."""
    return f"{socket.gethostname()}_{os.getpid()}-{format(threading.get_ident(), 'x')}"


def get_unique_queue_name(queue_name: str, resource_type: str, job_type: str) -> str:
    """Key of a (queue, resource type, job type) row in the PanDA queue table."""
    return f"{queue_name}:{resource_type}:{job_type}"


# ---------------------------------------------------------------- concurrency helpers
def synchronize(func: Any) -> Any:
    """Decorator: one thread at a time through ``func`` (one lock per function)."""
    lock = threading.RLock()

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return func(*args, **kwargs)

    return wrapper


class SingletonWithID(type):
    """Metaclass: one instance per ``id`` keyword argument."""

    def __init__(cls, *args: Any, **kwargs: Any) -> None:
        cls._instances: dict[str, Any] = {}
        cls._instances_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        key = str(kwargs.get("id", ""))
        with cls._instances_lock:
            if key not in cls._instances:
                cls._instances[key] = super().__call__(*args, **kwargs)
            return cls._instances[key]


class SingletonWithThreadAndID(type):
    """Metaclass: one instance per (thread, ``id`` keyword argument)."""

    def __init__(cls, *args: Any, **kwargs: Any) -> None:
        cls._instances: dict[tuple[int, str], Any] = {}
        cls._instances_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        key = (threading.get_ident(), str(kwargs.get("id", "")))
        with cls._instances_lock:
            if key not in cls._instances:
                cls._instances[key] = super().__call__(*args, **kwargs)
            return cls._instances[key]


class MapWithLock:
    """A dict with an explicit lock (``acquire``/``release``) shared between threads."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.dataMap: dict[Any, Any] = {}

    def __getitem__(self, item: Any) -> Any:
        return self.dataMap[item]

    def __setitem__(self, item: Any, value: Any) -> None:
        self.dataMap[item] = value

    def __contains__(self, item: Any) -> bool:
        return item in self.dataMap

    def get(self, item: Any, default: Any = None) -> Any:
        return self.dataMap.get(item, default)

    def acquire(self) -> None:
        self.lock.acquire()

    def release(self) -> None:
        self.lock.release()

    def iteritems(self) -> Iterator[tuple[Any, Any]]:
        return iter(list(self.dataMap.items()))

    def __enter__(self) -> "MapWithLock":
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


_global_dict = MapWithLock()


def get_global_dict() -> MapWithLock:
    """A process-wide dict shared by all threads."""
    return _global_dict


class SafeDict(dict):
    """A dict for ``str.format_map`` that leaves unknown ``{placeholders}`` as they are."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


class DictTupleHybrid(tuple):
    """A tuple (a DB row) whose items can also be read by column name.

    ``set_attributes(names)`` gives the column names; then ``row._asdict()``, ``row["name"]``
    and ``row.name`` work, and specs ``pack`` it by name like a namedtuple.
    """

    def set_attributes(self, attributes: Iterable[str]) -> None:
        self.attributes = list(attributes)

    def _asdict(self) -> dict[str, Any]:
        return dict(zip(self._names(), self))

    def _names(self) -> list[str]:
        try:
            return self.__dict__["attributes"]
        except KeyError:
            raise AttributeError("DictTupleHybrid: call set_attributes(names) first") from None

    def __getitem__(self, key: Any) -> Any:  # type: ignore[override]
        if isinstance(key, str):
            try:
                return super().__getitem__(self._names().index(key))
            except (AttributeError, ValueError):
                raise KeyError(key) from None
        return super().__getitem__(key)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name == "attributes":
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def create_shards(input_list: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Yield consecutive lists of at most ``size`` items."""
    shard: list[Any] = []
    for element in input_list:
        shard.append(element)
        if len(shard) == size:
            yield shard
            shard = []
    if shard:
        yield shard


def make_choice_list(pdpm: dict[Any, float] | None = None, default: Any = None) -> list[Any]:
    """Expand ``{value: weight per mille}`` into a 1000-entry list for ``random.choice``.

    Weights summing to more than 1000 are scaled down proportionally; the entries left over
    go to ``default``. ``{"rc_test2": 50}`` thus picks rc_test2 5 % of the time.
    """
    pdpm = pdpm or {}
    total = sum(pdpm.values())
    choices: list[Any] = []
    for value, weight in pdpm.items():
        n_entries = int(weight * 1000 / total) if total > 1000 else int(weight)
        choices += [value] * n_entries
    choices += [default] * (1000 - len(choices))
    return choices


# ---------------------------------------------------------------- files
def calc_adler32(file_name: str) -> str:
    """Adler-32 checksum of a file as 8 lower-case hex digits."""
    value = 1
    with open(file_name, "rb") as stream:
        while True:
            data = stream.read(32 * 1024 * 1024)
            if not data:
                break
            value = zlib.adler32(data, value)
    return format(value & 0xFFFFFFFF, "08x")


@contextmanager
def get_file_lock(file_name: str, lock_interval: float) -> Iterator[None]:
    """Run the block only if no other process ran it within ``lock_interval`` seconds.

    Raises IOError when another process holds the lock or the interval has not elapsed.
    """
    with open(file_name, "a+") as stream:
        try:
            fcntl.flock(stream, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            raise IOError(f"{file_name} is locked by another process") from exc
        try:
            stream.seek(0)
            stamp = stream.read().strip()
            now = time.time()
            if stamp:
                try:
                    if now - float(stamp) < lock_interval:
                        raise IOError("skipped since still in locked interval")
                except ValueError:
                    pass
            stream.seek(0)
            stream.truncate()
            stream.write(repr(now))
            stream.flush()
            yield
        finally:
            fcntl.flock(stream, fcntl.LOCK_UN)


def set_file_permission(path: str) -> None:
    """Restrict ``path`` (a file, or every file below a directory) to its owner."""
    if not os.path.exists(path):
        return
    targets = [path] if os.path.isfile(path) else [
        os.path.join(root, name) for root, _dirs, files in os.walk(path) for name in files]
    for target in targets:
        os.chmod(target, 0o600)


def convert_phrase_to_key(key_phrase: str) -> str:
    """The cipher key derived from a key phrase: hex HMAC-MD5 of the phrase (the original's scheme)."""
    return hmac.new(key_phrase.encode(), digestmod=hashlib.md5).hexdigest()


def _string_cipher(key_phrase: str, iv: bytes) -> Any:
    """AES in CFB-8 mode keyed by :func:`convert_phrase_to_key` (what the original uses)."""
    try:
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
    except ImportError as exc:  # an optional dependency: only the watcher's mail password needs it
        raise RuntimeError("encrypt_string/decrypt_string need the 'cryptography' package: "
                           "pip install cryptography") from exc
    try:  # CFB8 moved to the "decrepit" modes in cryptography 47
        from cryptography.hazmat.decrepit.ciphers.modes import CFB8
    except ImportError:
        from cryptography.hazmat.primitives.ciphers.modes import CFB8
    return Cipher(algorithms.AES(convert_phrase_to_key(key_phrase).encode()), CFB8(iv))


def encrypt_string(key_phrase: str, plain_text: str) -> str:
    """Encrypt ``plain_text`` with ``key_phrase``; base64 text of IV + cipher text."""
    iv = os.urandom(16)
    encryptor = _string_cipher(key_phrase, iv).encryptor()
    data = encryptor.update(plain_text.encode()) + encryptor.finalize()
    return base64.b64encode(iv + data).decode()


def decrypt_string(key_phrase: str, cipher_text: str | bytes) -> str:
    """Inverse of :func:`encrypt_string` (also reads strings encrypted by the original)."""
    raw = base64.b64decode(cipher_text)
    decryptor = _string_cipher(key_phrase, raw[:16]).decryptor()
    return (decryptor.update(raw[16:]) + decryptor.finalize()).decode()


def pickle_to_text(data: Any) -> str:
    """Pickle ``data`` into a text-safe string."""
    return base64.b64encode(pickle.dumps(data)).decode()


def unpickle_from_text(text: str) -> Any:
    """Inverse of :func:`pickle_to_text`."""
    return pickle.loads(base64.b64decode(text.encode()))


def get_queues_config_url() -> str | None:
    """URL of the remote queue config (env ``HARVESTER_QUEUE_CONFIG_URL``), if set."""
    return os.environ.get("HARVESTER_QUEUE_CONFIG_URL")


def dynamic_plugin_change() -> bool:
    """Whether plugins may change when the queue config changes (``[master] dynamic_plugin_change``)."""
    from pandaharvester.harvesterconfig import harvester_config

    return bool(getattr(getattr(harvester_config, "master", None), "dynamic_plugin_change", True))


# ---------------------------------------------------------------- pilot types
def special_pilot_type_to_prod_source_label(pilot_type: str | None) -> str | None:
    """prodSourceLabel for a special pilot type (RC, ALRB, PT), else None."""
    return PROD_SOURCE_LABEL_OF_PILOT_TYPE.get(pilot_type or "")


def prod_source_label_to_pilot_type(prod_source_label: str | None) -> str:
    """Pilot type of a prodSourceLabel (rc_test/rc_test2 → RC, rc_alrb → ALRB, ptest → PT), else PR."""
    return PILOT_TYPE_OF_PROD_SOURCE_LABEL.get(prod_source_label or "", "PR")


def md5_hex(text: str) -> str:
    """MD5 hex digest of a text (checksums of queue-config dumps)."""
    return hashlib.md5(text.encode()).hexdigest()


# ---------------------------------------------------------------- spec-aware helpers (spec_utils)
from .job_spec import PILOT_TYPE_OF_PROD_SOURCE_LABEL, PROD_SOURCE_LABEL_OF_PILOT_TYPE  # noqa: E402
from .spec_utils import (  # noqa: E402,F401  (re-exported names)
    get_output_file_report,
    job_param_flag,
    make_pool_file_catalog,
    update_job_attributes_with_workers,
)
