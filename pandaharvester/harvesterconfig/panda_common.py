"""panda_common.cfg ``[logger]``: where the original's logging (panda-common) takes its level.

panda-common reads ``panda_common.cfg`` from ``/etc/panda``, ``~/etc/panda`` and
``$PANDA_HOME/etc/panda``, in that order, later files overriding earlier ones key by key.
Harvester uses two keys of its ``[logger]`` section: ``log_level`` (the level of every Harvester
logger that ``[log_level]`` of panda_harvester.cfg does not name; INFO when unset) and ``logdir``
(the log directory when ``[master] logDir`` is not set). Its rotation keys are not implemented:
logs are rotated by logrotate, which sends SIGHUP (``templates/logrotate.d/panda_harvester``).
"""

from __future__ import annotations

import configparser
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from pandaharvester.harvesterconfig.schema import LEVEL, BadValue

FILE_NAME = "panda_common.cfg"
SECTION = "logger"
_ROTATION_KEYS = ("rotating_policy", "rotating_backup_count", "rotating_max_size", "rotating_interval")


def candidate_paths(env: Mapping[str, str]) -> list[Path]:
    """The files panda-common reads, lowest precedence first."""
    paths = [Path("/etc/panda") / FILE_NAME, Path(os.path.expanduser("~")) / "etc" / "panda" / FILE_NAME]
    if env.get("PANDA_HOME"):
        paths.append(Path(env["PANDA_HOME"]) / "etc" / "panda" / FILE_NAME)
    return paths


@dataclass
class LoggerSection:
    """The merged ``[logger]`` keys, where each was set, and the error met while reading."""

    values: dict[str, str] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def log_level(self) -> str | None:
        """``log_level`` as written (None when no file sets it)."""
        value = self.values.get("log_level", "").strip()
        return value or None

    @property
    def log_dir(self) -> str | None:
        """``logdir`` (None when no file sets it)."""
        value = self.values.get("logdir", "").strip()
        return value or None

    def problems(self) -> list[str]:
        """One line per unreadable file and per bad ``log_level``."""
        lines = list(self.errors)
        if self.log_level is not None:
            try:
                LEVEL.check(self.log_level)
            except BadValue as exc:
                lines.append(f"{self.origins['log_level']} [{SECTION}] log_level = {self.log_level!r}: {exc}")
        return lines

    def warnings(self) -> list[str]:
        """One line per rotation setting that would rotate (not implemented here)."""
        policy = self.values.get("rotating_policy", "none").strip().lower()
        if policy in ("", "none"):
            return []
        return [f"{self.origins['rotating_policy']} [{SECTION}] rotating_policy = {policy!r}: log rotation by "
                f"Harvester is not implemented ({', '.join(_ROTATION_KEYS)} are not read); rotate with logrotate "
                f"(templates/logrotate.d/panda_harvester), which sends SIGHUP"]


def read_logger_section(env: Mapping[str, str] | None = None) -> LoggerSection:
    """Merge ``[logger]`` of every panda_common.cfg found (see :func:`candidate_paths`)."""
    env = os.environ if env is None else env
    found = LoggerSection()
    for path in candidate_paths(env):
        if not path.is_file():
            continue
        parser = configparser.ConfigParser(interpolation=None)
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        try:
            with open(path, encoding="utf-8") as stream:
                parser.read_file(stream, source=str(path))
        except (OSError, UnicodeDecodeError, configparser.Error) as exc:
            from pandaharvester.harvesterconfig._parser import syntax_error_line

            if isinstance(exc, configparser.Error):
                found.errors.append(syntax_error_line(str(path), exc))
            else:
                found.errors.append(f"cannot read {path}: {' '.join(str(exc).split())}: fix the file or remove it")
            continue
        if parser.has_section(SECTION):
            for key, value in parser.items(SECTION, raw=True):
                found.values[key] = value
                found.origins[key] = str(path)
    return found
