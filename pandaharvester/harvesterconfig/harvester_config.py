"""panda_harvester.cfg as a module: ``harvester_config.<section>.<key>``.

Importing this module reads nothing. The first attribute access loads every source (see
:mod:`pandaharvester.harvesterconfig._parser` for where they are and how values convert) and
keeps the result until :func:`reload`. Read keys at call time, never cache a section object::

    from pandaharvester.harvesterconfig import harvester_config
    n = harvester_config.monitor.nThreads
    opt = getattr(harvester_config.monitor, "fifoEnable", False)

Besides the sections the module offers :func:`reload`, :func:`dump`, :func:`sections`,
:func:`get_section`, :func:`ensure_loaded`, :func:`origin_of` and the lazy attributes ``files_read`` (sources read)
and ``config_dict`` (``{section: {key: value}}`` with secrets masked).

A missing section raises :class:`~pandaharvester.errors.ConfigKeyError` (an ``AttributeError``,
so ``hasattr(harvester_config, "zipper")`` works); a cfg that cannot be loaded raises
:class:`~pandaharvester.errors.ConfigError` on every access until it is fixed and reloaded.
"""

from __future__ import annotations

import os as _os
import threading as _threading
from typing import Any as _Any, TextIO as _TextIO

from pandaharvester.errors import ConfigError as _ConfigError, ConfigKeyError as _ConfigKeyError
from pandaharvester.harvesterconfig import _parser
from pandaharvester.harvesterconfig._section import ConfigSection, mask_value as _mask_value, render_value as _render

__all__ = ["ConfigSection", "reload", "dump", "sections", "get_section", "ensure_loaded", "origin_of"]

# names served by this module itself; a cfg section of one of these names is refused
_LAZY_ATTRS = ("files_read", "config_dict")
_RESERVED = frozenset(_LAZY_ATTRS) | frozenset(__all__) | {"annotations"}


class _Loaded:
    """One load result: the sections, or the error met while loading."""

    __slots__ = ("sections", "files_read", "error", "origins")

    def __init__(self, sections: dict[str, ConfigSection], files_read: list[str], error: _ConfigError | None,
                 origins: dict[tuple[str, str], str] | None = None):
        self.sections = sections
        self.files_read = files_read
        self.error = error
        self.origins = origins or {}


_lock = _threading.RLock()
_state: _Loaded | None = None


def _build() -> _Loaded:
    try:
        values, files_read, origins = _parser.load_with_origins(_os.environ)
    except _ConfigError as exc:
        return _Loaded({}, [], exc)
    clash = sorted(_RESERVED.intersection(values))
    if clash:
        return _Loaded({}, files_read, _ConfigError(
            f"section name(s) {clash} in {', '.join(files_read)} are reserved by harvester_config: rename them"))
    sections = {name: ConfigSection(name, vals, files_read) for name, vals in values.items()}
    return _Loaded(sections, files_read, None, origins)


def _current() -> _Loaded:
    state = _state
    if state is None:
        with _lock:
            state = _state
            if state is None:
                state = _set(_build())
    return state


def _set(state: _Loaded) -> _Loaded:
    global _state
    _state = state
    return state


def _raise_error(state: _Loaded) -> None:
    if state.error is not None:
        # a fresh instance per access: tracebacks do not pile up on one shared object
        raise type(state.error)(str(state.error))


def reload() -> list[str]:
    """Re-read every source now (environment re-evaluated); replaces all section objects.

    Returns the sources read. A broken or missing cfg does not raise here: the error is
    raised by the next access to a section (as on first load).
    """
    with _lock:
        state = _set(_build())
    return list(state.files_read)


def ensure_loaded() -> list[str]:
    """Load if needed and raise the :class:`ConfigError` of a broken cfg; returns the sources read."""
    state = _current()
    _raise_error(state)
    return list(state.files_read)


def sections() -> list[str]:
    """Names of all sections, in cfg order."""
    state = _current()
    _raise_error(state)
    return list(state.sections)


def get_section(name: str) -> ConfigSection:
    """The section object ``name``; :class:`ConfigKeyError` when the cfg has no such section."""
    state = _current()
    _raise_error(state)
    try:
        return state.sections[name]
    except KeyError:
        where = ", ".join(state.files_read)
        err = _ConfigKeyError(f"no section [{name}] in {where}: add a [{name}] section to panda_harvester.cfg "
                              f"(see etc/panda_harvester.cfg.rpmnew)")
        err.section = name  # type: ignore[attr-defined]
        err.key = None  # type: ignore[attr-defined]
        err.sources = list(state.files_read)  # type: ignore[attr-defined]
        raise err from None


def origin_of(section: str, key: str | None = None) -> str:
    """Where ``[section] key`` was set (file, URL or configmap); the sources read when it was not set."""
    state = _current()
    _raise_error(state)
    found = state.origins.get((section, key)) if key is not None else None
    return found or ", ".join(state.files_read)


def _config_dict(state: _Loaded) -> dict[str, dict[str, _Any]]:
    return {name: {k: _mask_value(k, v) for k, v in vars(section).items()} for name, section in state.sections.items()}


def dump(stream: _TextIO | None = None) -> str:
    """The loaded config as cfg text with secrets masked; also written to ``stream`` if given."""
    state = _current()
    _raise_error(state)
    lines = [f"# read from: {', '.join(state.files_read)}"]
    for name, section in state.sections.items():
        lines.append(f"\n[{name}]")
        for key, value in vars(section).items():
            text = _render(_mask_value(key, value))
            lines.append(f"{key} =" + (text if text.startswith("\n") or not text else " " + text))
    text = "\n".join(lines) + "\n"
    if stream is not None:
        stream.write(text)
    return text


def __getattr__(name: str) -> _Any:
    """PEP 562 hook: ``harvester_config.<section>`` (and the lazy attributes) load on demand."""
    if name.startswith("__") and name.endswith("__"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    state = _current()
    if name == "files_read":
        return list(state.files_read)
    _raise_error(state)
    if name == "config_dict":
        return _config_dict(state)
    section = state.sections.get(name)
    if section is None:
        return get_section(name)
    return section


def __dir__() -> list[str]:
    names = set(globals()) | set(_LAZY_ATTRS)
    state = _state
    if state is not None:
        names.update(state.sections)
    return sorted(names)
