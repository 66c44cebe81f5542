"""Communicator building blocks: settings, redaction, tokens, retry policy, transports, request engine.

HTTP is exercised against a tiny scripted http.server in this process (the end-to-end tests
against the PanDA emulator process are in test_communicator_emulator.py).
"""

from __future__ import annotations

import datetime
import json
import logging
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any

import pytest
import requests

from pandaharvester.errors import CommunicatorError, ConfigError
from pandaharvester.harvestercommunicator import settings as settings_mod
from pandaharvester.harvestercommunicator.auth import AuthManager, HostAuth, TokenSource
from pandaharvester.harvestercommunicator.http_client import PandaHttpClient, encode_json, encode_query
from pandaharvester.harvestercommunicator.job_payloads import job_update_dict, normalise_job_result, pilot_api_attributes
from pandaharvester.harvestercommunicator.jobs_api import _event_ranges_of, event_request_args
from pandaharvester.harvestercommunicator.redact import MASK, Redactor, mask_data
from pandaharvester.harvestercommunicator.retry import RetryPolicy, is_retryable_status
from pandaharvester.harvestercommunicator.transport import HttpRequest, TransportError, make_transport

TRANSPORTS = ["requests", "pycurl"]


# ---------------------------------------------------------------- a scripted HTTP server
class Scripted:
    """Replies in order from ``script`` (then repeats the last); records every request."""

    def __init__(self, script: list[Any]) -> None:
        self.script = list(script)
        self.requests: list[dict] = []
        self.lock = threading.Lock()

    def next(self) -> Any:
        with self.lock:
            if len(self.script) > 1:
                return self.script.pop(0)
            return self.script[0]


def _handler(scripted: Scripted):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            scripted.requests.append({"method": self.command, "path": self.path, "headers": dict(self.headers),
                                      "body": body})
            action = scripted.next()
            if action == "drop":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if isinstance(action, tuple) and action[0] == "sleep":
                time.sleep(action[1])
                action = action[2]
            status, payload = action if isinstance(action, tuple) else (200, action)
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)
            self.close_connection = True

        do_GET = _serve
        do_POST = _serve

    return Handler


@pytest.fixture()
def tiny_server():
    servers = []

    def start(script: list[Any]) -> tuple[str, Scripted]:
        scripted = Scripted(script)
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(scripted))
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/api/v1", scripted

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def make_settings(url: str, **kw: Any) -> settings_mod.PandaconSettings:
    values = dict(server_url=url, cache_url=url, timeout=5.0, max_retries=3, retry_backoff=0.01,
                  harvester_id="unit-harvester")
    values.update(kw)
    return settings_mod.PandaconSettings(**values)


def make_client(url: str, transport: str = "requests", verbose: bool = False, auth: AuthManager | None = None,
                redactor: Redactor | None = None, **kw: Any) -> PandaHttpClient:
    redactor = redactor or Redactor()
    auth = auth or AuthManager(on_new_secret=redactor.add_secret)
    settings = make_settings(url, **kw)
    return PandaHttpClient(make_transport(transport), auth, redactor, logging.getLogger("panda.log.communicator"),
                           lambda: settings, verbose=verbose)


ENVELOPE_OK = {"success": True, "message": "", "data": {"StatusCode": 0, "jobs": []}}  # fits acquire_jobs
UPDATE_OK = {"success": True, "message": "", "data": []}  # fits update_jobs_bulk (reply_shapes)


# ---------------------------------------------------------------- settings
class _Section(SimpleNamespace):
    pass


def test_server_url_prefers_ssl_key_then_legacy_then_plain():
    s = _Section(server_api_url_ssl="https://a:1/api/v1/", pandaURLSSL="https://b:2/server/panda")
    assert settings_mod.resolve_server_url(s) == "https://a:1/api/v1"
    s = _Section(server_api_url_ssl="", pandaURLSSL="https://b:2/server/panda", server_api_url="http://c/api/v1")
    assert settings_mod.resolve_server_url(s) == "https://b:2/api/v1"
    s = _Section(server_api_url="http://c:3/api/v1")
    assert settings_mod.resolve_server_url(s) == "http://c:3/api/v1"
    with pytest.raises(ConfigError, match="server_api_url_ssl"):
        settings_mod.resolve_server_url(_Section())


def test_cache_url_falls_back_to_legacy_then_server():
    assert settings_mod.resolve_cache_url(_Section(cache_api_url_ssl="https://x/api/v1"), "S") == "https://x/api/v1"
    assert settings_mod.resolve_cache_url(_Section(pandaCacheURL_W="https://y:9/server/panda"), "S") == \
        "https://y:9/api/v1"
    assert settings_mod.resolve_cache_url(_Section(), "S") == "S"


def test_load_settings_reads_cfg(fresh_home):
    fresh_home({"pandacon": {"server_api_url_ssl": "http://127.0.0.1:1/api/v1", "maxRetries": "5",
                             "retryBackoff": "2", "transport": "pycurl", "auth_type": "oidc",
                             "auth_token": "file:/nonexistent", "ca_cert": "",
                             "allow_credentials_over_http": "True"},
                "propagator": {"nJobsInBulk": "7"}})
    s = settings_mod.load_settings()
    assert (s.server_url, s.max_retries, s.retry_backoff) == ("http://127.0.0.1:1/api/v1", 5, 2.0)
    assert s.transport == "pycurl"
    assert s.auth_type == "oidc" and s.auth_token == "file:/nonexistent" and s.ca_cert is None
    assert s.jobs_in_bulk == 7 and s.harvester_id == "test-harvester"
    assert s.cache_url == "https://pandacache.cern.ch:25443/api/v1"


def test_load_settings_rejects_unknown_transport(fresh_home):
    fresh_home({"pandacon": {"transport": "urllib"}})
    with pytest.raises(ConfigError, match="transport"):
        settings_mod.load_settings()


# ---------------------------------------------------------------- redaction
def test_redactor_masks_tokens_pem_and_keyed_values():
    r = Redactor(["s3cr3t-token-value"])
    text = r.text('Authorization: Bearer abc.def.ghi and s3cr3t-token-value in "tokenKey": "k123456"')
    assert "abc.def.ghi" not in text and "s3cr3t-token-value" not in text and "k123456" not in text
    pem = "-----BEGIN CERTIFICATE-----\nMIIBxyz\n-----END CERTIFICATE-----"
    assert "MIIBxyz" not in r.text(f"proxy={pem}")
    masked = mask_data({"data": {"userProxy": "P", "privateKey": "K", "n": 1}, "job_id": 3})
    assert masked == {"data": {"userProxy": MASK, "privateKey": MASK, "n": 1}, "job_id": 3}
    assert "zzzzzz" not in r.text({"auth_token": "zzzzzz"})
    # PanDA hands pilot/user secrets over in job dicts and update_job replies
    reply = {"StatusCode": 0, "command": "NULL", "pilotSecrets": {"KEY": "pilot-secret-value"}}
    assert "pilot-secret-value" not in r.text(reply)
    assert "user-secret-value" not in r.text(str({"PandaID": 1, "secrets": "user-secret-value"}))
    assert mask_data(reply) == {"StatusCode": 0, "command": "NULL", "pilotSecrets": MASK}


# ---------------------------------------------------------------- tokens and auth
def test_token_file_reread_when_changed_and_forced(tmp_path):
    path = tmp_path / "token"
    path.write_text("first-token\n")
    seen: list[str] = []
    source = TokenSource(f"file:{path}", seen.append)
    assert source.get() == "first-token"
    path.write_text("second-token-longer\n")
    assert source.get() == "second-token-longer"  # size/mtime changed: re-read at once
    assert seen == ["first-token", "second-token-longer"]
    literal = TokenSource("literal-token")
    assert literal.get() == "literal-token"
    missing = TokenSource(f"file:{tmp_path / 'none'}")
    with pytest.raises(CommunicatorError, match="auth_token"):
        missing.get()


def test_auth_manager_multihost_overrides(tmp_path):
    token_file = tmp_path / "tok"
    token_file.write_text("host-token-abc")
    config = tmp_path / "multi.json"
    config.write_text(json.dumps({"other:443": {"auth_type": "oidc", "auth_token": f"file:{token_file}"}}))
    auth = AuthManager(auth_type="x509", cert_file="/c.pem", key_file="/k.pem", ca_cert=False,
                       auth_origin="atlas", multihost_auth_config=str(config))
    default = auth.for_url("https://main:25443/api/v1")
    assert default.client_cert() == ("/c.pem", "/k.pem") and default.headers() == {} and default.verify() is False
    other = auth.for_url("https://other:443/api/v1")
    assert other.auth_type == "oidc" and other.client_cert() is None
    assert other.headers() == {"Authorization": "Bearer host-token-abc", "Origin": "atlas"}
    assert auth.host_tuple("https://other:443/api/v1")[4] == "host-token-abc"
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert AuthManager(multihost_auth_config=str(bad)).hosts == []


def test_verify_never_silently_disabled():
    assert HostAuth("x509", None, None, "/does/not/exist.pem", None, None).verify() is True
    assert HostAuth("x509", None, None, None, None, None).verify() is True
    assert HostAuth("x509", None, None, False, None, None).verify() is False


# ---------------------------------------------------------------- retry policy and encoding
def test_retry_policy_bounds_and_backoff():
    policy = RetryPolicy(max_retries=3, backoff=1.0, jitter=0.0)
    assert policy.attempts == 4 and list(policy.delays()) == [1.0, 2.0, 4.0]
    assert RetryPolicy(max_retries=10, backoff=30, jitter=0).delay(5) == 60.0
    assert is_retryable_status(500) and is_retryable_status(503) and is_retryable_status(429)
    assert not is_retryable_status(404) and not is_retryable_status(403)


def test_payload_encoding_datetimes_and_lists():
    when = datetime.datetime(2026, 11, 25, 11, 0, 0, 123)
    assert json.loads(encode_json({"t": when})) == {"t": "datetime/2026-11-25 11:00:00.000123"}
    # a list goes as repeated keys (what requests' params= does, the form the real server casts to a list)
    query = encode_query({"job_ids": [1, 2], "flag": True, "none": None, "when": when})
    assert query == "job_ids=1&job_ids=2&flag=true&when=datetime%2F2026-11-25+11%3A00%3A00.000123"
    prepared = requests.Request("GET", "http://h/x", params={"job_ids": [1, 2]}).prepare()
    assert prepared.url == "http://h/x?" + encode_query({"job_ids": (1, 2)})
    assert encode_query({"job_ids": {2, 1}}) == "job_ids=1&job_ids=2"
    assert encode_query({"job_ids": [3]}) == "job_ids=3"


# ---------------------------------------------------------------- transports
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_transport_get_post_upload(tiny_server, transport):
    url, scripted = tiny_server([ENVELOPE_OK])
    t = make_transport(transport)
    r = t.send(HttpRequest("GET", f"{url}/system/is_alive?a=1", {"Accept": "application/json"}))
    assert r.status_code == 200 and json.loads(r.content) == ENVELOPE_OK
    body = b'{"k": "v"}' * 500  # > 1 kB: no Expect/100-continue stall
    t0 = time.monotonic()
    r = t.send(HttpRequest("POST", f"{url}/x/y", {"Content-Type": "application/json"}, body=body))
    assert r.status_code == 200 and time.monotonic() - t0 < 0.9
    r = t.send(HttpRequest("POST", f"{url}/file_server/upload", {}, files={"file": ("log.gz", b"\x00\x01abc")}))
    assert r.status_code == 200
    assert scripted.requests[0]["path"] == "/api/v1/system/is_alive?a=1"
    assert scripted.requests[1]["body"] == body
    assert b"multipart/form-data" in scripted.requests[2]["headers"]["Content-Type"].encode()
    assert b"\x00\x01abc" in scripted.requests[2]["body"]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_transport_errors_are_transport_errors(tiny_server, transport):
    url, _ = tiny_server([("sleep", 2.0, ENVELOPE_OK)])
    t = make_transport(transport)
    with pytest.raises(TransportError) as info:
        t.send(HttpRequest("GET", f"{url}/slow", {}, timeout=0.3))
    assert info.value.timeout and not info.value.never_sent  # sent: the reply did not come in time
    with pytest.raises(TransportError) as info:
        t.send(HttpRequest("GET", f"http://127.0.0.1:{_closed_port()}/x", {}, timeout=2))
    assert info.value.never_sent and not info.value.timeout  # refused: the request never left
    with pytest.raises(TransportError) as info:
        t.send(HttpRequest("GET", "http://no-such-host.invalid/x", {}, timeout=2))
    assert info.value.never_sent  # name not resolved


def _closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_transport_tells_a_lost_reply_from_a_request_never_sent(tiny_server, transport):
    url, _ = tiny_server(["drop"])
    with pytest.raises(TransportError) as info:
        make_transport(transport).send(HttpRequest("POST", f"{url}/pilot/acquire_jobs", {}, body=b"{}"))
    assert not info.value.never_sent  # connection closed after the request was sent


# ---------------------------------------------------------------- request engine
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_client_retries_transient_failures_with_identical_body(tiny_server, transport):
    url, scripted = tiny_server([(500, {"success": False, "message": "boom"}), "drop", (200, b"{trunc"),
                                 (503, b"busy"), UPDATE_OK])
    client = make_client(url, transport, max_retries=4)
    ok, reply = client.request("POST", "pilot/update_jobs_bulk", {"job_list": [{"job_id": 1}]})
    assert ok and reply == UPDATE_OK
    assert len(scripted.requests) == 5
    assert len({r["body"] for r in scripted.requests}) == 1  # the same bytes every time


def test_client_gives_up_after_max_retries(tiny_server):
    url, scripted = tiny_server([(500, b"down")])
    client = make_client(url, max_retries=2)
    ok, err = client.request("GET", "system/is_alive", {})
    assert not ok and "StatusCode=500" in err and "after 3 attempts" in err
    assert len(scripted.requests) == 3


def test_client_does_not_retry_application_failure_or_4xx(tiny_server):
    url, scripted = tiny_server([{"success": False, "message": "No jobs in PanDA", "data": None}])
    client = make_client(url)
    ok, reply = client.request("POST", "pilot/acquire_jobs", {"site_name": "X"})
    assert ok and reply["success"] is False and len(scripted.requests) == 1
    url2, scripted2 = tiny_server([(403, b"forbidden")])
    ok, err = make_client(url2).request("GET", "system/is_alive")
    assert not ok and "StatusCode=403" in err and len(scripted2.requests) == 1


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("first", ["drop", (500, b"boom"), (502, b"bad gateway"), (200, b'{"success": tr'),
                                   (200, b"[1]")])
def test_non_idempotent_call_not_retried_once_it_may_have_been_applied(tiny_server, transport, first):
    url, scripted = tiny_server([first, ENVELOPE_OK])
    result = make_client(url, transport).call("POST", "pilot/acquire_jobs", {"site_name": "X"}, idempotent=False)
    assert not result.ok and result.maybe_applied and len(scripted.requests) == 1
    assert result.started is not None and result.ended >= result.started
    assert re.fullmatch(r"\S+Z/\S+Z", result.window_text())
    # the same reply to an idempotent call is retried as before
    url, scripted = tiny_server([first, UPDATE_OK])
    assert make_client(url, transport).request("POST", "pilot/update_jobs_bulk", {"job_list": []}) \
        == (True, UPDATE_OK)
    assert len(scripted.requests) == 2


@pytest.mark.parametrize("first", [(503, b"busy"), (429, b"slow down"), (408, b"request timeout")])
def test_non_idempotent_call_retried_when_the_server_did_not_process_it(tiny_server, first):
    url, scripted = tiny_server([first, ENVELOPE_OK])
    result = make_client(url).call("POST", "pilot/acquire_jobs", {"site_name": "X"}, idempotent=False)
    assert result.ok and result.value == ENVELOPE_OK and len(scripted.requests) == 2 and not result.maybe_applied


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_non_idempotent_call_retried_while_the_server_cannot_be_reached(transport):
    client = make_client(f"http://127.0.0.1:{_closed_port()}/api/v1", transport, max_retries=2)
    result = client.call("POST", "pilot/acquire_jobs", {"site_name": "X"}, idempotent=False)
    assert not result.ok and not result.maybe_applied and result.attempts == 3
    assert "gave up after 3 attempts" in result.value


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture()
def captured():
    """Records of panda.log.communicator, whatever logging configuration other tests left."""
    logger = logging.getLogger("panda.log.communicator")
    capture = _Capture()
    old_level = logger.level
    logger.addHandler(capture)
    logger.setLevel(logging.DEBUG)
    yield capture
    logger.removeHandler(capture)
    logger.setLevel(old_level)


def test_client_sends_bearer_and_origin_and_never_logs_them(tiny_server, tmp_path, captured):
    token = "tok-" + "Z" * 40
    token_file = tmp_path / "token"
    token_file.write_text(token)
    url, scripted = tiny_server([{"success": True, "message": "", "data": {"tokenKey": "key-" + "Q" * 30}}])
    redactor = Redactor()
    auth = AuthManager(auth_type="oidc", auth_token=f"file:{token_file}", auth_origin="atlas.production",
                       on_new_secret=redactor.add_secret, allow_plain_http=True)  # tiny_server is plain HTTP
    client = make_client(url, verbose=True, auth=auth, redactor=redactor)
    ok, reply = client.request("GET", "creds/get_token_key", {"client_name": "c"})
    assert ok and reply["data"]["tokenKey"].startswith("key-")
    headers = scripted.requests[0]["headers"]
    assert headers["Authorization"] == f"Bearer {token}" and headers["Origin"] == "atlas.production"
    assert headers["Accept"] == "application/json"
    assert "URL=" in captured.text and "credential reply not logged" in captured.text
    assert token not in captured.text and "Q" * 30 not in captured.text


def test_verbose_lines_are_not_built_when_debug_is_off(tiny_server, monkeypatch):
    """[pandacon] verbose with the communicator's logger at INFO: the request/reply text (masking,
    redaction, clipping of whole payloads) is never built."""
    from pandaharvester.harvestercommunicator import http_client

    masked: list = []
    monkeypatch.setattr(http_client, "mask_data", lambda data: masked.append(data) or data)
    logger = logging.getLogger("panda.log.communicator")
    old_level = logger.level
    url, _scripted = tiny_server([ENVELOPE_OK, ENVELOPE_OK])
    client = make_client(url, verbose=True)
    try:
        logger.setLevel(logging.INFO)
        assert client.request("POST", "harvester/heartbeat", {"harvester_id": "h", "data": {"k": 1}})[0]
        assert masked == []
        logger.setLevel(logging.DEBUG)  # the same call at DEBUG builds them (the test can fail)
        assert client.request("POST", "harvester/heartbeat", {"harvester_id": "h", "data": {"k": 1}})[0]
        assert masked
    finally:
        logger.setLevel(old_level)


def test_client_unreadable_token_fails_cleanly(tiny_server, tmp_path):
    url, scripted = tiny_server([ENVELOPE_OK])
    auth = AuthManager(auth_type="oidc", auth_token=f"file:{tmp_path / 'missing'}")
    ok, err = make_client(url, auth=auth).request("GET", "system/is_alive")
    assert not ok and "auth token file" in err and scripted.requests == []


# ---------------------------------------------------------------- payloads
class _FakeJob:
    def __init__(self, status: str, pilot_closed: bool = False, final: bool = False) -> None:
        self.PandaID, self.computingSite, self.subStatus, self.attemptNr = 42, "SITE", "sub", 2
        self.status, self._pilot_closed, self._final = status, pilot_closed, final
        self.startTime = datetime.datetime(2026, 1, 2, 3, 4, 5)
        self.endTime = None
        self.nCore = 8
        self.metaData = {"m": 1}
        self.outputFilesToReport = "<xml/>"

    def get_job_attributes_for_panda(self) -> dict:
        return {"cpu_consumption_time": 10}

    def get_status(self) -> str:
        return self.status

    def is_pilot_closed(self) -> bool:
        return self._pilot_closed

    def is_final_status(self) -> bool:
        return self._final


def test_job_update_dict_shapes():
    d = job_update_dict(_FakeJob("running"))
    assert d == {"cpu_consumption_time": 10, "job_id": 42, "site_name": "SITE", "job_status": "running",
                 "job_sub_status": "sub", "attempt_nr": 2, "start_time": "2026-01-02 03:04:05", "core_count": 8}
    d = job_update_dict(_FakeJob("cancelled", pilot_closed=True, final=True))
    assert (d["job_status"], d["job_sub_status"]) == ("failed", "pilot_closed")
    assert d["meta_data"] == '{"m": 1}' and d["job_output_report"] == "<xml/>"
    d = job_update_dict(_FakeJob("missed", final=True))
    assert (d["job_status"], d["job_sub_status"]) == ("failed", "missed")


def test_normalise_job_results():
    assert normalise_job_result({"success": True, "data": {"StatusCode": 0, "command": "tobekilled"}}) == \
        {"StatusCode": 0, "command": "tobekilled", "ErrorDiag": ""}
    bad = normalise_job_result({"success": False, "message": "not found", "data": None})
    assert bad["StatusCode"] == 999 and bad["ErrorDiag"] == "not found"
    legacy = normalise_job_result({"content": json.dumps({"StatusCode": 0, "command": "NULL"})})
    assert legacy["StatusCode"] == 0
    assert normalise_job_result(12)["StatusCode"] == 999


def test_pilot_attributes_become_update_job_arguments():
    dropped: list = []
    got = pilot_api_attributes(
        {"transExitCode": "0", "pilotErrorCode": "1305", "nEvents": "100.0", "maxRSS": "2048", "avgRSS": "12.5",
         "cpuConversionFactor": "1", "batchID": 123, "coreCount": 8, "workdir": "/scratch/x", "token": "t",
         "nInputFiles": "many", "core_count": "4", "startTime": "2026-01-02 03:04:05", "pilotErrorDiag": None},
        dropped)
    assert got == {"trans_exit_code": 0, "pilot_error_code": 1305, "n_events": 100, "max_rss": 2048, "avg_rss": 12.5,
                   "cpu_conversion_factor": 1, "batch_id": "123", "core_count": 4, "start_time": "2026-01-02 03:04:05"}
    assert sorted(name for name, _, _ in dropped) == ["nInputFiles", "token", "workdir"]
    assert ("nInputFiles", "many", "not a valid int") in dropped


def test_event_request_args_and_reply_shapes():
    log = logging.getLogger("panda.log.communicator")
    args = event_request_args("42", {"pandaID": "42", "taskID": "7", "jobsetID": "9", "segment_id": 3,
                                     "coreCount": 8}, log)
    assert args == {"job_id": 42, "task_id": 7, "jobset_id": 9, "segment_id": 3}
    assert event_request_args(5, {}, log) == {"job_id": 5, "jobset_id": None, "task_id": None}
    ranges = [{"eventRangeID": "1-2-3-4-1"}]
    assert _event_ranges_of({"StatusCode": 0, "eventRanges": ranges}) == ranges
    assert _event_ranges_of(ranges) == ranges  # API v1 servers give the bare list
    assert _event_ranges_of(json.dumps(ranges)) == ranges
    assert _event_ranges_of({"StatusCode": 0, "eventRanges": json.dumps(ranges)}) == ranges
    assert _event_ranges_of({"StatusCode": 30}) is None and _event_ranges_of("garbage") is None


def test_communicator_copes_with_api_v1_event_reply_shapes(tiny_server, fresh_home):
    from pandaharvester.harvestercommunicator.panda_communicator import PandaCommunicator

    ranges = [{"eventRangeID": "7-42-1-1-1", "startEvent": 1, "lastEvent": 1}]
    url, scripted = tiny_server([
        {"success": True, "message": "", "data": ranges},
        {"success": True, "message": "", "data": {"Returns": [True], "Commands": {"42": "tobekilled"}}},
    ])
    fresh_home({"pandacon": {"server_api_url_ssl": url, "cache_api_url_ssl": url, "maxRetries": 0}})
    com = PandaCommunicator()
    ok, got = com.get_event_ranges({42: {"pandaID": 42, "taskID": "7", "jobsetID": "9", "nRanges": 1}}, False, None)
    assert ok and got == {42: ranges}
    sent = json.loads(scripted.requests[0]["body"])
    assert sent == {"job_id": 42, "task_id": 7, "jobset_id": 9, "n_ranges": 1}
    ret = com.update_event_ranges([{"eventRanges": [{"eventRangeID": "7-42-1-1-1", "eventStatus": "finished"}]}],
                                  com.make_logger())
    assert ret == {"StatusCode": 0, "Returns": [True], "Commands": {"42": "tobekilled"}}


def test_update_events_skips_jobs_without_events_and_leaves_their_job_params_undecoded():
    from pandaharvester.harvestercommunicator.jobs_api import JobsApiMixin
    from pandaharvester.harvestercore.event_spec import EventSpec
    from pandaharvester.harvestercore.job_spec import JobSpec
    from pandaharvester.harvestercore.spec_base import LazyBlob

    sent: list = []
    fake = SimpleNamespace(update_event_ranges=lambda ranges, log: sent.append(ranges) or {"StatusCode": 0,
                                                                                          "Returns": [True]})
    quiet = JobSpec()
    quiet.PandaID = 1
    quiet.__dict__["jobParams"] = LazyBlob('{"sourceURL": "https://x"}')
    busy = JobSpec()
    busy.PandaID = 2
    event = EventSpec()
    event.eventRangeID, event.eventStatus, event.PandaID = "r-1", "finished", 2
    busy.add_event(event, None)
    JobsApiMixin._update_events_of_jobs(fake, [quiet, busy], logging.getLogger("test"))
    assert type(quiet.__dict__["jobParams"]) is LazyBlob  # never decoded
    assert len(sent) == 1 and sent[0][0]["eventRanges"][0]["eventRangeID"] == "r-1"
