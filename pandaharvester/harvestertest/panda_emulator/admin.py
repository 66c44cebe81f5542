"""``/emulator/...`` admin and inspection endpoints (never fault-injected).

Replies are JSON envelopes ``{"success", "message", "data"}`` (HTTP 400 on bad input), except
the instance config (text) and queue config (JSON document) downloads.
"""

from __future__ import annotations

import datetime
import json
import time
from typing import Any

from .instances import DEFAULT_JOB_TYPE
from .jobs import FINAL_STATES


def _ok(data: Any = None) -> tuple[int, dict]:
    return 200, {"success": True, "message": "", "data": data}


def _bad(message: str, status: int = 400) -> tuple[int, dict]:
    return status, {"success": False, "message": message, "data": None}


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def state(srv) -> dict:
    """The ``/emulator/state`` summary."""
    q = srv.store.query
    jobs: dict = {}
    for r in q("SELECT site, status, COUNT(*) AS n FROM jobs GROUP BY site, status"):
        jobs.setdefault(r["site"], {})[r["status"]] = r["n"]
    workers: dict = {}
    for r in q("SELECT harvester_id, status, COUNT(*) AS n FROM workers GROUP BY harvester_id, status"):
        workers.setdefault(r["harvester_id"], {})[r["status"]] = r["n"]
    commands: dict = {}
    for r in q("SELECT harvester_id, status, COUNT(*) AS n FROM commands GROUP BY harvester_id, status"):
        commands.setdefault(r["harvester_id"], {})[r["status"]] = r["n"]
    now = time.time()
    heartbeats = {
        r["harvester_id"]: {
            "first_seen": _iso(r["first_seen"]),
            "last_heartbeat": _iso(r["last_heartbeat"]),
            "age_seconds": None if r["last_heartbeat"] is None else round(now - r["last_heartbeat"], 3),
            "n_heartbeats": r["n_heartbeats"],
            "owner": r["owner"],
            "data": json.loads(r["data"] or "{}"),
        }
        for r in q("SELECT * FROM instances")
    }
    metrics = {
        r["harvester_id"]: r["n"]
        for r in q("SELECT harvester_id, COUNT(*) AS n FROM service_metrics GROUP BY harvester_id")
    }
    dialogs = {
        r["harvester_id"]: r["n"] for r in q("SELECT harvester_id, COUNT(*) AS n FROM dialogs GROUP BY harvester_id")
    }
    events = {r["status"]: r["n"] for r in q("SELECT status, COUNT(*) AS n FROM event_ranges GROUP BY status")}
    counters = srv.faults.counters()
    return {
        "jobs": jobs,
        "n_jobs": srv.store.scalar("SELECT COUNT(*) FROM jobs"),
        "n_tasks": srv.store.scalar("SELECT COUNT(*) FROM tasks"),
        "workers": workers,
        "commands": commands,
        "heartbeats": heartbeats,
        "metrics": metrics,
        "dialogs": dialogs,
        "event_ranges": events,
        "queue_depth": srv.instances.queue_depths(),
        "uploads": srv.store.scalar("SELECT COUNT(*) FROM uploads"),
        "faults": {"settings": srv.faults.describe(), "calls": counters["calls"], "injected": counters["injected"],
                   "lost_jobs": counters["lost_jobs"]},
        "holding_delay": srv.jobs.holding_delay,
        "sent_timeout": srv.jobs.sent_timeout,
        "uptime_seconds": round(now - srv.started, 3),
    }


def _jobs(srv, p: dict) -> list[dict]:
    sql, args = "SELECT * FROM jobs WHERE 1=1", []
    for key in ("site", "status", "task_id", "harvester_id"):
        if p.get(key) is not None:
            sql += f" AND {key}=?"
            args.append(p[key])
    if p.get("panda_ids"):
        ids = [int(i) for i in p["panda_ids"]]
        sql += f" AND panda_id IN ({','.join('?' * len(ids))})"
        args += ids
    sql += " ORDER BY panda_id LIMIT ?"
    args.append(int(p.get("limit", 100000)))
    out = []
    for r in srv.store.query(sql, args):
        r["spec"] = json.loads(r["spec"]) if p.get("with_spec") else None
        r["report"] = json.loads(r["report"]) if r["report"] else None
        out.append(r)
    return out


def _workers(srv, p: dict) -> list[dict]:
    sql, args = "SELECT * FROM workers WHERE 1=1", []
    for key, col in (("harvester_id", "harvester_id"), ("site", "computing_site"), ("status", "status")):
        if p.get(key) is not None:
            sql += f" AND {col}=?"
            args.append(p[key])
    out = []
    for r in srv.store.query(sql + " ORDER BY harvester_id, worker_id", args):
        r["pandaid_list"] = json.loads(r["pandaid_list"] or "[]")
        r["data"] = json.loads(r["data"] or "{}")
        out.append(r)
    return out


def _history(srv, p: dict) -> dict:
    """Every dispatch (``pilot/acquire_jobs`` handing a job out) and every final-state report
    (``finished``/``failed`` in ``pilot/update_jobs_bulk``) in arrival order, optionally of some
    ``panda_ids``: ``{"dispatches": [...], "final_reports": [...]}``."""
    where, args = "", []
    if p.get("panda_ids"):
        ids = [int(i) for i in p["panda_ids"]]
        where, args = f" WHERE panda_id IN ({','.join('?' * len(ids))})", ids
    return {
        "dispatches": srv.store.query(f"SELECT * FROM dispatches{where} ORDER BY id", args),
        "final_reports": srv.store.query(f"SELECT * FROM final_reports{where} ORDER BY id", args),
    }


def handle(srv, method: str, path: str, p: dict) -> tuple[int, Any]:
    """Route an admin request; ``path`` is relative to ``/emulator``."""
    try:
        return _route(srv, method, path, p)
    except KeyError as exc:
        return _bad(str(exc.args[0]) if exc.args else "not found", 404)
    except (ValueError, TypeError) as exc:
        return _bad(str(exc))


def _route(srv, method: str, path: str, p: dict) -> tuple[int, Any]:
    if path == "ping":
        return _ok("pong")
    if path == "state":
        return _ok(state(srv))
    if path.startswith("instance_config/") and path.endswith("/panda_harvester.cfg"):
        harvester_id = path[len("instance_config/") : -len("/panda_harvester.cfg")]
        text = srv.instances.render_cfg(harvester_id)
        if text is None:
            return _bad(f"no instance config for {harvester_id}", 404)
        return 200, text
    if path.startswith("queue_config/") and path.endswith(".json"):
        harvester_id = path[len("queue_config/") : -len(".json")]
        doc = srv.instances.render_queue_config(harvester_id)
        if doc is None:
            return _bad(f"no queue config for {harvester_id}", 404)
        return 200, json.dumps(doc, indent=1)
    if method == "GET" and path == "faults":
        return _ok({"settings": srv.faults.describe(), **srv.faults.counters()})
    if method == "GET" and path == "commands":
        rows = srv.store.query("SELECT * FROM commands ORDER BY command_id")
        for r in rows:
            r["params"] = json.loads(r["params"]) if r["params"] else None
        return _ok(rows)
    if method == "GET" and path == "events":
        sql = (
            "SELECT * FROM event_ranges"
            + (" WHERE panda_id=?" if p.get("panda_id") else "")
            + " ORDER BY event_range_id"
        )
        return _ok(srv.store.query(sql, [int(p["panda_id"])] if p.get("panda_id") else []))
    if method == "GET" and path == "metrics":
        return _ok(
            srv.store.query(
                "SELECT harvester_id, creation_time, hostname, metrics FROM service_metrics ORDER BY received"
            )
        )
    if method == "GET" and path == "dialogs":
        return _ok(srv.store.query("SELECT harvester_id, diag_id, data FROM dialogs ORDER BY received"))
    if method == "GET" and path == "worker_stats":
        return _ok(srv.instances.worker_statistics())
    if path == "history":
        return _ok(_history(srv, p))
    if method != "POST":
        if path in ("jobs", "workers"):
            return _ok(_jobs(srv, p) if path == "jobs" else _workers(srv, p))
        raise KeyError(f"unknown admin endpoint {method} /emulator/{path}")
    if path == "add_task":
        site, n_jobs = p.pop("site", None), p.pop("n_jobs", None)
        if not site or n_jobs is None:
            raise ValueError("site and n_jobs are required")
        return _ok(srv.jobs.add_task(site, int(n_jobs), **p))
    if path == "activate":
        return _ok({"activated": srv.jobs.activate(p.get("task_id"))})
    if path == "kill_job":
        return _ok(srv.jobs.kill(int(p["panda_id"])))
    if path == "add_command":
        if not p.get("harvester_id") or not p.get("command"):
            raise ValueError("harvester_id and command are required")
        params = p.get("params")
        if isinstance(params, str):
            params = json.loads(params) if params else None
        cid = srv.instances.add_command(p["harvester_id"], p["command"], params, bool(p.get("ack_requested", True)))
        return _ok({"command_id": cid})
    if path == "set_queue_depth":
        if not p.get("site") or p.get("n") is None:
            raise ValueError("site and n are required")
        return _ok(
            srv.instances.set_queue_depth(
                p["site"],
                int(p["n"]),
                p.get("resource_type", "ANY"),
                p.get("job_type", DEFAULT_JOB_TYPE),
                p.get("harvester_id"),
                bool(p.get("command", True)),
            )
        )
    if path == "faults":
        return _ok(srv.faults.configure(p, default_seed=srv.seed))
    if path == "instance_config":
        if not p.get("harvester_id"):
            raise ValueError("harvester_id is required")
        return _ok(
            srv.instances.set_instance_config(p["harvester_id"], p.get("queues"), p.get("cfg"), p.get("queue_config"))
        )
    if path == "settings":
        if "holding_delay" in p:
            srv.jobs.holding_delay = float(p["holding_delay"])
        if "sent_timeout" in p:
            srv.jobs.sent_timeout = float(p["sent_timeout"])
        if "instance_timeout" in p:
            srv.instances.instance_timeout = float(p["instance_timeout"])
        return _ok({"holding_delay": srv.jobs.holding_delay, "sent_timeout": srv.jobs.sent_timeout,
                    "instance_timeout": srv.instances.instance_timeout})
    if path == "jobs":
        return _ok(_jobs(srv, p))
    if path == "workers":
        return _ok(_workers(srv, p))
    if path == "set_job_status":
        # test helper: force a job's status (e.g. to simulate the server closing a job)
        status = p["status"]
        with srv.store.write() as con:
            n = con.execute(
                "UPDATE jobs SET status=?, state_change_time=? WHERE panda_id=?",
                (status, time.time(), int(p["panda_id"])),
            ).rowcount
        if not n:
            raise KeyError(f"PandaID={p['panda_id']} not found")
        return _ok({"panda_id": int(p["panda_id"]), "status": status, "final": status in FINAL_STATES})
    raise KeyError(f"unknown admin endpoint {method} /emulator/{path}")
