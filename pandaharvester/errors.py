"""Exception families shared by every layer.

One type per family; each carries the context (file, queue, key, value) that a site admin
needs to fix the problem, and its message says what to do. This module imports nothing of
ours so that every layer, the configuration included, can use it.
"""

from __future__ import annotations


class HarvesterError(Exception):
    """Base class of every error raised on purpose by Harvester."""


class ConfigError(HarvesterError):
    """panda_harvester.cfg is missing, unreadable or holds a bad value."""


class ConfigKeyError(ConfigError, AttributeError):
    """A section or key the code needs is absent from the cfg.

    Also an AttributeError so that ``getattr(section, key, default)`` and ``hasattr`` keep
    working as they do with the original's section objects.
    """


class QueueConfigError(HarvesterError):
    """A queue in the queue config JSON is invalid."""

    def __init__(self, message: str, queue_name: str | None = None, key: str | None = None,
                 source: str | None = None):
        self.queue_name = queue_name
        self.key = key
        self.source = source
        parts = []
        if source:
            parts.append(f"[{source}]")
        if queue_name:
            parts.append(f"queue {queue_name!r}")
        if key:
            parts.append(f"key {key!r}")
        prefix = " ".join(parts)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class PluginError(HarvesterError):
    """A plugin cannot be loaded or configured."""


class PluginReplyError(PluginError):
    """A plugin method returned something its role's contract does not allow.

    The message names the queue, the role, the plugin class and method, what was wrong and the
    shape expected; ``index`` (and ``item``, e.g. ``"workerID=12"``) point at the bad entry of a
    per-worker or per-job reply, None when the reply as a whole is wrong.
    """

    def __init__(self, problem: str, *, plugin: str | None = None, queue: str | None = None,
                 role: str | None = None, method: str | None = None, expected: str | None = None,
                 index: int | None = None, item: str | None = None):
        self.problem = problem
        self.plugin = plugin
        self.queue = queue
        self.role = role
        self.method = method
        self.expected = expected
        self.index = index
        self.item = item
        where = []
        if queue:
            where.append(f"queue {queue!r}")
        who = f"{role} plugin" if role else "plugin"
        if plugin:
            who += f" {plugin}.{method}" if method else f" {plugin}"
        elif method:
            who += f" method {method}"
        where.append(who)
        message = f"{', '.join(where)}: {problem}"
        if expected:
            message += f"; expected {expected}"
        super().__init__(message)


class DBError(HarvesterError):
    """The Harvester DB cannot be opened, upgraded or written."""


class DBStorageError(DBError):
    """The storage under the DB file stopped taking writes: ``condition`` is one of
    :data:`STORAGE_CONDITIONS` ("disk full", "read-only", "disk I/O error", "database file
    deleted", "database file replaced"); ``path`` is the DB file. The condition may clear by
    itself (space freed, file made writable, file restored): the next write tries again."""

    def __init__(self, message: str, *, path: str = "", condition: str = ""):
        super().__init__(message)
        self.path = path
        self.condition = condition


STORAGE_CONDITIONS = ("disk full", "read-only", "disk I/O error", "database file deleted", "database file replaced")


class CommunicatorError(HarvesterError):
    """A call to the PanDA server failed in a way the caller must see."""
