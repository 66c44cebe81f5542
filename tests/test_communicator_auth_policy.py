"""[pandacon] auth_type as the original reads it, and no bearer token in clear to a plain http:// URL.

Against the PanDA emulator as a real process: HTTPS with a client certificate for
``auth_type = none``, plain HTTP with bearer tokens for the token policy.
"""

from __future__ import annotations

import json
import logging
import uuid

import pytest

from pandaharvester.errors import ConfigError
from pandaharvester.harvestercommunicator import settings as settings_mod
from pandaharvester.harvestercommunicator.auth import AuthManager
from pandaharvester.harvestercommunicator.panda_communicator import PandaCommunicator
from pandaharvester.harvestertest.panda_emulator.launcher import start_emulator

TOKEN = "tokP-" + "9f8e7d6c" * 5


@pytest.fixture(scope="module")
def emu_tls(tmp_path_factory):
    emu = start_emulator(tmp_path_factory.mktemp("emu_tls_auth"), tls=True, seed=3)
    yield emu
    emu.stop()


@pytest.fixture(scope="module")
def emu_token_http(tmp_path_factory):
    emu = start_emulator(tmp_path_factory.mktemp("emu_tok_http"), tokens=[TOKEN], seed=4)
    yield emu
    emu.stop()


@pytest.fixture()
def make_comm(fresh_home):
    def make(emu, **pandacon):
        values = {"server_api_url_ssl": emu.base_url, "cache_api_url_ssl": emu.base_url, "timeout": 10,
                  "maxRetries": 1, "retryBackoff": 0.01, "cert_file": "", "key_file": "", "auth_token": "",
                  "ca_cert": ""}
        values.update({k: str(v) for k, v in pandacon.items()})
        fresh_home({"pandacon": values, "master": {"harvester_id": f"h-{uuid.uuid4().hex[:8]}"}})
        return PandaCommunicator()

    return make


@pytest.mark.parametrize("value", ["none", "None", "x509", "X509", "", "anything"])
def test_auth_type_other_than_oidc_means_certificates(emu_tls, make_comm, value):
    com = make_comm(emu_tls, auth_type=value, cert_file=emu_tls.client_cert, key_file=emu_tls.client_key,
                    ca_cert=emu_tls.ca_cert)
    assert com.auth_type == "x509"
    ok, reply = com.check_panda()
    assert ok and reply["success"], reply  # the client certificate was presented over TLS
    assert com.get_host_specific_auth_config(emu_tls.base_url)[:2] == ("x509", emu_tls.client_cert)


def test_auth_type_none_in_a_multihost_entry_means_certificates(tmp_path):
    config = tmp_path / "multi.json"
    config.write_text(json.dumps({"other:443": {"auth_type": "none", "cert_file": "/o.pem"}}))
    auth = AuthManager(auth_type="oidc", auth_token="literal-token", multihost_auth_config=str(config),
                       allow_plain_http=False)
    other = auth.for_url("https://other:443/api/v1")
    assert other.auth_type == "x509" and other.client_cert() == ("/o.pem", "/o.pem") and other.headers() == {}


def test_token_to_plain_http_is_refused_at_start(emu_token_http, make_comm, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    with pytest.raises(ConfigError, match="refusing to send the OIDC token") as info:
        make_comm(emu_token_http, auth_type="oidc", auth_token=f"file:{token_file}")
    assert emu_token_http.base_url in str(info.value) and "allow_credentials_over_http" in str(info.value)
    assert TOKEN not in str(info.value)


def test_token_to_plain_http_when_allowed_works_and_warns_once_per_start(emu_token_http, make_comm, tmp_path,
                                                                         caplog):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    settings_mod._warned_plain_http.clear()  # a fresh process
    caplog.set_level(logging.WARNING, logger="panda.log.communicator")
    com = make_comm(emu_token_http, auth_type="oidc", auth_token=f"file:{token_file}",
                    allow_credentials_over_http="True")
    PandaCommunicator()  # the pool makes several: still one warning
    ok, reply = com.check_panda()
    assert ok and reply["success"], reply
    warnings = [r for r in caplog.records if "allow_credentials_over_http" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    assert emu_token_http.base_url in warnings[0].getMessage() and TOKEN not in caplog.text


def test_token_of_a_multihost_entry_to_plain_http_is_refused_per_request(emu_token_http, make_comm, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    netloc = emu_token_http.base_url.split("//", 1)[1].split("/", 1)[0]
    config = tmp_path / "multi.json"
    config.write_text(json.dumps({netloc: {"auth_type": "oidc", "auth_token": f"file:{token_file}"}}))
    com = make_comm(emu_token_http, auth_type="x509", multihost_auth_config=str(config))
    ok, error = com.check_panda()
    assert not ok and "refusing to send the OIDC token" in error and "allow_credentials_over_http" in error
    assert TOKEN not in error
    allowed = AuthManager(multihost_auth_config=str(config), allow_plain_http=True)
    assert allowed.for_url(emu_token_http.base_url).token == TOKEN


class RecordingTransport:
    """The requests transport, keeping every request it sends."""

    def __init__(self) -> None:
        from pandaharvester.harvestercommunicator.transport import make_transport

        self.inner = make_transport("requests")
        self.name = self.inner.name
        self.sent: list = []

    def send(self, request):
        self.sent.append(request)
        return self.inner.send(request)

    def close(self) -> None:
        self.inner.close()


def test_certificates_are_never_presented_over_plain_http(emu_token_http, make_comm, emu_tls):
    """No refusal for x509 over http://: no TLS, so the certificate (proxy) is never presented."""
    make_comm(emu_token_http, auth_type="x509", cert_file=emu_tls.client_cert, key_file=emu_tls.client_key)
    transport = RecordingTransport()
    com = PandaCommunicator(transport=transport)
    ok, _reply = com.check_panda()  # the emulator refuses the unauthenticated call: what matters is what was sent
    assert transport.sent and all(r.cert is None for r in transport.sent)
    assert all("Authorization" not in r.headers for r in transport.sent)
