"""Copy a Harvester SQLite DB into another database (``harvester-admin db migrate --from-sqlite``).

For a site moving from SQLite to MariaDB without draining: stop harvester, run the copy into the
database of the cfg's ``[db]`` section, start harvester on it. Every table of :mod:`.schema` is
created on the target (as at start-up), then filled with the source's rows, column by column
(columns an older source lacks stay NULL); the sequences (workerID, configID) go with it, so
numbering continues. The target tables must be empty: a partial or repeated copy is refused
rather than merged.
"""

from __future__ import annotations

from typing import Any, Callable

from pandaharvester.errors import DBError

from . import schema
from .engine import DBSettings, settings_from_config

BATCH = 2000


def migrate_sqlite(source_path: str, target: DBSettings | None = None,
                   report: Callable[[str], None] = print) -> dict[str, int]:
    """Copy every table of the SQLite file ``source_path`` into ``target`` (default: the cfg's
    ``[db]``); returns {table: rows copied}. DBError when the source is missing or a target table
    is not empty."""
    import os

    from pandaharvester.harvestercore.db_proxy import DBProxy

    if not os.path.isfile(source_path):
        raise DBError(f"the SQLite file {source_path} does not exist: give the [db] database_filename of the "
                      f"old installation")
    target = target or settings_from_config()
    if target.engine in ("sqlite", "sqlite3", "") and os.path.abspath(target.database_filename) == \
            os.path.abspath(source_path):
        raise DBError(f"the target of the copy is the source file {source_path}: set [db] engine = mariadb "
                      f"(and its keys) in the cfg first")
    source = DBProxy(settings=DBSettings(database_filename=source_path), read_only=True)
    dest = DBProxy(settings=target)
    copied: dict[str, int] = {}
    try:
        for table in schema.TABLES:
            cls = schema.spec_class(table)
            dest.make_table(cls, table)
            with dest._tx(write=False):
                (n_target,) = dest._exec(f"SELECT COUNT(*) FROM {table}").fetchone()
            if n_target:
                raise DBError(f"{table} of {dest.engine.path} has {n_target} rows: copy into an empty database "
                              f"(drop and re-create it), nothing was merged")
        for table in schema.TABLES:
            copied[table] = _copy_table(source, dest, table)
            report(f"{table}: {copied[table]} rows")
    finally:
        source.close()
        dest.close()
    return copied


def _copy_table(source: Any, dest: Any, table: str) -> int:
    cls = schema.spec_class(table)
    with source._tx(write=False):
        if not source.engine.table_exists(source.cur, table):
            return 0
        have = source.engine.table_columns(source.cur, table)
    names = [col.name for col in schema.columns_of(cls) if col.name in have]
    if not names:
        return 0
    insert = dest.engine.insert_sql(table, names)
    total = 0
    with source._tx(write=False):
        cur = source.engine.plain_cursor(source._con)
        try:
            source.engine.execute(cur, f"SELECT {','.join(names)} FROM {table}")
            while True:
                rows = cur.fetchmany(BATCH)
                if not rows:
                    break
                with dest._tx():
                    total += dest._many(insert, [list(row) for row in rows])
        finally:
            cur.close()
    return total
