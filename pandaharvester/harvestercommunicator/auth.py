"""Credentials the communicator presents: X.509 client certificates or OIDC bearer tokens.

``[pandacon] auth_type`` selects ``oidc`` (``Authorization: Bearer <token>`` and
``Origin: <auth_origin>``) or, for any other value (``x509``, ``none``, as in the original),
certificates (``cert_file``/``key_file`` presented over TLS, ``ca_cert`` to verify the server).
A token is never sent to a plain ``http://`` URL unless ``[pandacon] allow_credentials_over_http``
(:func:`.settings.check_plain_http`). ``auth_token`` is the token itself or ``file:<path>``; a file is
re-read when it changes (checked on each request), on :meth:`AuthManager.force_renewal`, and
at least every :data:`TOKEN_REFRESH_SECONDS`.

``[pandacon] multihost_auth_config`` names a JSON file ``{"host:port": {auth_type, cert_file,
key_file, ca_cert, auth_token}}`` overriding those values for one server (by URL netloc).
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
from typing import Any, Callable
from urllib.parse import urlparse

from .settings import check_plain_http, normalise_auth_type, read_allow_plain_http, warn_no_verify

TOKEN_REFRESH_SECONDS = 600.0


@dataclasses.dataclass(frozen=True)
class HostAuth:
    """The credentials to use for one request."""

    auth_type: str
    cert_file: str | None
    key_file: str | None
    ca_cert: str | bool | None
    token: str | None
    origin: str | None

    def headers(self) -> dict[str, str]:
        """Extra HTTP headers this auth needs (empty for x509)."""
        if self.auth_type != "oidc":
            return {}
        headers = {}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if self.origin:
            headers["Origin"] = self.origin
        return headers

    def client_cert(self) -> tuple[str, str] | None:
        """``(cert, key)`` to present for x509 over TLS, or None."""
        if self.auth_type != "x509" or not self.cert_file:
            return None
        return self.cert_file, self.key_file or self.cert_file

    def verify(self) -> str | bool:
        """What to verify the server's certificate with: a CA file, True (system CAs) or False."""
        if self.ca_cert is False:
            return False
        if isinstance(self.ca_cert, str) and self.ca_cert:
            if os.path.exists(self.ca_cert):
                return self.ca_cert
            return True  # configured bundle missing: fall back to the system CAs, never to no check
        return True


class TokenSource:
    """A token given literally or as ``file:<path>``; file contents are cached and re-read on change."""

    def __init__(self, spec: str | None, on_new_secret: Callable[[str], None] | None = None,
                 refresh_seconds: float = TOKEN_REFRESH_SECONDS) -> None:
        self.spec = spec
        self._on_new_secret = on_new_secret
        self._refresh_seconds = refresh_seconds
        self._lock = threading.Lock()
        self._value: str | None = None
        self._stamp: tuple[int, int] | None = None
        self._read_at: float | None = None
        self._forced = True

    @property
    def path(self) -> str | None:
        """The token file, or None for a literal token."""
        if self.spec and self.spec.startswith("file:"):
            return self.spec[len("file:"):]
        return None

    def force_renewal(self) -> None:
        """Make the next :meth:`get` re-read the token file."""
        with self._lock:
            self._forced = True

    def get(self) -> str | None:
        """The current token (re-reading the file when it changed, was forced or is old)."""
        if not self.spec:
            return None
        path = self.path
        with self._lock:
            if path is None:
                if self._value is None:
                    self._set(self.spec.strip())
                return self._value
            stamp = _file_stamp(path)
            stale = (self._forced or self._value is None or stamp != self._stamp
                     or (self._read_at is not None and time.monotonic() - self._read_at > self._refresh_seconds))
            if stale:
                try:
                    with open(path) as stream:
                        value = stream.read().strip()
                except OSError as exc:
                    if self._value is None:
                        from pandaharvester.errors import CommunicatorError

                        raise CommunicatorError(f"cannot read the auth token file {path}: {exc.strerror}; "
                                                "check [pandacon] auth_token") from None
                    return self._value  # keep the previous token until the file is back
                self._set(value)
                self._stamp = stamp
                self._read_at = time.monotonic()
                self._forced = False
            return self._value

    def _set(self, value: str) -> None:
        self._value = value
        if self._on_new_secret is not None and value:
            self._on_new_secret(value)


def _file_stamp(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


@dataclasses.dataclass
class _HostEntry:
    values: dict[str, Any]
    token: TokenSource | None


class AuthManager:
    """Resolves the credentials for a base URL, including per-host overrides."""

    def __init__(self, auth_type: str = "x509", cert_file: str | None = None, key_file: str | None = None,
                 ca_cert: str | bool | None = None, auth_token: str | None = None, auth_origin: str | None = None,
                 multihost_auth_config: str | None = None,
                 on_new_secret: Callable[[str], None] | None = None, logger: Any = None,
                 allow_plain_http: bool | None = None) -> None:
        self.auth_type = normalise_auth_type(auth_type)
        self.cert_file = cert_file
        self.key_file = key_file
        self.ca_cert = ca_cert
        self.auth_origin = auth_origin
        self._on_new_secret = on_new_secret
        self._allow_plain_http = allow_plain_http
        self._token = TokenSource(auth_token, on_new_secret)
        self._hosts: dict[str, _HostEntry] = {}
        self._netlocs: dict[str, str] = {}
        if multihost_auth_config:
            self._hosts = self._load_multihost(multihost_auth_config, logger)

    def _load_multihost(self, path: str, logger: Any) -> dict[str, _HostEntry]:
        try:
            with open(path) as stream:
                raw = json.load(stream)
            if not isinstance(raw, dict):
                raise ValueError("the top level must be an object {host: {...}}")
        except (OSError, ValueError) as exc:
            if logger is not None:
                logger.warning(f"ignoring [pandacon] multihost_auth_config {path}: {exc}")
            return {}
        hosts = {}
        for host, values in raw.items():
            if not isinstance(values, dict):
                continue
            token = TokenSource(values["auth_token"], self._on_new_secret) if values.get("auth_token") else None
            hosts[host] = _HostEntry(values=dict(values), token=token)
        return hosts

    @property
    def hosts(self) -> list[str]:
        """Hosts with their own auth settings."""
        return list(self._hosts)

    def force_renewal(self) -> None:
        """Re-read every token file at the next request."""
        self._token.force_renewal()
        for entry in self._hosts.values():
            if entry.token is not None:
                entry.token.force_renewal()

    def renew_tokens(self) -> None:
        """Re-read token files now where they are due (changed, forced or old)."""
        if self.auth_type == "oidc" or self._token.spec:
            self._safe_get(self._token)
        for entry in self._hosts.values():
            if entry.token is not None:
                self._safe_get(entry.token)

    @staticmethod
    def _safe_get(source: TokenSource) -> None:
        try:
            source.get()
        except Exception:
            pass

    def _netloc(self, base_url: str) -> str:
        netloc = self._netlocs.get(base_url)
        if netloc is None:
            netloc = urlparse(base_url).netloc
            self._netlocs[base_url] = netloc
        return netloc

    @property
    def allow_plain_http(self) -> bool:
        """Whether a token may go to a plain ``http://`` URL (``[pandacon] allow_credentials_over_http``)."""
        if self._allow_plain_http is None:
            self._allow_plain_http = read_allow_plain_http()
        return self._allow_plain_http

    def for_url(self, base_url: str) -> HostAuth:
        """The credentials for requests to ``base_url`` (default ones unless the host is overridden).
        ConfigError when they hold a token and ``base_url`` is plain HTTP (unless allowed)."""
        entry = self._hosts.get(self._netloc(base_url))
        if entry is None:
            auth = HostAuth(self.auth_type, self.cert_file, self.key_file, self.ca_cert,
                            self._token.get() if self.auth_type == "oidc" else None, self.auth_origin)
        else:
            values = entry.values
            auth_type = normalise_auth_type(values.get("auth_type", self.auth_type))
            token = None
            if auth_type == "oidc":
                token = entry.token.get() if entry.token is not None else self._token.get()
            auth = HostAuth(auth_type, values.get("cert_file", self.cert_file), values.get("key_file", self.key_file),
                            values.get("ca_cert", self.ca_cert), token, values.get("auth_origin", self.auth_origin))
        if auth.token:
            check_plain_http(base_url, "the OIDC token", self.allow_plain_http)
        if auth.ca_cert is False:
            warn_no_verify(base_url, "[pandacon] ca_cert = False" if entry is None
                           else f"[pandacon] multihost_auth_config {self._netloc(base_url)}: ca_cert = False")
        return auth

    def host_tuple(self, base_url: str) -> tuple:
        """``(auth_type, cert_file, key_file, ca_cert, auth_token)`` as the original returns it."""
        auth = self.for_url(base_url)
        return auth.auth_type, auth.cert_file, auth.key_file, auth.ca_cert, auth.token
