"""harvester-admin: administration commands for a Harvester instance (minimal skeleton).

Implemented: ``test``, ``get <harvesterID|version|commit_info|harvester_config>``,
``cacher refresh``, ``plugin check MODULE.CLASS --role ROLE`` (the plugin conformance kit,
:mod:`pandaharvester.harvestertest.plugin_check`; exit status 0 only when every step passed) and
``db migrate --from-sqlite FILE`` (copy an old SQLite DB into the cfg's database,
:mod:`pandaharvester.harvestercore.db.migrate`).
The original's ``fifo``, ``qconf``, ``kill`` and ``query`` sub-commands are still to be written.
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="harvester-admin", description="PanDA Harvester administration")
    parser.add_argument("-v", "--verbose", "--debug", dest="debug", action="store_true", help="print debug messages")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("test", help="sanity test")
    get = sub.add_parser("get", help="show an attribute of this instance")
    get.add_argument("attribute", choices=["harvesterID", "version", "commit_info", "harvester_config"])
    cacher = sub.add_parser("cacher", help="cacher operations")
    cacher.add_argument("action", choices=["refresh"])
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
    return parser


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
        if options.command == "plugin":
            from pandaharvester.harvestertest.plugin_check import run_cli

            return run_cli(options)
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
