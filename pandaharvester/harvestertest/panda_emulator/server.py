"""HTTP(S) front of the emulator: routing, authentication, roles, fault injection.

``/api/v1/<module>/<function>``: the PanDA API (see :mod:`.api`); GET takes the query string
(and a form/JSON body if one is sent), POST a JSON body (form and multipart also accepted).
``/emulator/...``: admin and inspection (see :mod:`.admin`). ``/cache/<name>``: uploaded files.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import json
import logging
import os
import signal
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from . import admin, api
from .faults import FaultConfig, wrong_shape
from .instances import DEFAULT_INSTANCE_TIMEOUT, Instances
from .jobs import DEFAULT_SENT_TIMEOUT, Jobs
from .store import Store
from .tls import ensure_pki, peer_dn, server_context

log = logging.getLogger("panda_emulator")

# paths reachable without credentials even when authentication is required
OPEN_PATHS = ("/emulator/ping", "/emulator/instance_config/", "/emulator/queue_config/")


@dataclass
class AuthConfig:
    """Who may call and who holds the production role.

    ``tokens``: accepted bearer tokens; the identity of a token is ``sub:<sub>`` for a JWT with
    a ``sub`` claim, else ``token#<n>`` (1-based position). ``no_production``: identities
    containing one of these substrings lack the production role. ``production_only``: when
    set, only identities containing one of these substrings have it. JWT tokens carrying a
    ``groups``/``wlcg.groups`` claim have the role only with a group ending in ``production``.
    """

    require_auth: bool = False
    tokens: list[str] = field(default_factory=list)
    no_production: list[str] = field(default_factory=list)
    production_only: list[str] = field(default_factory=list)

    def token_identity(self, token: str) -> tuple[str, bool | None] | None:
        """(identity, role from claims or None) for a configured token, None if unknown."""
        if token not in self.tokens:
            return None
        claims = _jwt_claims(token)
        if claims and claims.get("sub"):
            groups = claims.get("groups") or claims.get("wlcg.groups")
            role = None
            if isinstance(groups, list):
                role = any(str(g).rstrip("/").endswith("production") for g in groups)
            return f"sub:{claims['sub']}", role
        return f"token#{self.tokens.index(token) + 1}", None

    def has_production(self, identity: str, claim_role: bool | None = None) -> bool:
        """Production role of an identity."""
        if claim_role is False:
            return False
        if any(p in identity for p in self.no_production):
            return False
        if self.production_only:
            return any(p in identity for p in self.production_only)
        return True


def _jwt_claims(token: str) -> dict | None:
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, TypeError):
        return None
    return claims if isinstance(claims, dict) else None


class EmulatorServer(ThreadingHTTPServer):
    """The server object; handlers reach the state through ``self.server``."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self,
        host: str,
        port: int,
        state_file: Path,
        *,
        tls_paths: dict | None,
        auth: AuthConfig,
        seed: int = 0,
        faults: dict | None = None,
        holding_delay: float = 1.0,
        sent_timeout: float = DEFAULT_SENT_TIMEOUT,
        instance_timeout: float = DEFAULT_INSTANCE_TIMEOUT,
    ) -> None:
        self.tls_paths = tls_paths
        self.ssl_context = server_context(tls_paths) if tls_paths else None
        self.auth = auth
        self.seed = seed
        self.store = Store(state_file)
        self.state_file = Path(state_file)
        self.cache_dir = self.state_file.parent / "cache"
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.jobs = Jobs(self.store, seed=seed, holding_delay=holding_delay, sent_timeout=sent_timeout)
        self.instances = Instances(self.store, instance_timeout=instance_timeout)
        self.faults = FaultConfig()
        self.faults.configure(faults, default_seed=seed)
        self.started = time.time()
        self._stop = threading.Event()
        super().__init__((host, port), Handler)
        self.host = host
        self.port = self.server_address[1]
        scheme = "https" if self.ssl_context else "http"
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
        self.public_url = f"{scheme}://{shown}:{self.port}"
        self._daemon = threading.Thread(target=self._housekeeping, name="emulator-daemon", daemon=True)
        self._daemon.start()

    def get_request(self):
        sock, addr = super().get_request()
        if self.ssl_context is not None:
            sock = self.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def handle_error(self, request, client_address) -> None:
        import sys

        exc = sys.exc_info()[1]
        if isinstance(exc, (ssl.SSLError, ConnectionError, socket.timeout, OSError)):
            log.debug("connection from %s ended: %s", client_address, exc)
            return
        log.exception("error while handling a request from %s", client_address)

    def _housekeeping(self) -> None:
        while not self._stop.wait(0.2):
            try:
                self.jobs.finish_holding()
                n = self.jobs.reassign_stale_sent()
                if n:
                    log.info("watchdog: %d jobs left in sent for %.1fs reassigned", n, self.jobs.sent_timeout)
            except Exception:  # keep the daemon alive; the next round retries
                log.exception("housekeeping failed")

    def record_upload(self, kind: str, name: str, path: Path, size: int) -> None:
        """Remember an uploaded file."""
        with self.store.write() as con:
            con.execute(
                "INSERT INTO uploads(kind, name, path, size, received) VALUES(?,?,?,?,?)",
                (kind, name, str(path), size, time.time()),
            )

    def server_close(self) -> None:
        self._stop.set()
        super().server_close()


class DropConnection(Exception):
    """Close the connection without writing a reply."""


class Handler(BaseHTTPRequestHandler):
    """One request: authenticate, parse, maybe inject a fault, dispatch, reply."""

    server: EmulatorServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "PanDAEmulator/1.0"

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(15)
            self.request.do_handshake()
            self.request.settimeout(None)
        super().setup()

    def log_message(self, fmt: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), fmt % args)

    # ------------------------------------------------------------ plumbing
    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def _wants_json(self) -> bool:
        accept = self.headers.get("Accept", "") or ""
        ctype = self.headers.get("Content-Type", "") or ""
        return "application/json" in accept or "application/json" in ctype

    def send_body(self, status: int, body: bytes, ctype: str = "application/json", length: int | None = None) -> None:
        """Write a complete reply."""
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def send_envelope(self, status: int, envelope: dict, force_json: bool = False) -> None:
        """Reply with an envelope: JSON if the client asked for it, else Python-repr text (like PanDA)."""
        if force_json or self._wants_json():
            self.send_body(status, json.dumps(envelope, default=str).encode())
        else:
            self.send_body(status, repr(envelope).encode(), "text/plain; charset=utf-8")

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _params(self, query: str, body: bytes) -> tuple[dict, dict, bool]:
        """(parameters, uploaded files, whether the parameters came typed from a JSON body)."""
        params: dict[str, Any] = {}
        for key, values in parse_qs(query, keep_blank_values=True).items():
            params[key] = values[0] if len(values) == 1 else values
        files: dict[str, tuple[str, bytes]] = {}
        if not body:
            return params, files, False
        ctype = self.headers.get("Content-Type", "") or ""
        if ctype.startswith("multipart/form-data"):
            msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                b"Content-Type: " + ctype.encode() + b"\r\nMIME-Version: 1.0\r\n\r\n" + body
            )
            for part in msg.iter_parts():
                name = part.get_param("name", header="content-disposition")
                filename = part.get_filename()
                payload = part.get_payload(decode=True) or b""
                if filename is not None:
                    files[name] = (filename, payload)
                elif name:
                    params[name] = payload.decode(errors="replace")
        elif ctype.startswith("application/x-www-form-urlencoded"):
            for key, values in parse_qs(body.decode(errors="replace"), keep_blank_values=True).items():
                params[key] = values[0] if len(values) == 1 else values
        else:
            try:
                loaded = json.loads(body)
            except ValueError:
                loaded = None
            if isinstance(loaded, dict):
                params.update(loaded)
                return params, files, True
            elif loaded is None:
                for key, values in parse_qs(body.decode(errors="replace"), keep_blank_values=True).items():
                    params[key] = values[0] if len(values) == 1 else values
        return params, files, False

    def _identify(self) -> tuple[str | None, bool, str | None]:
        """(identity, production role, error). A presented but unknown token is an error."""
        auth = self.server.auth
        header = self.headers.get("Authorization", "") or ""
        if header.lower().startswith("bearer "):
            found = auth.token_identity(header[7:].strip())
            if found is None:
                return None, False, "invalid bearer token"
            identity, claim_role = found
            return identity, auth.has_production(identity, claim_role), None
        if isinstance(self.request, ssl.SSLSocket):
            dn = peer_dn(self.request.getpeercert())
            if dn:
                return dn, auth.has_production(dn), None
        if not auth.require_auth:
            return "anonymous", auth.has_production("anonymous"), None
        return None, False, "no valid client certificate or bearer token"

    # --------------------------------------------------------------- main
    def _handle(self) -> None:
        try:
            self._handle_inner()
        except DropConnection:
            self.close_connection = True
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True

    def _handle_inner(self) -> None:
        url = urlsplit(self.path)
        path = url.path.rstrip("/") or "/"
        body = self._read_body()
        identity, production, error = self._identify()
        open_path = any(path == p or (p.endswith("/") and path.startswith(p)) for p in OPEN_PATHS)
        if error is not None and not (open_path and error != "invalid bearer token"):
            self.send_envelope(403, api.fail(f"authentication failed: {error}"), force_json=True)
            return
        identity = identity or "anonymous"
        params, files, typed = self._params(url.query, body)
        if path.startswith(("/api/v1/cache/", "/cache/")):
            self._serve_cache(path.split("/cache/", 1)[1])
            return
        if path.startswith("/emulator/") or path == "/emulator":
            status, reply = admin.handle(self.server, self.command, path[len("/emulator") :].strip("/"), params)
            if isinstance(reply, (bytes, str)):
                data = reply.encode() if isinstance(reply, str) else reply
                ctype = "application/json" if path.endswith(".json") else "text/plain; charset=utf-8"
                self.send_body(status, data, ctype)
            else:
                self.send_envelope(status, reply, force_json=True)
            return
        if not path.startswith("/api/v1/"):
            self.send_envelope(404, api.fail(f"no such path {path}"), force_json=True)
            return
        parts = path[len("/api/v1/") :].split("/")
        if len(parts) != 2 or (parts[0], parts[1]) not in api.ROUTES:
            self.send_envelope(404, api.fail(f"unknown API function {'/'.join(parts)}"))
            return
        endpoint = "/".join(parts)
        ctx = api.Context(identity=identity, production=production, host=self.client_address[0], files=files,
                          method=self.command, typed=typed)
        self._api_call(endpoint, parts[0], parts[1], ctx, params)

    def _api_call(self, endpoint: str, module: str, function: str, ctx: api.Context, params: dict) -> None:
        srv = self.server
        kind = srv.faults.decide(endpoint)
        if kind in ("http500", "http503"):
            code = 500 if kind == "http500" else 503
            self.send_envelope(code, api.fail(f"injected fault: HTTP {code}"), force_json=True)
            return
        if kind == "invalid_json":
            self.send_body(
                200, b"<html><head><title>502 Proxy Error</title></head><body>injected fault</body></html>", "text/html"
            )
            return
        if kind == "drop":
            raise DropConnection()
        if kind == "timeout":
            time.sleep(srv.faults.timeout_delay)
            raise DropConnection()
        if kind == "delay":
            time.sleep(srv.faults.delay)
        reply = api.dispatch(srv, module, function, ctx, params)
        srv.faults.note_applied(endpoint, kind, reply)
        if kind == "duplicate_apply":
            api.dispatch(srv, module, function, ctx, params)
        if kind == "drop_after_commit":
            raise DropConnection()
        if kind == "wrong_shape":
            reply = wrong_shape(reply, *srv.faults.shape_variant(endpoint, reply))
        if not self._wants_json():
            self.send_envelope(200, reply)
            return
        text = json.dumps(reply, default=str).encode()
        if kind == "truncated_json":
            text = text[: max(1, len(text) // 2)]
        elif kind == "double_body":
            text = text + text
        self.send_body(200, text)

    def _serve_cache(self, name: str) -> None:
        safe = Path(name).name
        path = self.server.cache_dir / safe
        if not path.is_file():
            path = self.server.cache_dir / "jedilog" / safe
        if not safe or not path.is_file():
            self.send_envelope(404, api.fail(f"{safe} not found"), force_json=True)
            return
        self.send_body(200, path.read_bytes(), "application/octet-stream")


def write_ready_file(path: Path, info: dict) -> None:
    """Atomically write the ready file the launcher waits for."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(info))
    os.replace(tmp, path)


def serve(
    *,
    host: str,
    port: int,
    state_file: Path,
    tls: bool,
    cert_dir: Path | None,
    auth: AuthConfig,
    seed: int,
    faults: dict | None,
    holding_delay: float,
    ready_file: Path | None,
    sent_timeout: float = DEFAULT_SENT_TIMEOUT,
    instance_timeout: float = DEFAULT_INSTANCE_TIMEOUT,
) -> int:
    """Run until SIGTERM/SIGINT. Returns the exit code."""
    tls_paths = ensure_pki(cert_dir or Path(state_file).parent / "pki") if tls else None
    server = EmulatorServer(
        host,
        port,
        Path(state_file),
        tls_paths=tls_paths,
        auth=auth,
        seed=seed,
        faults=faults,
        holding_delay=holding_delay,
        sent_timeout=sent_timeout,
        instance_timeout=instance_timeout,
    )
    stopping = threading.Event()

    def _stop(signum, frame) -> None:
        if not stopping.is_set():
            stopping.set()
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    info = {
        "port": server.port,
        "url": server.public_url,
        "base_url": f"{server.public_url}/api/v1",
        "pid": os.getpid(),
        "state_file": str(state_file),
    }
    if tls_paths:
        info.update({k: tls_paths[k] for k in ("ca_cert", "client_cert", "client_key")})
    if ready_file:
        write_ready_file(Path(ready_file), info)
    print(f"PanDA emulator listening on {server.public_url}/api/v1 (state {state_file})", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        if ready_file:
            Path(ready_file).unlink(missing_ok=True)
    return 0
