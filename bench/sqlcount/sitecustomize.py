"""Bench-only: count MariaDB round trips per agent thread and DB method in a daemon (PyMySQL).

Active when ``HARVESTER_SQLCOUNT`` names a directory and this directory is on ``PYTHONPATH``
(``bench/sql_count.py`` sets both). Every process writes ``<dir>/<pid>.json`` every 2 s:
``{"thread|method": [calls, method seconds, round trips, commits, round-trip seconds]}``, where a
round trip is a ``Connection.query`` (statements, ``START TRANSACTION``) or a COMMIT/ROLLBACK;
and under ``"sql|<first 80 characters>"``: [calls, rows (statements the server runs)].
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import json
import os
import sys
import threading
import time

OUT = os.environ.get("HARVESTER_SQLCOUNT")


def _install() -> None:
    state = threading.local()
    stats: dict[str, list[float]] = {}
    lock = threading.Lock()

    def slot() -> list[float]:
        key = f"{threading.current_thread().name}|{getattr(state, 'method', '-')}"
        entry = stats.get(key)
        if entry is None:
            with lock:
                entry = stats.setdefault(key, [0, 0.0, 0, 0, 0.0])
        return entry

    def patch_pymysql() -> None:
        from pymysql import connections

        conn = connections.Connection
        orig_query, orig_commit, orig_rollback = conn.query, conn.commit, conn.rollback

        def query(self, sql, unbuffered=False):
            t = time.perf_counter()
            try:
                return orig_query(self, sql, unbuffered)
            finally:
                e = slot()
                e[2] += 1
                e[4] += time.perf_counter() - t

        def commit(self):
            t = time.perf_counter()
            try:
                return orig_commit(self)
            finally:
                e = slot()
                e[2] += 1
                e[3] += 1
                e[4] += time.perf_counter() - t

        def rollback(self):
            t = time.perf_counter()
            try:
                return orig_rollback(self)
            finally:
                e = slot()
                e[2] += 1
                e[4] += time.perf_counter() - t

        conn.query, conn.commit, conn.rollback = query, commit, rollback

    def patch_proxy(module) -> None:
        cls = module.DBProxy
        for name in dir(cls):
            if name.startswith("_"):
                continue
            func = getattr(cls, name)
            if not callable(func) or isinstance(func, type):
                continue

            def make(func=func, name=name):
                def wrapper(self, *args, **kwargs):
                    outer = getattr(state, "method", None)
                    if outer is not None:
                        return func(self, *args, **kwargs)
                    state.method = name
                    t = time.perf_counter()
                    try:
                        return func(self, *args, **kwargs)
                    finally:
                        e = slot()
                        e[0] += 1
                        e[1] += time.perf_counter() - t
                        state.method = None
                return wrapper

            setattr(cls, name, make())

    def patch_engine(module) -> None:
        cls = module.MySQLEngine
        orig_execute, orig_many = cls.execute, cls.executemany

        def count(sql, n):
            key = "sql|" + " ".join(sql.split())[:80]
            entry = stats.get(key)
            if entry is None:
                with lock:
                    entry = stats.setdefault(key, [0, 0])
            entry[0] += 1
            entry[1] += n

        def execute(self, cur, sql, varmap=None):
            count(sql, 1)
            return orig_execute(self, cur, sql, varmap)

        def executemany(self, cur, sql, rows):
            rows = list(rows)
            count(sql, len(rows))
            return orig_many(self, cur, sql, rows)

        cls.execute, cls.executemany = execute, executemany

    patches = {"pandaharvester.harvestercore.db_proxy": patch_proxy,
               "pymysql.connections": lambda m: patch_pymysql(),
               "pandaharvester.harvestercore.db.engine_mysql": patch_engine}

    class Finder(importlib.abc.MetaPathFinder):
        def find_spec(self, fullname, path, target=None):
            if fullname not in patches:
                return None
            sys.meta_path.remove(self)
            try:
                spec = importlib.util.find_spec(fullname)
            finally:
                sys.meta_path.insert(0, self)
            loader = spec.loader
            orig_exec = loader.exec_module

            def exec_module(module):
                orig_exec(module)
                patches[fullname](module)

            loader.exec_module = exec_module
            return spec

    sys.meta_path.insert(0, Finder())

    def dump() -> None:
        path = os.path.join(OUT, f"{os.getpid()}.json")
        pid = os.getpid()
        while True:
            time.sleep(2)
            if os.getpid() != pid:  # forked child: its own file
                path, pid = os.path.join(OUT, f"{os.getpid()}.json"), os.getpid()
            with lock:
                data = json.dumps(stats)
            with open(path + ".tmp", "w") as handle:
                handle.write(data)
            os.replace(path + ".tmp", path)

    threading.Thread(target=dump, name="sqlcount", daemon=True).start()

    def after_fork() -> None:
        stats.clear()
        threading.Thread(target=dump, name="sqlcount", daemon=True).start()

    os.register_at_fork(after_in_child=after_fork)


if OUT:
    _install()
