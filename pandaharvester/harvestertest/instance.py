"""A throw-away Harvester instance home: cfg from the template, DB, logs, queue config.

Used by the demo, the tests and the benchmarks, so that all three run the daemon exactly as a
site would: ``$PANDA_HOME/etc/panda/panda_harvester.cfg`` made from the shipped template
``etc/panda_harvester.cfg.rpmnew`` with a few values replaced.
"""

from __future__ import annotations

import configparser
import json
import os
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
TEMPLATE_CANDIDATES = (
    REPO / "etc" / "panda_harvester.cfg.rpmnew",
    Path(sys.prefix) / "etc" / "panda" / "panda_harvester.cfg.rpmnew",
)


def template_path() -> Path:
    """The cfg template shipped with the package (source tree or installed data files)."""
    for candidate in TEMPLATE_CANDIDATES:
        if candidate.exists():
            return candidate
    raise FileNotFoundError("panda_harvester.cfg.rpmnew not found in " + ", ".join(map(str, TEMPLATE_CANDIDATES)))


def _parser() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # keys keep their case (nThreads, harvester_id)
    return parser


def instance_defaults(home: Path, harvester_id: str = "test-harvester") -> dict[str, dict[str, Any]]:
    """Values a local instance needs in place of the template's FIXME entries."""
    return {
        "master": {"harvester_id": harvester_id, "uname": "root", "gname": "root", "logDir": str(home / "logs")},
        "db": {"engine": "sqlite", "database_filename": str(home / "harvester.db")},
        "qconf": {"configFile": str(home / "etc" / "panda" / "panda_queueconfig.json")},
        "fifo": {"database_filename": str(home / "$(TITLE)_fifo.db")},
        "service_monitor": {"pidfile": str(home / "panda_harvester.pid")},
        # no proxy here: the template's NoVomsCredManager entries would only fail to renew
        "credmanager": {"moduleName": "pandaharvester.harvestercredmanager.dummy_cred_manager",
                        "className": "DummyCredManager", "inCertFile": "/dev/null", "outCertFile": "/dev/null",
                        "voms": "dummy"},
    }


def write_cfg(home: Path, overrides: dict[str, dict[str, Any]] | None = None,
              harvester_id: str = "test-harvester") -> Path:
    """Write ``home/etc/panda/panda_harvester.cfg`` = template + instance defaults + ``overrides``."""
    parser = _parser()
    parser.read(template_path())
    merged = instance_defaults(home, harvester_id)
    for section, values in (overrides or {}).items():
        merged.setdefault(section, {}).update(values)
    for section, values in merged.items():
        if not parser.has_section(section):
            parser.add_section(section)
        for key, value in values.items():
            text = json.dumps(value) if isinstance(value, (dict, list)) else str(value)
            parser.set(section, key, text)
    path = home / "etc" / "panda" / "panda_harvester.cfg"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as stream:
        parser.write(stream)
    os.chmod(path, 0o600)
    return path


def write_panda_common_cfg(home: Path, log_level: str) -> Path:
    """Write ``home/etc/panda/panda_common.cfg`` with ``[logger] log_level`` (the level of every
    logger that ``[log_level]`` does not name; INFO without this file)."""
    path = home / "etc" / "panda" / "panda_common.cfg"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"[logger]\nlog_level = {log_level}\n")
    return path


def write_queue_config(home: Path, queues: dict[str, Any]) -> Path:
    """Write the queue config JSON the cfg's ``[qconf] configFile`` points at."""
    path = home / "etc" / "panda" / "panda_queueconfig.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(queues, indent=2))
    return path


def emulator_overrides(base_url: str, ca_cert: str | None = None, cert_file: str | None = None,
                       key_file: str | None = None) -> dict[str, dict[str, Any]]:
    """``[pandacon]`` values that point the communicator at a PanDA emulator."""
    values: dict[str, Any] = {"server_api_url_ssl": base_url, "server_api_url": base_url,
                              "cache_api_url_ssl": base_url}
    if ca_cert:
        values.update({"ca_cert": ca_cert, "cert_file": cert_file or "", "key_file": key_file or ""})
    return {"pandacon": values}
