"""One PanDA API call: encode, authenticate, send, retry, decode, check, log (without secrets).

:meth:`PandaHttpClient.request` is the single place where the communicator touches HTTP. It
returns the original's ``(status, reply)`` convention: ``(True, <decoded JSON envelope>)`` for
an HTTP 200 with a JSON body of the endpoint's shape (:mod:`.reply_shapes`), else
``(False, <error text>)``; it never raises. :data:`COUNTERS` counts the calls, attempts,
retries and failures of the process (the master logs them when it stops).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import threading
import uuid
from typing import Any, Callable
from urllib.parse import urlencode

from pandaharvester.harvestercore import core_utils
from pandaharvester.harvestercore.time_utils import naive_utcnow, to_panda_string
from pandaharvester.panda_pkg_info import release_version

from .auth import AuthManager
from .redact import Redactor, mask_data
from .reply_shapes import check_reply
from .retry import RetryPolicy, is_refused_status, is_retryable_status, wait
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


def _query_scalar(value: Any) -> str:
    if isinstance(value, datetime.datetime):
        return to_panda_string(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def encode_query(data: dict[str, Any] | None) -> str:
    """The query string for GET ``data``.

    A list (tuple, set) is sent as repeated keys, ``job_ids=3&job_ids=4``, which is the only
    form the real server casts to a list (JSON text such as ``job_ids=[3, 4]`` is refused);
    datetimes go as ``datetime/...``, booleans as ``true``/``false``, None is left out; a dict
    (no GET function of the API takes one) is sent as JSON text.
    """
    if not data:
        return ""
    pairs = []
    for key, value in data.items():
        if value is None:
            continue
        if isinstance(value, (set, frozenset)):
            value = sorted(value)
        if isinstance(value, (list, tuple)):
            pairs += [(key, _query_scalar(item)) for item in value if item is not None]
        elif isinstance(value, dict):
            pairs.append((key, json.dumps(value, default=json_default)))
        else:
            pairs.append((key, _query_scalar(value)))
    return urlencode(pairs)


class CallCounters:
    """Process-wide counts of PanDA calls (thread-safe)."""

    NAMES = ("calls", "attempts", "retries", "failed_calls", "shape_errors", "lost_replies")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(self.NAMES, 0)

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] += n

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def line(self) -> str:
        """``calls=N attempts=N retries=N ...`` (what the master logs at its stop)."""
        return " ".join(f"{name}={value}" for name, value in self.snapshot().items())


COUNTERS = CallCounters()


@dataclasses.dataclass
class Attempt:
    """One try: ``value`` is the envelope (or bytes) when ``ok``, else the error text.

    ``maybe_applied``: it failed after the request may have reached the server (a reply was
    lost, cut or garbled), so the server may have applied it.
    """

    ok: bool
    value: Any
    retryable: bool = False
    maybe_applied: bool = False
    wrong_shape: bool = False


@dataclasses.dataclass
class CallResult:
    """The outcome of :meth:`PandaHttpClient.call`.

    ``started``/``ended`` (naive UTC) bound the last attempt: for a non-idempotent call that
    stopped with ``maybe_applied``, the window in which the server may have applied it.
    """

    ok: bool
    value: Any
    maybe_applied: bool = False
    started: datetime.datetime | None = None
    ended: datetime.datetime | None = None
    attempts: int = 1

    def window_text(self) -> str:
        """``<start>/<end>`` in ISO 8601 UTC (``Z``), the window of a reply that was lost."""
        return "/".join(t.isoformat(timespec="milliseconds") + "Z" if t else "?" for t in (self.started, self.ended))


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
        result = self.call(method, path, data, files=files, cert=cert, base_url=base_url, raw=raw, caller=caller)
        return result.ok, result.value

    def call(self, method: str, path: str, data: Any = None, files: dict | None = None,
             cert: tuple | None = None, base_url: str | None = None, raw: bool = False,
             caller: str | None = None, idempotent: bool = True) -> CallResult:
        """:meth:`request` with the whole outcome.

        ``idempotent=False`` (calls that hand something out: ``acquire_jobs``, ``acquire_commands``,
        ``acquire_event_ranges``): retried only while the request surely never reached the server
        (connection refused, name not resolved, connect timeout; or HTTP 408/429/503, the server
        refusing to process it); after a failure that may have followed the server applying it
        (reset, read timeout, truncated or garbled reply, other 5xx) the call stops with
        ``maybe_applied`` set and the UTC window of that attempt.
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
            return CallResult(False, err)
        policy = RetryPolicy(settings.max_retries, settings.retry_backoff)
        secret_reply = path.startswith(SECRET_MODULES)
        # the verbose request/reply lines are DEBUG lines: not built when DEBUG is off
        verbose = self.verbose and tmp_log.isEnabledFor(logging.DEBUG)
        if verbose:
            shown = {name: f"<{len(content)} bytes>" for name, (_, content) in (request.files or {}).items()}
            tmp_log.debug(f"URL={self.redactor.text(request.url)} "
                          f"data={self._clip(self.redactor.text(mask_data(data)))}"
                          + (f" files={shown}" if shown else ""))
        last: Attempt | None = None
        COUNTERS.add("calls")
        for attempt in range(1, policy.attempts + 1):
            sw = core_utils.get_stopwatch()
            started = naive_utcnow()
            COUNTERS.add("attempts")
            last = self._attempt(request, raw, path)
            if last.wrong_shape:
                COUNTERS.add("shape_errors")
            if verbose:
                value = last.value
                reply = "<credential reply not logged>" if (last.ok and secret_reply) else self._clip(
                    self.redactor.text(value if isinstance(value, str) else mask_data(value))
                    if not isinstance(value, bytes) else f"<{len(value)} bytes>")
                tmp_log.debug(f"attempt={attempt} ok={last.ok}{sw.get_elapsed_time()} return={reply}")
            if last.ok:
                if attempt > 1:
                    tmp_log.info(f"{method} {path} succeeded at attempt {attempt}")
                return CallResult(True, last.value, started=started, ended=naive_utcnow(), attempts=attempt)
            if not idempotent and last.maybe_applied:
                COUNTERS.add("failed_calls")
                COUNTERS.add("lost_replies")
                err = self.redactor.text(self._error_text(method, path, last))
                return CallResult(False, err, maybe_applied=True, started=started, ended=naive_utcnow(),
                                  attempts=attempt)
            if not last.retryable or attempt == policy.attempts:
                break
            delay = policy.delay(attempt)
            COUNTERS.add("retries")
            tmp_log.warning(f"{method} {path} attempt {attempt}/{policy.attempts} failed: "
                            f"{self._clip(self.redactor.text(last.value), 500)}; retrying in {delay:.2f}s")
            if wait(delay, self.stop_event):
                last.value += " (stopped before retrying)"
                break
        assert last is not None  # the loop runs at least once
        COUNTERS.add("failed_calls")
        err = self.redactor.text(self._error_text(method, path, last))
        if attempt > 1:
            err += f" (gave up after {attempt} attempts)"
        return CallResult(False, err, attempts=attempt)

    def _attempt(self, request: HttpRequest, raw: bool, path: str = "") -> Attempt:
        """One try."""
        try:
            response = self.transport.send(request)
        except TransportError as exc:
            return Attempt(False, f"failed to {request.method} with {exc}", not getattr(exc, "permanent", False),
                           maybe_applied=not exc.never_sent)
        except Exception as exc:  # a transport bug must not kill the agent thread
            return Attempt(False, f"failed to {request.method} with {type(exc).__name__}: {exc}", False,
                           maybe_applied=True)
        if response.status_code != 200:
            return Attempt(False, f"StatusCode={response.status_code} {self._clip(response.text, 1000)}",
                           is_retryable_status(response.status_code),
                           maybe_applied=not is_refused_status(response.status_code))
        if raw:
            return Attempt(True, response.content)
        return self._decode(response, path)

    @staticmethod
    def _decode(response: HttpResponse, path: str = "") -> Attempt:
        """The envelope, or a failed attempt when the body is not JSON or not of ``path``'s shape
        (retried as a garbled reply; the server may have applied the request)."""
        try:
            value = json.loads(response.content)
        except ValueError as exc:
            snippet = response.text[:200]
            return Attempt(False, f"invalid JSON in reply ({exc}): {snippet!r}", True, maybe_applied=True)
        error = check_reply(path, value)
        if error is not None:
            return Attempt(False, error, True, maybe_applied=True, wrong_shape=True)
        return Attempt(True, value)

    @staticmethod
    def _error_text(method: str, path: str, attempt: Attempt) -> str:
        """The error of a failed call (a shape error names the endpoint already)."""
        return attempt.value if attempt.wrong_shape else f"{method} {path}: {attempt.value}"

    @staticmethod
    def _clip(text: str, limit: int = LOG_BODY_LIMIT) -> str:
        return text if len(text) <= limit else text[:limit] + f"...<{len(text) - limit} more chars>"
