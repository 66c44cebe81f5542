"""What the communicator reads from the cfg, gathered in one place.

Every value comes from ``harvester_config`` at the moment :func:`load_settings` is called
(construction of a communicator, and again for each request for the values that may change
at run time: URLs, timeout, retries). Optional keys are read with ``getattr`` defaults, so a
cfg without them works.

URL rules (the one decision about plain HTTP):

* ``server_url`` = ``[pandacon] server_api_url_ssl``; if absent, ``scheme://netloc`` of
  ``pandaURLSSL`` + ``/api/v1``; if that is absent too, ``server_api_url`` (then ``pandaURL``).
* ``cache_url`` = ``cache_api_url_ssl``; else from ``pandaCacheURL_W``; else ``server_url``.
* Whatever URL results is used as written: an ``http://`` URL is plain HTTP (no TLS, so no
  client certificate or proxy is ever presented), an ``https://`` URL is TLS with the configured auth.
* A bearer token would travel in clear to an ``http://`` URL: that is refused (ConfigError at
  start, for the default host; per request for a ``multihost_auth_config`` host) unless
  ``[pandacon] allow_credentials_over_http = True``, which is then logged as a WARNING once per
  URL and process (every start).

The server's certificate is verified (``[pandacon] ca_cert``: a CA bundle, or unset/True for the
system's); ``ca_cert = False``, as in the original, turns that off, logged as a WARNING once per
server and process (every start). A certificate failing verification is one error naming the
server and ``ca_cert``, not retried.

``auth_type``: ``oidc`` means bearer tokens; anything else (``x509``, ``none``, empty) means
certificates, as in the original.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any
from urllib.parse import urlparse

API_SUFFIX = "/api/v1"

DEFAULT_TIMEOUT = 180.0
DEFAULT_MAX_RETRIES = 3
DEFAULT_RETRY_BACKOFF = 1.0
DEFAULT_EVENTS_CHUNK_SIZE = 5120
DEFAULT_JOBS_IN_BULK = 100
TRANSPORT_NAMES = ("requests", "pycurl")
ALLOW_PLAIN_HTTP_KEY = "allow_credentials_over_http"

# URLs already warned about (credentials allowed over plain HTTP): one WARNING per URL and process
_warned_plain_http: set[str] = set()
# URLs already warned about (server certificate not verified: ca_cert = False)
_warned_no_verify: set[str] = set()
_warned_lock = threading.Lock()


@dataclasses.dataclass(frozen=True)
class PandaconSettings:
    """The ``[pandacon]`` (and a few other) values the communicator uses."""

    server_url: str
    cache_url: str
    timeout: float = DEFAULT_TIMEOUT
    max_retries: int = DEFAULT_MAX_RETRIES
    retry_backoff: float = DEFAULT_RETRY_BACKOFF
    transport: str = "requests"
    verbose: bool = False
    use_inspect: bool = False
    auth_type: str = "x509"
    cert_file: str | None = None
    key_file: str | None = None
    ca_cert: str | bool | None = None
    auth_token: str | None = None
    auth_origin: str | None = None
    multihost_auth_config: str | None = None
    events_chunk_size: int = DEFAULT_EVENTS_CHUNK_SIZE
    jobs_in_bulk: int = DEFAULT_JOBS_IN_BULK
    harvester_id: str | None = None
    idds_url: str | None = None
    allow_credentials_over_http: bool = False


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() in ("", "None"))


def _opt_str(section: Any, key: str) -> str | None:
    value = getattr(section, key, None)
    if _blank(value):
        return None
    return str(value).strip()


def _as_bool(value: Any, default: bool = False) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def _as_number(value: Any, default: float, kind: type, key: str, section: str = "pandacon") -> Any:
    if _blank(value):
        return kind(default)
    try:
        return kind(value)
    except (TypeError, ValueError):
        from pandaharvester.errors import ConfigError

        raise ConfigError(f"[{section}] {key} = {value!r} is not a number: set it to a plain number") from None


def api_base_from_legacy(url: str) -> str:
    """``https://host:25443/server/panda`` -> ``https://host:25443/api/v1``."""
    parsed = urlparse(url)
    return f"{parsed.scheme}://{parsed.netloc}{API_SUFFIX}"


def resolve_server_url(section: Any) -> str:
    """The API v1 base URL of the PanDA server (see the module docstring for the order)."""
    url = _opt_str(section, "server_api_url_ssl")
    if url:
        return url.rstrip("/")
    legacy = _opt_str(section, "pandaURLSSL")
    if legacy:
        return api_base_from_legacy(legacy)
    url = _opt_str(section, "server_api_url")
    if url:
        return url.rstrip("/")
    legacy = _opt_str(section, "pandaURL")
    if legacy:
        return api_base_from_legacy(legacy)
    from pandaharvester.errors import ConfigError

    raise ConfigError("[pandacon] has no PanDA server URL: set server_api_url_ssl "
                      "(e.g. https://pandaserver.cern.ch:25443/api/v1)")


def resolve_cache_url(section: Any, server_url: str) -> str:
    """The API v1 base URL of the PanDA cache (uploads)."""
    url = _opt_str(section, "cache_api_url_ssl")
    if url:
        return url.rstrip("/")
    legacy = _opt_str(section, "pandaCacheURL_W")
    if legacy:
        return api_base_from_legacy(legacy)
    return server_url


def _ca_cert(section: Any) -> str | bool | None:
    value = getattr(section, "ca_cert", None)
    if isinstance(value, bool):
        return value
    if _blank(value):
        return None
    text = str(value).strip()
    if text.lower() == "false":
        return False
    if text.lower() == "true":
        return True
    return text


def normalise_auth_type(value: Any) -> str:
    """``oidc`` (bearer token) or ``x509`` (certificates): anything but oidc means certificates."""
    return "oidc" if str(value or "").strip().lower() == "oidc" else "x509"


def is_plain_http(url: str | None) -> bool:
    """True for an ``http://`` URL (no TLS)."""
    return bool(url) and str(url).strip().lower().startswith("http://")


def read_allow_plain_http() -> bool:
    """``[pandacon] allow_credentials_over_http`` now (False when unset or without a cfg)."""
    try:
        from pandaharvester.harvesterconfig import harvester_config

        return _as_bool(getattr(harvester_config.pandacon, ALLOW_PLAIN_HTTP_KEY, False))
    except Exception:
        return False


def check_plain_http(url: str, what: str, allowed: bool) -> None:
    """Refuse to send ``what`` (a credential) in clear to ``url`` when it is ``http://``, unless
    ``allowed``: then one WARNING per URL and process."""
    if not is_plain_http(url):
        return
    if not allowed:
        from pandaharvester.errors import ConfigError

        raise ConfigError(f"[pandacon] refusing to send {what} in clear to {url} (plain HTTP): use an https:// "
                          f"URL, or set {ALLOW_PLAIN_HTTP_KEY} = True to accept that risk")
    with _warned_lock:
        if url in _warned_plain_http:
            return
        _warned_plain_http.add(url)
    from .base_communicator import _logger

    _logger.warning(f"[pandacon] {ALLOW_PLAIN_HTTP_KEY} = True: {what} is sent in clear to {url} (plain HTTP); "
                    "anyone on the network path can read it. Use an https:// URL")


def warn_no_verify(url: str, where: str = "[pandacon] ca_cert = False") -> None:
    """One WARNING per https URL and process that its server's certificate is not verified
    (and urllib3's per-request InsecureRequestWarning silenced: this says it once)."""
    if not str(url).lower().startswith("https://"):
        return
    from urllib.parse import urlparse

    parsed = urlparse(url)
    root = f"{parsed.scheme}://{parsed.netloc}"
    with _warned_lock:
        if root in _warned_no_verify:
            return
        _warned_no_verify.add(root)
    try:
        import urllib3

        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    except Exception:
        pass
    from .base_communicator import _logger

    _logger.warning(f"{where}: the certificate of {root} is not verified, so anyone on the network path can "
                    "impersonate PanDA and read the credentials sent to it; set ca_cert to the CA bundle instead")


def start_problems() -> list[str]:
    """The master's start-up check of ``[pandacon]`` when the PanDA communicator is in use: the
    section is there and names a server URL, no token goes to a plain http:// URL, the values fit;
    one line each, [] if none."""
    from pandaharvester.errors import ConfigError
    from pandaharvester.harvesterconfig import harvester_config, schema

    if str(schema.cfg_value("communicator", "className") or "") != "PandaCommunicator":
        return []
    section = getattr(harvester_config, "pandacon", None)
    if section is None:
        return [f"{harvester_config.origin_of('pandacon')} has no [pandacon] section: add it with server_api_url_ssl "
                f"= https://pandaserver.cern.ch:25443/api/v1 (the PanDA server); see {schema.TEMPLATE_NAME}"]
    try:
        resolve_server_url(section)
    except ConfigError as exc:
        return [f"{harvester_config.origin_of('pandacon')} {exc}"]
    try:
        load_settings()
    except ConfigError as exc:
        return [str(exc)]
    return []


def load_settings() -> PandaconSettings:
    """Read the communicator's settings from ``harvester_config`` now."""
    from pandaharvester.harvesterconfig import harvester_config

    pandacon = harvester_config.pandacon
    server_url = resolve_server_url(pandacon)
    transport = (_opt_str(pandacon, "transport") or "requests").lower()
    if transport not in TRANSPORT_NAMES:
        from pandaharvester.errors import ConfigError

        raise ConfigError(f"[pandacon] transport = {transport!r} is unknown: use one of {', '.join(TRANSPORT_NAMES)}")
    auth_type = normalise_auth_type(_opt_str(pandacon, "auth_type"))
    auth_token = _opt_str(pandacon, "auth_token")
    allow_plain = read_allow_plain_http()
    cache_url = resolve_cache_url(pandacon, server_url)
    if auth_type == "oidc" and auth_token:
        for url in dict.fromkeys((server_url, cache_url)):
            check_plain_http(url, "the OIDC token ([pandacon] auth_token)", allow_plain)
    propagator = getattr(harvester_config, "propagator", None)
    master = getattr(harvester_config, "master", None)
    verbose = _as_bool(getattr(pandacon, "verbose", False))
    return PandaconSettings(
        server_url=server_url,
        cache_url=cache_url,
        timeout=_as_number(getattr(pandacon, "timeout", None), DEFAULT_TIMEOUT, float, "timeout"),
        max_retries=max(0, _as_number(getattr(pandacon, "maxRetries", None), DEFAULT_MAX_RETRIES, int, "maxRetries")),
        retry_backoff=max(0.0, _as_number(getattr(pandacon, "retryBackoff", None), DEFAULT_RETRY_BACKOFF, float,
                                          "retryBackoff")),
        transport=transport,
        verbose=verbose,
        use_inspect=verbose and _as_bool(getattr(pandacon, "useInspect", False)),
        auth_type=auth_type,
        cert_file=_opt_str(pandacon, "cert_file"),
        key_file=_opt_str(pandacon, "key_file"),
        ca_cert=_ca_cert(pandacon),
        auth_token=auth_token,
        auth_origin=_opt_str(pandacon, "auth_origin"),
        multihost_auth_config=_opt_str(pandacon, "multihost_auth_config"),
        events_chunk_size=max(1, _as_number(getattr(pandacon, "getEventsChunkSize", None), DEFAULT_EVENTS_CHUNK_SIZE,
                                            int, "getEventsChunkSize")),
        jobs_in_bulk=max(1, _as_number(getattr(propagator, "nJobsInBulk", None), DEFAULT_JOBS_IN_BULK, int,
                                       "nJobsInBulk", "propagator")),
        harvester_id=_opt_str(master, "harvester_id") if master is not None else None,
        idds_url=_opt_str(pandacon, "iddsURL"),
        allow_credentials_over_http=allow_plain,
    )
