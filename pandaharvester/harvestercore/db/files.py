"""Files (file_table): status look-ups shared between jobs, transfer groups, active inputs."""

from __future__ import annotations

from typing import Any, Sequence

from ..log_utils import make_logger, setup_logger
from ..time_utils import naive_utcnow
from .base import DBModule, db_method

_logger = setup_logger("db_proxy")


class FilesMixin(DBModule):
    """get_file_status (get_files_status for many), change_file_status, file groups, get_all_active_input_files."""

    def get_file_status(self, lfn: str, file_type: str, endpoint: str | None, job_status: str) -> dict[str, Any]:
        """{file status: {"cnt": n, "path": {paths}}} of files with this LFN in jobs of ``job_status``
        (:meth:`get_files_status` for one LFN; {} when none)."""
        return self.get_files_status({lfn: file_type}, endpoint, job_status).get(lfn, {})

    @db_method(dict)
    def get_files_status(self, lfn_types: dict[str, str], endpoint: str | None, job_status: str
                         ) -> dict[str, dict[str, Any]]:
        """:meth:`get_file_status` for many LFNs at once (``{lfn: fileType}``), in chunked ``IN``
        queries: ``{lfn: {file status: {"cnt": n, "path": {paths}}}}``, an LFN found nowhere left out."""
        varmap: dict[str, Any] = {":jobStatus": job_status}
        sql = ("SELECT f.lfn, f.fileType, f.status, f.path, COUNT(*) FROM file_table f, job_table j "
               "WHERE f.lfn IN ({ids}) AND j.PandaID=f.PandaID AND j.status=:jobStatus")
        if endpoint is not None:
            sql += " AND f.endpoint=:endpoint"
            varmap[":endpoint"] = endpoint
        sql += " GROUP BY f.lfn, f.fileType, f.status, f.path"
        result: dict[str, dict[str, Any]] = {}
        with self._tx(write=False):
            for lfn, file_type, status, path, cnt in self._ids_in(sql, list(lfn_types), varmap):
                if lfn_types.get(lfn) != file_type:
                    continue
                entry = result.setdefault(lfn, {}).setdefault(status, {"cnt": 0, "path": set()})
                entry["cnt"] += cnt
                entry["path"].add(path)
        return result

    @db_method(False)
    def change_file_status(self, panda_id: int, data: Sequence[tuple[int, str, str]], locked_by: str) -> bool:
        """Set file statuses ``[(fileID, lfn, newStatus), ...]`` if the job is still locked by ``locked_by``."""
        tmp_log = make_logger(_logger, f"PandaID={panda_id}", method_name="change_file_status")
        with self._tx():
            row = self._exec("SELECT lockedBy FROM job_table WHERE PandaID=:p", {":p": panda_id}).fetchone()
            if row is None:
                tmp_log.debug("skip since job not found")
            elif row[0] != locked_by:
                tmp_log.debug(f"skip since lockedBy is inconsistent in DB {row[0]}")
            else:
                self._many("UPDATE file_table SET status=:s WHERE fileID=:f",
                           [{":s": status, ":f": file_id} for file_id, _lfn, status in data])
        return True

    @db_method(None)
    def get_group_for_file(self, lfn: str, file_type: str, endpoint: str | None) -> dict[str, Any] | None:
        """The most recently updated non-failed transfer group of a file, or None."""
        varmap = {":lfn": lfn, ":type": file_type, ":ng": "failed"}
        sql = ("SELECT groupID, groupStatus, groupUpdateTime FROM file_table WHERE lfn=:lfn AND fileType=:type "
               "AND groupID IS NOT NULL AND groupStatus<>:ng")
        if endpoint is not None:
            sql += " AND endpoint=:endpoint"
            varmap[":endpoint"] = endpoint
        sql += " ORDER BY groupUpdateTime DESC LIMIT 1"
        with self._tx(write=False):
            row = self._exec(sql, varmap).fetchone()
        if row is None:
            return None
        return {"groupID": row[0], "groupStatus": row[1], "groupUpdateTime": row[2]}

    @db_method(list)
    def get_files_with_group_id(self, group_id: str) -> list[Any]:
        with self._tx(write=False):
            return self._select_specs("file_table", "groupID=:g", {":g": group_id})

    @db_method(False)
    def update_file_group_status(self, group_id: str, status_string: str) -> bool:
        with self._tx():
            self._exec("UPDATE file_table SET groupStatus=:s WHERE groupID=:g", {":s": status_string, ":g": group_id})
        return True

    @db_method(list)
    def get_file_group_status(self, group_id: str) -> set[str]:
        with self._tx(write=False):
            return {r[0] for r in self._exec("SELECT DISTINCT groupStatus FROM file_table WHERE groupID=:g",
                                             {":g": group_id}).fetchall()}

    @db_method(False)
    def set_file_group(self, file_specs: Sequence[Any], group_id: str, status_string: str) -> bool:
        """Put the files (every row with their LFNs) into a transfer group."""
        now = naive_utcnow()
        with self._tx():
            self._many("UPDATE file_table SET groupID=:g, groupStatus=:s, groupUpdateTime=:t WHERE lfn=:lfn",
                       [{":g": group_id, ":s": status_string, ":t": now, ":lfn": f.lfn} for f in file_specs])
        return True

    @db_method(False)
    def refresh_file_group_info(self, job_spec: Any) -> bool:
        """Copy group ID/status/time from the DB into the job's file specs (by LFN)."""
        files = list(job_spec.inFiles.union(job_spec.outFiles))
        with self._tx(write=False):
            info: dict[str, tuple[Any, ...]] = {}
            lfns = sorted({f.lfn for f in files if f.lfn is not None})
            for lfn, group_id, status, update_time in self._ids_in(
                    "SELECT lfn, groupID, groupStatus, groupUpdateTime FROM file_table WHERE lfn IN ({ids}) "
                    "ORDER BY fileID", lfns):
                info.setdefault(lfn, (group_id, status, update_time))
        for file_spec in files:
            if file_spec.lfn in info:
                file_spec.groupID, file_spec.groupStatus, file_spec.groupUpdateTime = info[file_spec.lfn]
        return True

    @db_method(set)
    def get_all_active_input_files(self) -> set[str]:
        """LFNs of every input/aux-input file in the DB (the sweeper keeps them on disk)."""
        with self._tx(write=False):
            return {r[0] for r in self._exec("SELECT DISTINCT lfn FROM file_table WHERE fileType IN "
                                             "('input','aux_input')").fetchall()}
