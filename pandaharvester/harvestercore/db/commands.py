"""Commands from PanDA (command_table) and queue-config dumps (qcdump_table)."""

from __future__ import annotations

import datetime
from typing import Any, Sequence

from ..log_utils import make_logger, setup_logger
from ..time_utils import naive_utcnow
from .base import DBModule, db_method

_logger = setup_logger("db_proxy")

# unused queue-config dumps older than this are deleted by get_queue_config_dumps
DUMP_LIFETIME = datetime.timedelta(hours=24)


class CommandsMixin(DBModule):
    """store/get/ack/clean commands; queue-config dumps."""

    @db_method(False)
    def store_commands(self, command_specs: Sequence[Any]) -> bool:
        if not command_specs:
            return True
        with self._tx():
            self._insert_specs("command_table", command_specs)
        return True

    @db_method(list)
    def get_commands_for_receiver(self, receiver: str, command_pattern: str | None = None) -> list[Any]:
        """Unprocessed commands for ``receiver`` (``%`` in the pattern = LIKE); they become processed."""
        varmap: dict[str, Any] = {":receiver": receiver, ":processed": 0}
        where = "receiver=:receiver AND processed=:processed"
        if command_pattern is not None:
            varmap[":command"] = command_pattern
            where += " AND command LIKE :command" if "%" in command_pattern else " AND command=:command"
        with self._tx():
            specs = self._select_specs("command_table", where, varmap)
            self._update_in("UPDATE command_table SET processed=1 WHERE command_id IN ({ids})",
                            [s.command_id for s in specs])
        make_logger(_logger, method_name="get_commands_for_receiver").debug(f"got {len(specs)} commands for {receiver}")
        return specs

    @db_method(list)
    def get_commands_ack(self) -> list[int]:
        """IDs of processed commands whose acknowledgement PanDA asked for."""
        with self._tx(write=False):
            rows = self._exec("SELECT command_id FROM command_table WHERE ack_requested=1 AND processed=1").fetchall()
        return [row[0] for row in rows]

    @db_method(False)
    def clean_commands_by_id(self, commands_ids: Sequence[int]) -> bool:
        with self._tx():
            self._update_in("DELETE FROM command_table WHERE command_id IN ({ids})", list(commands_ids))
        return True

    @db_method(False)
    def clean_processed_commands(self) -> bool:
        with self._tx():
            self._exec("DELETE FROM command_table WHERE ack_requested=0 AND processed=1")
        return True

    # ------------------------------------------------------------ queue config dumps
    @db_method(dict)
    def get_queue_config_dumps(self) -> dict[str, Any]:
        """{dumpUniqueName: QueueConfigDumpSpec}; dumps unused by any job/worker for 24 h are deleted,
        and dumps stored with secrets in clear (by an older version) get them masked."""
        limit = naive_utcnow() - DUMP_LIFETIME
        result: dict[str, Any] = {}
        with self._tx():
            used = {r[0] for r in self._exec("SELECT DISTINCT configID FROM job_table").fetchall()}
            used |= {r[0] for r in self._exec("SELECT DISTINCT configID FROM work_table").fetchall()}
            to_delete = []
            for spec in self._select_specs("qcdump_table", "1=1"):
                if spec.configID not in used and spec.creationTime is not None and spec.creationTime < limit:
                    to_delete.append(spec.configID)
                else:
                    result[spec.dumpUniqueName] = spec
            self._update_in("DELETE FROM qcdump_table WHERE configID IN ({ids})", to_delete)
            n_masked = self._mask_dump_secrets(result.values())
        make_logger(_logger, method_name="get_queue_config_dumps").debug(
            f"got {len(result)} dumps, deleted {len(to_delete)}, masked the secrets of {n_masked}")
        return result

    def _mask_dump_secrets(self, specs: Any) -> int:
        """Mask the secrets still in clear in stored dumps (their configID and name are kept)."""
        from ..queue_config_dump_spec import mask_secrets
        from ..spec_base import encode_blob

        n_masked = 0
        for spec in specs:
            masked = mask_secrets(spec.data)
            if masked != spec.data:
                spec.data = masked
                self._exec("UPDATE qcdump_table SET data=:data WHERE configID=:id",
                           {":data": encode_blob(masked), ":id": spec.configID})
                n_masked += 1
        return n_masked

    @db_method(False)
    def add_queue_config_dump(self, dump_spec: Any) -> bool:
        with self._tx():
            self._insert_specs("qcdump_table", [dump_spec])
        return True

    @db_method(None)
    def get_config_id_dump(self, dump_spec: Any) -> int | None:
        with self._tx(write=False):
            row = self._exec("SELECT configID FROM qcdump_table WHERE queueName=:q AND dumpUniqueName=:d",
                             {":q": dump_spec.queueName, ":d": dump_spec.dumpUniqueName}).fetchone()
        return None if row is None else row[0]
