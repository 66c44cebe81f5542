"""Where the queue config comes from: ``[qconf]`` settings, the local file, a URL, the PanDA cache.

Reading never raises: a source that cannot be read or parsed yields ``None`` plus one
:class:`QueueConfigError` naming the file/URL (and line and column for bad JSON).
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Callable

from pandaharvester.errors import QueueConfigError

from .queue_config import names_in

QUEUES_CONFIG_CACHE_KEY = "queues_config_file"
URL_ENV = "HARVESTER_QUEUE_CONFIG_URL"
URL_TIMEOUT = 60

CacheReader = Callable[..., Any]


@dataclass
class QueueConfigSettings:
    """The ``[qconf]`` keys the mapper uses, with the original's defaults."""

    config_file: str | None = "panda_queueconfig.json"
    config_url: str | None = None
    config_from_cacher: bool = False
    queue_list: list[str] = field(default_factory=lambda: ["ALL"])
    resolver_module: str | None = None
    resolver_class: str | None = None
    auto_blacklist: bool = False
    update_interval: float = 600
    check_interval: float = 5
    pilot_version: str | None = None
    default_template_queue_name: str | None = None

    def __post_init__(self) -> None:
        self.queue_list = names_in(self.queue_list)
        self.check_interval = min(self.check_interval, self.update_interval)

    @classmethod
    def from_harvester_config(cls) -> "QueueConfigSettings":
        """Read ``[qconf]`` now (call at each load: the cfg may have been reloaded)."""
        try:
            from pandaharvester.harvesterconfig import harvester_config

            section = getattr(harvester_config, "qconf", None)
        except Exception:  # no cfg (bare install, some unit tests): defaults
            section = None

        def get(key: str, default: Any) -> Any:
            if section is None:
                return default
            try:
                return getattr(section, key, default)
            except Exception:
                return default

        pilot_version = get("pilotVersion", None)
        return cls(
            config_file=get("configFile", cls.config_file),
            config_url=get("configURL", None) or None,
            config_from_cacher=bool(get("configFromCacher", False)),
            queue_list=get("queueList", ["ALL"]),
            resolver_module=get("resolverModule", None),
            resolver_class=get("resolverClass", None),
            auto_blacklist=bool(get("autoBlacklist", False)),
            update_interval=float(get("updateInterval", 600)),
            check_interval=float(get("checkInterval", 5)),
            pilot_version=None if pilot_version is None else str(pilot_version),
            default_template_queue_name=get("defaultTemplateQueueName", None),
        )

    @property
    def dynamic(self) -> bool:
        """Queues come from the resolver too ("DYNAMIC" in queueList)."""
        return "DYNAMIC" in self.queue_list

    def url(self) -> str | None:
        """``[qconf] configURL``, else env ``HARVESTER_QUEUE_CONFIG_URL``."""
        return self.config_url or os.environ.get(URL_ENV) or None


def resolve_config_path(config_file: str) -> str:
    """Absolute path as is; else ``$PANDA_HOME/etc/panda/<file>`` if it exists; else ``/etc/panda/<file>``."""
    if os.path.isabs(config_file):
        return config_file
    panda_home = os.environ.get("PANDA_HOME")
    if panda_home:
        candidate = os.path.join(panda_home, "etc", "panda", config_file)
        if os.path.exists(candidate):
            return candidate
    return os.path.join("/etc/panda", config_file)


def file_signature(path: str | None) -> tuple[int, int] | None:
    """(mtime_ns, size) of a file, None if absent: cheap change detection between loads."""
    if not path:
        return None
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


def parse_json(text: str, source: str, warnings: list[str] | None = None) -> tuple[Any, QueueConfigError | None]:
    """Parse JSON text; a syntax error becomes one error naming source, line and column.

    With ``warnings``, a name given twice in one object (JSON keeps the last silently) adds a line there.
    """
    objects: list[list[str]] = []  # duplicated names per object, innermost first: the top level is last

    def pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: set[str] = set()
        twice = []
        for key, _value in pairs:
            if key in seen:
                twice.append(key)
            seen.add(key)
        objects.append(twice)
        return dict(pairs)

    try:
        data = json.loads(text, object_pairs_hook=pairs_hook if warnings is not None else None)
    except json.JSONDecodeError as exc:
        return None, QueueConfigError(f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}",
                                      source=source)
    if warnings is not None and objects:
        top, inner = (objects[-1], objects[:-1]) if isinstance(data, dict) else ([], objects)
        for name in dict.fromkeys(top):
            warnings.append(f"[{source}] queue {name!r} is defined twice: only the last definition is used")
        for name in dict.fromkeys(key for keys in inner for key in keys):
            warnings.append(f"[{source}] key {name!r} is given twice in one object: only the last value is used")
    return data, None


def decode_text(raw: bytes, source: str) -> tuple[str | None, QueueConfigError | None]:
    """UTF-8 text of ``raw``; else an error naming the line and column of the first bad byte."""
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        return None, QueueConfigError(f"byte 0x{raw[exc.start]:02x} at line {line} column {column} is not UTF-8 "
                                      "text: save the file as UTF-8", source=source)


def read_file(path: str, warnings: list[str] | None = None) -> tuple[Any, QueueConfigError | None]:
    """JSON content of a local file (a file holding ``null`` is an error, not "no queues")."""
    try:
        with open(path, "rb") as stream:
            raw = stream.read()
    except OSError as exc:
        return None, QueueConfigError(f"cannot read queue config file ({exc.strerror or exc}); "
                                      "check [qconf] configFile", source=path)
    text, error = decode_text(raw, path)
    if error is not None:
        return None, error
    data, error = parse_json(text, path, warnings)
    if error is None and data is None:
        error = QueueConfigError("top level must be a JSON object {queueName: {...}}, got null", source=path)
    return data, error


def read_url(url: str, timeout: float = URL_TIMEOUT, warnings: list[str] | None = None
             ) -> tuple[Any, QueueConfigError | None]:
    """JSON content behind a ``file://``, ``http://`` or ``https://`` URL."""
    scheme = urllib.parse.urlparse(url).scheme
    if scheme not in ("file", "http", "https"):
        return None, QueueConfigError(f"unsupported URL scheme {scheme!r}; use file://, http:// or https://",
                                      source=url)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (scheme checked)
            raw = response.read()
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return None, QueueConfigError(f"cannot fetch queue config ({exc}); check [qconf] configURL or "
                                      f"${URL_ENV}", source=url)
    text, error = decode_text(raw, url)
    if error is not None:
        return None, error
    data, error = parse_json(text, url, warnings)
    if error is None and data is None:
        error = QueueConfigError("top level must be a JSON object {queueName: {...}}, got null", source=url)
    return data, error


def read_cache(cache_reader: CacheReader) -> tuple[Any, QueueConfigError | None, bool]:
    """Queue config stored by the cacher under ``queues_config_file``.

    Returns (data, error, available): ``available`` is False when no DB/cache entry exists,
    so that the caller may fall back to fetching the URL itself.
    """
    source = f"cache:{QUEUES_CONFIG_CACHE_KEY}"
    spec = cache_reader(QUEUES_CONFIG_CACHE_KEY)
    if spec is None:
        return None, None, False
    data = getattr(spec, "data", None)
    if isinstance(data, (str, bytes)):
        data, error = parse_json(data if isinstance(data, str) else data.decode("utf-8", "replace"), source)
        if error is not None:
            return None, error, True
    if not isinstance(data, dict):
        return None, QueueConfigError(f"cached queue config is not a JSON object (got {type(data).__name__})",
                                      source=source), True
    return data, None, True


@dataclass
class LoadedSources:
    """Raw JSON of one load, with names for messages and errors met while reading."""

    remote: Any = None
    remote_source: str = "remote"
    local: Any = None
    local_source: str = "local"
    local_signature: tuple[int, int] | None = None
    errors: list[QueueConfigError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # e.g. a queue defined twice


def load_sources(settings: QueueConfigSettings, cache_reader: CacheReader) -> LoadedSources:
    """Read the remote (cache or URL) and local sources named by ``settings``."""
    loaded = LoadedSources()
    if settings.config_from_cacher:
        loaded.remote_source = f"cache:{QUEUES_CONFIG_CACHE_KEY}"
        loaded.remote, error, available = read_cache(cache_reader)
        if error is not None:
            loaded.errors.append(error)
        if not available and settings.url():
            loaded.remote_source = settings.url()
            loaded.remote, error = read_url(loaded.remote_source, warnings=loaded.warnings)
            if error is not None:
                loaded.errors.append(error)
    elif settings.url():
        loaded.remote_source = settings.url()
        loaded.remote, error = read_url(loaded.remote_source, warnings=loaded.warnings)
        if error is not None:
            loaded.errors.append(error)
    if settings.config_file:
        path = resolve_config_path(settings.config_file)
        loaded.local_source = path
        loaded.local_signature = file_signature(path)
        if loaded.local_signature is None and loaded.remote is not None:
            pass  # remote-only setups need no local file
        else:
            loaded.local, error = read_file(path, loaded.warnings)
            if error is not None:
                loaded.errors.append(error)
    return loaded
