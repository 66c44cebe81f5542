"""HTTPS to PanDA verifies the server certificate unless the cfg says otherwise, loudly.

Against the emulator over HTTPS with its own throw-away CA (made at start with ``cryptography``;
the system trust store does not know it) and a bearer token:

- by default (``[pandacon] ca_cert`` unset: the system CAs) the call fails with one clear error
  naming the URL, the verification failure and the ``ca_cert`` key, and is not retried;
- ``ca_cert = <the CA file>``: it works;
- ``ca_cert = False`` (the original's way to turn verification off): it works, and one WARNING
  says so at start, however many communicators the process makes; the daemon logs it once;
- a token to a plain ``http://`` URL without ``allow_credentials_over_http``: the daemon refuses
  to start (status 78) with one line naming the URL and the key, the token not shown.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from e2e_helpers import daemon_run  # noqa: F401
from pandaharvester.harvestercommunicator import settings as settings_mod
from pandaharvester.harvestercommunicator.panda_communicator import PandaCommunicator
from pandaharvester.harvestertest import instance
from pandaharvester.harvestertest.panda_emulator.launcher import start_emulator

TOKEN = "tokTLS-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def emu(tmp_path_factory):
    server = start_emulator(tmp_path_factory.mktemp("emu_tls_sec"), tls=True, tokens=[TOKEN], seed=5)
    yield server
    server.stop()


@pytest.fixture()
def make_comm(fresh_home, tmp_path, monkeypatch):
    # the system trust store only: no REQUESTS_CA_BUNDLE/SSL_CERT_FILE from the environment
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR"):
        monkeypatch.delenv(name, raising=False)
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    os.chmod(token_file, 0o600)

    def make(server, **pandacon):
        values = {"server_api_url_ssl": server.base_url, "cache_api_url_ssl": server.base_url, "timeout": 10,
                  "maxRetries": 2, "retryBackoff": 0.01, "auth_type": "oidc", "auth_token": f"file:{token_file}"}
        values.update({k: str(v) for k, v in pandacon.items()})
        fresh_home({"pandacon": values, "master": {"harvester_id": f"h-{uuid.uuid4().hex[:8]}"}})
        settings_mod._warned_plain_http.clear()
        settings_mod._warned_no_verify.clear()  # a fresh process
        return PandaCommunicator()

    return make


@pytest.mark.parametrize("transport", ["requests", "pycurl"])
def test_an_untrusted_server_certificate_is_refused_by_default(emu, make_comm, transport):
    com = make_comm(emu, transport=transport)
    calls_before = emu.state()["faults"]["calls"].get("harvester/heartbeat", 0)
    ok, error = com.check_panda()
    assert not ok
    assert "certificate" in error and "verif" in error and emu.base_url.split("/api")[0] in error, error
    assert "[pandacon] ca_cert" in error, error
    assert TOKEN not in error
    # nothing reached PanDA (TLS failed before any request) and the call was not retried for nothing
    assert emu.state()["faults"]["calls"].get("harvester/heartbeat", 0) == calls_before


@pytest.mark.parametrize("transport", ["requests", "pycurl"])
def test_the_configured_ca_makes_it_work(emu, make_comm, caplog, transport):
    caplog.set_level(logging.WARNING)
    com = make_comm(emu, ca_cert=emu.ca_cert, transport=transport)
    ok, reply = com.check_panda()
    assert ok and reply["success"], reply
    assert "not verified" not in caplog.text


@pytest.mark.parametrize("value,transport", [("False", "requests"), ("false", "pycurl")])
def test_verification_off_works_and_warns_once(emu, make_comm, caplog, value, transport):
    caplog.set_level(logging.WARNING, logger="panda.log.communicator")
    com = make_comm(emu, ca_cert=value, transport=transport)
    PandaCommunicator()
    PandaCommunicator()  # the pool makes several: one warning
    ok, reply = com.check_panda()
    assert ok and reply["success"], reply
    warnings = [r for r in caplog.records if "ca_cert = False" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING, caplog.text
    assert emu.url in warnings[0].getMessage() and "not verified" in warnings[0].getMessage()
    assert TOKEN not in caplog.text


def test_the_daemon_warns_once_at_start_with_verification_off(daemon_run):  # noqa: F811
    run = daemon_run(only_queues=["DEMO_PUSH"], emulator_kwargs={"tls": True, "tokens": [TOKEN]})
    token_file = run.home / "token"
    token_file.write_text(TOKEN)
    os.chmod(token_file, 0o600)
    run.cfg_changes = {"pandacon": {"auth_type": "oidc", "auth_token": f"file:{token_file}", "ca_cert": False}}
    run.write_config()
    run.emulator.add_task("DEMO_PUSH", 2)
    run.start()
    run.wait_until(lambda: all(j["status"] == "finished" for j in run.jobs("DEMO_PUSH")), 90, "jobs finished")
    assert run.stop() == 0
    logs = "".join(p.read_text(errors="replace") for p in (run.home / "logs").glob("panda-*.log"))
    lines = [line for line in logs.splitlines() if "ca_cert = False" in line]
    assert len(lines) == 1 and " WARNING " in lines[0], lines
    assert "InsecureRequestWarning" not in (run.home / "logs" / "daemon.1.out").read_text()


def test_a_token_to_plain_http_refuses_the_start(tmp_path):
    home = tmp_path / "plain"
    (home / "logs").mkdir(parents=True)
    token_file = home / "token"
    token_file.write_text(TOKEN)
    os.chmod(token_file, 0o600)
    url = "http://127.0.0.1:9/api/v1"
    instance.write_cfg(home, {"pandacon": {"server_api_url_ssl": url, "cache_api_url_ssl": url,
                                           "auth_type": "oidc", "auth_token": f"file:{token_file}"}})
    env = dict(os.environ, PANDA_HOME=str(home))
    res = subprocess.run([sys.executable, "-m", "pandaharvester.harvesterbody.master", "--foreground",
                          "--pid", str(home / "h.pid")], env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 78, res.stdout + res.stderr
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, res.stderr
    assert url in lines[0] and "allow_credentials_over_http" in lines[0] and "https://" in lines[0]
    assert TOKEN not in res.stderr + res.stdout and not (home / "h.pid").exists()
    assert not list((home / "logs").iterdir()) and not Path(home / "harvester.db").exists()
