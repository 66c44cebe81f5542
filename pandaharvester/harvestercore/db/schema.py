"""Tables, columns and indexes, all derived from the spec classes' ``attributesWithTypes``.

``make_table`` creates a missing table, adds the columns a newer spec brings (``ALTER TABLE ADD
COLUMN``: rows are kept) and the missing indexes; ``check_table`` lists what is still missing.
Besides one index per ``/ index`` attribute (named ``idx_<col>_<table>`` as in the original),
a few composite indexes serve the queries agents run every cycle (see ``EXTRA_INDEXES``).
Values are checked against the column types before they are written, so that a wrong type or an
over-long string is a clear error instead of silently stored garbage.
"""

from __future__ import annotations

import datetime
import importlib
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterable, Sequence

from pandaharvester.errors import DBError

# table name -> (spec module, spec class); the order is the original's make_tables order
TABLES: dict[str, tuple[str, str]] = {
    "command_table": ("command_spec", "CommandSpec"),
    "job_table": ("job_spec", "JobSpec"),
    "work_table": ("work_spec", "WorkSpec"),
    "file_table": ("file_spec", "FileSpec"),
    "event_table": ("event_spec", "EventSpec"),
    "cache_table": ("cache_spec", "CacheSpec"),
    "seq_table": ("seq_number_spec", "SeqNumberSpec"),
    "pq_table": ("panda_queue_spec", "PandaQueueSpec"),
    "jw_table": ("job_worker_relation_spec", "JobWorkerRelationSpec"),
    "lock_table": ("process_lock_spec", "ProcessLockSpec"),
    "diag_table": ("diag_spec", "DiagSpec"),
    "qcdump_table": ("queue_config_dump_spec", "QueueConfigDumpSpec"),
    "sm_table": ("service_metrics_spec", "ServiceMetricSpec"),
}

# composite / extra indexes for the per-cycle queries: name -> (table, columns)
EXTRA_INDEXES: dict[str, tuple[str, tuple[str, ...]]] = {
    "idxh_work_status_mod": ("work_table", ("status", "modificationTime")),
    "idxh_work_site_status": ("work_table", ("computingSite", "status")),
    "idxh_job_site_substatus": ("job_table", ("computingSite", "subStatus")),
    "idxh_job_hasoutfile": ("job_table", ("hasOutFile",)),
    "idxh_job_substatus_stager": ("job_table", ("subStatus", "stagerTime")),
    "idxh_file_panda_type": ("file_table", ("PandaID", "fileType")),
    "idxh_file_zip": ("file_table", ("PandaID", "zipFileID")),
    "idxh_event_panda_range": ("event_table", ("PandaID", "eventRangeID")),
    "idxh_jw_worker_panda": ("jw_table", ("workerID", "PandaID")),
    "idxh_pq_site": ("pq_table", ("siteName", "jobType", "resourceType")),
    "idxh_cache_keys": ("cache_table", ("mainKey", "subKey")),
    "idxh_qcdump_queue": ("qcdump_table", ("queueName", "dumpUniqueName")),
}


def spec_class(table: str) -> type:
    """The spec class stored in ``table`` (imported on first use)."""
    module_name, class_name = TABLES[table]
    module = importlib.import_module(f"pandaharvester.harvestercore.{module_name}")
    return getattr(module, class_name)


@dataclass(frozen=True)
class Column:
    """One column as declared by a spec attribute."""

    name: str
    spec_type: str
    kind: str  # int | real | text | ts | blob
    max_len: int | None
    index: bool
    unique: bool
    primary: bool


def _parse(attr: str) -> Column:
    name, _, rest = attr.partition(":")
    type_part, _, deco = rest.partition("/")
    spec_type = type_part.strip()
    low = spec_type.lower()
    decorators = deco.split()
    max_len = None
    if low.startswith("integer") or low.startswith("int") or low.startswith("bigint"):
        kind = "int"
    elif low.startswith("timestamp") or low.startswith("datetime"):
        kind = "ts"
    elif low.startswith("blob") or low.startswith("longtext"):
        kind = "blob"
    elif low.startswith("real") or low.startswith("float") or low.startswith("double"):
        kind = "real"
    else:
        kind = "text"
        if low.startswith("varchar("):
            try:
                max_len = int(low[len("varchar("):].split(")")[0])
            except ValueError:
                max_len = None
    unique = "unique" in decorators
    return Column(name=name.strip(), spec_type=spec_type, kind=kind, max_len=max_len,
                  index=unique or "index" in decorators, unique=unique, primary="primary key" in low)


@lru_cache(maxsize=None)
def columns_of(cls: type) -> tuple[Column, ...]:
    """Columns of a spec class in declaration order."""
    return tuple(_parse(attr) for attr in cls.attributesWithTypes)


@lru_cache(maxsize=None)
def column_map(cls: type) -> dict[str, Column]:
    return {col.name: col for col in columns_of(cls)}


_INT_TEXT = re.compile(r"\s*[+-]?\d+\s*")
_REAL_TEXT = re.compile(r"\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*")


def _type_ok(col: Column, value: Any) -> bool:
    # what SQLite's column affinity stores losslessly is accepted, as the original relied on:
    # an integer column takes 3, 3.0 and "3" (stored as 3), not 3.5 or "three"
    kind = col.kind
    if kind == "int":
        if isinstance(value, float):
            return value.is_integer()
        return isinstance(value, int) or (isinstance(value, str) and _INT_TEXT.fullmatch(value) is not None)
    if kind == "ts":
        return isinstance(value, datetime.datetime)
    if kind == "real":
        return isinstance(value, (int, float)) or (isinstance(value, str) and _REAL_TEXT.fullmatch(value) is not None)
    if kind == "blob":
        return isinstance(value, (str, bytes))
    if not isinstance(value, (str, int, float)):
        return False
    return col.max_len is None or not isinstance(value, str) or len(value) <= col.max_len


def check_value(table: str, col: Column, value: Any) -> None:
    """Raise DBError when ``value`` does not fit ``col``."""
    if value is None or _type_ok(col, value):
        return
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    if col.kind == "text" and isinstance(value, str) and col.max_len is not None:
        raise DBError(f"value for {table}.{col.name} is {len(value)} characters long, more than the column's "
                      f"{col.spec_type}: shorten it before storing")
    raise DBError(f"value {shown} ({type(value).__name__}) does not fit {table}.{col.name} of type "
                  f"{col.spec_type}: fix the attribute's value")


def check_row(table: str, cls: type, names: Sequence[str], values: Sequence[Any]) -> None:
    """Check a row given as parallel name/value sequences."""
    cmap = column_map(cls)
    for name, value in zip(names, values):
        if value is None:
            continue
        col = cmap.get(name)
        if col is None:
            raise DBError(f"{table} has no column {name!r}: the attribute does not exist in {cls.__name__}")
        if not _type_ok(col, value):
            check_value(table, col, value)


def check_map(table: str, cls: type, varmap: dict[str, Any]) -> None:
    """Check a ``{":col": value}`` map (as from ``values_map``)."""
    cmap = column_map(cls)
    for key, value in varmap.items():
        name = key[1:] if key[:1] == ":" else key
        col = cmap.get(name)
        if col is None:
            raise DBError(f"{table} has no column {name!r}: the attribute does not exist in {cls.__name__}")
        if value is not None and not _type_ok(col, value):
            check_value(table, col, value)


def check_column_names(table: str, cls: type, names: Iterable[str]) -> None:
    """Raise DBError for a name that is not a column (used for criteria and dynamic keys)."""
    cmap = column_map(cls)
    for name in names:
        if name not in cmap:
            raise DBError(f"{table} has no column {name!r}: the attribute does not exist in {cls.__name__}")


# indexes earlier versions made that no query needs any more (make_table drops them): name -> table
OBSOLETE_INDEXES: dict[str, str] = {
    # work_table.modificationTime is searched with status only (idxh_work_status_mod)
    "idx_modificationTime_work_table": "work_table",
}


def index_name(column: str, table: str) -> str:
    return f"idx_{column}_{table}"


def wanted_indexes(table: str, cls: type) -> dict[str, tuple[tuple[str, ...], bool]]:
    """All indexes a table should have: name -> (columns, unique)."""
    result: dict[str, tuple[tuple[str, ...], bool]] = {}
    for col in columns_of(cls):
        if col.index and not col.primary:
            result[index_name(col.name, table)] = ((col.name,), col.unique)
    names = {col.name for col in columns_of(cls)}
    for name, (tbl, cols) in EXTRA_INDEXES.items():
        if tbl == table and all(c in names for c in cols):
            result[name] = (cols, False)
    return result


def indexed_columns(table: str, cls: type) -> set[str]:
    """Names of the columns of ``table`` that are in some index (MariaDB types them VARCHAR)."""
    return {name for cols, _unique in wanted_indexes(table, cls).values() for name in cols}


def create_table_sql(engine: Any, table: str, cls: type) -> str:
    indexed = indexed_columns(table, cls)
    parts = [f"{col.name} {engine.column_ddl(col.spec_type, col.name in indexed)}" for col in columns_of(cls)]
    return f"CREATE TABLE {table} ({', '.join(parts)}){engine.table_options()}"


def add_column_sql(engine: Any, table: str, col: Column, cls: type | None = None) -> str:
    indexed = col.name in indexed_columns(table, cls) if cls is not None else col.index
    ddl = engine.column_ddl(col.spec_type, indexed)
    if col.primary:
        raise DBError(f"{table} has no primary key column {col.name}: a primary key cannot be added to an "
                      f"existing table; move the DB file away so that harvester re-creates the tables")
    # constraints that ALTER TABLE cannot add are enforced by an index instead
    for word in ("unique", "not null"):
        ddl = re.sub(rf"\b{word}\b", "", ddl, flags=re.I)
    return f"ALTER TABLE {table} ADD COLUMN {col.name} {ddl.strip()}"


def missing_columns(engine: Any, cur: Any, table: str, cls: type) -> list[Column]:
    have = engine.table_columns(cur, table)
    return [col for col in columns_of(cls) if col.name not in have]
