"""HTTP transports: one small interface, two implementations (requests, pycurl).

A transport sends one :class:`HttpRequest` and returns an :class:`HttpResponse` for any HTTP
status; it raises :class:`TransportError` when no complete HTTP reply arrived (connection
refused or reset, TLS failure, timeout). It tells "the request never reached the server"
(connection refused, name not resolved, connect timeout: ``never_sent``) from "it may have
been sent and the reply lost" (reset, read timeout, cut body, TLS failure), which decides
whether a non-idempotent call may be sent again. Retries, JSON decoding and auth decisions
are not its business (see ``http_client``).
"""

from __future__ import annotations

import dataclasses
import io
import re
import uuid
from typing import Iterator, Protocol


@dataclasses.dataclass
class HttpRequest:
    """One request, fully prepared (the URL already holds any query string)."""

    method: str  # "GET" or "POST"
    url: str
    headers: dict[str, str]
    body: bytes | None = None  # raw POST body (JSON)
    files: dict[str, tuple[str, bytes]] | None = None  # multipart fields: name -> (filename, content)
    timeout: float = 180.0
    verify: str | bool = True  # CA bundle path, True = system CAs, False = no check
    cert: tuple[str, str] | None = None  # (certificate, key) for TLS client auth


@dataclasses.dataclass
class HttpResponse:
    """A complete HTTP reply."""

    status_code: int
    content: bytes
    headers: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (undecodable bytes replaced)."""
        return self.content.decode("utf-8", errors="replace")


class TransportError(Exception):
    """No complete HTTP reply: connection, TLS or timeout failure.

    ``never_sent``: surely no byte of the request reached the server (when in doubt, False).
    ``permanent``: trying again cannot help (the server's certificate failed verification).
    """

    def __init__(self, message: str, timeout: bool = False, never_sent: bool = False,
                 permanent: bool = False) -> None:
        super().__init__(message)
        self.timeout = timeout
        self.never_sent = never_sent
        self.permanent = permanent


def verify_failed(url: str, reason: str) -> TransportError:
    """The error of a server certificate that failed verification: says which key to set.
    The handshake failed before the request was written: never sent, and permanent."""
    from urllib.parse import urlparse

    parsed = urlparse(url)
    return TransportError(
        f"the server certificate of {parsed.scheme}://{parsed.netloc} could not be verified ({reason}): "
        "set [pandacon] ca_cert to the CA bundle that signed it (ca_cert = False turns the check off, "
        "which lets anyone on the network path impersonate PanDA)", never_sent=True, permanent=True)


class Transport(Protocol):
    """What a transport offers."""

    name: str

    def send(self, request: HttpRequest) -> HttpResponse: ...

    def close(self) -> None: ...


class RequestsTransport:
    """Transport on ``requests`` (the default)."""

    name = "requests"

    def __init__(self) -> None:
        import requests

        self._requests = requests

    def send(self, request: HttpRequest) -> HttpResponse:
        requests = self._requests
        try:
            # one session per request, as requests go with "Connection: close": a pooled
            # connection the server already closed would fail the next request
            with requests.Session() as session:
                reply = session.request(
                    request.method, request.url, data=request.body, files=request.files, headers=request.headers,
                    timeout=request.timeout, verify=request.verify, cert=request.cert, allow_redirects=False,
                )
                content = reply.content  # read the whole body here: a cut body is a transport error
        except requests.exceptions.Timeout as exc:
            raise TransportError(f"timeout after {request.timeout}s: {_short(exc)}", timeout=True,
                                 never_sent=self._never_sent(exc)) from None
        except requests.exceptions.SSLError as exc:
            reason = _verify_reason(exc)
            if reason is not None:
                raise verify_failed(request.url, reason) from None
            raise TransportError(f"{type(exc).__name__}: {_short(exc)}", never_sent=self._never_sent(exc)) from None
        except (requests.exceptions.RequestException, OSError) as exc:
            raise TransportError(f"{type(exc).__name__}: {_short(exc)}", never_sent=self._never_sent(exc)) from None
        return HttpResponse(reply.status_code, content, dict(reply.headers))

    def _never_sent(self, exc: BaseException) -> bool:
        """True when the connection was never made: urllib3's connect errors (refused, name not
        resolved, connect timeout) are all ``ConnectTimeoutError``s; anything later may follow a
        request the server received (TLS errors included: they also end connections mid-reply)."""
        if isinstance(exc, self._requests.exceptions.ConnectTimeout):
            return True
        from urllib3.exceptions import ConnectTimeoutError

        return any(isinstance(item, ConnectTimeoutError) for item in exception_chain(exc))

    def close(self) -> None:
        pass


class PycurlTransport:
    """Transport on ``pycurl`` (libcurl); select it with ``[pandacon] transport = pycurl``."""

    name = "pycurl"

    def __init__(self) -> None:
        import pycurl

        self._pycurl = pycurl
        # no connection was made: the request cannot have reached the server
        self._connect_errors = frozenset({pycurl.E_COULDNT_RESOLVE_PROXY, pycurl.E_COULDNT_RESOLVE_HOST,
                                          pycurl.E_COULDNT_CONNECT})
        # CURLE_PEER_FAILED_VERIFICATION (60, also CURLE_SSL_CACERT) and CURLE_SSL_CACERT_BADFILE (77)
        self._verify_errors = frozenset({60, 77, getattr(pycurl, "E_PEER_FAILED_VERIFICATION", 60)})

    def send(self, request: HttpRequest) -> HttpResponse:
        pycurl = self._pycurl
        body = io.BytesIO()
        headers: dict[str, str] = {}

        def on_header(line: bytes) -> None:
            text = line.decode("iso-8859-1").strip()
            if text.upper().startswith("HTTP/"):
                headers.clear()  # a new status line (100 Continue, redirects) starts a new header set
            elif ":" in text:
                key, value = text.split(":", 1)
                headers[key.strip()] = value.strip()

        curl = pycurl.Curl()
        try:
            curl.setopt(pycurl.URL, request.url)
            curl.setopt(pycurl.NOSIGNAL, 1)
            curl.setopt(pycurl.TIMEOUT_MS, max(1, int(request.timeout * 1000)))
            curl.setopt(pycurl.CONNECTTIMEOUT_MS, max(1, int(request.timeout * 1000)))
            curl.setopt(pycurl.WRITEDATA, body)
            curl.setopt(pycurl.HEADERFUNCTION, on_header)
            # "Expect:" stops libcurl from waiting for a 100-continue the server never sends
            header_lines = [f"{k}: {v}" for k, v in request.headers.items()] + ["Expect:"]
            curl.setopt(pycurl.HTTPHEADER, header_lines)
            if request.method == "POST" and request.files:
                content_type, form = encode_multipart(request.files)
                header_lines.append(f"Content-Type: {content_type}")
                curl.setopt(pycurl.HTTPHEADER, header_lines)
                curl.setopt(pycurl.POST, 1)
                curl.setopt(pycurl.POSTFIELDS, form)
            elif request.method == "POST":
                curl.setopt(pycurl.POST, 1)
                curl.setopt(pycurl.POSTFIELDS, request.body or b"")
            elif request.method == "GET":
                curl.setopt(pycurl.HTTPGET, 1)
            else:
                curl.setopt(pycurl.CUSTOMREQUEST, request.method)
            if request.url.lower().startswith("https://"):
                if request.verify is False:
                    curl.setopt(pycurl.SSL_VERIFYPEER, 0)
                    curl.setopt(pycurl.SSL_VERIFYHOST, 0)
                else:
                    curl.setopt(pycurl.SSL_VERIFYPEER, 1)
                    curl.setopt(pycurl.SSL_VERIFYHOST, 2)
                    if isinstance(request.verify, str):
                        curl.setopt(pycurl.CAINFO, request.verify)
                if request.cert is not None:
                    curl.setopt(pycurl.SSLCERT, request.cert[0])
                    curl.setopt(pycurl.SSLCERTTYPE, "PEM")
                    curl.setopt(pycurl.SSLKEY, request.cert[1])
                    curl.setopt(pycurl.SSLKEYTYPE, "PEM")
            try:
                curl.perform()
            except pycurl.error as exc:
                code = exc.args[0] if exc.args else None
                message = exc.args[1] if len(exc.args) > 1 else str(exc)
                if code in self._verify_errors and request.verify is not False:
                    raise verify_failed(request.url, f"pycurl error {code}: {message}") from None
                timed_out = code == pycurl.E_OPERATION_TIMEDOUT
                prefix = f"timeout after {request.timeout}s" if timed_out else f"pycurl error {code}"
                # libcurl counts the request bytes it wrote: none written, nothing reached the server
                never_sent = code in self._connect_errors or int(curl.getinfo(pycurl.REQUEST_SIZE) or 0) == 0
                raise TransportError(f"{prefix}: {message}", timeout=timed_out, never_sent=never_sent) from None
            status = int(curl.getinfo(pycurl.RESPONSE_CODE))
        finally:
            curl.close()
        return HttpResponse(status, body.getvalue(), headers)

    def close(self) -> None:
        pass


def encode_multipart(files: dict[str, tuple[str, bytes]]) -> tuple[str, bytes]:
    """``(content type, body)`` of a multipart/form-data upload of ``files``."""
    boundary = uuid.uuid4().hex
    parts = []
    for name, (filename, content) in files.items():
        safe_name = filename.replace('"', "_").replace("\r", "_").replace("\n", "_")
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{safe_name}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n".encode() + content + b"\r\n"
        )
    parts.append(f"--{boundary}--\r\n".encode())
    return f"multipart/form-data; boundary={boundary}", b"".join(parts)


_TRANSPORTS = {"requests": RequestsTransport, "pycurl": PycurlTransport}


def make_transport(name: str = "requests") -> Transport:
    """A new transport by name (``requests`` or ``pycurl``)."""
    try:
        factory = _TRANSPORTS[name.lower()]
    except KeyError:
        from pandaharvester.errors import ConfigError

        raise ConfigError(f"[pandacon] transport = {name!r} is unknown: use one of {', '.join(_TRANSPORTS)}") from None
    return factory()


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception it wraps (``reason``, ``__cause__``, ``__context__``, args), once each."""
    seen: set[int] = set()
    todo: list = [exc]
    while todo:
        item = todo.pop()
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        todo += [getattr(item, "reason", None), item.__cause__, item.__context__, *item.args]


def _verify_reason(exc: BaseException) -> str | None:
    """The verification failure inside an SSL error (``certificate verify failed: ...``), else None."""
    import ssl

    for item in exception_chain(exc):
        if isinstance(item, ssl.SSLCertVerificationError):
            return item.verify_message or "certificate verify failed"
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        found = re.search(r"certificate verify failed: ([^(')\]]+)", text)
        return found.group(1).strip() if found else "certificate verify failed"
    return None


def _short(exc: BaseException, limit: int = 500) -> str:
    text = str(exc)
    return text if len(text) <= limit else text[:limit] + "..."
