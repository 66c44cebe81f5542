"""harvester-admin: administration commands for a Harvester instance (minimal skeleton).

Implemented: ``test``, ``get <harvesterID|version|commit_info|harvester_config>``,
``cacher refresh``, ``fifo benchmark [-n N] [-t THREADS]`` (put/get timings of the ``[fifo]``
backend on the benchmark FIFO), ``fifo repopulate <agent_name ...|ALL>`` (refill an agent's
FIFO, e.g. ``monitor``, from the DB), ``plugin check MODULE.CLASS --role ROLE`` (the plugin
conformance kit, :mod:`pandaharvester.harvestertest.plugin_check`; exit status 0 only when every
step passed), ``db migrate --from-sqlite FILE`` (copy an old SQLite DB into the cfg's
database, :mod:`pandaharvester.harvestercore.db.migrate`) and ``db instances`` (the instances
whose tables are in the cfg's database: prefix, harvester_id, host, last start). The original's ``qconf``, ``kill`` and
``query`` sub-commands are still to be written.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def _get(attribute: str) -> str:
    from pandaharvester import commit_timestamp, panda_pkg_info

    if attribute == "version":
        return panda_pkg_info.release_version
    if attribute == "commit_info":
        return commit_timestamp.timestamp
    from pandaharvester.harvesterconfig import harvester_config

    if attribute == "harvesterID":
        return str(harvester_config.master.harvester_id)
    return json.dumps(harvester_config.config_dict, indent=2, sort_keys=True, default=str)


def _cacher_refresh() -> int:
    from pandaharvester.harvesterbody.cacher import Cacher
    from pandaharvester.harvestercore.communicator_pool import CommunicatorPool

    Cacher(CommunicatorPool(), single_mode=True).execute(force_update=True, skip_lock=True)
    print("cacher refreshed")
    return 0


def _fifo_benchmark(n_object: int, n_thread: int) -> int:
    """The original's FIFO benchmark: put, get, put, protective get, put, clear; ms per object."""
    import random
    import time
    from concurrent.futures import ThreadPoolExecutor

    from pandaharvester.harvestercore.fifos import BenchmarkFIFO
    from pandaharvester.harvestercore.work_spec import WorkSpec

    fifo = BenchmarkFIFO()
    times = {"put": 0.0, "get": 0.0, "get protective": 0.0, "clear": 0.0}

    def put(i: int) -> None:
        work_spec = WorkSpec()
        work_spec.workerID = i
        work_spec.workAttributes = {"random": [(i ** 2) % 2 ** 16, random.random()]}
        fifo.put(work_spec)

    def timed(name: str, func: Any) -> None:
        start = time.perf_counter()
        with ThreadPoolExecutor(n_thread) as pool:
            list(pool.map(func, range(n_object)))
        times[name] += time.perf_counter() - start
        print(f"{name} {n_object} objects by {n_thread} threads: {time.perf_counter() - start:.3f} s; "
              f"fifo size {fifo.size()}")

    fifo.clear()
    timed("put", put)
    timed("get", lambda _i: fifo.get(timeout=3))
    timed("put", put)
    timed("get protective", lambda _i: fifo.get(timeout=3, protective=True))
    timed("put", put)
    start = time.perf_counter()
    fifo.clear()
    times["clear"] = time.perf_counter() - start
    print(f"FIFO plugin is: {type(fifo.fifo).__name__}")
    print(f"Benchmark with {n_object} objects by {n_thread} threads")
    print(f"Put            : {1000.0 * times['put'] / (3 * n_object):.3f} ms / obj")
    print(f"Get            : {1000.0 * times['get'] / n_object:.3f} ms / obj")
    print(f"Get protective : {1000.0 * times['get protective'] / n_object:.3f} ms / obj")
    print(f"Clear          : {1000.0 * times['clear'] / n_object:.3f} ms / obj")
    return 0


FIFO_CLASSES = {"monitor": "MonitorFIFO"}


def _fifo_repopulate(names: list[str]) -> int:
    """Clear and refill the FIFOs of the agents ``names`` (``ALL``: every agent FIFO) from the DB."""
    from pandaharvester.harvestercore import fifos

    wanted = list(FIFO_CLASSES) if "ALL" in names else names
    unknown = [n for n in wanted if n not in FIFO_CLASSES]
    if unknown:
        print(f"ERROR: no agent FIFO named {', '.join(unknown)}; known: {', '.join(FIFO_CLASSES)} or ALL",
              file=sys.stderr)
        return 2
    for name in wanted:
        fifo = getattr(fifos, FIFO_CLASSES[name])()
        if not fifo.enabled:
            print(f"{name} FIFO is not enabled ([{name}] fifoEnable = False): skipped")
            continue
        n = fifo.populate(clear_fifo=True)
        print(f"Repopulated {fifo.titleName} fifo with {n} workers")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="harvester-admin", description="PanDA Harvester administration")
    parser.add_argument("-v", "--verbose", "--debug", dest="debug", action="store_true", help="print debug messages")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("test", help="sanity test")
    get = sub.add_parser("get", help="show an attribute of this instance")
    get.add_argument("attribute", choices=["harvesterID", "version", "commit_info", "harvester_config"])
    cacher = sub.add_parser("cacher", help="cacher operations")
    cacher.add_argument("action", choices=["refresh"])
    fifo = sub.add_parser("fifo", help="fifo related")
    fifo_sub = fifo.add_subparsers(dest="action", required=True)
    bench = fifo_sub.add_parser("benchmark", help="benchmark fifo backend")
    bench.add_argument("-n", type=int, dest="n_object", default=500, metavar="<N>", help="Benchmark with N objects")
    bench.add_argument("-t", type=int, dest="n_thread", default=1, metavar="<N>", help="Benchmark with N threads")
    repopulate = fifo_sub.add_parser("repopulate", help="Repopulate agent fifo")
    repopulate.add_argument("name_list", nargs="+", metavar="<agent_name>",
                            help='Name of agent fifo, e.g. "monitor" ("ALL" for all)')
    plugin = sub.add_parser("plugin", help="plugin tools")
    plugin_sub = plugin.add_subparsers(dest="action", required=True)
    check = plugin_sub.add_parser("check", help="check a plugin against its role's contract (conformance kit)")
    from pandaharvester.harvestertest.plugin_check import add_arguments

    add_arguments(check)
    db = sub.add_parser("db", help="database tools")
    db_sub = db.add_subparsers(dest="action", required=True)
    migrate = db_sub.add_parser("migrate", help="copy a SQLite DB into the database of [db] (harvester stopped)")
    migrate.add_argument("--from-sqlite", dest="source", required=True, metavar="FILE",
                         help="the old [db] database_filename")
    db_sub.add_parser("instances", help="the instances whose tables are in the database of [db] ([db] tablePrefix)")
    return parser


def _db_instances() -> int:
    """One line per registered instance: prefix (or '(none)'), harvester_id, host, last start."""
    from pandaharvester.harvestercore.db.instance_tables import registered_instances
    from pandaharvester.harvestercore.db_proxy import DBProxy

    proxy = DBProxy()
    try:
        rows = registered_instances(proxy)
    finally:
        proxy.close()
    for row in rows:
        print(f"tablePrefix={row['tablePrefix'] or '(none)'} harvester_id={row['harvesterID']} "
              f"host={row['hostName']} lastStart={row['lastStartTime']}")
    if not rows:
        print("no instance registered yet (the first start of the daemon registers its [db] tablePrefix)")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``harvester-admin``; returns the exit code."""
    options: Any = build_parser().parse_args(argv)
    try:
        if options.command == "test":
            from pandaharvester.harvesterconfig import harvester_config

            harvester_config.master.harvester_id  # loads and checks the cfg
            print("Harvester Admin Tool: test CLI")
            return 0
        if options.command == "get":
            print(_get(options.attribute))
            return 0
        if options.command == "cacher":
            return _cacher_refresh()
        if options.command == "fifo":
            if options.action == "benchmark":
                return _fifo_benchmark(options.n_object, options.n_thread)
            return _fifo_repopulate(options.name_list)
        if options.command == "plugin":
            from pandaharvester.harvestertest.plugin_check import run_cli

            return run_cli(options)
        if options.command == "db" and options.action == "instances":
            return _db_instances()
        if options.command == "db":
            from pandaharvester.harvestercore.db.migrate import migrate_sqlite

            copied = migrate_sqlite(options.source)
            print(f"copied {sum(copied.values())} rows of {len(copied)} tables from {options.source}")
            return 0
    except Exception as exc:
        print(f"ERROR: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
