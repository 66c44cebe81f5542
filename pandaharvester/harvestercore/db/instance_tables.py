"""Several instances on one database: each its own tables (``[db] tablePrefix``), one registry.

Instances serving the same PanDA queues from one MariaDB database keep their rows apart: the
jobs an instance fetched, the workers it submitted and the queue depths PanDA gave it are its own
(PanDA keeps workers per ``harvester_id``, and the batch system an instance talks to may not be
reachable from another host), so an instance never picks, locks or reports another one's rows.
With ``[db] tablePrefix = A_`` every table is ``A_job_table``, ``A_work_table``, ... (their
indexes likewise); the SQL the modules write keeps the plain names and the engine renames them
(:class:`TableNames`, one cached substitution per distinct statement). Shared by all instances:
``seq_table`` (worker and config IDs stay unique across instances, so access points and batch
job names never collide) and the registry ``instance_table``.

The registry maps each prefix to the ``harvester_id`` that owns those tables. At start-up
(``make_tables``) an instance registers its prefix, or is refused when the prefix belongs to
another ``harvester_id``: two instances on one set of tables would lock and report each other's
rows. The processes of one instance (``[master] nProcesses``) share its prefix and id.
"""

from __future__ import annotations

import re
import socket
from functools import lru_cache
from typing import Any

from pandaharvester.errors import DBError

from ..time_utils import naive_utcnow
from . import schema

# tables every instance on the database shares (never prefixed)
SHARED_TABLES = frozenset({"seq_table", "instance_table"})
REGISTRY_TABLE = "instance_table"


class InstanceRow:
    """One registry row: the prefix, the harvester_id owning its tables, where and when it last started."""

    attributesWithTypes = (
        "tablePrefix:text primary key",
        "harvesterID:text",
        "hostName:text",
        "registeredTime:timestamp",
        "lastStartTime:timestamp",
    )


@lru_cache(maxsize=None)
def _renamed_names() -> tuple[str, ...]:
    """Every table and index name a prefix applies to, longest first (one alternation)."""
    names: set[str] = set()
    for table in schema.TABLES:
        if table in SHARED_TABLES:
            continue
        names.add(table)
        names.update(schema.wanted_indexes(table, schema.spec_class(table)))
    names.update(name for name, table in schema.OBSOLETE_INDEXES.items() if table not in SHARED_TABLES)
    return tuple(sorted(names, key=len, reverse=True))


class TableNames:
    """Logical (as written in the modules) ↔ physical (in the database) table and index names."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        names = _renamed_names()
        self._names = frozenset(names)
        self._pattern = re.compile(r"\b(" + "|".join(map(re.escape, names)) + r")\b")
        self._cache: dict[str, str] = {}

    def physical(self, name: str) -> str:
        return f"{self.prefix}{name}" if name in self._names else name

    def logical(self, name: str) -> str:
        if name.startswith(self.prefix) and name[len(self.prefix):] in self._names:
            return name[len(self.prefix):]
        return name

    def sql(self, statement: str) -> str:
        """``statement`` with this instance's table and index names (cached per statement)."""
        out = self._cache.get(statement)
        if out is None:
            out = self._pattern.sub(lambda m: self.prefix + m.group(1), statement)
            if len(self._cache) > 20000:
                self._cache.clear()
            self._cache[statement] = out
        return out


def table_names(prefix: str) -> TableNames | None:
    """The renamer for ``[db] tablePrefix`` (None without a prefix: names are used as written)."""
    if not prefix:
        return None
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,19}", prefix):
        raise DBError(f"[db] tablePrefix = {prefix!r} cannot start table names: use a letter followed by letters, "
                      f"digits or _ (at most 20 characters), e.g. the instance's harvester_id")
    return TableNames(prefix)


def claim_tables(proxy: Any, harvester_id: str) -> None:
    """Register this instance as the owner of its tables, or raise DBError naming the owner.

    Called by ``make_tables``; an empty ``harvester_id`` (tools, tests without ``[master]``)
    claims nothing."""
    if not harvester_id:
        return
    proxy.make_table(InstanceRow, REGISTRY_TABLE)
    prefix = proxy.settings.table_prefix
    now = naive_utcnow()
    host = socket.getfqdn()
    with proxy._tx():
        varmap = {":p": prefix}
        # the first instance to insert owns the prefix; the others read its row
        proxy._exec(proxy._engine.insert_sql(REGISTRY_TABLE, ["tablePrefix", "harvesterID", "hostName",
                                                              "registeredTime", "lastStartTime"], ignore=True),
                    [prefix, harvester_id, host, now, now])
        row = proxy._exec(f"SELECT harvesterID, hostName FROM {REGISTRY_TABLE} WHERE tablePrefix=:p",
                          varmap).fetchone()
        owner, owner_host = row[0], row[1]
        if owner != harvester_id:
            shown = prefix or "(empty)"
            raise DBError(
                f"the tables of [db] tablePrefix = {shown} in {proxy._engine.path} belong to instance {owner} "
                f"(registered from {owner_host}), not to harvester_id {harvester_id}: give this instance its own "
                f"[db] tablePrefix (e.g. tablePrefix = {_suggested(harvester_id)}); if {owner} is retired and this "
                f"instance takes over its rows, remove its registration first: "
                f"DELETE FROM {REGISTRY_TABLE} WHERE tablePrefix='{prefix}'")
        proxy._exec(f"UPDATE {REGISTRY_TABLE} SET hostName=:h, lastStartTime=:t WHERE tablePrefix=:p",
                    {":h": host, ":t": now, ":p": prefix})


def _suggested(harvester_id: str) -> str:
    text = re.sub(r"\W", "_", harvester_id)[:18]
    return (text if text[:1].isalpha() else "h" + text[:17]) + "_"


def registered_instances(proxy: Any) -> list[dict[str, Any]]:
    """The registry's rows (``harvester-admin db instances``); empty when there is none yet."""
    with proxy._tx(write=False):
        if not proxy._engine.table_exists(proxy.cur, REGISTRY_TABLE):
            return []
        rows = proxy._exec(f"SELECT tablePrefix, harvesterID, hostName, registeredTime, lastStartTime "
                           f"FROM {REGISTRY_TABLE} ORDER BY tablePrefix").fetchall()
    keys = ("tablePrefix", "harvesterID", "hostName", "registeredTime", "lastStartTime")
    return [dict(zip(keys, row)) for row in rows]


__all__ = ["InstanceRow", "REGISTRY_TABLE", "SHARED_TABLES", "TableNames", "claim_tables", "registered_instances",
           "table_names"]
