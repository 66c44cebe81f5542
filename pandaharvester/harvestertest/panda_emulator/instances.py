"""Harvester instances as PanDA sees them: heartbeats, workers, commands, statistics, metrics."""

from __future__ import annotations

import datetime
import hashlib
import json
from typing import Any

from .store import Store, now

MESSAGE_DATABASE = "database error in the PanDA server"
# what the real server's report_worker_statistics answers when it cannot store a report
STATS_DATABASE_ERROR = "database error"
# the real server answers get_worker_statistics from the reports of the last 4 hours
STATS_WINDOW_SECONDS = 4 * 3600

# instance-table columns a heartbeat may set (anything else is a database error, as on the real server)
HEARTBEAT_COLUMNS = {
    "startTime",
    "sw_version",
    "commit_stamp",
    "description",
    "owner",
    "hostName",
    "lastUpdate",
    "status",
    "commands",
}

# the job type the real server puts in SET_N_WORKERS_JOBTYPE (its pilot streaming's default label)
DEFAULT_JOB_TYPE = "managed"

# an instance whose last heartbeat is older than this gets no share of a queue depth
DEFAULT_INSTANCE_TIMEOUT = 1800.0

KNOWN_COMMANDS = ("KILL_WORKERS", "SET_N_WORKERS_JOBTYPE", "REPORT_WORKER_STATS", "SYNC_WORKERS_KILL", "RELOAD_CONFIG")


class Instances:
    """Operations on instance, worker and command rows."""

    def __init__(self, store: Store, instance_timeout: float = DEFAULT_INSTANCE_TIMEOUT) -> None:
        self.store = store
        self.instance_timeout = instance_timeout

    # ----------------------------------------------------------- heartbeat
    def heartbeat(self, harvester_id: str, data: Any, owner: str, host: str) -> tuple[bool, str]:
        """Record a heartbeat. An unknown instance is created but the reply is a failure."""
        if isinstance(data, str):
            try:
                data = json.loads(data) if data else {}
            except ValueError:
                return False, MESSAGE_DATABASE
        data = data or {}
        if not isinstance(data, dict):
            return False, MESSAGE_DATABASE
        t = now()
        with self.store.write() as con:
            row = con.execute("SELECT * FROM instances WHERE harvester_id=?", (harvester_id,)).fetchone()
            if row is None:
                con.execute(
                    "INSERT INTO instances(harvester_id, owner, host, first_seen, last_heartbeat, n_heartbeats, data, command_sites)"
                    " VALUES(?,?,?,?,NULL,0,'{}','[]')",
                    (harvester_id, owner, host, t),
                )
                return False, MESSAGE_DATABASE
            if set(data) - HEARTBEAT_COLUMNS:
                return False, MESSAGE_DATABASE
            stored = json.loads(row["data"] or "{}")
            sites = json.loads(row["command_sites"] or "[]")
            for key, value in data.items():
                if key == "commands":
                    for item in value or []:
                        if isinstance(item, dict):
                            entry = [item.get("command"), item.get("computingSite"), item.get("resourceType")]
                            if entry not in sites:
                                sites.append(entry)
                else:
                    stored[key] = value
            con.execute(
                "UPDATE instances SET owner=?, host=?, last_heartbeat=?, n_heartbeats=n_heartbeats+1, data=?, command_sites=?"
                " WHERE harvester_id=?",
                (owner, host, t, json.dumps(stored), json.dumps(sites), harvester_id),
            )
        return True, ""

    # ------------------------------------------------------------- workers
    def update_workers(self, harvester_id: str, workers: list) -> list[bool]:
        """Upsert workers by (harvester_id, workerID); one bool per worker."""
        t = now()
        out = []
        with self.store.write() as con:
            for w in workers:
                if not isinstance(w, dict) or w.get("workerID") is None:
                    out.append(False)
                    continue
                try:
                    worker_id = int(w["workerID"])
                except (TypeError, ValueError):
                    out.append(False)
                    continue
                pandaids = w.get("pandaid_list") or []
                con.execute(
                    "INSERT INTO workers(harvester_id, worker_id, status, computing_site, resource_type, job_type, n_core, n_jobs,"
                    " batch_id, pandaid_list, data, n_updates, last_update) VALUES(?,?,?,?,?,?,?,?,?,?,?,1,?)"
                    " ON CONFLICT(harvester_id, worker_id) DO UPDATE SET status=excluded.status,"
                    " computing_site=excluded.computing_site, resource_type=excluded.resource_type, job_type=excluded.job_type,"
                    " n_core=excluded.n_core, n_jobs=excluded.n_jobs, batch_id=excluded.batch_id,"
                    " pandaid_list=excluded.pandaid_list,"
                    " n_updates=workers.n_updates + (workers.data IS NOT excluded.data), data=excluded.data,"
                    " last_update=excluded.last_update",
                    (
                        harvester_id,
                        worker_id,
                        w.get("status"),
                        w.get("computingSite"),
                        w.get("resourceType"),
                        w.get("jobType"),
                        w.get("nCore"),
                        w.get("nJobs"),
                        None if w.get("batchID") is None else str(w.get("batchID")),
                        json.dumps(pandaids),
                        json.dumps(w, sort_keys=True),
                        t,
                    ),
                )
                out.append(True)
        return out

    def current_worker_id(self, harvester_id: str) -> int | None:
        """Largest workerID reported by the instance, None when it has none."""
        return self.store.scalar("SELECT MAX(worker_id) FROM workers WHERE harvester_id=?", (harvester_id,))

    # ------------------------------------------------------------ commands
    def add_command(self, harvester_id: str, command: str, params: Any = None, ack_requested: bool = True) -> int:
        """Queue a command for an instance."""
        base = command.split(":")[0]
        if base not in KNOWN_COMMANDS:
            raise ValueError(f"unknown command {command!r}; known: {', '.join(KNOWN_COMMANDS)}")
        with self.store.write() as con:
            cur = con.execute(
                "INSERT INTO commands(harvester_id, command, params, ack_requested, status, creation_time) VALUES(?,?,?,?, 'new', ?)",
                (harvester_id, command, json.dumps(params), int(bool(ack_requested)), now()),
            )
            return int(cur.lastrowid)

    def acquire_commands(self, harvester_id: str, n_commands: int) -> list[dict]:
        """Return up to ``n_commands`` new commands and mark them sent (no ack → removed)."""
        with self.store.write() as con:
            rows = con.execute(
                "SELECT * FROM commands WHERE harvester_id=? AND status='new' ORDER BY command_id LIMIT ?",
                (harvester_id, max(0, int(n_commands))),
            ).fetchall()
            t = now()
            out = []
            for r in rows:
                if r["ack_requested"]:
                    con.execute(
                        "UPDATE commands SET status='sent', sent_time=? WHERE command_id=?", (t, r["command_id"])
                    )
                else:
                    con.execute("DELETE FROM commands WHERE command_id=?", (r["command_id"],))
                out.append(
                    {
                        "command_id": r["command_id"],
                        "command": r["command"],
                        "params": json.loads(r["params"]) if r["params"] else None,
                        "ack_requested": bool(r["ack_requested"]),
                        "creation_date": datetime.datetime.fromtimestamp(r["creation_time"], datetime.UTC).strftime(
                            "%Y-%m-%d %H:%M:%S"
                        ),
                    }
                )
        return out

    def ack_commands(self, command_ids: list) -> int:
        """Remove acknowledged commands; unknown ids are ignored (idempotent)."""
        ids = []
        for c in command_ids:
            try:
                ids.append(int(c))
            except (TypeError, ValueError):
                raise ValueError(f"bad command id {c!r}") from None
        with self.store.write() as con:
            return con.executemany("DELETE FROM commands WHERE command_id=?", [(i,) for i in ids]).rowcount

    # --------------------------------------------------------- queue depth
    def set_queue_depth(
        self,
        site: str,
        n: int,
        resource_type: str = "ANY",
        job_type: str = DEFAULT_JOB_TYPE,
        harvester_id: str | None = None,
        command: bool = True,
    ) -> dict:
        """Set the number of jobs/workers wanted at ``site``; notify instances with SET_N_WORKERS_JOBTYPE.

        As the real server, the command carries every depth set for the site (``{job_type:
        {resource_type: n}}``): Harvester resets the slots a command does not name. The job type is
        a real one (``managed``) unless told otherwise, as the real server's pilot streaming sends it;
        ``ANY`` is possible. Sent to ``harvester_id`` alone when given; else each live instance
        serving the site gets its share of every depth (:meth:`shares`), so that together they
        submit what PanDA wants, once.
        """
        n = int(n)
        if n < 0:
            raise ValueError("n must be >= 0")
        with self.store.write() as con:
            con.execute(
                "INSERT OR REPLACE INTO queue_depth VALUES(?,?,?,?,?)", (site, job_type, resource_type, n, now())
            )
        shares: dict[str, dict] = {}
        if command:
            depths = self.queue_depths().get(site, {job_type: {resource_type: n}})
            shares = {harvester_id: depths} if harvester_id else self.shares(depths, self.live_instances(site))
            for hid, params in shares.items():
                self.add_command(hid, f"SET_N_WORKERS_JOBTYPE:{site}", params)
        return {"site": site, "n": n, "resource_type": resource_type, "job_type": job_type,
                "notified": sorted(shares), "shares": shares}

    @staticmethod
    def shares(depths: dict, harvester_ids: list[str]) -> dict[str, dict]:
        """{harvester_id: depths split}: each depth ``n`` over ``k`` instances is ``n // k`` each, the
        remainder one more each for the first instances by id; the shares add up to ``n``."""
        k = len(harvester_ids)
        return {
            hid: {jt: {rt: n // k + (1 if index < n % k else 0) for rt, n in by_rt.items()}
                  for jt, by_rt in depths.items()}
            for index, hid in enumerate(sorted(harvester_ids))
        }

    def live_instances(self, site: str) -> list[str]:
        """Instances serving ``site`` whose last heartbeat is within ``instance_timeout`` s (one
        configured for the site but never heard from counts as live: it may not have started yet)."""
        limit = now() - self.instance_timeout
        last = {
            r["harvester_id"]: r["seen"]
            for r in self.store.query("SELECT harvester_id, COALESCE(last_heartbeat, first_seen) AS seen FROM instances")
        }
        return [hid for hid in self.instances_serving(site) if last.get(hid) is None or last[hid] >= limit]

    def queue_depths(self) -> dict:
        """{site: {job_type: {resource_type: n}}}."""
        out: dict = {}
        for r in self.store.query("SELECT * FROM queue_depth ORDER BY site"):
            out.setdefault(r["site"], {}).setdefault(r["job_type"], {})[r["resource_type"]] = r["n"]
        return out

    def instances_serving(self, site: str) -> list[str]:
        """Instances that asked for commands about ``site``, list it in their config, or report workers there."""
        found: set[str] = set()
        for r in self.store.query("SELECT harvester_id, command_sites FROM instances"):
            if any(entry[1] == site for entry in json.loads(r["command_sites"] or "[]")):
                found.add(r["harvester_id"])
        for r in self.store.query("SELECT harvester_id, queues FROM instance_configs"):
            if site in json.loads(r["queues"] or "[]"):
                found.add(r["harvester_id"])
        for r in self.store.query("SELECT DISTINCT harvester_id FROM workers WHERE computing_site=?", (site,)):
            found.add(r["harvester_id"])
        return sorted(found)

    # ---------------------------------------------------------- statistics
    def report_worker_stats(self, harvester_id: str, panda_queue: str, statistics: Any) -> tuple[bool, str]:
        """Store the worker statistics an instance reported for a PanDA queue, as the real server does:
        the report REPLACES every row held for (instance, queue), one row per (jobType, resourceType,
        status) with its number; resource type ``Undefined`` is dropped. A report that is not
        ``{jobType: {resourceType: {status: n}}}`` fails with the server's "database error"."""
        try:
            if isinstance(statistics, str):
                statistics = json.loads(statistics)
            rows = [
                (job_type, resource_type, status, n)
                for job_type, by_resource in statistics.items()
                for resource_type, counts in by_resource.items()
                if resource_type != "Undefined"
                for status, n in counts.items()
            ]
        except (AttributeError, TypeError, ValueError):
            return False, STATS_DATABASE_ERROR
        if any(not isinstance(n, (int, type(None))) or isinstance(n, bool) for *_key, n in rows):
            return False, STATS_DATABASE_ERROR
        stored: dict = {}
        for job_type, resource_type, status, n in rows:
            stored.setdefault(job_type, {}).setdefault(resource_type, {})[status] = n
        with self.store.write() as con:
            con.execute("DELETE FROM worker_stats WHERE harvester_id=? AND panda_queue=?", (harvester_id, panda_queue))
            if stored:
                con.execute("INSERT INTO worker_stats VALUES(?,?,?,?)",
                            (harvester_id, panda_queue, json.dumps(stored), now()))
        return True, "OK"

    def worker_statistics(self) -> dict:
        """{queue: {harvester_id: {job_type: {resource_type: {status: n}}}}} of the reports of the last
        4 hours (the real server's window); workers an instance did not report are not counted."""
        out: dict = {}
        limit = now() - STATS_WINDOW_SECONDS
        for r in self.store.query("SELECT * FROM worker_stats WHERE update_time>=?", (limit,)):
            out.setdefault(r["panda_queue"], {})[r["harvester_id"]] = json.loads(r["statistics"])
        return out

    # ------------------------------------------------- metrics and dialogs
    def add_service_metrics(self, harvester_id: str, metrics: Any) -> int:
        """Store service metrics (list of [creation_time, hostname, metrics] or dicts); duplicates ignored."""
        if isinstance(metrics, str):
            metrics = json.loads(metrics)
        if not isinstance(metrics, list):
            metrics = [metrics]
        n = 0
        with self.store.write() as con:
            for item in metrics:
                text = json.dumps(item, sort_keys=True, default=str)
                digest = hashlib.sha256(text.encode()).hexdigest()[:32]
                ctime, host = (item[0], item[1]) if isinstance(item, list) and len(item) >= 2 else (None, None)
                if isinstance(item, dict):
                    ctime, host = item.get("creation_time"), item.get("hostname")
                n += con.execute(
                    "INSERT OR IGNORE INTO service_metrics VALUES(?,?,?,?,?,?)",
                    (harvester_id, digest, None if ctime is None else str(ctime), host, text, now()),
                ).rowcount
        return n

    def add_dialogs(self, harvester_id: str, dialogs: Any) -> int:
        """Store dialog messages keyed by diagID; duplicates ignored."""
        if isinstance(dialogs, str):
            dialogs = json.loads(dialogs)
        n = 0
        with self.store.write() as con:
            for d in dialogs or []:
                if not isinstance(d, dict):
                    raise TypeError("each dialog must be a JSON object")
                key = d.get("diagID")
                if key is None:
                    key = hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:32]
                n += con.execute(
                    "INSERT OR IGNORE INTO dialogs VALUES(?,?,?,?)",
                    (harvester_id, str(key), json.dumps(d, default=str), now()),
                ).rowcount
        return n

    # ------------------------------------------------------ instance config
    def set_instance_config(
        self, harvester_id: str, queues: list | None = None, cfg: str | None = None, queue_config: dict | None = None
    ) -> dict:
        """Set (parts of) the config served to an instance."""
        with self.store.write() as con:
            row = con.execute("SELECT * FROM instance_configs WHERE harvester_id=?", (harvester_id,)).fetchone()
            cur = dict(row) if row else {"queues": "[]", "cfg": None, "queue_config": None}
            if queues is not None:
                cur["queues"] = json.dumps(list(queues))
            if cfg is not None:
                cur["cfg"] = cfg
            if queue_config is not None:
                cur["queue_config"] = json.dumps(queue_config)
            con.execute(
                "INSERT OR REPLACE INTO instance_configs VALUES(?,?,?,?)",
                (harvester_id, cur["queues"], cur["cfg"], cur["queue_config"]),
            )
        return self.instance_config(harvester_id)

    def instance_config(self, harvester_id: str) -> dict | None:
        """{"queues": [...], "cfg": str|None, "queue_config": dict|None} or None."""
        rows = self.store.query("SELECT * FROM instance_configs WHERE harvester_id=?", (harvester_id,))
        if not rows:
            return None
        r = rows[0]
        return {
            "queues": json.loads(r["queues"] or "[]"),
            "cfg": r["cfg"],
            "queue_config": json.loads(r["queue_config"]) if r["queue_config"] else None,
        }

    def render_cfg(self, harvester_id: str) -> str | None:
        """The panda_harvester.cfg text for HARVESTER_INSTANCE_CONFIG_URL."""
        conf = self.instance_config(harvester_id)
        if conf is None:
            return None
        if conf["cfg"]:
            return conf["cfg"]
        lines = ["[master]", f"harvester_id = {harvester_id}", "", "[qconf]", "queueList ="]
        lines += [f"  {q}" for q in conf["queues"]]
        return "\n".join(lines) + "\n"

    def render_queue_config(self, harvester_id: str) -> dict | None:
        """The queue config JSON for an instance (explicit one, else a minimal one per queue)."""
        conf = self.instance_config(harvester_id)
        if conf is None:
            return None
        if conf["queue_config"] is not None:
            return conf["queue_config"]
        return {q: {"queueStatus": "online", "prodSourceLabel": "managed", "siteName": q} for q in conf["queues"]}
