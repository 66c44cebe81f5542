"""Sequences, cache, process locks, dialog messages and service metrics."""

from __future__ import annotations

import datetime
from typing import Any, Sequence

from .. import core_utils
from ..log_utils import make_logger, setup_logger
from ..time_utils import naive_utcnow
from . import schema
from .base import DBModule, chunks, db_method, in_binds

_logger = setup_logger("db_proxy")

# process locks older than this are removed whatever their interval (a dead holder)
STALE_PROCESS_LOCK = datetime.timedelta(hours=6)
# dialog messages older than this are dropped when a new one is added
DIALOG_LIFETIME = datetime.timedelta(minutes=60)


class ServiceMixin(DBModule):
    """seq_table, cache_table, lock_table, diag_table, sm_table."""

    # ------------------------------------------------------------ sequences
    @db_method(False)
    def add_seq_number(self, number_name: str, init_value: int) -> bool:
        """Create the sequence ``number_name`` at ``init_value`` unless it exists."""
        spec = schema.spec_class("seq_table")()
        spec.numberName = number_name
        spec.curVal = init_value
        with self._tx():
            self._insert_specs("seq_table", [spec], ignore=True)
        return True

    @db_method(None)
    def get_next_seq_number(self, number_name: str) -> int | None:
        """Increment and return the sequence (atomic across processes)."""
        with self._tx():
            self._exec("UPDATE seq_table SET curVal=curVal+1 WHERE numberName=:name", {":name": number_name})
            row = self._exec("SELECT curVal FROM seq_table WHERE numberName=:name", {":name": number_name}).fetchone()
        value = None if row is None else row[0]
        make_logger(_logger, f"name={number_name}", method_name="get_next_seq_number").debug(f"got {value}")
        return value

    @db_method(list)
    def get_next_seq_numbers(self, number_name: str, n_numbers: int) -> list[int]:
        """Reserve ``n_numbers`` consecutive values of the sequence in one transaction (atomic across
        processes, as :meth:`get_next_seq_number` called that many times); [] for an unknown sequence,
        ``n_numbers <= 0`` or a DB error."""
        if n_numbers <= 0:
            return []
        with self._tx():
            n = self._exec("UPDATE seq_table SET curVal=curVal+:n WHERE numberName=:name",
                           {":n": n_numbers, ":name": number_name}).rowcount
            row = self._exec("SELECT curVal FROM seq_table WHERE numberName=:name",
                             {":name": number_name}).fetchone() if n else None
        if row is None:
            return []
        last = row[0]
        values = list(range(last - n_numbers + 1, last + 1))
        make_logger(_logger, f"name={number_name}", method_name="get_next_seq_numbers").debug(
            f"got {values[0]}..{values[-1]}")
        return values

    # ------------------------------------------------------------ cache
    @db_method(None)
    def get_cache_last_update_time(self, main_key: str, sub_key: str | None) -> datetime.datetime | None:
        varmap = {":mainKey": main_key}
        sql = "SELECT lastUpdate FROM cache_table WHERE mainKey=:mainKey"
        if sub_key is not None:
            sql += " AND subKey=:subKey"
            varmap[":subKey"] = sub_key
        with self._tx(write=False):
            row = self._exec(sql, varmap).fetchone()
        return None if row is None else row[0]

    @db_method(False)
    def refresh_cache(self, main_key: str, sub_key: str | None, new_info: Any) -> bool:
        """Store ``new_info`` under (main_key, sub_key) and in the process-local cache."""
        cls = schema.spec_class("cache_table")
        spec = cls()
        spec.lastUpdate = naive_utcnow()
        spec.data = new_info
        varmap = {":mainKey": main_key}
        where = "mainKey=:mainKey"
        if sub_key is not None:
            where += " AND subKey=:subKey"
            varmap[":subKey"] = sub_key
        with self._tx():
            row = self._exec(f"SELECT lastUpdate FROM cache_table WHERE {where}", varmap).fetchone()
            if row is None:
                spec.mainKey = main_key
                spec.subKey = sub_key
                self._insert_specs("cache_table", [spec])
            else:
                self._update_changes("cache_table", spec, where, varmap)
        cache_key = f"cache|{main_key}|{sub_key}"
        with core_utils.get_global_dict() as global_dict:
            global_dict[cache_key] = spec.data
        return True

    @db_method(None)
    def get_cache(self, main_key: str, sub_key: str | None = None, from_local_cache: bool = True) -> Any:
        """CacheSpec for (main_key, sub_key), from the process-local copy when allowed; None if absent."""
        cls = schema.spec_class("cache_table")
        cache_key = f"cache|{main_key}|{sub_key}"
        global_dict = core_utils.get_global_dict()
        if from_local_cache:
            with global_dict:
                if cache_key in global_dict:
                    spec = cls()
                    spec.data = global_dict[cache_key]
                    return spec
        varmap = {":mainKey": main_key}
        where = "mainKey=:mainKey"
        if sub_key is not None:
            where += " AND subKey=:subKey"
            varmap[":subKey"] = sub_key
        with self._tx(write=False):
            specs = self._select_specs("cache_table", where, varmap, suffix="LIMIT 1")
        if not specs:
            return None
        with global_dict:
            global_dict[cache_key] = specs[0].data
        return specs[0]

    # ------------------------------------------------------------ process locks
    @db_method(False)
    def clean_process_locks(self) -> bool:
        """Remove every process lock (start-up)."""
        with self._tx():
            self._exec("DELETE FROM lock_table")
        return True

    @db_method(False)
    def get_process_lock(self, process_name: str, locked_by: str, lock_interval: float) -> bool:
        """Take the named lock if free or older than ``lock_interval`` seconds (atomic)."""
        now = naive_utcnow()
        got = False
        with self._tx():
            self._exec("DELETE FROM lock_table WHERE lockTime<:limit", {":limit": now - STALE_PROCESS_LOCK})
            row = self._exec("SELECT lockTime FROM lock_table WHERE processName=:name",
                             {":name": process_name}).fetchone()
            if row is None:
                spec = schema.spec_class("lock_table")()
                spec.processName = process_name
                spec.lockedBy = locked_by
                spec.lockTime = now
                # two processes may both find no row: the one whose INSERT is ignored did not get it
                got = self._insert_specs("lock_table", [spec], ignore=True) == 1
            else:
                limit = now - datetime.timedelta(seconds=lock_interval)
                n = self._exec("UPDATE lock_table SET lockedBy=:lockedBy,lockTime=:now "
                               "WHERE processName=:name AND (lockTime IS NULL OR lockTime<=:limit)",
                               {":lockedBy": locked_by, ":now": now, ":name": process_name,
                                ":limit": limit}).rowcount
                got = n > 0
        make_logger(_logger, f"proc={process_name} by={locked_by}", method_name="get_process_lock").debug(
            f"done with {got}")
        return got

    @db_method(False)
    def release_process_lock(self, process_name: str, locked_by: str) -> bool:
        with self._tx():
            self._exec("DELETE FROM lock_table WHERE processName=:name AND lockedBy=:lockedBy",
                       {":name": process_name, ":lockedBy": locked_by})
        return True

    # ------------------------------------------------------------ dialogs
    @db_method(False)
    def add_dialog_message(self, message: str, level: str, module_name: str, identifier: Any = None) -> bool:
        """Store a message for the propagator to send to PanDA (old ones are dropped)."""
        now = naive_utcnow()
        spec = schema.spec_class("diag_table")()
        spec.moduleName = module_name
        spec.creationTime = now
        spec.messageLevel = level
        if identifier is not None:
            spec.identifier = str(identifier)[:100]
        spec.diagMessage = str(message)[:500]
        with self._tx():
            self._exec("DELETE FROM diag_table WHERE creationTime<:limit", {":limit": now - DIALOG_LIFETIME})
            self._insert_specs("diag_table", [spec])
        return True

    @db_method(list)
    def get_dialog_messages_to_send(self, n_messages: int, lock_interval: float) -> list[Any]:
        """Up to ``n_messages`` messages not locked within ``lock_interval`` s; they get locked."""
        now = naive_utcnow()
        limit = now - datetime.timedelta(seconds=lock_interval)
        cond = "(lockTime IS NULL OR lockTime<:limit)"
        with self._tx():
            ids = self._pick_ids("diag_table", "diagID", cond, "ORDER BY diagID", {":limit": limit}, int(n_messages))
            self._update_in(f"UPDATE diag_table SET lockTime=:now WHERE diagID IN ({{ids}}) AND {cond}", ids,
                            {":now": now, ":limit": limit})
            specs = self._select_specs_in("diag_table", "diagID", ids)
        return sorted(specs, key=lambda s: s.diagID)

    @db_method(False)
    def delete_dialog_messages(self, ids: Sequence[int]) -> bool:
        with self._tx():
            self._update_in("DELETE FROM diag_table WHERE diagID IN ({ids})", list(ids))
        return True

    # ------------------------------------------------------------ service metrics
    @db_method(False)
    def insert_service_metrics(self, service_metric_spec: Any) -> bool:
        with self._tx():
            self._insert_specs("sm_table", [service_metric_spec])
        return True

    @db_method(dict)
    def get_service_metrics(self, last_update: datetime.datetime) -> list[list[Any]]:
        """``[[creationTime string, hostName, metrics JSON], ...]`` created since ``last_update``."""
        with self._tx(write=False):
            rows = self._exec("SELECT creationTime, hostName, metrics FROM sm_table WHERE creationTime>=:t "
                              "ORDER BY creationTime", {":t": last_update}).fetchall()
        result = []
        for created, host, metrics in rows:
            if isinstance(created, datetime.datetime):
                result.append([created.strftime("%Y-%m-%d %H:%M:%S.%f"), host, metrics])
        return result

    @db_method(False)
    def clean_service_metrics(self, max_age_hours: float = 24) -> bool:
        """Delete service metrics older than ``max_age_hours``."""
        with self._tx():
            self._exec("DELETE FROM sm_table WHERE creationTime<:t",
                       {":t": naive_utcnow() - datetime.timedelta(hours=max_age_hours)})
        return True


__all__ = ["ServiceMixin", "chunks", "in_binds"]
