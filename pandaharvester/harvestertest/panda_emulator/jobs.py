"""Tasks, jobs and event ranges: what PanDA dispatches and how job reports change state.

Job life cycle (as on the real server): ``defined`` → ``activated`` (dispatchable) →
``sent`` (by ``pilot/acquire_jobs``) → ``starting``/``running``/``transferring`` (reports) →
a reported ``finished``/``failed`` moves the job to ``holding``; the emulated server daemon
moves it to the reported final state (``finished``/``failed``; ``cancelled`` when it had been
killed) after ``holding_delay`` seconds. A killed job not yet dispatched is ``cancelled`` at once.

Like the real server's watchdog, a job left in ``sent`` (dispatched, never reported) for
``sent_timeout`` seconds is reassigned: back to ``activated`` with the next attempt number, so
that a dispatch whose reply the client lost is made again (a killed one is ``cancelled``).
"""

from __future__ import annotations

import json
import random
import uuid
from typing import Any

from .store import FIRST_PANDA_ID, FIRST_TASK_ID, Store, now

FINAL_STATES = ("finished", "failed", "cancelled", "closed")
DONE_STATES = ("holding",) + FINAL_STATES
REPORTABLE = ("starting", "running", "transferring", "holding", "finished", "failed")
ACTIVE_STATES = ("defined", "activated", "sent", "starting", "running", "transferring", "holding")
FINAL_REPORTS = ("finished", "failed")  # the report states kept in the final-report history
EVENT_FINAL = ("finished", "failed", "cancelled", "discarded", "fatal")
EVENT_REPORTABLE = ("running", "finished", "failed", "cancelled", "discarded", "fatal")
# seconds a job may stay in "sent" before the watchdog reassigns it: long enough that a normal
# run (a client reports a job within seconds of taking it) never sees it
DEFAULT_SENT_TIMEOUT = 1800.0


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def make_job_spec(panda_id: int, task_id: int, jobset_id: int, site: str, opts: dict, seed: int) -> dict:
    """The job dictionary as PanDA hands it to a pilot (getJob / acquire_jobs reply)."""
    rng = random.Random(seed * 1_000_003 + panda_id)
    cores = int(opts.get("cores", 1))
    label = opts.get("prod_source_label", "managed")
    resource_type = opts.get("resource_type") or ("SCORE" if cores == 1 else "MCORE")
    n_files = int(opts.get("n_files", 1))
    n_events = int(opts.get("events", 0) or 0)
    scope = "mc23_13p6TeV" if label != "user" else "user.emulator"
    in_ds = f"{scope}.{task_id}.EVNT.e8514_tid{task_id}_00"
    out_ds = f"{scope}.{task_id}.HITS.s4162_tid{task_id}_00"
    in_lfns = [f"EVNT.{task_id}._{(panda_id % 100000) * 10 + i:06d}.pool.root.1" for i in range(n_files)]
    guids = [_uuid(rng) for _ in in_lfns]
    sizes = [str(rng.randint(10_000_000, 2_000_000_000)) for _ in in_lfns]
    checksums = [f"ad:{rng.getrandbits(32):08x}" for _ in in_lfns]
    out_lfn = f"HITS.{task_id}._{panda_id % 1000000:06d}.pool.root.1"
    log_lfn = f"log.{task_id}._{panda_id % 1000000:06d}.job.log.tgz.1"
    walltime = int(opts.get("walltime", 3600))
    ram = int(opts.get("ram", 2000 * cores))
    es = n_events > 0
    spec = {
        "StatusCode": 0,
        "PandaID": panda_id,
        # the real server sends these three as strings (and reqID), see panda-server-behaviour.md
        "jobsetID": str(jobset_id),
        "taskID": str(task_id),
        "reqID": str(task_id),
        "jediTaskID": task_id,
        "jobDefinitionID": jobset_id,
        "jobName": f"{out_ds}.{panda_id}",
        "attemptNr": int(opts.get("attempt_nr", 1)),
        "prodSourceLabel": label,
        "job_label": "user" if label == "user" else "managed",
        "processingType": opts.get("processing_type", "simul"),
        "transformation": opts.get("transformation", "Sim_tf.py"),
        "homepackage": "Athena/23.0.54",
        "swRelease": "Atlas-23.0.54",
        "cmtConfig": "x86_64-el9-gcc13-opt",
        "container_name": "",
        "jobPars": opts.get(
            "job_pars",
            f"--inputEVNTFile={','.join(in_lfns)} --outputHITSFile={out_lfn} --maxEvents={max(n_events, 100)} "
            f"--randomSeed={panda_id % 100000} --multithreaded=True",
        ),
        "coreCount": cores,
        "resource_type": resource_type,
        "resourceType": resource_type,
        "maxWalltime": str(walltime),
        "maxCpuCount": walltime * cores,
        "minRamCount": ram,
        "maxDiskCount": int(opts.get("disk", 5000)),
        "currentPriority": int(opts.get("priority", 900)),
        "cloud": "WORLD",
        "nucleus": "CERN-PROD",
        "sourceSite": site,
        "destinationSE": site,
        "inFiles": ",".join(in_lfns),
        "GUID": ",".join(guids),
        "fsize": ",".join(sizes),
        "checksum": ",".join(checksums),
        "scopeIn": ",".join([scope] * n_files),
        "dispatchDblock": ",".join([f"panda.{task_id}.{panda_id}.dis"] * n_files),
        "dispatchDBlockToken": ",".join(["NULL"] * n_files),
        "prodDBlocks": ",".join([in_ds] * n_files),
        "prodDBlockToken": ",".join(["NULL"] * n_files),
        "realDatasetsIn": ",".join([in_ds] * n_files),
        "ddmEndPointIn": ",".join([f"{site}_DATADISK"] * n_files),
        "outFiles": f"{out_lfn},{log_lfn}",
        "scopeOut": scope,
        "scopeLog": scope,
        "logFile": log_lfn,
        "logGUID": _uuid(rng),
        "destinationDblock": f"{out_ds}_sub{panda_id},{out_ds}.log_sub{panda_id}",
        "destinationDBlockToken": "ATLASDATADISK,ATLASDATADISK",
        "dispatchDBlockTokenForOut": "NULL,NULL",
        "prodDBlockTokenForOutput": "NULL,NULL",
        "realDatasets": f"{out_ds},{out_ds}.log",
        "ddmEndPointOut": f"{site}_DATADISK,{site}_DATADISK",
        "fileDestinationSE": f"{site},{site}",
        "transferType": "",
        "ioIntensity": None,
        "ioIntensityUnit": None,
        "allowNoOutput": "",
        "zipMap": "",
        "eventService": "True" if es else "False",
        "nEventsPerInputFile": n_events if es else None,
        "prodUserID": "/DC=ch/DC=cern/OU=Organic Units/OU=Users/CN=emulator",
        "debug": "False",
    }
    if opts.get("job_type"):
        spec["jobType"] = opts["job_type"]
    if opts.get("secrets"):  # the real server sends the user's secrets as a JSON string
        secrets = opts["secrets"]
        spec["secrets"] = secrets if isinstance(secrets, str) else json.dumps(secrets)
    return spec


class Jobs:
    """Job and event-range operations on the store."""

    def __init__(self, store: Store, seed: int = 0, holding_delay: float = 1.0,
                 sent_timeout: float = DEFAULT_SENT_TIMEOUT) -> None:
        self.store = store
        self.seed = seed
        self.holding_delay = holding_delay
        self.sent_timeout = sent_timeout

    # ------------------------------------------------------------ creation
    def add_task(self, site: str, n_jobs: int, **opts: Any) -> dict:
        """Create a task with ``n_jobs`` jobs (status ``activated`` unless ``status`` given)."""
        n_jobs = int(n_jobs)
        if n_jobs < 0 or n_jobs > 1_000_000:
            raise ValueError("n_jobs must be between 0 and 1000000")
        status = opts.get("status", "activated")
        if status not in ("activated", "defined"):
            raise ValueError("status must be activated or defined")
        label = opts.get("prod_source_label", "managed")
        n_events = int(opts.get("events", 0) or 0)
        t = now()
        with self.store.write() as con:
            task_id = int(opts["task_id"]) if opts.get("task_id") else Store.next_id(con, "task_id", FIRST_TASK_ID)
            first = Store.next_id(con, "panda_id", FIRST_PANDA_ID, n_jobs)
            jobset_id = Store.next_id(con, "jobset_id", 1000)
            con.execute(
                "INSERT OR REPLACE INTO tasks VALUES(?,?,?,?,?,?)",
                (task_id, site, label, n_jobs, json.dumps(opts), t),
            )
            rows, ranges = [], []
            for panda_id in range(first, first + n_jobs):
                spec = make_job_spec(panda_id, task_id, jobset_id, site, opts, self.seed)
                rows.append(
                    (
                        panda_id,
                        task_id,
                        jobset_id,
                        site,
                        status,
                        label,
                        spec["resource_type"],
                        opts.get("job_type", "managed"),
                        spec["coreCount"],
                        spec["attemptNr"],
                        json.dumps(spec),
                        t,
                        t,
                        t,
                    )
                )
                lfn, guid = spec["inFiles"].split(",")[0], spec["GUID"].split(",")[0]
                for k in range(n_events):
                    er_id = f"{task_id}-{panda_id}-{panda_id % 100000}-{k + 1}-{spec['attemptNr']}"
                    ranges.append(
                        (
                            er_id,
                            panda_id,
                            task_id,
                            jobset_id,
                            k + 1,
                            k + 1,
                            lfn,
                            guid,
                            spec["scopeIn"].split(",")[0],
                            "ready",
                            t,
                        )
                    )
            con.executemany(
                "INSERT INTO jobs(panda_id, task_id, jobset_id, site, status, prod_source_label, resource_type, job_type,"
                " core_count, attempt_nr, spec, creation_time, modification_time, state_change_time)"
                " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                rows,
            )
            con.executemany(
                "INSERT INTO event_ranges(event_range_id, panda_id, task_id, jobset_id, start_event, last_event, lfn, guid,"
                " scope, status, modification_time) VALUES(?,?,?,?,?,?,?,?,?,?,?)",
                ranges,
            )
        return {"task_id": task_id, "panda_ids": list(range(first, first + n_jobs)), "jobset_id": jobset_id}

    def activate(self, task_id: int | None = None) -> int:
        """Move ``defined`` jobs (of a task, or all) to ``activated``."""
        with self.store.write() as con:
            sql = "UPDATE jobs SET status='activated', state_change_time=? WHERE status='defined'"
            args: list = [now()]
            if task_id is not None:
                sql += " AND task_id=?"
                args.append(task_id)
            return con.execute(sql, args).rowcount

    # ----------------------------------------------------------- dispatch
    def acquire(
        self,
        site: str,
        n_jobs: int,
        prod_source_label: str | None,
        node: str | None,
        harvester_id: str | None,
        worker_id: Any,
        resource_type: str | None = None,
        job_type: str | None = None,
    ) -> list[dict]:
        """Dispatch up to ``n_jobs`` activated jobs of ``site``: they become ``sent``."""
        n_jobs = max(0, min(int(n_jobs or 1), 10000))
        sql = "SELECT panda_id, attempt_nr, spec FROM jobs WHERE site=? AND status='activated' AND command='NULL'"
        args: list = [site]
        if prod_source_label and prod_source_label not in ("unified",):
            sql += " AND prod_source_label=?"
            args.append(prod_source_label)
        if resource_type and resource_type not in ("ANY",):
            sql += " AND resource_type=?"
            args.append(resource_type)
        sql += " ORDER BY panda_id LIMIT ?"
        args.append(n_jobs)
        t = now()
        out = []
        with self.store.write() as con:
            rows = con.execute(sql, args).fetchall()
            n_sent = con.execute("SELECT COUNT(*) FROM jobs WHERE site=? AND status='sent'", (site,)).fetchone()[0]
            for row in rows:
                con.execute(
                    "UPDATE jobs SET status='sent', node=?, harvester_id=?, worker_id=?, modification_time=?,"
                    " state_change_time=?, n_changes=n_changes+1, n_sent=n_sent+1 WHERE panda_id=?",
                    (node, harvester_id, _int_or_none(worker_id), t, t, row["panda_id"]),
                )
                con.execute(
                    "INSERT INTO dispatches(panda_id, attempt_nr, harvester_id, worker_id, node, time)"
                    " VALUES(?,?,?,?,?,?)",
                    (row["panda_id"], row["attempt_nr"], harvester_id, _int_or_none(worker_id), node, t),
                )
                spec = json.loads(row["spec"])
                spec["nSent"] = n_sent
                out.append(spec)
        return out

    # ------------------------------------------------------------ reports
    def update_bulk(self, job_list: list[dict], harvester_id: str | None) -> list[dict]:
        """Apply job reports; one ``{"success", "message", "data"}`` per job."""
        results = []
        t = now()
        with self.store.write() as con:
            for report in job_list:
                prior = _prior_status(con, report)
                result = self._update_one(con, report, harvester_id, t)
                _record_final_report(con, report, harvester_id, prior, result, t)
                results.append(result)
        return results

    def _update_one(self, con, report: dict, harvester_id: str | None, t: float) -> dict:
        if not isinstance(report, dict):
            return _job_reply(False, "a job report must be a JSON object")
        panda_id = _int_or_none(report.get("job_id"))
        state = report.get("job_status")
        if panda_id is None:
            return _job_reply(False, "job_id is missing")
        if state not in REPORTABLE:
            return _job_reply(False, f"invalid job_status {state!r} for PandaID={panda_id}")
        row = con.execute("SELECT * FROM jobs WHERE panda_id=?", (panda_id,)).fetchone()
        if row is None:
            return _job_reply(False, f"PandaID={panda_id} not found")
        attempt = _int_or_none(report.get("attempt_nr"))
        if attempt is not None and attempt != row["attempt_nr"]:
            return _job_reply(False, f"PandaID={panda_id} wrong attempt_nr {attempt} (current {row['attempt_nr']})")
        command = row["command"] or "NULL"
        cur = row["status"]
        if cur in DONE_STATES:
            # already final (or on its way): identical or late reports change nothing
            con.execute("UPDATE jobs SET n_reports=n_reports+1 WHERE panda_id=?", (panda_id,))
            return _job_reply(True, "", {"StatusCode": 0, "command": command if cur == "holding" else "NULL"})
        if cur in ("defined", "activated"):
            return _job_reply(False, f"PandaID={panda_id} is {cur}: not dispatched")
        stored = {k: v for k, v in report.items() if k != "job_id"}
        sub = report.get("job_sub_status")
        if state in ("finished", "failed", "holding"):
            target = "failed" if state == "failed" else "finished"
            if command == "tobekilled":
                target = "cancelled"
            con.execute(
                "UPDATE jobs SET status='holding', final_target=?, holding_since=?, sub_status=?, report=?,"
                " modification_time=?, state_change_time=?, n_changes=n_changes+1, n_reports=n_reports+1 WHERE panda_id=?",
                (target, t, sub, json.dumps(stored), t, t, panda_id),
            )
        else:
            changed = state != cur
            con.execute(
                "UPDATE jobs SET status=?, sub_status=?, report=?, node=COALESCE(?, node), modification_time=?,"
                " state_change_time=CASE WHEN ? THEN ? ELSE state_change_time END,"
                " n_changes=n_changes+?, n_reports=n_reports+1 WHERE panda_id=?",
                (state, sub, json.dumps(stored), report.get("node"), t, changed, t, int(changed), panda_id),
            )
        return _job_reply(True, "", {"StatusCode": 0, "command": command})

    def status(self, job_ids: list) -> list[dict]:
        """``job/get_status`` entries in request order: ``{"status", "command"}`` only, as on the
        real server; ``command`` is null when there is none, and an unknown job gets both null."""
        out = []
        for raw in job_ids:
            panda_id = _int_or_none(raw)
            rows = self.store.query("SELECT status, command FROM jobs WHERE panda_id=?", (panda_id,)) \
                if panda_id is not None else []
            if not rows:
                out.append({"status": None, "command": None})
            else:
                command = rows[0]["command"]
                out.append({"status": rows[0]["status"], "command": None if command in (None, "NULL") else command})
        return out

    def kill(self, panda_id: int) -> dict:
        """Mark a job tobekilled; a job not yet dispatched is cancelled at once."""
        t = now()
        with self.store.write() as con:
            row = con.execute("SELECT status FROM jobs WHERE panda_id=?", (panda_id,)).fetchone()
            if row is None:
                raise KeyError(f"PandaID={panda_id} not found")
            if row["status"] in ("defined", "activated"):
                con.execute(
                    "UPDATE jobs SET status='cancelled', command='tobekilled', state_change_time=?, n_changes=n_changes+1 WHERE panda_id=?",
                    (t, panda_id),
                )
                return {"panda_id": panda_id, "status": "cancelled"}
            if row["status"] in FINAL_STATES:
                return {"panda_id": panda_id, "status": row["status"]}
            con.execute("UPDATE jobs SET command='tobekilled', modification_time=? WHERE panda_id=?", (t, panda_id))
            return {"panda_id": panda_id, "status": row["status"], "command": "tobekilled"}

    def finish_holding(self) -> int:
        """The server daemon: holding jobs older than ``holding_delay`` reach their final state."""
        t = now()
        with self.store.write() as con:
            return con.execute(
                "UPDATE jobs SET status=final_target, state_change_time=?, n_changes=n_changes+1"
                " WHERE status='holding' AND holding_since<=?",
                (t, t - self.holding_delay),
            ).rowcount

    def reassign_stale_sent(self) -> int:
        """The watchdog: jobs ``sent`` for ``sent_timeout`` seconds without a report go back to
        ``activated`` with the next attempt (a report of the old attempt is then refused);
        killed ones are cancelled. Returns the number of jobs changed."""
        t = now()
        stale = "status='sent' AND state_change_time<=?"
        limit = t - self.sent_timeout
        with self.store.write() as con:
            ids = [r[0] for r in con.execute(f"SELECT panda_id FROM jobs WHERE {stale}", (limit,)).fetchall()]
            if not ids:
                return 0
            con.execute(
                "UPDATE jobs SET status='cancelled', state_change_time=?, n_changes=n_changes+1"
                f" WHERE {stale} AND command='tobekilled'",
                (t, limit),
            )
            con.execute(
                "UPDATE jobs SET status='activated', attempt_nr=attempt_nr+1,"
                " spec=json_set(spec, '$.attemptNr', attempt_nr+1), harvester_id=NULL, worker_id=NULL, node=NULL,"
                f" modification_time=?, state_change_time=?, n_changes=n_changes+1 WHERE {stale}",
                (t, t, limit),
            )
            # event ranges handed to the lost attempt can be handed out again
            con.executemany("UPDATE event_ranges SET status='ready', modification_time=? WHERE panda_id=? AND "
                            "status='sent'", [(t, panda_id) for panda_id in ids])
        return len(ids)

    # ------------------------------------------------------------- events
    def acquire_event_ranges(self, panda_id: int, n_ranges: int) -> list[dict]:
        """Reserve up to ``n_ranges`` ready ranges of a job (they become ``sent``)."""
        t = now()
        with self.store.write() as con:
            rows = con.execute(
                "SELECT * FROM event_ranges WHERE panda_id=? AND status='ready' ORDER BY start_event LIMIT ?",
                (panda_id, max(0, int(n_ranges))),
            ).fetchall()
            con.executemany(
                "UPDATE event_ranges SET status='sent', n_changes=n_changes+1, modification_time=? WHERE event_range_id=?",
                [(t, r["event_range_id"]) for r in rows],
            )
        return [
            {
                "eventRangeID": r["event_range_id"],
                "startEvent": r["start_event"],
                "lastEvent": r["last_event"],
                "LFN": r["lfn"],
                "GUID": r["guid"],
                "scope": r["scope"],
            }
            for r in rows
        ]

    def update_event_ranges(self, items: list) -> list[bool | None]:
        """Apply event-range reports; one entry per event (True applied/already there, False rejected)."""
        flat: list[dict] = []
        for item in items:
            if isinstance(item, dict) and isinstance(item.get("eventRanges"), list):
                flat.extend(item["eventRanges"])
            else:
                flat.append(item)
        t = now()
        out: list[bool | None] = []
        with self.store.write() as con:
            for ev in flat:
                if not isinstance(ev, dict):
                    out.append(False)
                    continue
                er_id, status = ev.get("eventRangeID"), ev.get("eventStatus")
                row = con.execute("SELECT status FROM event_ranges WHERE event_range_id=?", (er_id,)).fetchone()
                if row is None or status not in EVENT_REPORTABLE:
                    out.append(False)
                elif row["status"] in EVENT_FINAL:
                    out.append(row["status"] == status)
                elif row["status"] == status:
                    out.append(True)
                else:
                    con.execute(
                        "UPDATE event_ranges SET status=?, n_changes=n_changes+1, modification_time=? WHERE event_range_id=?",
                        (status, t, er_id),
                    )
                    out.append(True)
        return out

    def available_event_ranges(self, panda_id: int | None, jobset_id: int | None, task_id: int | None) -> int:
        """Number of ready ranges for a job (or a jobset of a task)."""
        if panda_id is not None:
            n = self.store.scalar("SELECT COUNT(*) FROM event_ranges WHERE panda_id=? AND status='ready'", (panda_id,))
        else:
            n = self.store.scalar(
                "SELECT COUNT(*) FROM event_ranges WHERE jobset_id=? AND task_id=? AND status='ready'",
                (jobset_id, task_id),
            )
        return int(n or 0)


def _prior_status(con, report: Any) -> str | None:
    """The job's status before a final report is applied (None: not a final report, or unknown job)."""
    if not isinstance(report, dict) or report.get("job_status") not in FINAL_REPORTS:
        return None
    panda_id = _int_or_none(report.get("job_id"))
    row = con.execute("SELECT status FROM jobs WHERE panda_id=?", (panda_id,)).fetchone() if panda_id else None
    return None if row is None else row["status"]


def _record_final_report(con, report: Any, harvester_id: str | None, prior: str | None, result: dict,
                         t: float) -> None:
    """Keep every final-state report (``finished``/``failed``) in ``final_reports``: the history a
    test reads to find conflicting or repeated final reports. ``applied`` is 1 when the report moved
    the job to ``holding``, 0 when it was a repeat of an already final job or was refused."""
    if not isinstance(report, dict) or report.get("job_status") not in FINAL_REPORTS:
        return
    applied = bool(result.get("success")) and prior not in DONE_STATES
    con.execute(
        "INSERT INTO final_reports(panda_id, attempt_nr, job_status, harvester_id, prior_status, applied, message, time)"
        " VALUES(?,?,?,?,?,?,?,?)",
        (_int_or_none(report.get("job_id")), _int_or_none(report.get("attempt_nr")), report.get("job_status"),
         harvester_id, prior, int(applied), result.get("message") or "", t),
    )


def _job_reply(success: bool, message: str, data: Any = None) -> dict:
    return {"success": success, "message": message, "data": data}


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
