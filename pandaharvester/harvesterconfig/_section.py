"""One cfg section as an object (``harvester_config.<section>.<key>``) and secret masking."""

from __future__ import annotations

import json
import re
from typing import Any, Iterator

from pandaharvester.errors import ConfigKeyError

MASK = "********"
# key names whose values are never printed or logged; key_file/cert_file are paths, not secrets
_SECRET_RE = re.compile(r"password|passphrase|secret|token|api_?key|private_?key|access_?key", re.IGNORECASE)


def is_secret_key(key: str) -> bool:
    """Whether the value of ``key`` must be masked when printed (password, token, ...)."""
    return bool(_SECRET_RE.search(key))


def mask_value(key: str, value: Any) -> Any:
    """``value`` as it may be shown: secrets become ``********`` (empty/None/bool stay visible).

    JSON values are walked: ``{"client_secret": "x"}`` inside a list or dict is masked too.
    Returns a copy; ``value`` itself is never changed.
    """
    if is_secret_key(key):
        if value is None or isinstance(value, bool) or value == "":
            return value
        return MASK
    if isinstance(value, dict):
        return {k: mask_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_value("", item) for item in value]
    return value


def render_value(value: Any) -> str:
    """Text of a converted value the way it would be written in the cfg."""
    plain_list = isinstance(value, list) and not any(isinstance(v, (dict, list)) for v in value)
    if plain_list:
        return "".join("\n  " + str(item) for item in value)
    if isinstance(value, (dict, list)):
        return "".join("\n  " + line for line in json.dumps(value, indent=2).splitlines())
    return str(value)


class ConfigSection:
    """The keys of one ``[section]``, read as attributes.

    Values live in the instance ``__dict__`` (so ``vars(section)`` is ``{key: value}`` as with
    the original's section objects). A missing key raises :class:`ConfigKeyError`, also an
    ``AttributeError``, so ``getattr(section, key, default)`` and ``hasattr`` behave as usual.
    Supports ``key in section``, iteration over key names, ``len``, :meth:`get` and
    :meth:`to_dict`. A cfg key named like a method (``get``, ``keys``...) shadows the method.
    """

    __slots__ = ("_name", "_sources", "__dict__")

    def __init__(self, name: str, values: dict[str, Any], sources: list[str]):
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_sources", list(sources))
        self.__dict__.update(values)

    def __getattr__(self, key: str) -> Any:
        # only called when normal lookup fails, i.e. for a key the cfg does not have
        if key.startswith("__") and key.endswith("__"):
            raise AttributeError(key)
        name = object.__getattribute__(self, "_name")
        sources = object.__getattribute__(self, "_sources")
        where = ", ".join(sources) if sources else "panda_harvester.cfg"
        err = ConfigKeyError(f"[{name}] has no key {key!r} in {where}: add '{key} = ...' under [{name}] "
                             f"in panda_harvester.cfg (see etc/panda_harvester.cfg.rpmnew)")
        err.section = name  # type: ignore[attr-defined]
        err.key = key  # type: ignore[attr-defined]
        err.sources = list(sources)  # type: ignore[attr-defined]
        raise err

    def __contains__(self, key: object) -> bool:
        return key in self.__dict__

    def __iter__(self) -> Iterator[str]:
        return iter(list(self.__dict__))

    def __len__(self) -> int:
        return len(self.__dict__)

    def __repr__(self) -> str:
        masked = {k: mask_value(k, v) for k, v in self.__dict__.items()}
        return f"<ConfigSection [{self._name}] {masked!r}>"

    def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key``, or ``default`` when the cfg does not set it."""
        return self.__dict__.get(key, default)

    def keys(self) -> list[str]:
        """The key names of this section, in cfg order."""
        return list(self.__dict__)

    def items(self) -> list[tuple[str, Any]]:
        """``(key, value)`` pairs, unmasked (do not log them: use :meth:`to_dict`)."""
        return list(self.__dict__.items())

    def to_dict(self, masked: bool = False) -> dict[str, Any]:
        """A copy of ``{key: value}``; ``masked=True`` hides secret values."""
        if masked:
            return {k: mask_value(k, v) for k, v in self.__dict__.items()}
        return dict(self.__dict__)
