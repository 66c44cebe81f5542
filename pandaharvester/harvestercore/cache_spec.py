"""CacheSpec: data fetched by the cacher (queue lists, statistics...) — a row of ``cache_table``."""

from __future__ import annotations

from .spec_base import SpecBase


class CacheSpec(SpecBase):
    """A cached document: keys, the data (any JSON-able object) and when it was refreshed."""

    attributesWithTypes = (
        "mainKey:text primary key",
        "subKey:text",
        "data:blob",
        "lastUpdate:timestamp",
    )
