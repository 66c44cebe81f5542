"""What every FIFO backend shares: its settings, the waiting loop of a timed get, argument checks.

A backend stores ``(id, item bytes, score)`` records in a waiting space and a temporary space
(protective gets) and implements ``size``, ``put``, ``putbyid``, ``get``, ``getlast``,
``getmany``, ``peek``, ``peeklast``, ``peekbyid``, ``peekmany``, ``clear``, ``delete``,
``restore`` and ``update`` (see :class:`pandaharvester.harvestercore.fifos.FIFOBase`).
"""

from __future__ import annotations

import time
from typing import Any, Callable

from pandaharvester.harvestercore.plugin_base import PluginBase

# new score must be <op> the current one: SQL condition on the current score
COND_SCORE_SQL = {"gt": "score < {p}", "ge": "score <= {p}", "lt": "score > {p}", "le": "score >= {p}"}
MODES = ("first", "last")
_MISSING = object()


def check_ids(ids: Any, allow_none: bool = False) -> None:
    """``ids`` must be a list or tuple (or None when allowed), as in the original."""
    if ids is None and allow_none:
        return
    if not isinstance(ids, (list, tuple)):
        raise TypeError("ids should be list or tuple" + (" or None" if allow_none else ""))


def check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"mode must be 'first' or 'last', not {mode!r}")


class BaseFifo(PluginBase):
    """Base of the backends: settings from the FIFO's section keys, else ``[fifo]``."""

    titleName = "fifo"

    def fifo_section_values(self) -> dict[str, Any]:
        """The backend's ``[fifo]`` keys that are set (each backend reads its own)."""
        return {}

    def setting(self, name: str, default: Any = _MISSING) -> tuple[Any, str]:
        """``(value, where)`` of a backend key: the constructor's keyword (the FIFO's own
        section, ``[<titleName>]``) first, then ``[fifo] <name>``, else ``default``."""
        if name in self.__dict__:
            return self.__dict__[name], f"[{self.titleName}]"
        values = self.fifo_section_values()
        if values.get(name) is not None:
            return values[name], "[fifo]"
        if default is _MISSING:
            from pandaharvester.errors import ConfigError

            raise ConfigError(f"[fifo] {name} is not set: the {type(self).__name__} backend of the {self.titleName} "
                              f"FIFO needs it (see etc/panda_harvester.cfg.rpmnew)")
        return default, "[fifo]"

    @staticmethod
    def instance_prefix() -> str:
        """``[db] tablePrefix``: instances sharing a database server (MysqlFifo) or a Redis keep
        their FIFOs apart by it, as their tables."""
        from pandaharvester.harvesterconfig import harvester_config

        return str(getattr(getattr(harvester_config, "db", None), "tablePrefix", "") or "").strip()

    @staticmethod
    def wait_for(attempt: Callable[[], Any], timeout: float | None) -> Any:
        """``attempt()`` until it gives something other than None or ``timeout`` s passed
        (None: one attempt); polls at 10 ms, growing to 0.5 s."""
        result = attempt()
        if result is not None or not timeout:
            return result
        deadline = time.monotonic() + float(timeout)
        wait = 0.01
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            time.sleep(min(wait, left))
            result = attempt()
            if result is not None:
                return result
            wait = min(0.5, wait * 1.5)

    def __len__(self) -> int:
        return self.size()

    def size(self) -> int:  # pragma: no cover - every backend overrides
        raise NotImplementedError
