"""Simple throttler: stop submitting to a queue whose recent workers were "missed".

``rulesForMissed`` is a list of ``{"level": "site"|"pq"|"ce", "timeWindow": minutes,
"maxMissed": n}``; a rule holds when more than ``maxMissed`` workers went missed in the last
``timeWindow`` minutes at that level (for "ce", once per ``submitter.computingElements``).
``logicType`` "OR" (default) throttles when any rule holds, "AND" only when all hold.
"""

from __future__ import annotations

import datetime
from typing import Any

from pandaharvester.harvestercore import log_utils, time_utils
from pandaharvester.harvestercore.plugin_base import PluginBase

_logger = log_utils.setup_logger("simple_throttler")


class SimpleThrottler(PluginBase):
    """Throttles on the number of missed workers."""

    def __init__(self, **kwarg: Any) -> None:
        self.logicType = "OR"
        self.rulesForMissed: list[dict] = []
        PluginBase.__init__(self, **kwarg)
        self._db: Any = None

    def _get_db(self) -> Any:
        """Something with ``get_num_missed_workers``: the plugin's DBInterface or a DB proxy."""
        if self._db is not None:
            return self._db
        db_interface = getattr(self, "dbInterface", None)
        if db_interface is not None and hasattr(db_interface, "get_num_missed_workers"):
            self._db = db_interface
            return self._db
        try:
            from pandaharvester.harvestercore.db_proxy_pool import DBProxyPool

            self._db = DBProxyPool()
        except ImportError:
            from pandaharvester.harvestercore.db_proxy import DBProxy

            self._db = DBProxy()
        return self._db

    def _criteria(self, queue_config: Any, tmp_log: Any) -> list[tuple[dict, int]]:
        now = time_utils.naive_utcnow()
        found = []
        for rule in self.rulesForMissed or []:
            limit = now - datetime.timedelta(minutes=rule["timeWindow"])
            level = rule["level"]
            if level == "site":
                found.append(({"siteName": queue_config.siteName, "timeLimit": limit}, rule["maxMissed"]))
            elif level == "pq":
                found.append(({"computingSite": queue_config.queueName, "timeLimit": limit}, rule["maxMissed"]))
            elif level == "ce":
                submitter = getattr(queue_config, "submitter", None) or {}
                if "computingElements" not in submitter:
                    tmp_log.error("rule level 'ce' needs submitter.computingElements in the queue config")
                    continue
                for ce in submitter["computingElements"]:
                    found.append(({"computingElement": ce, "timeLimit": limit}, rule["maxMissed"]))
            else:
                tmp_log.error(f"unknown rule level {level!r} in rulesForMissed; use site, pq or ce")
        return found

    def to_be_throttled(self, queue_config: Any, queue_config_mapper: Any = None) -> tuple[bool, str]:
        """(True, reason) to skip submission to the queue this cycle, else (False, reason)."""
        tmp_log = self.make_logger(_logger, f"computingSite={queue_config.queueName}", method_name="to_be_throttled")
        if self.logicType == "OR":
            ret_val = (False, "no rule was satisfied")
        else:
            ret_val = (True, "all rules were satisfied")
        criteria_list = self._criteria(queue_config, tmp_log)
        if not criteria_list:
            return False, "no rule was satisfied"
        db = self._get_db()
        for criteria, max_missed in criteria_list:
            n_missed = db.get_num_missed_workers(queue_config.queueName, criteria)
            if n_missed > max_missed:
                if self.logicType == "OR":
                    ret_val = (True, f"logic={self.logicType} and nMissed={n_missed} > maxMissed={max_missed} "
                                     f"for {criteria}")
                    break
            elif self.logicType == "AND":
                ret_val = (False, f"logic={self.logicType} and nMissed={n_missed} <= maxMissed={max_missed} "
                                  f"for {criteria}")
                break
        tmp_log.debug(f"ret={ret_val[0]} : {ret_val[1]}")
        return ret_val
