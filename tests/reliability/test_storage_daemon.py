"""The running daemon (SQLite, dummy plugins, the PanDA emulator) when the storage under its DB file
fails mid-flow: the disk fills up, the DB files become read-only, the DB file is deleted.

For each: the agents' writes stop with one clear line naming the file and the condition (not a
traceback, not a line per call), no agent thread dies, and when the condition clears the daemon
carries on by itself; at the end, counted from the emulator, every job finished exactly once with
one worker, the DB passes ``PRAGMA integrity_check`` and the daemon stops cleanly. Printed: the
time from the condition clearing to the first write that went through again.
"""

from __future__ import annotations

import re
import sqlite3
import time
from pathlib import Path

from figures import full, record

from e2e_helpers import daemon_run  # noqa: F401
from storage_fs import small_fs  # noqa: F401

PUSH = "DEMO_PUSH"
LOCK = 10  # lockInterval of the agents: rows of a refused write are taken again after it
FAST_LOCKS = {section: {"lockInterval": LOCK} for section in
              ("monitor", "propagator", "preparator", "stager", "eventfeeder")}
FAST_LOCKS["submitter"] = {"lockInterval": LOCK, "queueLockInterval": LOCK}


def start(daemon_run, directory: Path, n_jobs: int):  # noqa: F811
    db_file = directory / "harvester.db"
    cfg = {"db": {"database_filename": str(db_file)}, **FAST_LOCKS}
    run = daemon_run(only_queues=[PUSH], cfg=cfg,
                     queue_changes={PUSH: {"nQueueLimitJob": 4, "nQueueLimitWorker": 4}})
    panda_ids = run.emulator.add_task(PUSH, n_jobs)
    run.start()
    run.wait_until(lambda: any(j["status"] == "finished" for j in run.jobs(PUSH)), 60, "a first finished job")
    return run, db_file, panda_ids


def all_logs(run) -> str:
    return "".join(p.read_text(errors="replace") for p in sorted((run.home / "logs").glob("panda-*.log")))


def wait_for_line(run, pattern: str, timeout: float, after: int = 0) -> float:
    """Seconds until ``pattern`` appears in the db_proxy/pool logs (past offset ``after``)."""
    started = time.monotonic()
    run.wait_until(lambda: re.search(pattern, db_logs(run)[after:]), timeout, f"a log line {pattern!r}", interval=0.1)
    return time.monotonic() - started


def db_logs(run) -> str:
    return run.log("db_proxy") + run.log("db_proxy_pool")


def finish_and_check(run, db_file: Path, panda_ids: list[int]) -> None:
    run.wait_until(lambda: all(j["status"] == "finished" for j in run.jobs(PUSH)), 120 + 2 * LOCK,
                   "every job finished after the storage came back")
    jobs = run.jobs(PUSH)
    assert sorted(j["panda_id"] for j in jobs) == sorted(panda_ids)
    assert all(j["n_sent"] == 1 for j in jobs), [(j["panda_id"], j["n_sent"]) for j in jobs]
    con = sqlite3.connect(f"file:{db_file}?mode=ro", uri=True, timeout=10)
    try:
        links = con.execute("SELECT PandaID, workerID FROM jw_table").fetchall()
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        con.close()
    per_job: dict[int, set] = {}
    for panda_id, worker_id in links:
        per_job.setdefault(panda_id, set()).add(worker_id)
    assert {p: len(w) for p, w in per_job.items()} == {p: 1 for p in panda_ids}, per_job
    logs = all_logs(run)
    assert "died" not in logs, re.findall(r".*died.*", logs)[:3]
    assert run.stop() == 0, run.log_tail()


class CommitWatch:
    """``PRAGMA data_version`` on a connection of the test's own: it changes when another connection commits."""

    def __init__(self, db_file: Path) -> None:
        self.con = sqlite3.connect(f"file:{db_file}?mode=ro", uri=True, timeout=10)

    def version(self) -> int:
        return self.con.execute("PRAGMA data_version").fetchone()[0]

    def close(self) -> None:
        self.con.close()


def storage_lines(run, condition: str) -> int:
    return len(re.findall(rf"DB file \S+: {re.escape(condition)} \(", all_logs(run)))


def test_disk_full_mid_flow_stops_writes_then_recovers(small_fs, daemon_run):  # noqa: F811
    fs = small_fs("tmpfs", size_mb=16)
    n_jobs = 40 if full() else 12
    run, db_file, panda_ids = start(daemon_run, fs.mountpoint, n_jobs)
    offset = len(db_logs(run))
    # an empty WAL first: SQLite reuses a WAL's space once it is checkpointed, so with a WAL left at its
    # peak size a full disk would stop nothing; emptied, the next commit must grow it
    con = sqlite3.connect(db_file, timeout=30)
    try:
        assert con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
    finally:
        con.close()
    fs.fill()
    wait_for_line(run, r"disk full \(", 30, offset)
    watch = CommitWatch(db_file)
    before = watch.version()
    hold = 8
    time.sleep(hold)  # the agents keep cycling against the full disk
    assert watch.version() == before, "a write was committed while the storage refused writes"
    watch.close()
    run.assert_alive()
    lines = storage_lines(run, "disk full")
    # one line where the condition starts (db_proxy) plus one per agent thread that hit it, not one per
    # call or cycle (the agents cycle every second)
    assert 1 <= len(re.findall(r"disk full \(", db_logs(run)[offset:])) <= 2, db_logs(run)[offset:]
    assert 1 <= lines <= 20, re.findall(r".*disk full \(.*", all_logs(run))[:20]
    assert "Traceback" not in db_logs(run)[offset:]
    mark = len(db_logs(run))
    fs.free()
    took = wait_for_line(run, r"writable again after", 30, mark)
    finish_and_check(run, db_file, panda_ids)
    record(f"reliability: storage condition=disk_full jobs={n_jobs} held_s={hold} error_lines={lines} "
           f"recover_s={took:.2f} final_once={n_jobs} lost=0 duplicated=0 integrity=ok")


def test_read_only_db_files_mid_flow_stop_writes_then_recover(small_fs, daemon_run):  # noqa: F811
    fs = small_fs("ext4", size_mb=32)
    n_jobs = 40 if full() else 12
    run, db_file, panda_ids = start(daemon_run, fs.mountpoint, n_jobs)
    offset = len(db_logs(run))
    fs.make_immutable(db_file, Path(f"{db_file}-wal"))
    wait_for_line(run, r"read-only \(", 30, offset)
    watch = CommitWatch(db_file)
    before = watch.version()
    hold = 8
    time.sleep(hold)
    assert watch.version() == before, "a write was committed while the storage refused writes"
    watch.close()
    run.assert_alive()
    lines = storage_lines(run, "read-only")
    assert 1 <= len(re.findall(r"read-only \(", db_logs(run)[offset:])) <= 2, db_logs(run)[offset:]
    assert 1 <= lines <= 20, re.findall(r".*read-only \(.*", all_logs(run))[:20]
    mark = len(db_logs(run))
    fs.make_mutable()
    took = wait_for_line(run, r"writable again after", 30, mark)
    finish_and_check(run, db_file, panda_ids)
    record(f"reliability: storage condition=read_only jobs={n_jobs} held_s={hold} error_lines={lines} "
           f"recover_s={took:.2f} final_once={n_jobs} lost=0 duplicated=0 integrity=ok")


def test_db_file_deleted_mid_flow_is_restored_in_place(small_fs, daemon_run):  # noqa: F811
    fs = small_fs("tmpfs", size_mb=16)
    n_jobs = 40 if full() else 12
    run, db_file, panda_ids = start(daemon_run, fs.mountpoint, n_jobs)
    offset = len(db_logs(run))
    db_file.unlink()
    deleted = time.monotonic()
    wait_for_line(run, r"restored in place", 30, offset)
    took = time.monotonic() - deleted
    assert db_file.exists()
    assert "database file deleted (" in db_logs(run)[offset:]
    finish_and_check(run, db_file, panda_ids)
    record(f"reliability: storage condition=deleted jobs={n_jobs} restore_s={took:.2f} final_once={n_jobs} "
           f"lost=0 duplicated=0 integrity=ok")


def test_read_only_db_directory_at_start_is_refused_then_starts(small_fs, daemon_run):  # noqa: F811
    """A filesystem already read-only at start (it cannot become so under a running daemon: the
    kernel refuses the remount while a file is open for writing, see test_storage_db)."""
    fs = small_fs("tmpfs", size_mb=16)
    run, db_file, panda_ids = start(daemon_run, fs.mountpoint, 4)
    assert run.stop() == 0
    assert fs.remount("ro").returncode == 0
    try:
        run.start()
        code = run.daemon.wait(60)
    finally:
        fs.remount("rw")
    out = run.log_tail("daemon", 20000) + all_logs(run)
    assert code != 0
    assert f"the DB file {db_file}: read-only: the filesystem of {db_file.parent} is mounted read-only" in out, \
        out[-3000:]
    assert "remount,rw" in out
    run.start()
    heartbeats = run.emulator.state()["heartbeats"][run.harvester_id]["n_heartbeats"]
    run.wait_until(lambda: run.emulator.state()["heartbeats"][run.harvester_id]["n_heartbeats"] > heartbeats, 60,
                   "a heartbeat of the daemon started on the writable filesystem")
    time.sleep(2)  # its signal handlers are set (a SIGTERM before that would be the default action)
    finish_and_check(run, db_file, panda_ids)
