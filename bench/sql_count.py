"""Bench-only: where a push run's time goes on MariaDB, per agent and DB method.

Runs ``push_bench.run_one`` on MariaDB with ``bench/sqlcount/sitecustomize.py`` loaded into the
daemon's processes, then prints per (agent thread, DB method): calls, round trips and commits per
job, time in the method and in round trips; and the server's counters over the run (statements by
kind, row lock waits, redo-log fsyncs), with lock waits sampled from
``information_schema.innodb_lock_waits`` every 0.2 s (what waits on what).

    .venv/bin/python bench/sql_count.py --jobs 2000 --processes 2
"""

from __future__ import annotations

import argparse
import collections
import glob
import json
import os
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

STATUS = ("Questions", "Com_select", "Com_insert", "Com_update", "Com_delete", "Com_commit", "Com_begin",
          "Com_rollback", "Com_set_option", "Innodb_row_lock_waits", "Innodb_row_lock_time",
          "Innodb_os_log_fsyncs", "Innodb_data_fsyncs", "Innodb_deadlocks")


def server_status(cur) -> dict[str, int]:
    cur.execute("SHOW GLOBAL STATUS")
    return {k: int(v) for k, v in cur.fetchall() if k in STATUS}


class LockWaitSampler(threading.Thread):
    """Samples who waits on whom (the waiting and the blocking statement's first words)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        import pymysql

        self.con = pymysql.connect(host="127.0.0.1", user="root", password="", autocommit=True)
        self.seen: collections.Counter = collections.Counter()
        self.stop = threading.Event()

    def run(self) -> None:
        cur = self.con.cursor()
        sql = ("SELECT r.trx_query, b.trx_query, l.lock_table, l.lock_index, l.lock_mode "
               "FROM information_schema.innodb_lock_waits w "
               "JOIN information_schema.innodb_trx r ON r.trx_id = w.requesting_trx_id "
               "JOIN information_schema.innodb_trx b ON b.trx_id = w.blocking_trx_id "
               "JOIN information_schema.innodb_locks l ON l.lock_id = w.requested_lock_id")
        while not self.stop.wait(0.2):
            try:
                cur.execute(sql)
                for waiting, blocking, table, index, mode in cur.fetchall():
                    self.seen[(str(waiting)[:90], str(blocking)[:90], table, index, mode)] += 1
            except Exception as exc:  # the view may be unavailable
                self.seen[("error", str(exc)[:90], "", "", "")] += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--budget", type=float, default=240)
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    out = tempfile.mkdtemp(prefix="sqlcount_")
    os.environ["HARVESTER_SQLCOUNT"] = out
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (os.path.join(HERE, "sqlcount"),
                                                           os.environ.get("PYTHONPATH")) if p)
    import pymysql

    import push_bench

    con = pymysql.connect(host="127.0.0.1", user="root", password="", autocommit=True)
    before = server_status(con.cursor())
    cpu0 = push_bench.server_cpu()
    sampler = LockWaitSampler()
    sampler.start()
    rows = push_bench.run_one(args.jobs, budget=args.budget, processes=args.processes, engine="mariadb")
    sampler.stop.set()
    after = server_status(con.cursor())
    cpu1 = push_bench.server_cpu()
    time.sleep(2.5)
    for r in rows:
        print(f"{r['metric']:<32} {r['value']:>10.2f} {r['unit']}")
    n = args.jobs
    total: dict[str, list[float]] = collections.defaultdict(lambda: [0, 0.0, 0, 0, 0.0])
    statements: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
    for path in glob.glob(os.path.join(out, "*.json")):
        with open(path) as handle:
            for key, values in json.load(handle).items():
                entry = statements[key[4:]] if key.startswith("sql|") else total[key]
                for i, v in enumerate(values):
                    entry[i] += v
    print(f"\n{'thread|method':<62} {'calls':>7} {'rt/job':>7} {'com/job':>7} {'meth s':>7} {'rt s':>7}")
    items = sorted(total.items(), key=lambda kv: -kv[1][1] if kv[1][0] else -kv[1][4])
    for key, (calls, secs, rts, commits, rt_secs) in items[:args.top]:
        print(f"{key:<62} {int(calls):>7} {rts / n:>7.2f} {commits / n:>7.2f} {secs:>7.2f} {rt_secs:>7.2f}")
    sums = [sum(v[i] for v in total.values()) for i in range(5)]
    print(f"{'TOTAL':<62} {int(sums[0]):>7} {sums[2] / n:>7.2f} {sums[3] / n:>7.2f} {sums[1]:>7.2f} {sums[4]:>7.2f}")
    print(f"\nserver CPU (whole server, other sessions included): {cpu1 - cpu0:.2f} s, "
          f"{(cpu1 - cpu0) / n * 1000:.2f} CPU s per 1k jobs")
    print("\nserver counters over the run (per job):")
    for k in STATUS:
        print(f"  {k:<24} {after.get(k, 0) - before.get(k, 0):>9}  {(after.get(k, 0) - before.get(k, 0)) / n:>8.2f}")
    print("\nstatements by text (calls, statements run per job):")
    for sql, (calls, n_rows) in sorted(statements.items(), key=lambda kv: -kv[1][1])[:args.top]:
        print(f"  {calls:>7} {n_rows / n:>7.2f}  {sql}")
    print("\nlock waits sampled (waiting <- blocking, table, index, mode): samples")
    for (waiting, blocking, table, index, mode), count in sampler.seen.most_common(15):
        print(f"  {count:>5}  {waiting!r} <- {blocking!r} {table} {index} {mode}")


if __name__ == "__main__":
    main()
