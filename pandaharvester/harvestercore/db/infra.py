"""Schema creation/upgrade and the raw ``execute``/``commit`` API kept from the original."""

from __future__ import annotations

import re
from typing import Any, Sequence

from pandaharvester.errors import DBError

from ..log_utils import make_logger, setup_logger
from . import schema
from .base import DBModule, db_method

_logger = setup_logger("db_proxy")

_WRITE_RE = re.compile(r"^\s*(INSERT|UPDATE|DELETE|REPLACE|CREATE|ALTER|DROP)\b", re.I)


class InfraMixin(DBModule):
    """make_table / check_table and the raw SQL entry points (``make_tables``, which seeds the
    service tables too, is the facade's)."""

    # ------------------------------------------------------------ raw SQL (admin tools, tests)
    def _begin_manual(self, sql: str) -> None:
        if self._depth == 0:
            write = bool(_WRITE_RE.match(sql)) or " FOR UPDATE" in sql.upper()
            self._begin(write)
            self._depth = 1
            self._write_tx = write
            self._manual = True
        elif not self._write_tx and _WRITE_RE.match(sql):
            # read then write in one transaction (the original's SELECT, UPDATE, commit()): SQLite
            # takes the write lock at this statement; a busy error here reaches the caller
            # (MariaDB: the reads ran in autocommit, the transaction starts here)
            self._engine.upgrade(self._con)
            self._write_tx = True

    def execute(self, sql: str, varmap: dict[str, Any] | None = None) -> Any:
        """Run one statement with ``:name`` binds inside the current (or a new) transaction.

        The transaction stays open until :meth:`commit` or :meth:`rollback`, as in the original;
        rows are read from the returned cursor (also ``self.cur``).
        """
        sql = self.convert_params(sql)
        self._begin_manual(sql)
        try:
            return self._exec(sql, varmap or {})
        except Exception:
            self._abort()
            raise

    def executemany(self, sql: str, varmap_list: Sequence[dict[str, Any]]) -> int:
        """Run one statement for each bind map, in the current (or a new) transaction."""
        sql = self.convert_params(sql)
        self._begin_manual(sql)
        try:
            return self._many(sql, varmap_list)
        except Exception:
            self._abort()
            raise

    def commit(self) -> None:
        """Commit the transaction opened by :meth:`execute`."""
        write = self._write_tx
        self._depth = 0
        self._manual = False
        try:
            self._engine.commit(self._con, write)
        finally:
            self._end_write_turn()

    def rollback(self) -> None:
        """Roll back the transaction opened by :meth:`execute`."""
        self._abort()

    def convert_params(self, sql: str, varmap: Any = None) -> Any:
        """Statements written for MariaDB as the engine takes them (SQLite: ``FOR UPDATE`` dropped,
        ``INSERT IGNORE`` → ``INSERT OR IGNORE``; MariaDB: unchanged)."""
        sql = self._engine.convert_raw(sql)
        return sql if varmap is None else (sql, varmap)

    def type_conversion(self, attr_type: str) -> str:
        """Spec attribute type → the engine's column type."""
        return self._engine.column_type(attr_type)

    @staticmethod
    def need_index(attr: str) -> tuple[bool, bool]:
        """(is indexed, is unique) for an ``attributesWithTypes`` entry."""
        col = schema._parse(attr)
        return col.index, col.unique

    # ------------------------------------------------------------ schema
    def check_table(self, cls: type, table_name: str, get_missing: bool = False) -> list[str]:
        """Columns of ``cls`` missing in ``table_name`` (names, or messages unless ``get_missing``)."""
        with self._tx(write=False):
            missing = schema.missing_columns(self._engine, self.cur, table_name, cls)
        if get_missing:
            return [col.name for col in missing]
        return [f"{col.name} {self._engine.column_type(col.spec_type)} is missing in {table_name}" for col in missing]

    def initialize_jobType(self, table_name: str) -> None:  # noqa: N802 (original name)
        """Old rows without jobType get 'ANY' (pq_table/work_table upgrades)."""
        with self._tx():
            self._exec(f"UPDATE {table_name} SET jobType='ANY' WHERE jobType IS NULL")

    def make_table(self, cls: type, table_name: str) -> list[str]:
        """Create ``table_name`` or add its missing columns and indexes; returns what is still missing."""
        tmp_log = make_logger(_logger, f"table={table_name}", method_name="make_table")
        added: list[str] = []
        with self._tx():
            if not self._engine.table_exists(self.cur, table_name):
                self._exec(schema.create_table_sql(self._engine, table_name, cls))
                tmp_log.debug("made table")
            else:
                for col in schema.missing_columns(self._engine, self.cur, table_name, cls):
                    self._exec(schema.add_column_sql(self._engine, table_name, col, cls))
                    added.append(col.name)
                    tmp_log.info(f"added column {col.name} {col.spec_type}")
            have = self._engine.index_names(self.cur, table_name)
            for name in sorted(have):
                if schema.OBSOLETE_INDEXES.get(name) == table_name:
                    self._exec(self._engine.drop_index_sql(name, table_name))
                    tmp_log.info(f"dropped index {name}: no query needs it")
            for name, (cols, unique) in schema.wanted_indexes(table_name, cls).items():
                if name in have:
                    continue
                try:
                    self._exec(self._engine.create_index_sql(name, table_name, cols, unique))
                except Exception as exc:  # e.g. duplicates in an old table for a new unique index
                    raise DBError(f"cannot create index {name} on {table_name} in {self._engine.path}: {exc}; "
                                  f"fix the duplicated rows or move the DB file away") from exc
                tmp_log.debug(f"added index {name}")
        if "jobType" in added:
            self.initialize_jobType(table_name)
        return self.check_table(cls, table_name)


__all__ = ["InfraMixin", "db_method"]
