"""NoVomsCredManager with the real VOMS clients, against a test CA and user certificate made here.

``scripts/setup_voms.sh`` installs Debian's voms-clients; without the commands these tests fail.
No VOMS server exists here, so proxies are plain (no ``-voms``); a ``-voms`` renewal is tested to
fail cleanly and leave the current proxy alone.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from pandaharvester.harvestercredmanager.no_voms_cred_manager import NoVomsCredManager


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def grid_ca(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA (hashed into a trust directory), a user certificate/key (0600) and a cert+key file."""
    base = tmp_path_factory.mktemp("grid_ca")
    os.chmod(base, 0o700)
    ca_key, ca_pem = base / "ca.key", base / "ca.pem"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca_pem),
             "-days", "60", "-subj", "/DC=test/DC=harvester/CN=Harvester Test CA",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    user_key, user_csr, user_pem = base / "user.key", base / "user.csr", base / "user.pem"
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(user_key), "-out", str(user_csr),
             "-subj", "/DC=test/DC=harvester/CN=Harvester Robot")
    ext = base / "user.ext"
    ext.write_text("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n")
    _openssl("x509", "-req", "-in", str(user_csr), "-CA", str(ca_pem), "-CAkey", str(ca_key), "-CAcreateserial",
             "-out", str(user_pem), "-days", "30", "-extfile", str(ext))
    os.chmod(user_key, 0o600)
    plain = base / "robot.plain"  # the long-lived credential the original's template points inCertFile at
    plain.write_bytes(user_pem.read_bytes() + user_key.read_bytes())
    os.chmod(plain, 0o600)
    trust = base / "certificates"
    trust.mkdir(mode=0o700)
    subject_hash = subprocess.run(["openssl", "x509", "-hash", "-noout", "-in", str(ca_pem)], check=True,
                                  capture_output=True, text=True).stdout.strip()
    shutil.copy(ca_pem, trust / f"{subject_hash}.0")
    return {"cert": user_pem, "key": user_key, "plain": plain, "trust": trust, "home": base}


@pytest.fixture()
def voms_env(grid_ca, monkeypatch, tmp_path) -> dict[str, Path]:
    """The trust directory in X509_CERT_DIR; a 0700 proxy directory per test."""
    monkeypatch.setenv("X509_CERT_DIR", str(grid_ca["trust"]))
    monkeypatch.setenv("HOME", str(grid_ca["home"]))
    monkeypatch.delenv("X509_USER_PROXY", raising=False)
    proxies = tmp_path / "proxy"
    proxies.mkdir(mode=0o700)
    return {**grid_ca, "proxies": proxies}


def _info(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["voms-proxy-info", *args], capture_output=True, text=True, timeout=60)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_voms_clients_are_installed():
    missing = [cmd for cmd in ("voms-proxy-init", "voms-proxy-info") if shutil.which(cmd) is None]
    assert not missing, f"{missing} missing: run scripts/setup_voms.sh (installs Debian's voms-clients)"


def test_renew_from_in_cert_file_makes_a_0600_proxy_and_check_accepts_it(voms_env):
    out = voms_env["proxies"] / "x509up_prod"
    manager = NoVomsCredManager(inCertFile=str(voms_env["plain"]), outCertFile=str(out), voms="dummy")
    assert manager.check_credential() is False  # no proxy yet
    ok, message = manager.renew_credential()
    assert ok, message
    assert _mode(out) == 0o600
    assert _info("-exists", "-hours", "95", "-file", str(out)).returncode == 0  # made with -valid 96:00
    assert "RFC" in _info("-type", "-file", str(out)).stdout
    assert manager.check_credential() is True
    assert 95.9 < manager.check_credential_lifetime() <= 96.0
    assert list(voms_env["proxies"].iterdir()) == [out]  # no temporary file left behind


def test_gen_from_key_cert_signs_with_the_certificate_and_key(voms_env):
    out = voms_env["proxies"] / "x509up_pilot"
    manager = NoVomsCredManager(genFromKeyCert=True, cert=str(voms_env["cert"]), key=str(voms_env["key"]),
                                outCertFile=str(out), lifetime=12)
    ok, message = manager.renew_credential()
    assert ok, message
    assert _mode(out) == 0o600
    identity = _info("-identity", "-file", str(out)).stdout
    assert "CN=Harvester Robot" in identity
    assert 11.9 < manager.check_credential_lifetime() <= 12.0
    # renewed when fewer than lifetime - checkPeriod hours are left: 12 h left, 11 needed
    assert manager.check_credential() is True
    # 12.5 h needed: -hours takes whole hours, so 13 (never 12, which a 12 h proxy passes)
    assert NoVomsCredManager(outCertFile=str(out), lifetime=14, checkPeriod=1.5).check_credential() is False


def test_a_short_proxy_is_invalid_and_gets_renewed(voms_env):
    out = voms_env["proxies"] / "x509up_short"
    short = NoVomsCredManager(inCertFile=str(voms_env["plain"]), outCertFile=str(out),
                              lifetimeOptFormat="-valid 0:02")
    ok, message = short.renew_credential()
    assert ok, message
    left = short.check_credential_lifetime()
    assert left is not None and 0 < left <= 2 / 60
    # renewed for 2 h, checked for more than 1 h left (a proxy made with -valid 1:00 has slightly less
    # than an hour left by the time it is checked, so lifetime == threshold would always renew)
    manager = NoVomsCredManager(inCertFile=str(voms_env["plain"]), outCertFile=str(out), lifetime=2, checkPeriod=1)
    assert manager.check_credential() is False  # two minutes left, one hour needed
    ok, message = manager.renew_credential()
    assert ok, message
    assert manager.check_credential() is True
    assert _mode(out) == 0o600


def test_missing_proxy_has_no_lifetime(voms_env):
    manager = NoVomsCredManager(inCertFile=str(voms_env["plain"]), outCertFile=str(voms_env["proxies"] / "none"))
    assert manager.check_credential() is False
    assert manager.check_credential_lifetime() is None


def test_failed_voms_renewal_keeps_the_current_proxy(voms_env):
    out = voms_env["proxies"] / "x509up_prod"
    ok, message = NoVomsCredManager(inCertFile=str(voms_env["plain"]), outCertFile=str(out)).renew_credential()
    assert ok, message
    before = out.read_bytes()
    # no VOMS server (nor vomses) here: voms-proxy-init -voms fails
    manager = NoVomsCredManager(inCertFile=str(voms_env["plain"]), outCertFile=str(out),
                                voms="atlas:/atlas/Role=production")
    ok, message = manager.renew_credential()
    assert not ok
    assert "atlas" in message
    assert out.read_bytes() == before
    assert list(voms_env["proxies"].iterdir()) == [out]


def test_missing_renew_command_is_reported_and_changes_nothing(voms_env):
    out = voms_env["proxies"] / "x509up"
    manager = NoVomsCredManager(inCertFile=str(voms_env["plain"]), outCertFile=str(out),
                                renewCommand="/nonexistent/voms-proxy-init")
    ok, message = manager.renew_credential()
    assert not ok and "/nonexistent/voms-proxy-init not found" in message
    assert list(voms_env["proxies"].iterdir()) == []


def test_setup_errors_name_the_missing_key(voms_env):
    ok, message = NoVomsCredManager(genFromKeyCert=True, outCertFile="/tmp/x").renew_credential()
    assert not ok and "cert and key" in message
    ok, message = NoVomsCredManager(outCertFile=str(voms_env["proxies"] / "p")).renew_credential()
    assert not ok and "inCertFile" in message
    assert NoVomsCredManager(inCertFile="/x").check_credential() is False


def test_the_key_never_reaches_the_log(voms_env, caplog):
    out = voms_env["proxies"] / "x509up"
    with caplog.at_level(logging.DEBUG, logger="panda.log.no_voms_cred_manager"):
        manager = NoVomsCredManager(inCertFile=str(voms_env["plain"]), outCertFile=str(out))
        assert manager.renew_credential()[0]
        manager.check_credential()
        manager.check_credential_lifetime()
    text = caplog.text
    assert "voms-proxy-init -rfc -noregen" in text and "voms-proxy-info -exists -hours 95" in text
    key_lines = [line for line in voms_env["key"].read_text().splitlines() if "-----" not in line]
    assert not any(line in text for line in key_lines)
    assert "PRIVATE KEY" not in text


def test_command_lines_follow_the_original_keys():
    manager = NoVomsCredManager(inCertFile="/p/robot.plain", outCertFile="/p/x509up", voms="atlas:/atlas/Role=pilot")
    assert manager.renew_command() == [
        "voms-proxy-init", "-rfc", "-noregen", "-voms", "atlas:/atlas/Role=pilot", "-out", "/p/x509up",
        "-valid", "96:00", "-cert=/p/robot.plain", "-key=/p/robot.plain"]
    assert manager.check_command() == ["voms-proxy-info", "-exists", "-hours", "95", "-file", "/p/x509up"]
    assert manager.lifetime_command() == ["voms-proxy-info", "-timeleft", "-file", "/p/x509up"]
    custom = NoVomsCredManager(genFromKeyCert="true", cert="/c dir/usercert.pem", key="/c dir/userkey.pem",
                               outCertFile="/p/out", voms="dummy", lifetime=48, checkPeriod=6,
                               renewCommand="/opt/voms/bin/voms-proxy-init -debug",
                               lifetimeOptFormat="-hours {lifetime}", extraRenewOpts="-bits 2048 -quiet")
    assert custom.renew_command("/p/.out.tmp") == [
        "/opt/voms/bin/voms-proxy-init", "-debug", "-rfc", "-out", "/p/.out.tmp", "-hours", "48",
        "-cert=/c dir/usercert.pem", "-key=/c dir/userkey.pem", "-bits", "2048", "-quiet"]
    assert custom.check_command()[3] == "42"
    assert NoVomsCredManager(genFromKeyCert="False", inCertFile="/i").genFromKeyCert is False


def test_cred_manager_agent_renews_with_the_original_cfg_keys(voms_env, fresh_home):
    """The original template's [credmanager] lists, pointing at NoVomsCredManager, run by our agent."""
    from pandaharvester.harvesterbody.cred_manager import CredManager
    from pandaharvester.harvestercore.db_proxy_pool import DBProxyPool
    from pandaharvester.harvestercore.queue_config_mapper import QueueConfigMapper

    prod, pilot = voms_env["proxies"] / "x509up_prod", voms_env["proxies"] / "x509up_pilot"
    token = voms_env["proxies"] / "x509up_token"
    plugin_configs = [{"module": "pandaharvester.harvestercredmanager.no_voms_cred_manager",
                       "name": "NoVomsCredManager",
                       "configs": {"keycert": {"genFromKeyCert": True, "cert": str(voms_env["cert"]),
                                               "key": str(voms_env["key"]), "outCertFile": str(token)}}}]
    fresh_home({"credmanager": {
        "moduleName": "\npandaharvester.harvestercredmanager.no_voms_cred_manager"
                      "\npandaharvester.harvestercredmanager.no_voms_cred_manager",
        "className": "\nNoVomsCredManager\nNoVomsCredManager",
        "inCertFile": f"\n{voms_env['plain']}\n{voms_env['plain']}",
        "outCertFile": f"\n{prod}\n{pilot}", "voms": "\ndummy\ndummy",
        "pluginConfigs": "\n" + json.dumps(plugin_configs)}})
    DBProxyPool.reset()
    qcm = QueueConfigMapper()
    DBProxyPool().make_tables(qcm, None)
    try:
        manager = CredManager(qcm, single_mode=True)
        assert [type(core).__name__ for core in manager.exe_cores] == ["NoVomsCredManager"] * 3
        manager.execute()
        for path in (prod, pilot, token):
            assert _mode(path) == 0o600, path
        metrics = manager.execute_monit()
        assert set(metrics) == {str(prod), str(pilot), str(token)}
        assert all(95.9 < hours <= 96.0 for hours in metrics.values())
    finally:
        DBProxyPool.reset()


def test_the_template_credmanager_entries_load():
    """A site's cfg made from the template (as from the original's) names plugins that exist."""
    import configparser

    from pandaharvester.harvestercore.plugin_factory import PluginFactory
    from pandaharvester.harvestertest.instance import template_path

    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(template_path())
    lists = {key: parser.get("credmanager", key).split() for key in
             ("moduleName", "className", "inCertFile", "outCertFile", "voms")}
    factory = PluginFactory(no_db=True)
    for module, name, in_cert, out_cert, voms in zip(*lists.values()):
        core = factory.get_plugin({"module": module, "name": name, "inCertFile": in_cert,
                                   "outCertFile": out_cert, "voms": voms})
        assert type(core).__name__ == "NoVomsCredManager"
        assert core.renew_command()[-2:] == [f"-cert={in_cert}", f"-key={in_cert}"]
