"""One PanDA API call: encode, authenticate, send, retry, decode, log (without secrets).

:meth:`PandaHttpClient.request` is the single place where the communicator touches HTTP. It
returns the original's ``(status, reply)`` convention: ``(True, <decoded JSON envelope>)`` for
an HTTP 200 with a JSON body, else ``(False, <error text>)``; it never raises.
"""

from __future__ import annotations

import datetime
import json
import threading
import uuid
from typing import Any, Callable
from urllib.parse import urlencode

from pandaharvester.harvestercore import core_utils
from pandaharvester.harvestercore.time_utils import to_panda_string
from pandaharvester.panda_pkg_info import release_version

from .auth import AuthManager
from .redact import Redactor, mask_data
from .retry import RetryPolicy, is_retryable_status, wait
from .settings import PandaconSettings
from .transport import HttpRequest, HttpResponse, Transport, TransportError

METHODS = ("GET", "POST", "UPLOAD")
USER_AGENT = f"pandaharvester/{release_version}"
LOG_BODY_LIMIT = 4000
# replies of these API modules carry credentials: never log their data, even masked
SECRET_MODULES = ("creds/", "credential/")


def json_default(value: Any) -> Any:
    """JSON encoder hook: datetimes in PanDA's ``datetime/...`` form, sets as lists."""
    if isinstance(value, datetime.datetime):
        return to_panda_string(value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    raise TypeError(f"cannot send a {type(value).__name__} to PanDA")


def encode_json(data: Any) -> bytes:
    """The POST body for ``data``."""
    return json.dumps(data if data is not None else {}, default=json_default).encode("utf-8")


def encode_query(data: dict[str, Any] | None) -> str:
    """The query string for GET ``data``: lists/dicts as JSON, datetimes as ``datetime/...``."""
    if not data:
        return ""
    pairs = []
    for key, value in data.items():
        if value is None:
            continue
        if isinstance(value, (list, tuple, set, frozenset, dict)):
            value = json.dumps(value if not isinstance(value, (set, frozenset)) else sorted(value),
                               default=json_default)
        elif isinstance(value, datetime.datetime):
            value = to_panda_string(value)
        elif isinstance(value, bool):
            value = "true" if value else "false"
        pairs.append((key, str(value)))
    return urlencode(pairs)


class PandaHttpClient:
    """Sends API requests for one communicator instance (used by one thread at a time)."""

    def __init__(self, transport: Transport, auth: AuthManager, redactor: Redactor, logger: Any,
                 settings: Callable[[], PandaconSettings], verbose: bool = False,
                 stop_event: threading.Event | None = None) -> None:
        self.transport = transport
        self.auth = auth
        self.redactor = redactor
        self.logger = logger
        self.settings = settings
        self.verbose = verbose
        self.stop_event = stop_event

    # ------------------------------------------------------------------ building
    def _build(self, method: str, path: str, data: Any, files: dict | None, cert: tuple | None,
               base_url: str | None, settings: PandaconSettings) -> HttpRequest:
        if base_url is None:
            base_url = settings.cache_url if method == "UPLOAD" else settings.server_url
        base_url = base_url.rstrip("/")
        url = f"{base_url}/{path.lstrip('/')}"
        auth = self.auth.for_url(base_url)
        headers = {"Accept": "application/json", "Connection": "close", "User-Agent": USER_AGENT}
        headers.update(auth.headers())
        body = None
        upload = None
        if method == "GET":
            query = encode_query(data)
            if query:
                url = f"{url}?{query}"
            http_method = "GET"
        elif method == "POST":
            headers["Content-Type"] = "application/json"
            body = encode_json(data)
            http_method = "POST"
        else:  # UPLOAD: multipart form
            upload = {name: (fname, content if isinstance(content, bytes) else str(content).encode())
                      for name, (fname, content) in (files or {}).items()}
            http_method = "POST"
        client_cert = None
        if url.lower().startswith("https://"):
            client_cert = cert if (cert is not None and auth.auth_type == "x509") else auth.client_cert()
        return HttpRequest(http_method, url, headers, body=body, files=upload, timeout=settings.timeout,
                           verify=auth.verify(), cert=client_cert)

    # ------------------------------------------------------------------ sending
    def request(self, method: str, path: str, data: Any = None, files: dict | None = None,
                cert: tuple | None = None, base_url: str | None = None, raw: bool = False,
                caller: str | None = None) -> tuple[bool, Any]:
        """Send one API call with retries; ``(True, envelope)`` or ``(False, error text)``.

        With ``raw`` the success value is the reply's bytes instead of decoded JSON; ``caller``
        (the communicator method, with ``useInspect``) prefixes the request id in log lines.
        """
        if method not in METHODS:
            raise ValueError(f"unsupported method {method!r}: use one of {METHODS}")
        exec_id = uuid.uuid4().hex[:12]
        if caller:
            exec_id = f"{caller}/{exec_id}"
        tmp_log = core_utils.make_logger(self.logger, f"exec={exec_id}", method_name=f"{method.lower()}_ssl")
        try:
            settings = self.settings()
            request = self._build(method, path, data, files, cert, base_url, settings)
        except Exception as exc:
            err = f"failed to prepare {method} {path}: {type(exc).__name__}: {exc}"
            err = self.redactor.text(err)
            tmp_log.error(err)
            return False, err
        policy = RetryPolicy(settings.max_retries, settings.retry_backoff)
        secret_reply = path.startswith(SECRET_MODULES)
        if self.verbose:
            shown = {name: f"<{len(content)} bytes>" for name, (_, content) in (request.files or {}).items()}
            tmp_log.debug(f"URL={self.redactor.text(request.url)} "
                          f"data={self._clip(self.redactor.text(mask_data(data)))}"
                          + (f" files={shown}" if shown else ""))
        last_error = ""
        for attempt in range(1, policy.attempts + 1):
            sw = core_utils.get_stopwatch()
            ok, value, retryable = self._attempt(request, raw)
            if self.verbose:
                reply = "<credential reply not logged>" if (ok and secret_reply) else self._clip(
                    self.redactor.text(value if isinstance(value, str) else mask_data(value))
                    if not isinstance(value, bytes) else f"<{len(value)} bytes>")
                tmp_log.debug(f"attempt={attempt} ok={ok}{sw.get_elapsed_time()} return={reply}")
            if ok:
                if attempt > 1:
                    tmp_log.info(f"{method} {path} succeeded at attempt {attempt}")
                return True, value
            last_error = value
            if not retryable or attempt == policy.attempts:
                break
            delay = policy.delay(attempt)
            tmp_log.warning(f"{method} {path} attempt {attempt}/{policy.attempts} failed: "
                            f"{self._clip(self.redactor.text(value), 500)}; retrying in {delay:.2f}s")
            if wait(delay, self.stop_event):
                last_error += " (stopped before retrying)"
                break
        else:  # pragma: no cover - loop always breaks or returns
            pass
        err = self.redactor.text(f"{method} {path}: {last_error}")
        if attempt > 1:
            err += f" (gave up after {attempt} attempts)"
        return False, err

    def _attempt(self, request: HttpRequest, raw: bool) -> tuple[bool, Any, bool]:
        """One try: ``(ok, value, retryable)``."""
        try:
            response = self.transport.send(request)
        except TransportError as exc:
            return False, f"failed to {request.method} with {exc}", True
        except Exception as exc:  # a transport bug must not kill the agent thread
            return False, f"failed to {request.method} with {type(exc).__name__}: {exc}", False
        if response.status_code != 200:
            return False, f"StatusCode={response.status_code} {self._clip(response.text, 1000)}", \
                is_retryable_status(response.status_code)
        if raw:
            return True, response.content, False
        return self._decode(response)

    @staticmethod
    def _decode(response: HttpResponse) -> tuple[bool, Any, bool]:
        try:
            value = json.loads(response.content)
        except ValueError as exc:
            snippet = response.text[:200]
            return False, f"invalid JSON in reply ({exc}): {snippet!r}", True
        if not isinstance(value, dict) or "success" not in value:
            # not an API v1 envelope (e.g. a proxy's error page in JSON): treat as garbled
            return False, f"unexpected reply (no envelope): {str(value)[:200]!r}", True
        return True, value, False

    @staticmethod
    def _clip(text: str, limit: int = LOG_BODY_LIMIT) -> str:
        return text if len(text) <= limit else text[:limit] + f"...<{len(text) - limit} more chars>"
