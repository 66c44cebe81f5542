"""``DBProxy``: the one entry point agents and tools use for the Harvester DB.

Every public method keeps the original's name, arguments and return shape; the work is done by
one module per concern under :mod:`pandaharvester.harvestercore.db` (see ``docs/db.md``). Those
modules use only their shared base (``db/base.py``) and never each other; a method that needs
several concerns is written here (``make_tables``).
Agents normally go through :class:`~pandaharvester.harvestercore.db_proxy_pool.DBProxyPool`,
which lends a proxy per call; a proxy must be used by one thread at a time.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from pandaharvester.errors import DBError

from .db import schema
from .db.commands import CommandsMixin
from .db.engine import DBSettings, get_engine, settings_from_config
from .db.files import FilesMixin
from .db.infra import InfraMixin
from .db.instance_tables import claim_tables
from .db.job_cycles import JobCyclesMixin
from .db.jobs import JobsMixin
from .db.jobs_workers import JobsWorkersMixin
from .db.lock_recovery import LockRecoveryMixin
from .db.queues import QueuesMixin
from .db.service import ServiceMixin
from .db.stats import StatsMixin
from .db.worker_cycles import WorkerCyclesMixin
from .db.workers import WorkersMixin
from .log_utils import make_logger, setup_logger

_logger = setup_logger("db_proxy")

# table names, as module attributes like the original's
commandTableName = "command_table"
jobTableName = "job_table"
workTableName = "work_table"
fileTableName = "file_table"
cacheTableName = "cache_table"
eventTableName = "event_table"
seqNumberTableName = "seq_table"
pandaQueueTableName = "pq_table"
jobWorkerTableName = "jw_table"
processLockTableName = "lock_table"
diagTableName = "diag_table"
queueConfigDumpTableName = "qcdump_table"
serviceMetricsTableName = "sm_table"


class DBProxy(InfraMixin, JobsMixin, JobCyclesMixin, WorkersMixin, WorkerCyclesMixin, JobsWorkersMixin,
              FilesMixin, QueuesMixin, StatsMixin, CommandsMixin, ServiceMixin, LockRecoveryMixin):
    """One connection to the Harvester DB with all of the original's DB methods.

    ``settings`` (keyword only) overrides the ``[db]`` section, for tools and benchmarks that run
    without a cfg.
    """

    def __init__(self, thr_name: Any = None, read_only: bool = False, *, settings: DBSettings | None = None):
        self.thrName = thr_name if thr_name is not None else threading.current_thread().ident
        self.read_only = read_only
        self.settings = settings or settings_from_config()
        self._engine = get_engine(self.settings)
        self._con = self._engine.connect(read_only=read_only)
        self._pid = os.getpid()
        self.cur = self._con.cursor()
        self._depth = 0
        self._write_tx = False
        self.verbLog = _logger if self.settings.verbose else None

    def make_tables(self, queue_config_mapper: Any, communicator_pool: Any) -> None:
        """Create/upgrade every table (infra), seed the sequences and clear the process locks
        (service), refill the queues.

        Raises DBError when a table still lacks columns after the upgrade.
        """
        tmp_log = make_logger(_logger, method_name="make_tables")
        tmp_log.debug("start")
        from pandaharvester.harvesterconfig import harvester_config

        # first: refuse tables another instance owns before touching them
        claim_tables(self, str(getattr(getattr(harvester_config, "master", None), "harvester_id", "") or ""))
        problems: list[str] = []
        for table in schema.TABLES:
            problems += self.make_table(schema.spec_class(table), table)
        if problems:
            raise DBError(f"definitions of tables in {self._engine.path} are incorrect: {'; '.join(problems)}. "
                          f"Add the missing columns, or move the file away so that harvester re-creates it")
        init_worker = 1
        if getattr(harvester_config.db, "syncMaxWorkerID", False) and communicator_pool is not None:
            status, out = communicator_pool.get_max_worker_id()
            if not status:
                tmp_log.warning(f"failed to get max workerID from PanDA: {out}")
            elif not out:
                tmp_log.debug("max workerID is undefined in PanDA")
            else:
                tmp_log.debug(f"got max workerID={out} from PanDA")
                init_worker = int(out) + 1
        self.add_seq_number("SEQ_workerID", init_worker)
        self.add_seq_number("SEQ_configID", 1)
        if queue_config_mapper is not None:
            queue_config_mapper.load_data()
        self.clean_process_locks()
        tmp_log.debug("done")

    @property
    def engine(self) -> Any:
        """The engine object (SQL dialect, file path)."""
        return self._engine

    def close(self) -> None:
        """Close the connection (rolls back an open transaction). In a forked child, the parent's
        connection is only dropped: closing it politely would end the parent's session too."""
        try:
            if self._pid != os.getpid():
                self._engine.discard(self._con)
                return
            self._abort()
            self._con.close()
        except Exception:  # closing twice or after a fork is harmless
            pass

    def __del__(self) -> None:
        try:
            if getattr(self, "_pid", None) != os.getpid():
                self._engine.discard(self._con)
            else:
                self._con.close()
        except Exception:
            pass
