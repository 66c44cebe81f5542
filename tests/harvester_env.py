"""Build a throw-away Harvester home for tests: PANDA_HOME with a cfg made from the template."""

from __future__ import annotations

import configparser
import os
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
TEMPLATE = REPO / "etc" / "panda_harvester.cfg.rpmnew"
SHARED = REPO.parent / "shared"


def _parser() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # keys keep their case (nThreads, harvester_id)
    return parser


def test_defaults(home: Path) -> dict[str, dict[str, Any]]:
    """Values every test instance needs in place of the template's FIXME entries."""
    return {
        "master": {"harvester_id": "test-harvester", "uname": "root", "gname": "root",
                   "logDir": str(home / "logs")},
        "db": {"engine": "sqlite", "database_filename": str(home / "harvester.db")},
        "qconf": {"configFile": str(home / "etc" / "panda" / "panda_queueconfig.json")},
        "fifo": {"database_filename": str(home / "$(TITLE)_fifo.db")},
    }


def write_cfg(home: Path, overrides: dict[str, dict[str, Any]] | None = None) -> Path:
    """Write ``home/etc/panda/panda_harvester.cfg`` = template + test defaults + ``overrides``."""
    parser = _parser()
    if TEMPLATE.exists():
        parser.read(TEMPLATE)
    merged = test_defaults(home)
    for section, values in (overrides or {}).items():
        merged.setdefault(section, {}).update(values)
    for section, values in merged.items():
        if not parser.has_section(section):
            parser.add_section(section)
        for key, value in values.items():
            parser.set(section, key, str(value))
    path = home / "etc" / "panda" / "panda_harvester.cfg"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as stream:
        parser.write(stream)
    return path


def activate(home: Path, overrides: dict[str, dict[str, Any]] | None = None) -> Path:
    """Write the cfg, point PANDA_HOME at ``home`` and make harvester_config re-read it."""
    path = write_cfg(home, overrides)
    os.environ["PANDA_HOME"] = str(home)
    os.environ.pop("HARVESTER_INSTANCE_CONFIG_URL", None)
    from pandaharvester.harvesterconfig import harvester_config

    harvester_config.reload()
    return path
