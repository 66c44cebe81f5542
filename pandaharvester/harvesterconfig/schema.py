"""What each panda_harvester.cfg key must be: the checks run at start and the typed read.

The table itself is :data:`pandaharvester.harvesterconfig.cfg_keys.KEYS` (one :class:`Key` per
key the code reads, plus the original's keys this Harvester does not implement). This module
holds what the table is made of and what uses it:

- :func:`validate` — one line per bad value (type, range, choices), per required key that is
  missing, and per FIXME left from the template; the master calls it before any thread starts
  and refuses to start when it returns anything;
- :func:`feature_warnings` — one line per key of an unimplemented feature set to a value that
  turns the feature on (``[monitor] fifoEnable = True``), and per key this Harvester does not
  know in a section it does (a typo such as ``sleeptime``); the master logs them as WARNINGs;
- :func:`cfg_value` — ``[section] key`` checked against its :class:`Kind`, or the table's
  default when it is not set; a bad value raises a :class:`ConfigError` with the same line.
  A :class:`Choice` comes back as the table spells it (``AUTO`` → ``auto``).

Checks never change a value in the cfg object: ``harvester_config.<section>.<key>`` keeps what the cfg holds.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Protocol

from pandaharvester.errors import ConfigError
from pandaharvester.harvesterconfig._section import mask_value

TEMPLATE_NAME = "etc/panda_harvester.cfg.rpmnew"
LEVEL_NAMES = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG", "NOTSET")
ANY_KEY = "*"  # Key.name of a section whose keys are free names ([log_level] logger names)
NOT_SET = "is not set"
FIXME_LEFT = "still holds the template's FIXME"
_MISSING = object()


class BadValue(ValueError):
    """A value does not fit its :class:`Kind`; the text says what it must be."""


# ------------------------------------------------------------------------------------ kinds
@dataclass(frozen=True)
class Kind:
    """What a value must be. :meth:`check` raises :class:`BadValue` ("must be ...") or returns."""

    unit: str = ""

    def describe(self) -> str:
        """Noun phrase for error lines: "an integer ≥ 0 (seconds)"."""
        return self._noun() + (f" ({self.unit})" if self.unit else "")

    def _noun(self) -> str:
        return "anything"

    def accepts(self, value: Any) -> bool:
        return True

    def check(self, value: Any) -> None:
        if not self.accepts(value):
            raise BadValue(f"must be {self.describe()}")

    def normal(self, value: Any) -> Any:
        """The accepted ``value`` as the code compares it (a :class:`Choice` as the table spells it)."""
        return value


def _num(value: float) -> str:
    """``1000000000`` as ``1,000,000,000``; other numbers as ``:g``."""
    return f"{int(value):,}" if float(value).is_integer() and abs(value) >= 10 ** 6 else f"{value:g}"


def _range_text(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f" from {_num(low)} to {_num(high)}"
    if low is not None:
        return f" ≥ {_num(low)}"
    if high is not None:
        return f" ≤ {_num(high)}"
    return ""


@dataclass(frozen=True)
class Number(Kind):
    """An integer or a decimal (not a bool), optionally within [min, max]."""

    min: float | None = None
    max: float | None = None
    _word: ClassVar[str] = "a number"
    _types: ClassVar[tuple[type, ...]] = (int, float)

    def _noun(self) -> str:
        return self._word + _range_text(self.min, self.max)

    def accepts(self, value: Any) -> bool:
        return (isinstance(value, self._types) and not isinstance(value, bool)
                and (not isinstance(value, float) or math.isfinite(value))
                and (self.min is None or value >= self.min) and (self.max is None or value <= self.max))


@dataclass(frozen=True)
class Int(Number):
    """An integer (not a bool), optionally within [min, max]."""

    _word = "an integer"
    _types = (int,)


@dataclass(frozen=True)
class Bool(Kind):
    """``True`` or ``False`` exactly (``true``/``yes`` would be read as text, and text is true)."""

    def _noun(self) -> str:
        return "True or False"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, bool)


@dataclass(frozen=True)
class Text(Kind):
    """One value (text, or a number the cfg wrote bare), not a list or JSON object."""

    def _noun(self) -> str:
        return "a single value (not a list or JSON)"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, (str, int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class Choice(Kind):
    """One of ``options`` (compared case-insensitively)."""

    options: tuple[str, ...] = ()

    def _noun(self) -> str:
        return "one of " + ", ".join(self.options)

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str) and value.strip().lower() in {o.lower() for o in self.options}

    def normal(self, value: Any) -> Any:
        """``" AUTO "`` → ``"auto"``: the option as the table spells it."""
        for option in self.options:
            if isinstance(value, str) and value.strip().lower() == option.lower():
                return option
        return value


@dataclass(frozen=True)
class Identifier(Kind):
    """A prefix for SQL names: a letter, then letters, digits or ``_``, at most ``max_len`` long (or empty)."""

    max_len: int = 20

    def _noun(self) -> str:
        return f"a letter followed by letters, digits or _ (at most {self.max_len} characters)"

    def accepts(self, value: Any) -> bool:
        if not isinstance(value, str):
            return False
        return value == "" or re.fullmatch(rf"[A-Za-z][A-Za-z0-9_]{{0,{self.max_len - 1}}}", value) is not None


@dataclass(frozen=True)
class Lines(Kind):
    """One value per line (a list), or a single one-line value."""

    def _noun(self) -> str:
        return "one value per line"

    def accepts(self, value: Any) -> bool:
        items = value if isinstance(value, list) else [value]
        return all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in items)


@dataclass(frozen=True)
class Json(Kind):
    """A JSON list and/or object (``types`` says which)."""

    types: tuple[type, ...] = (list, dict)

    def _noun(self) -> str:
        names = " or ".join({list: "a JSON list", dict: "a JSON object"}[t] for t in self.types)
        return names + " (continuation lines indented)"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, self.types)


@dataclass(frozen=True)
class AnyOf(Kind):
    """Any of ``kinds`` ("auto or a number ≥ 0")."""

    kinds: tuple[Kind, ...] = ()

    def _noun(self) -> str:
        return " or ".join(k.describe() for k in self.kinds)

    def accepts(self, value: Any) -> bool:
        return any(k.accepts(value) for k in self.kinds)

    def normal(self, value: Any) -> Any:
        return next((k.normal(value) for k in self.kinds if k.accepts(value)), value)


@dataclass(frozen=True)
class Directory(Kind):
    """A directory that exists and is writable, or that can be created."""

    def _noun(self) -> str:
        return "a writable directory (or one that can be created)"

    def check(self, value: Any) -> None:
        if not isinstance(value, str) or not value.strip():
            raise BadValue(f"must be {self.describe()}")
        path = os.path.abspath(value)
        if os.path.exists(path):
            if not os.path.isdir(path):
                raise BadValue(f"is not a directory: it must be {self.describe()}")
            if not os.access(path, os.W_OK | os.X_OK):
                raise BadValue(f"is not writable by this user: it must be {self.describe()}")
            return
        parent = os.path.dirname(path)
        while not os.path.exists(parent):
            parent = os.path.dirname(parent)
        if not os.path.isdir(parent) or not os.access(parent, os.W_OK | os.X_OK):
            raise BadValue(f"cannot be created ({parent} is not a writable directory): "
                           f"it must be {self.describe()}")


def secret_file_problem(path: str) -> str | None:
    """Why ``path`` cannot hold a secret (None when it can): missing, not a file, unreadable, or
    readable by group or others (it must be mode 0600 or 0400)."""
    import stat

    try:
        info = os.stat(path)
    except OSError as exc:
        return f"cannot be read ({exc.strerror}): create it with the password on its first line, mode 0600"
    if not stat.S_ISREG(info.st_mode):
        return "is not a regular file: it must hold the password on its first line, mode 0600"
    if info.st_mode & 0o077:
        return (f"has mode {stat.S_IMODE(info.st_mode):04o}: a password file must not be readable by group or "
                f"others; run chmod 600 {path}")
    if not os.access(path, os.R_OK):
        return "is not readable by this user: it must be owned by the harvester user, mode 0600"
    return None


@dataclass(frozen=True)
class SecretFile(Kind):
    """A file holding a secret on its first line, readable by its owner only (mode 0600)."""

    def _noun(self) -> str:
        return "a file readable by its owner only (mode 0600)"

    def check(self, value: Any) -> None:
        if not isinstance(value, str) or not value.strip():
            raise BadValue(f"must be {self.describe()}")
        problem = secret_file_problem(value)
        if problem is not None:
            raise BadValue(problem)


LEVEL = Choice(options=LEVEL_NAMES)


def is_true(value: Any) -> bool:
    """``Key.turns_on`` of a flag: the feature is on when the value is True."""
    return value is True


def is_set(value: Any) -> bool:
    """``Key.turns_on`` of a setting: the feature is on when the value is not empty."""
    return value not in (None, "", [], {}, False)


# ------------------------------------------------------------------------------------ keys
@dataclass(frozen=True)
class Key:
    """One cfg key: where, what it must be, its default, and what it is for.

    ``required``: the code reads it without a default, so the start is refused without it
    (``default`` is then the value suggested in the message). ``implemented=False``: this
    Harvester does not read it (the template marks it ``# not read by this Harvester``);
    ``turns_on`` then says which values switch the missing feature on, for the start WARNING,
    and ``note`` what happens instead. ``name == "*"`` stands for every key of the section.
    """

    section: str
    name: str
    kind: Kind
    default: Any = None
    meaning: str = ""
    required: bool = False
    implemented: bool = True
    turns_on: Callable[[Any], bool] | None = None
    note: str = ""
    # ``required`` only when this is true of the section's values ({name: value}), e.g. the SQLite
    # file only when [db] engine is sqlite
    required_when: Callable[[dict[str, Any]], bool] | None = None

    def needed(self, values: dict[str, Any] | None) -> bool:
        """Whether the key is required given its section's values."""
        return self.required and (self.required_when is None or self.required_when(values or {}))

    def problem(self, value: Any, required: bool | None = None) -> str | None:
        """What is wrong with ``value`` (None when it is fine): "must be ..."."""
        required = self.required if required is None else required
        if value is None or value == "":
            if required:
                return NOT_SET
            if self.default is None or (value == "" and isinstance(self.kind, (Text, Lines))):
                return None  # unset, and the code copes with that
        elif required and value == "FIXME":
            return FIXME_LEFT
        try:
            self.kind.check(value)
        except BadValue as exc:
            return str(exc)
        return None


class ConfigLike(Protocol):
    """What :func:`validate` reads: the ``harvester_config`` module or a stand-in."""

    def sections(self) -> list[str]: ...

    def get_section(self, name: str) -> Any: ...

    def origin_of(self, section: str, key: str | None = None) -> str: ...


@dataclass
class Table:
    """The keys by (section, name), and the sections that have keys."""

    keys: tuple[Key, ...]
    by_name: dict[tuple[str, str], Key] = field(init=False)
    sections: set[str] = field(init=False)

    def __post_init__(self) -> None:
        self.by_name = {}
        for key in self.keys:
            if (key.section, key.name) in self.by_name:
                raise ValueError(f"cfg key [{key.section}] {key.name} is declared twice in the table")
            self.by_name[(key.section, key.name)] = key
        self.sections = {key.section for key in self.keys}

    def get(self, section: str, name: str) -> Key | None:
        """The :class:`Key` of ``[section] name`` (a ``*`` entry of the section if any), or None."""
        return self.by_name.get((section, name)) or self.by_name.get((section, ANY_KEY))


_table: Table | None = None


def table() -> Table:
    """The table of :mod:`cfg_keys`, indexed (built on first use)."""
    global _table
    if _table is None:
        from pandaharvester.harvesterconfig.cfg_keys import KEYS

        _table = Table(KEYS)
    return _table


# ------------------------------------------------------------------------------------ checks
def shown(key: str, value: Any) -> str:
    """``repr`` of a value as an error line may show it (secrets masked, inside JSON values too)."""
    return repr(mask_value(key, value))


def bad_value_line(where: str, key: Key, name: str, value: Any, problem: str) -> str:
    """``<file> [section] key = 'value': must be ...`` (or ``... key is not set: add ...``)."""
    head = f"{where} [{key.section}] {name}"
    if problem == NOT_SET:
        suggestion = "..." if key.default is None else key.default
        about = f" ({key.meaning})" if key.meaning else ""
        return (f"{head} is not set: add '{name} = {suggestion}' under [{key.section}]{about}; "
                f"see {TEMPLATE_NAME}")
    if problem == FIXME_LEFT:
        about = f" with {key.meaning}" if key.meaning else ""
        return f"{head} = {shown(name, value)} {problem}: replace it{about}"
    return f"{head} = {shown(name, value)}: {problem}"


def _section_values(config: ConfigLike, name: str) -> dict[str, Any] | None:
    if name not in config.sections():
        return None
    return dict(config.get_section(name).items())


def closest(name: str, known: Any) -> str | None:
    """The known name closest to ``name`` (case ignored), or None when none is close."""
    by_lower = {k.lower(): k for k in known if k != ANY_KEY}
    match = difflib.get_close_matches(name.lower(), list(by_lower), n=1)
    return by_lower[match[0]] if match else None


def _typo_hint(name: str, candidates: Any, shown_as: Callable[[str], str]) -> str:
    """`` (X in FILE looks like a typo of it)`` when one of ``candidates`` is close to ``name``."""
    for candidate in candidates:
        if closest(candidate, [name]) is not None:
            return f" ({shown_as(candidate)} looks like a typo of it)"
    return ""


def _missing_section_line(config: ConfigLike, keys: Table, section: str, missing: list[Key]) -> str:
    """One line for a required section that is absent, with every required key it must hold."""
    where = config.origin_of(section)
    unknown = [name for name in config.sections() if name not in keys.sections]
    hint = _typo_hint(section, unknown, lambda name: f"[{name}]")
    needed = ", ".join(f"{key.name} = {'...' if key.default is None else key.default}" for key in missing)
    return f"{where} has no [{section}] section{hint}: add it with {needed}; see {TEMPLATE_NAME}"


def validate(config: ConfigLike | None = None, keys: Table | None = None) -> list[str]:
    """One line per problem of the loaded cfg: bad values, missing required keys, FIXMEs.

    A required section that is absent is one line naming the keys it needs (and a section that
    looks like a typo of it); a cfg with no section at all is one line. ``config`` defaults to the
    ``harvester_config`` module, already loaded (a cfg that cannot be loaded is the caller's to
    report). Keys this Harvester does not read are not checked.
    """
    if config is None:
        from pandaharvester.harvesterconfig import harvester_config as config  # type: ignore[no-redef]
    keys = keys or table()
    if not config.sections():
        return [f"{config.origin_of('master')} holds no [section] at all: start from {TEMPLATE_NAME}"]
    problems = []
    present = {name: _section_values(config, name) for name in keys.sections}
    absent: dict[str, list[Key]] = {}
    for key in keys.keys:
        if not key.implemented:
            continue
        values = present.get(key.section)
        if values is None:
            if key.name != ANY_KEY and key.needed(values):
                if key.section not in absent:
                    problems.append(key.section)  # placeholder, replaced below
                absent.setdefault(key.section, []).append(key)
            continue
        names = [n for n in values if keys.get(key.section, n) is key] if key.name == ANY_KEY else [key.name]
        for name in names:
            value = values.get(name)
            required = key.needed(values)
            problem = key.problem(value, required) if name in values or required else None
            if problem:
                line = bad_value_line(config.origin_of(key.section, name), key, name, value, problem)
                if problem == NOT_SET:
                    unknown = [n for n in values if keys.get(key.section, n) is None]
                    line += _typo_hint(name, unknown, lambda n, s=key.section: f"[{s}] {n}")
                problems.append(line)
    return [_missing_section_line(config, keys, line, absent[line]) if line in absent else line
            for line in problems]


def feature_warnings(config: ConfigLike | None = None, keys: Table | None = None) -> list[str]:
    """One line per unimplemented feature the cfg turns on, per unknown key of a known section,
    and per unknown section close to a known one, with the closest known name."""
    if config is None:
        from pandaharvester.harvesterconfig import harvester_config as config  # type: ignore[no-redef]
    keys = keys or table()
    lines = []
    for section in config.sections():
        if section not in keys.sections:
            # a section of plugins or of the original's extensions, unless it looks like a typo
            close = closest(section, keys.sections)
            if close is not None and close not in config.sections():
                lines.append(f"unknown section [{section}] in {config.origin_of(section)}: did you mean "
                             f"[{close}]? (its keys have no effect)")
            continue
        for name, value in config.get_section(section).items():
            key = keys.get(section, name)
            where = config.origin_of(section, name)
            if key is None:
                close = closest(name, [k.name for k in keys.keys if k.section == section])
                hint = f"did you mean {close}?" if close else "this Harvester does not read it"
                lines.append(f"unknown key [{section}] {name} in {where}: {hint} (it has no effect)")
            elif not key.implemented and key.turns_on is not None and key.turns_on(value):
                lines.append(f"{where} [{section}] {name} = {shown(name, value)}: {key.note or 'not implemented'}")
    return lines


def cfg_value(section: str, name: str, default: Any = _MISSING) -> Any:
    """``[section] name`` after its check; ``default`` (else the table's) when it is not set.

    Raises :class:`ConfigError` with the one-line message of :func:`validate` for a bad value.
    Keys absent from the table are returned as they are.
    """
    from pandaharvester.harvesterconfig import harvester_config

    key = table().get(section, name)
    fallback = default if default is not _MISSING else (key.default if key is not None else None)
    section_obj = getattr(harvester_config, section, None)
    if section_obj is None or name not in section_obj:
        return fallback
    value = getattr(section_obj, name)
    if key is not None:
        problem = key.problem(value)
        if problem == NOT_SET and default is not _MISSING:
            return default
        if problem:
            raise ConfigError(bad_value_line(harvester_config.origin_of(section, name), key, name, value, problem))
        if value is not None:
            value = key.kind.normal(value)
    return fallback if value is None else value
