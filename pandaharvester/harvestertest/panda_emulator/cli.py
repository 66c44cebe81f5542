"""``pandaharvester-emulator`` / ``python -m pandaharvester.harvestertest.panda_emulator``.

``serve`` runs the server; the other sub-commands talk to a running server through the
``/emulator/...`` admin endpoints (``--url``), or work directly on a state file
(``--state-file``, for a stopped server).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from .faults import KINDS
from .instances import DEFAULT_JOB_TYPE
from .instances import DEFAULT_INSTANCE_TIMEOUT
from .jobs import DEFAULT_SENT_TIMEOUT


def _serve_parser(sub) -> None:
    p = sub.add_parser("serve", help="run the emulator")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=25443, help="0 picks a free port (see --ready-file)")
    p.add_argument("--state-file", default="panda_emulator.sqlite", help="SQLite file holding all state")
    scheme = p.add_mutually_exclusive_group()
    scheme.add_argument(
        "--https", dest="tls", action="store_true", default=True, help="HTTPS with a self-made CA (default)"
    )
    scheme.add_argument("--http", dest="tls", action="store_false", help="plain HTTP (local demos)")
    p.add_argument(
        "--cert-dir", default=None, help="where the CA/server/client certificates live (default: <state dir>/pki)"
    )
    p.add_argument("--token", action="append", default=[], help="accepted bearer token (repeatable)")
    p.add_argument("--token-file", action="append", default=[], help="file with one accepted token per line")
    auth = p.add_mutually_exclusive_group()
    auth.add_argument("--require-auth", dest="require_auth", action="store_true", default=None)
    auth.add_argument("--no-require-auth", dest="require_auth", action="store_false")
    p.add_argument(
        "--no-production",
        action="append",
        default=[],
        metavar="PATTERN",
        help="identities (cert DN / token identity) containing PATTERN lack the production role",
    )
    p.add_argument(
        "--production-only",
        action="append",
        default=[],
        metavar="PATTERN",
        help="only identities containing PATTERN have the production role",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--holding-delay", type=float, default=1.0, help="seconds a reported job stays in holding")
    p.add_argument("--sent-timeout", type=float, default=DEFAULT_SENT_TIMEOUT,
                   help="seconds a dispatched job may stay in sent without a report before the watchdog "
                        "reassigns it (default %(default)s)")
    p.add_argument("--instance-timeout", type=float, default=DEFAULT_INSTANCE_TIMEOUT,
                   help="seconds after its last heartbeat an instance still gets a share of a queue depth set "
                        "without --harvester-id (default %(default)s)")
    p.add_argument("--faults", default=None, help='JSON, e.g. {"rate":0.3,"kinds":["http500"],"seed":1}')
    p.add_argument("--fault-rate", type=float, default=None)
    p.add_argument("--fault-kinds", default=None, help=f"comma list of: {', '.join(KINDS)}")
    p.add_argument("--fault-endpoints", default=None, help="comma list of module/function (default all)")
    p.add_argument("--fault-seed", type=int, default=None)
    p.add_argument("--fault-delay", type=float, default=None, help="seconds for the delay kind")
    p.add_argument("--fault-timeout-delay", type=float, default=None, help="seconds before a timeout drop")
    p.add_argument("--ready-file", default=None, help="write {port, url, ...} here once listening")
    p.add_argument("--log-level", default="INFO")


def _client_args(p) -> None:
    p.add_argument("--url", default=None, help="root URL of a running emulator, e.g. https://127.0.0.1:25443")
    p.add_argument("--state-file", default=None, help="work on this state file directly (server stopped)")
    p.add_argument("--ca-cert", default=None)
    p.add_argument("--cert", default=None)
    p.add_argument("--key", default=None)
    p.add_argument("--token", default=None)
    p.add_argument("--json", action="store_true", help="print raw JSON")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser."""
    parser = argparse.ArgumentParser(prog="pandaharvester-emulator", description="PanDA server emulator")
    sub = parser.add_subparsers(dest="cmd", required=True)
    _serve_parser(sub)
    p = sub.add_parser("add-task", help="add a task with N activated jobs")
    _client_args(p)
    p.add_argument("--site", required=True)
    p.add_argument("--n-jobs", type=int, required=True)
    p.add_argument("--cores", type=int, default=1)
    p.add_argument("--walltime", type=int, default=3600)
    p.add_argument("--ram", type=int, default=None)
    p.add_argument("--events", type=int, default=0, help="event ranges per job (event service)")
    p.add_argument("--prod-source-label", default="managed")
    p.add_argument("--resource-type", default=None)
    p.add_argument("--status", default="activated", choices=["activated", "defined"])
    p = sub.add_parser("add-command", help="queue a command for an instance")
    _client_args(p)
    p.add_argument("--harvester-id", required=True)
    p.add_argument("--command", required=True)
    p.add_argument("--params", default=None, help="JSON")
    p.add_argument("--no-ack", action="store_true")
    p = sub.add_parser("set-queue-depth", help="set the jobs/workers wanted at a site")
    _client_args(p)
    p.add_argument("--site", required=True)
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--resource-type", default="ANY")
    p.add_argument("--job-type", default=DEFAULT_JOB_TYPE,
                   help=f"job type of the SET_N_WORKERS_JOBTYPE command (default {DEFAULT_JOB_TYPE}, as the real "
                        "server; ANY possible)")
    p.add_argument("--harvester-id", default=None)
    p.add_argument("--no-command", action="store_true")
    p = sub.add_parser("kill-job", help="mark a job tobekilled")
    _client_args(p)
    p.add_argument("panda_id", type=int)
    p = sub.add_parser("set-faults", help="change fault injection of a running server")
    _client_args(p)
    p.add_argument("--rate", type=float, default=0.0)
    p.add_argument("--kinds", default="")
    p.add_argument("--endpoints", default="")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--delay", type=float, default=1.0)
    p = sub.add_parser("set-instance-config",
                       help="set what HARVESTER_INSTANCE_CONFIG_URL and the queue config URL serve to an instance")
    _client_args(p)
    p.add_argument("--harvester-id", required=True)
    p.add_argument("--queue", action="append", default=None, help="a PanDA queue of the instance (repeatable)")
    p.add_argument("--cfg-file", default=None, help="panda_harvester.cfg text to serve as is")
    p.add_argument("--queue-config-file", default=None, help="queue config JSON file to serve as is")
    p = sub.add_parser("summary", help="jobs and workers tables")
    _client_args(p)
    return parser


def _json_arg(option: str, text: str | None) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise SystemExit(f"error: {option} is not valid JSON ({exc}): {text[:100]!r}") from None


def _read_arg_file(option: str, path: str | None) -> str | None:
    if not path:
        return None
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise SystemExit(f"error: {option} {path}: {exc.strerror}") from None


def _faults_from(args) -> dict | None:
    faults: dict[str, Any] = json.loads(args.faults) if args.faults else {}
    for attr, key in (
        ("fault_rate", "rate"),
        ("fault_kinds", "kinds"),
        ("fault_endpoints", "endpoints"),
        ("fault_seed", "seed"),
        ("fault_delay", "delay"),
        ("fault_timeout_delay", "timeout_delay"),
    ):
        value = getattr(args, attr)
        if value is not None:
            faults[key] = value
    return faults or None


def _run_serve(args) -> int:
    from .server import AuthConfig, serve
    from .tls import TLSUnavailable

    logging.basicConfig(
        level=getattr(logging, args.log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    tokens = list(args.token)
    for path in args.token_file:
        tokens += [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]
    require = args.require_auth if args.require_auth is not None else bool(args.tls or tokens)
    auth = AuthConfig(
        require_auth=require, tokens=tokens, no_production=args.no_production, production_only=args.production_only
    )
    try:
        return serve(
            host=args.host,
            port=args.port,
            state_file=Path(args.state_file),
            tls=args.tls,
            cert_dir=Path(args.cert_dir) if args.cert_dir else None,
            auth=auth,
            seed=args.seed,
            faults=_faults_from(args),
            holding_delay=args.holding_delay,
            sent_timeout=args.sent_timeout,
            instance_timeout=args.instance_timeout,
            ready_file=Path(args.ready_file) if args.ready_file else None,
        )
    except TLSUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


class _Remote:
    def __init__(self, args) -> None:
        import requests

        self.requests = requests
        self.url = args.url.rstrip("/")
        self.kw: dict[str, Any] = {"headers": {"Accept": "application/json"}, "timeout": 60}
        if args.ca_cert:
            self.kw["verify"] = args.ca_cert
        if args.cert:
            self.kw["cert"] = (args.cert, args.key) if args.key else args.cert
        if args.token:
            self.kw["headers"]["Authorization"] = f"Bearer {args.token}"

    def call(self, method: str, path: str, payload: dict | None = None) -> Any:
        r = self.requests.request(method, f"{self.url}/emulator/{path}", json=payload, **self.kw)
        body = r.json()
        if r.status_code != 200 or not body.get("success"):
            raise SystemExit(f"error: HTTP {r.status_code}: {body.get('message')}")
        return body["data"]


class _Local:
    def __init__(self, args) -> None:
        from types import SimpleNamespace

        from .faults import FaultConfig
        from .instances import Instances
        from .jobs import Jobs
        from .store import Store

        store = Store(Path(args.state_file))
        self.srv = SimpleNamespace(
            store=store, jobs=Jobs(store), instances=Instances(store), faults=FaultConfig(), seed=0, started=0.0
        )
        self.srv.cache_dir = Path(args.state_file).parent / "cache"

    def call(self, method: str, path: str, payload: dict | None = None) -> Any:
        from . import admin

        status, reply = admin.handle(self.srv, method, path, dict(payload or {}))
        if status != 200 or not reply.get("success"):
            raise SystemExit(f"error: {reply.get('message')}")
        return reply["data"]


def _print_summary(state: dict) -> None:
    print("JOBS")
    statuses = sorted({s for per in state["jobs"].values() for s in per})
    print(f"{'site':<24}" + "".join(f"{s:>13}" for s in statuses))
    for site, per in sorted(state["jobs"].items()):
        print(f"{site:<24}" + "".join(f"{per.get(s, 0):>13}" for s in statuses))
    print("\nWORKERS")
    wstatuses = sorted({s for per in state["workers"].values() for s in per})
    print(f"{'harvester_id':<24}" + "".join(f"{s:>13}" for s in wstatuses))
    for hid, per in sorted(state["workers"].items()):
        print(f"{hid:<24}" + "".join(f"{per.get(s, 0):>13}" for s in wstatuses))
    print("\nINSTANCES")
    for hid, hb in sorted(state["heartbeats"].items()):
        print(f"{hid:<24} last_heartbeat={hb['last_heartbeat']} n={hb['n_heartbeats']}")
    print(f"\ncommands={json.dumps(state['commands'])} queue_depth={json.dumps(state['queue_depth'])}")


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = build_parser().parse_args(argv)
    if args.cmd == "serve":
        return _run_serve(args)
    if bool(args.url) == bool(args.state_file):
        raise SystemExit("give exactly one of --url (running server) or --state-file (stopped server)")
    client = _Remote(args) if args.url else _Local(args)
    if args.cmd == "add-task":
        payload = {
            "site": args.site,
            "n_jobs": args.n_jobs,
            "cores": args.cores,
            "walltime": args.walltime,
            "events": args.events,
            "prod_source_label": args.prod_source_label,
            "status": args.status,
        }
        if args.ram:
            payload["ram"] = args.ram
        if args.resource_type:
            payload["resource_type"] = args.resource_type
        result = client.call("POST", "add_task", payload)
    elif args.cmd == "add-command":
        result = client.call(
            "POST",
            "add_command",
            {
                "harvester_id": args.harvester_id,
                "command": args.command,
                "params": _json_arg("--params", args.params),
                "ack_requested": not args.no_ack,
            },
        )
    elif args.cmd == "set-queue-depth":
        result = client.call(
            "POST",
            "set_queue_depth",
            {
                "site": args.site,
                "n": args.n,
                "resource_type": args.resource_type,
                "job_type": args.job_type,
                "harvester_id": args.harvester_id,
                "command": not args.no_command,
            },
        )
    elif args.cmd == "kill-job":
        result = client.call("POST", "kill_job", {"panda_id": args.panda_id})
    elif args.cmd == "set-faults":
        result = client.call(
            "POST",
            "faults",
            {
                "rate": args.rate,
                "kinds": args.kinds,
                "endpoints": args.endpoints,
                "seed": args.seed,
                "delay": args.delay,
            },
        )
    elif args.cmd == "set-instance-config":
        result = client.call(
            "POST",
            "instance_config",
            {
                "harvester_id": args.harvester_id,
                "queues": args.queue,
                "cfg": _read_arg_file("--cfg-file", args.cfg_file),
                "queue_config": _json_arg("--queue-config-file",
                                          _read_arg_file("--queue-config-file", args.queue_config_file)),
            },
        )
    else:
        result = client.call("GET", "state")
        if not args.json:
            _print_summary(result)
            return 0
    print(json.dumps(result, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
