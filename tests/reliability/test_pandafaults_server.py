"""Reliability: a faulty PanDA server.

The real daemon (push queue DEMO_PUSH, unified pull queue DEMO_PULL) against the emulator with
every fault kind mixed (seeded) at 30 % on every endpoint for a while, then no faults:

- every job reaches its final state in PanDA once: run by one worker, held once by Harvester
  with PanDA's attempt, dispatched once, except the jobs of an ``acquire_jobs`` reply PanDA
  applied but Harvester could not read (dropped after commit, cut, doubled, of the wrong shape):
  the documented limit (docs/guarantees.md, "The limit only PanDA can close"). Those are counted
  apart and must be exactly the jobs the emulator handed out in such replies, each dispatched
  again by the watchdog and then final once; each such reply has its ``LOST_REPLY`` line;
- every pull worker Harvester made is final in PanDA with Harvester's status;
- heartbeats resume once the faults stop; no agent thread dies (the daemon stays up, exits 0);
- no traceback in any log: a reply of the wrong shape is one ERROR line naming the endpoint.

Quick: 40 jobs, 30 s of faults; ``--full``: 300 jobs, 90 s of faults.
"""

from __future__ import annotations

import re
import time
from collections import Counter

from e2e_helpers import daemon_run  # noqa: F401
from figures import full, record

from pandaharvester.harvestertest.panda_emulator.faults import KINDS

PUSH = "DEMO_PUSH"
PULL = "DEMO_PULL"
PULL_QUEUES = [f"{PULL}/SCORE", f"{PULL}/MCORE"]
RATE = 0.30
SEED = 14
SENT_TIMEOUT = 20.0  # watchdog: far above the seconds a recorded job waits for its first report
ACQUIRE = "pilot/acquire_jobs"
FINAL = ("finished", "failed", "cancelled", "missed")
# faults after which an acquire_jobs may have been applied: Harvester logs LOST_REPLY (503: retried)
MAYBE_APPLIED = set(KINDS) - {"http503", "delay", "duplicate_apply"}


def _fault_settings() -> dict:
    return {"rate": RATE, "kinds": list(KINDS), "endpoints": [], "seed": SEED, "delay": 0.3, "timeout_delay": 1.0}


def _logs(run) -> dict[str, str]:
    return {path.name: path.read_text(errors="replace") for path in sorted((run.home / "logs").glob("*"))
            if path.is_file()}


def _heartbeat(run) -> dict:
    return run.emulator.state()["heartbeats"].get(run.harvester_id) or {}


def test_faulty_panda_server(daemon_run):  # noqa: F811
    n_jobs, fault_seconds = (300, 90.0) if full() else (40, 30.0)
    limits = {"nQueueLimitJob": 40, "nQueueLimitWorker": 40, "maxWorkers": 80} if full() else {}
    run = daemon_run(worker_seconds=1, emulator_kwargs={"sent_timeout": SENT_TIMEOUT},
                     queue_changes={PUSH: limits} if limits else None,
                     cfg={"pandacon": {"timeout": 30, "maxRetries": 3, "retryBackoff": 0.2},
                          "commandmanager": {"heartbeatInterval": 2},
                          "propagator": {"updateInterval": 5}})
    emu = run.emulator
    run.demo.set_queue_depth(emu, PULL, {"SCORE": 2, "MCORE": 2})
    emu.set_faults(**_fault_settings())
    run.start()
    started = time.monotonic()
    # the jobs come in batches over the faulty period, so that acquire_jobs hands some out at each turn
    panda_ids: list[int] = []
    n_batches = 10
    for batch in range(n_batches):
        panda_ids += emu.add_task(PUSH, n_jobs // n_batches + (n_jobs % n_batches if batch == 0 else 0))
        if batch % 3 == 2:  # PanDA sets the depth again (a command in a lost reply is gone: LOST_REPLY)
            run.demo.set_queue_depth(emu, PULL, {"SCORE": 2, "MCORE": 2})
        run.wait_until(lambda: time.monotonic() - started > (batch + 1) * fault_seconds * 0.8 / n_batches,
                       fault_seconds, "the next batch")
    run.wait_until(lambda: time.monotonic() - started > fault_seconds, fault_seconds + 10, "the faulty period")
    faulty = emu.state()["faults"]
    n_requests = sum(faulty["calls"].values())
    n_faults = sum(sum(kinds.values()) for kinds in faulty["injected"].values())
    emu.set_faults(rate=0.0)
    off = time.monotonic()

    # heartbeats resume (every 2 s without faults)
    beats = _heartbeat(run).get("n_heartbeats", 0)
    run.wait_until(lambda: _heartbeat(run).get("n_heartbeats", 0) >= beats + 2, 20, "heartbeats after the faults")
    assert _heartbeat(run)["age_seconds"] < 5
    # no more pull workers; then everything settles
    run.demo.set_queue_depth(emu, PULL, {"SCORE": 0, "MCORE": 0})
    run.wait_until(lambda: all(j["status"] in FINAL for j in run.jobs(PUSH)), SENT_TIMEOUT + 150,
                   "every job final in PanDA", interval=1.0)
    settle = time.monotonic() - off

    def workers_agree() -> bool:
        mine = {w["workerID"]: w["status"] for w in run.workers()}
        panda = {w["worker_id"]: w["status"] for w in emu.workers(harvester_id=run.harvester_id)}
        return bool(mine) and all(s in FINAL for s in mine.values()) and panda == mine

    run.wait_until(workers_agree, 90, "every worker final, in Harvester and in PanDA alike", interval=1.0)
    run.assert_alive()
    assert run.stop() == 0, run.log_tail()

    # ---------------------------------------------------------------- jobs
    jobs = {j["panda_id"]: j for j in emu.jobs(site=PUSH)}
    assert sorted(jobs) == sorted(panda_ids)
    lost_counts = Counter(emu.state()["faults"]["lost_jobs"])
    held = {r["PandaID"]: r for r in run.db_rows("SELECT PandaID, attemptNr, status FROM job_table")}
    workers_of = Counter(r["PandaID"] for r in run.db_rows("SELECT DISTINCT PandaID, workerID FROM jw_table"))
    final_once, duplicated, lost = [], [], []
    for panda_id, job in jobs.items():
        expected_sends = 1 + lost_counts[panda_id]
        if job["status"] != "finished" or panda_id not in held:
            lost.append(panda_id)
        elif (job["n_sent"] != expected_sends or job["attempt_nr"] != expected_sends or workers_of[panda_id] != 1
              or held[panda_id]["attemptNr"] != job["attempt_nr"]):
            duplicated.append((panda_id, job["n_sent"], job["attempt_nr"], workers_of[panda_id],
                               held[panda_id]["attemptNr"], lost_counts[panda_id]))
        else:
            final_once.append(panda_id)
    assert lost == [] and duplicated == [], (lost, duplicated)
    # the documented limit: exactly the jobs of applied but unreadable acquire_jobs replies went round twice
    resent = {panda_id for panda_id, job in jobs.items() if job["n_sent"] > 1}
    assert resent == set(lost_counts), (resent, lost_counts)
    logs = _logs(run)
    communicator_log = "".join(text for name, text in logs.items() if name.startswith("panda-communicator"))
    lost_lines = re.findall(rf"LOST_REPLY {ACQUIRE} harvester_id=\S+ site={PUSH} ", communicator_log)
    acquire_faults = faulty["injected"].get(ACQUIRE, {})
    assert len(lost_lines) == sum(n for kind, n in acquire_faults.items() if kind in MAYBE_APPLIED), acquire_faults
    assert lost_counts, f"no jobs in an acquire_jobs reply lost after commit ({acquire_faults}): limit not exercised"

    # ---------------------------------------------------------------- pull workers, heartbeats, threads, logs
    pull_workers = [w for w in run.workers() if w["computingSite"] in PULL_QUEUES]
    assert pull_workers, "no pull worker made (the queue-depth command lost?)"
    assert run.db_rows("SELECT COUNT(*) AS n FROM job_table")[0]["n"] == n_jobs
    assert not re.search(r"thread \S+ died|agent thread \S+ died", "".join(logs.values()))
    assert all("Traceback (most recent call last)" not in text for text in logs.values()), \
        {name: text[text.index("Traceback"):][:1500] for name, text in logs.items() if "Traceback" in text}
    assert not re.search(r"\b(AttributeError|TypeError|KeyError)\b", "".join(logs.values()))
    shape_lines = re.findall(r"PanDA (\S+/\S+) replied ", communicator_log)
    assert shape_lines, "no wrong_shape fault reached the communicator"
    totals = dict(re.findall(r"(\w+)=(\d+)", re.findall(r"PanDA calls: (.*)", logs["panda-master.log"])[-1]))
    assert int(totals["shape_errors"]) >= 1 and int(totals["retries"]) >= 1
    heartbeat_retries = len(re.findall(r"POST harvester/heartbeat attempt \d+/\d+ failed", communicator_log))
    record(f"reliability: panda_faults rate={RATE:.2f} requests={n_requests} faults={n_faults} "
           f"retries={totals['retries']} jobs={n_jobs} final_once={len(final_once)} lost={len(lost)} "
           f"duplicated={len(duplicated)} lost_reply_jobs={len(lost_counts)} lost_reply_lines={len(lost_lines)} "
           f"shape_errors={totals['shape_errors']} pull_workers={len(pull_workers)} "
           f"heartbeat_retries={heartbeat_retries} fault_seconds={fault_seconds:.0f} settle_seconds={settle:.0f}")
