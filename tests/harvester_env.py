"""Test side of the instance home: point PANDA_HOME at a home made by harvestertest.instance."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pandaharvester.harvestertest.instance import REPO, write_cfg, write_panda_common_cfg  # noqa: F401  (re-exported)

SHARED = REPO.parent / "shared"


def activate(home: Path, overrides: dict[str, dict[str, Any]] | None = None) -> Path:
    """Write the cfg, point PANDA_HOME at ``home`` and make harvester_config re-read it."""
    path = write_cfg(home, overrides)
    os.environ["PANDA_HOME"] = str(home)
    os.environ.pop("HARVESTER_INSTANCE_CONFIG_URL", None)
    os.environ.pop("HARVESTER_CONFIG_FILE", None)
    from pandaharvester.harvesterconfig import harvester_config

    harvester_config.reload()
    return path


def drop_key(home: Path, section: str, key: str) -> None:
    """Remove ``key`` from ``[section]`` of ``home``'s cfg (to test a cfg that lacks it)."""
    path = home / "etc" / "panda" / "panda_harvester.cfg"
    current, kept = None, []
    for line in path.read_text().splitlines():
        if line.startswith("["):
            current = line.strip("[] ")
        if not (current == section and line.split("=")[0].strip() == key):
            kept.append(line)
    path.write_text("\n".join(kept) + "\n")
