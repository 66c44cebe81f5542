"""Helpers for the queue-config tests (no tests here): JSON writing, plugin sections, mapper factory."""

from __future__ import annotations

import copy
import itertools
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from pandaharvester.harvestercore.queue_config_loader import QueueConfigSettings
from pandaharvester.harvestercore.queue_config_mapper import QueueConfigMapper

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"

# importable stand-ins for plugins (import checking needs a real module and class)
OK_MODULE, OK_CLASS = "collections", "OrderedDict"

_ids = itertools.count()


def plugin(module: str = OK_MODULE, name: str = OK_CLASS, **extra: Any) -> dict[str, Any]:
    """A plugin section."""
    return {"module": module, "name": name, **extra}


def full_queue(**attrs: Any) -> dict[str, Any]:
    """A valid queue entry with every mandatory plugin, plus ``attrs``."""
    entry: dict[str, Any] = {
        role: plugin()
        for role in ("messenger", "monitor", "preparator", "stager", "submitter", "sweeper", "workerMaker")
    }
    entry.update(copy.deepcopy(attrs))
    return entry


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data, indent=1))
    return path


def no_cache(*args: Any, **kwargs: Any) -> None:
    return None


def cache_of(entries: dict[str, Any]):
    """A cache reader serving ``entries`` ({main_key: data}) as CacheSpec-like objects."""

    def reader(main_key: str, sub_key: str | None = None) -> Any:
        if main_key not in entries:
            return None
        return SimpleNamespace(data=copy.deepcopy(entries[main_key]), lastUpdate=None)

    return reader


def make_mapper(config_file: Path | str | None, *, check_plugins: bool = False, cache_reader=no_cache,
                resolver: Any = None, **settings: Any) -> QueueConfigMapper:
    """A fresh, DB-less mapper reading ``config_file`` with the given settings."""
    settings.setdefault("update_interval", 600)
    settings.setdefault("check_interval", 5)
    qs = QueueConfigSettings(config_file=str(config_file) if config_file else None, **settings)
    return QueueConfigMapper(update_db=False, id=f"test-{next(_ids)}", check_plugins=check_plugins,
                             settings=qs, resolver=resolver, cache_reader=cache_reader)


def load(tmp_path: Path, data: Any, **kwargs: Any) -> QueueConfigMapper:
    """Write ``data`` as the local queue config and return a loaded mapper."""
    mapper = make_mapper(write_json(tmp_path / "qconf.json", data), **kwargs)
    mapper.load_data()
    return mapper
