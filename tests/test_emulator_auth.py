"""PanDA server emulator: HTTPS, client certificates, bearer tokens, production role."""
# ruff: noqa: F811  (pytest fixtures imported from pytest_fixtures are redefined as arguments)

from __future__ import annotations

import base64
import json
import os
import stat

import pytest
import requests

from pandaharvester.harvestertest.panda_emulator import tls
from pandaharvester.harvestertest.panda_emulator.launcher import start_emulator
from pandaharvester.harvestertest.panda_emulator.pytest_fixtures import EMULATOR_TLS_TOKEN, emulator_tls  # noqa: F401

J = {"Accept": "application/json"}


def _jwt(claims: dict) -> str:
    def enc(d):
        return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()

    return f"{enc({'alg': 'none'})}.{enc(claims)}.sig"


def test_tls_files_and_modes(emulator_tls):
    for path in (emulator_tls.ca_cert, emulator_tls.client_cert, emulator_tls.client_key):
        assert os.path.isfile(path)
    for key in ("ca.key", "server.key", "client.key"):
        assert stat.S_IMODE(os.stat(emulator_tls.cert_dir / key).st_mode) == 0o600
    assert emulator_tls.base_url.startswith("https://127.0.0.1:")


def test_client_cert_token_and_403(emulator_tls):
    url = f"{emulator_tls.base_url}/system/is_alive"
    ca = emulator_tls.ca_cert
    cert = (emulator_tls.client_cert, emulator_tls.client_key)
    assert requests.get(url, headers=J, cert=cert, verify=ca, timeout=10).json()["success"] is True
    ok = requests.get(url, headers={**J, "Authorization": f"Bearer {EMULATOR_TLS_TOKEN}"}, verify=ca, timeout=10)
    assert ok.status_code == 200 and ok.json()["success"] is True
    # no credentials / wrong token → 403 with a JSON envelope (even with a good certificate)
    for kw in (
        {},
        {"headers": {**J, "Authorization": "Bearer wrong"}},
        {"headers": {**J, "Authorization": "Bearer wrong"}, "cert": cert},
    ):
        kw.setdefault("headers", J)
        r = requests.post(
            f"{emulator_tls.base_url}/pilot/acquire_jobs", json={"site_name": "X"}, verify=ca, timeout=10, **kw
        )
        assert r.status_code == 403
        body = r.json()
        assert body["success"] is False and "authentication" in body["message"]
    # admin endpoints need credentials too; ping does not
    assert requests.get(f"{emulator_tls.url}/emulator/state", verify=ca, timeout=10).status_code == 403
    assert requests.get(f"{emulator_tls.url}/emulator/ping", verify=ca, timeout=10).status_code == 200
    # the server certificate is only trusted through the emulator CA
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(url, headers=J, cert=cert, timeout=10)


def test_certificate_not_from_the_ca_is_rejected(emulator_tls, tmp_path):
    bad_cert, bad_key = tls.make_client_cert(tmp_path, "rogue", "harvester-client", self_signed=True)
    with pytest.raises((requests.exceptions.SSLError, requests.exceptions.ConnectionError)):
        requests.get(
            f"{emulator_tls.base_url}/system/is_alive",
            headers=J,
            cert=(bad_cert, bad_key),
            verify=emulator_tls.ca_cert,
            timeout=10,
        )
    # the server is still fine afterwards
    assert requests.get(f"{emulator_tls.base_url}/system/is_alive", headers=J, **_kw(emulator_tls)).json()["success"]


def _kw(emu):
    return {"cert": (emu.client_cert, emu.client_key), "verify": emu.ca_cert, "timeout": 10}


def test_production_role_rules(tmp_path):
    tokens = [
        "prod-token",
        "pilot-token",
        _jwt({"sub": "alice", "groups": ["atlas/pilot"]}),
        _jwt({"sub": "robot", "groups": ["atlas/production"]}),
    ]
    with start_emulator(
        tmp_path / "emu",
        tls=True,
        tokens=tokens,
        extra_args=["--no-production", "CN=pilot-user", "--no-production", "token#2"],
    ) as emu:
        pilot_cert = tls.make_client_cert(emu.cert_dir, "pilot", "pilot-user", ou="Users")
        emu.add_task("SITE_A", 4)
        emu.add_task("SITE_A", 1, prod_source_label="user")
        acquire = f"{emu.base_url}/pilot/acquire_jobs"
        commands = f"{emu.base_url}/harvester/acquire_commands"
        ca = emu.ca_cert

        def call(url, payload, **auth):
            r = requests.post(
                url, json=payload, headers={**J, **auth.pop("headers", {})}, verify=ca, timeout=10, **auth
            )
            assert r.status_code == 200, r.text
            return r.json()

        managed = {"site_name": "SITE_A", "n_jobs": 1, "prod_source_label": "managed"}
        no_role = "no production/pilot role in VOMS FQANs or non pilot owner"
        # certificate without the production role
        assert call(acquire, managed, cert=pilot_cert) == {"success": False, "message": no_role, "data": None}
        assert call(acquire, {**managed, "prod_source_label": "user"}, cert=pilot_cert)["success"] is True
        assert call(commands, {"harvester_id": "H", "n_commands": 1}, cert=pilot_cert)["success"] is False
        assert (
            requests.get(
                f"{emu.base_url}/creds/get_proxy",
                params={"role": "production"},
                headers=J,
                cert=pilot_cert,
                verify=ca,
                timeout=10,
            ).json()["success"]
            is False
        )
        # the real server's production=True functions refuse it before looking at anything else
        prod_role = {"success": False, "message": "production or pilot role required", "data": None}
        for path, payload in (
            ("pilot/update_jobs_bulk", {"job_list": []}),
            ("event/acquire_event_ranges", {"job_id": 1, "jobset_id": 1}),
            ("event/update_event_ranges", {"event_ranges": "[]"}),
            ("harvester/acknowledge_commands", {"command_ids": [1]}),
        ):
            assert call(f"{emu.base_url}/{path}", payload, cert=pilot_cert) == prod_role, path
        for path in ("metaconfig/get_resource_types", "event/get_available_event_range_count"):
            r = requests.get(f"{emu.base_url}/{path}", headers=J, cert=pilot_cert, verify=ca, timeout=10).json()
            assert r == prod_role, path
        log = requests.post(f"{emu.base_url}/file_server/upload_jedi_log", files={"file": ("x.log", b"x")},
                            headers=J, cert=pilot_cert, verify=ca, timeout=10).json()
        assert log == prod_role
        # ... while the other harvester functions only need a valid identity
        assert call(f"{emu.base_url}/harvester/update_workers", {"harvester_id": "HP", "workers": []},
                    cert=pilot_cert)["success"] is True
        # default client cert and first token: production
        assert call(acquire, managed, cert=(emu.client_cert, emu.client_key))["success"] is True
        assert (
            call(commands, {"harvester_id": "H", "n_commands": 1}, headers={"Authorization": "Bearer prod-token"})[
                "success"
            ]
            is True
        )
        # token without the role (by pattern) and JWTs (by groups claim)
        assert call(acquire, managed, headers={"Authorization": "Bearer pilot-token"})["message"] == no_role
        assert call(acquire, managed, headers={"Authorization": f"Bearer {tokens[2]}"})["message"] == no_role
        assert call(acquire, managed, headers={"Authorization": f"Bearer {tokens[3]}"})["success"] is True
        # the identity is recorded as the instance owner
        hb = {"harvester_id": "HX", "data": {}}
        call(f"{emu.base_url}/harvester/heartbeat", hb, headers={"Authorization": f"Bearer {tokens[3]}"})
        assert emu.state()["heartbeats"]["HX"]["owner"] == "sub:robot"


def test_plain_http_with_token_auth(tmp_path):
    with start_emulator(tmp_path / "emu", tokens=["t1"]) as emu:
        assert emu.require_auth and emu.ca_cert is None
        url = f"{emu.base_url}/system/is_alive"
        assert requests.get(url, headers=J, timeout=10).status_code == 403
        assert requests.get(url, headers={**J, "Authorization": "Bearer t1"}, timeout=10).json()["success"] is True
        assert emu.state()["n_jobs"] == 0  # the launcher's admin calls carry the token


def test_production_only_setting(tmp_path):
    with start_emulator(tmp_path / "emu", tokens=["a", "b"], extra_args=["--production-only", "token#1"]) as emu:
        emu.add_task("S", 2)
        payload = {"site_name": "S", "n_jobs": 1, "prod_source_label": "managed"}
        ra = requests.post(
            f"{emu.base_url}/pilot/acquire_jobs", json=payload, headers={**J, "Authorization": "Bearer a"}, timeout=10
        ).json()
        rb = requests.post(
            f"{emu.base_url}/pilot/acquire_jobs", json=payload, headers={**J, "Authorization": "Bearer b"}, timeout=10
        ).json()
        assert ra["success"] is True and rb["success"] is False


def test_without_cryptography_http_works_and_https_says_what_to_install(tmp_path):
    """``cryptography`` only makes the certificates: plain HTTP must not need it."""
    import subprocess
    import sys

    block = "import sys; sys.modules['cryptography'] = None\n"
    http = block + (
        "from pathlib import Path\n"
        "from pandaharvester.harvestertest.panda_emulator.server import AuthConfig, EmulatorServer\n"
        f"srv = EmulatorServer('127.0.0.1', 0, Path({str(tmp_path / 'a.sqlite')!r}), tls_paths=None, auth=AuthConfig())\n"
        "srv.server_close()\n"
        "print('http ok')\n"
    )
    ran = subprocess.run([sys.executable, "-c", http], capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0 and "http ok" in ran.stdout, ran.stderr
    https = block + (
        "from pandaharvester.harvestertest.panda_emulator.cli import main\n"
        f"sys.exit(main(['serve', '--https', '--port', '0', '--state-file', {str(tmp_path / 'b.sqlite')!r}]))\n"
    )
    ran = subprocess.run([sys.executable, "-c", https], capture_output=True, text=True, timeout=60)
    assert ran.returncode == 2 and "pip install 'pandaharvester[emulator]'" in ran.stderr
    assert "Traceback" not in ran.stderr
