"""Secrets never in logs, the DB, harvester-admin output or error messages.

One real daemon run per DB engine (emulator over HTTPS with a bearer token, DEBUG logs,
``[pandacon] verbose``, the real NoVomsCredManager making a proxy, monitor FIFO on) with every
secret a site configures: the OIDC token (a 0600 file), the DB password (unused with SQLite; a
MariaDB account really using it), FIFO and Redis passwords in the cfg, a user key and the proxy
made from it, and PanDA's job ``secrets``. Then errors are provoked (the token file rotated to a
token PanDA refuses, a MariaDB home with a wrong password, daemon and admin), every
``harvester-admin`` verb runs, and every file under the daemon's home, a SQL dump of each DB
(sqlite3 ``iterdump``, ``mysqldump``), the decoded blobs of the job rows and every admin output are
searched for each secret (as is, JSON/URL-escaped, hex, base64 at each alignment). The job
description the pilot reads and the job secret store are the places a job secret may be (0600 in
0700 directories); the credential files hold their own secret.
"""

from __future__ import annotations

import os
import secrets as random_secrets
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from e2e_helpers import daemon_run  # noqa: F401
from figures import record
from pandaharvester.harvestertest import instance
from security_helpers import ScanResult, make_grid_ca, mode, pem_key_lines, scan_bytes, scan_tree, secret_forms

N_JOBS = 4


def _token(prefix: str) -> str:
    return f"{prefix}-{random_secrets.token_hex(16)}"


def _admin(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PANDA_HOME=str(home))
    return subprocess.run([sys.executable, "-m", "pandaharvester.harvesterscripts.harvester_admin", *args],
                          env=env, capture_output=True, timeout=300)


def _sqlite_dump(path: Path) -> bytes:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        return "\n".join(con.iterdump()).encode()
    finally:
        con.close()


def _job_blobs(db: Path) -> bytes:
    """The job rows' serialized attributes, decoded (embedded pickles included)."""
    from pandaharvester.harvestercore.job_spec import JobSpec

    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    con.row_factory = sqlite3.Row
    try:
        rows = con.execute(f"SELECT {JobSpec.column_names()} FROM job_table").fetchall()
    finally:
        con.close()
    out = []
    for row in rows:
        job = JobSpec()
        job.pack(row)
        out.append(repr({name: getattr(job, name) for name in JobSpec.serializedAttrs}))
    assert rows, "no job rows to decode"
    return "\n".join(out).encode()


@pytest.fixture()
def grid(tmp_path_factory, monkeypatch):
    ca = make_grid_ca(tmp_path_factory.mktemp("sec_grid"))
    monkeypatch.setenv("X509_CERT_DIR", str(ca["trust"]))
    monkeypatch.delenv("X509_USER_PROXY", raising=False)
    return ca


MARIADB_SCHEMA = "test_security_secrets"
MARIADB_USER = "hv_security"


def _root() -> Any:
    import pymysql

    return pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", autocommit=True, connect_timeout=5)


def _mariadb_account(password: str) -> dict[str, Any]:
    """A fresh schema and an account with ``password`` on it (the [db] keys)."""
    con = _root()
    try:
        with con.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {MARIADB_SCHEMA}")
            cur.execute(f"CREATE DATABASE {MARIADB_SCHEMA}")
            for host in ("127.0.0.1", "localhost"):
                cur.execute(f"CREATE USER IF NOT EXISTS '{MARIADB_USER}'@'{host}' IDENTIFIED BY %s", (password,))
                cur.execute(f"ALTER USER '{MARIADB_USER}'@'{host}' IDENTIFIED BY %s", (password,))
                cur.execute(f"GRANT ALL ON {MARIADB_SCHEMA}.* TO '{MARIADB_USER}'@'{host}'")
    finally:
        con.close()
    return {"engine": "mariadb", "host": "127.0.0.1", "port": 3306, "user": MARIADB_USER, "password": password,
            "schema": MARIADB_SCHEMA}


def _mariadb_dump() -> bytes:
    res = subprocess.run(["mysqldump", "-h127.0.0.1", "-uroot", "--skip-extended-insert", "--hex-blob",
                          MARIADB_SCHEMA], capture_output=True, timeout=120)
    assert res.returncode == 0 and b"job_table" in res.stdout, res.stderr
    return res.stdout


def _mariadb_job_blobs() -> bytes:
    from pandaharvester.harvestercore.job_spec import JobSpec
    import pymysql.cursors

    con = _root()
    try:
        with con.cursor(pymysql.cursors.DictCursor) as cur:
            cur.execute(f"SELECT {JobSpec.column_names()} FROM {MARIADB_SCHEMA}.job_table")
            rows = cur.fetchall()
    finally:
        con.close()
    assert rows, "no job rows to decode"
    out = []
    for row in rows:
        job = JobSpec()
        job.pack(row)
        out.append(repr({name: getattr(job, name) for name in JobSpec.serializedAttrs}))
    return "\n".join(out).encode()


@pytest.fixture()
def drop_mariadb_schema():
    yield
    try:
        con = _root()
    except Exception:
        return
    try:
        with con.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {MARIADB_SCHEMA}")
    finally:
        con.close()


@pytest.mark.parametrize("engine", ["sqlite", "mariadb"])
def test_no_secret_leaks_from_a_full_run(daemon_run, grid, tmp_path, engine, drop_mariadb_schema):  # noqa: F811
    token, bad_token = _token("tokS"), _token("tokBad")
    db_password, fifo_password, redis_password = _token("dbpw"), _token("fifopw"), _token("redispw")
    db_cfg = {"password": db_password} if engine == "sqlite" else _mariadb_account(db_password)
    job_secrets = {"MY_TOKEN": _token("jobsec"), "OTHER_KEY": _token("jobsec2")}
    run = daemon_run(worker_seconds=1, only_queues=["DEMO_PUSH"],
                     emulator_kwargs={"tls": True, "tokens": [token]})
    home = run.home
    private = home / "private"
    private.mkdir(mode=0o700)
    token_file = private / "token"
    token_file.write_text(token + "\n")
    os.chmod(token_file, 0o600)
    proxy_dir = home / "proxy"
    proxy_dir.mkdir(mode=0o700)
    proxy = proxy_dir / "x509up"
    run.cfg_changes = {
        "pandacon": {"auth_type": "oidc", "auth_token": f"file:{token_file}", "auth_origin": "atlas",
                     "ca_cert": run.emulator.ca_cert, "cert_file": str(proxy), "key_file": str(proxy),
                     "verbose": True},
        "db": db_cfg,
        "fifo": {"db_password": fifo_password, "redisPassword": redis_password},
        "monitor": {"fifoEnable": True, "fifoCheckInterval": 1},
        "credmanager": {"moduleName": "pandaharvester.harvestercredmanager.no_voms_cred_manager",
                        "className": "NoVomsCredManager", "inCertFile": str(grid["plain"]),
                        "outCertFile": str(proxy), "voms": "dummy", "sleepTime": 2},
    }
    run.write_config()
    instance.write_panda_common_cfg(home, "DEBUG")
    run.emulator.add_task("DEMO_PUSH", N_JOBS, secrets=job_secrets)
    run.start()
    run.wait_until(lambda: len([j for j in run.jobs("DEMO_PUSH") if j["status"] == "finished"]) == N_JOBS, 120,
                   "every job finished")
    run.wait_until(proxy.exists, 30, "the credential manager made the proxy")
    # failed PanDA calls carrying a token: PanDA refuses the rotated one
    token_file.write_text(bad_token + "\n")
    run.wait_until(lambda: "StatusCode=403" in run.log("communicator"), 30, "a refused token logged")
    assert run.stop() == 0

    secret_values = {"token": token, "bad_token": bad_token, "db_password": db_password,
                     "fifo_password": fifo_password, "redis_password": redis_password,
                     **{f"job_secret_{k}": v for k, v in job_secrets.items()}}
    for i, line in enumerate(pem_key_lines(grid["plain"].read_text())):
        secret_values[f"user_key_line{i}"] = line
    for i, line in enumerate(pem_key_lines(proxy.read_text())):
        secret_values[f"proxy_key_line{i}"] = line
    assert any(k.startswith("proxy_key") for k in secret_values), "the proxy holds no private key"

    # error messages with a wrong MariaDB password: the daemon and harvester-admin
    bad_home = tmp_path / "bad_db_home"
    (bad_home / "logs").mkdir(parents=True)
    instance.write_cfg(bad_home, {"db": {"engine": "mariadb", "host": "127.0.0.1", "port": 3306, "user": "root",
                                         "password": db_password, "schema": "test_security",
                                         "reconnectTimeout": 1},
                                  "pandacon": dict(run.cfg_changes["pandacon"],
                                                   server_api_url_ssl=run.emulator.base_url)})
    outputs: dict[str, bytes] = {}
    env = dict(os.environ, PANDA_HOME=str(bad_home))
    daemon = subprocess.run([sys.executable, "-m", "pandaharvester.harvesterbody.master", "--foreground", "--single"],
                            env=env, capture_output=True, timeout=120, cwd=str(bad_home))
    assert daemon.returncode != 0, daemon.stdout + daemon.stderr
    outputs["daemon with a wrong DB password"] = daemon.stdout + daemon.stderr
    bad = _admin(bad_home, "db", "instances")
    assert bad.returncode != 0 and b"Access denied" in bad.stdout + bad.stderr, bad.stdout + bad.stderr
    outputs["db instances with a wrong DB password"] = bad.stdout + bad.stderr
    bad = _admin(bad_home, "db", "migrate", "--from-sqlite", str(home / "harvester.db"))
    assert bad.returncode != 0
    outputs["db migrate with a wrong DB password"] = bad.stdout + bad.stderr

    # every harvester-admin verb on the run's home
    verbs = [["test"], ["get", "harvesterID"], ["get", "version"], ["get", "commit_info"],
             ["get", "harvester_config"], ["-v", "get", "harvester_config"], ["cacher", "refresh"],
             ["fifo", "benchmark", "-n", "20"], ["fifo", "repopulate", "ALL"], ["db", "instances"],
             ["plugin", "check", "pandaharvester.harvestercredmanager.no_voms_cred_manager.NoVomsCredManager",
              "--role", "credmanager", "--params",
              f'{{"inCertFile": "{grid["plain"]}", "outCertFile": "{tmp_path / "admin_proxy"}", "voms": "dummy"}}']]
    for verb in verbs:
        res = _admin(home, *verb)
        outputs["harvester-admin " + " ".join(verb[:3])] = res.stdout + res.stderr
    assert b"********" in outputs["harvester-admin get harvester_config"]  # the passwords, masked

    # the scan: every file of the home (PanDA's own state aside), the DBs dumped, the job blobs, the outputs
    result = ScanResult()
    allowed = {token_file.resolve(), proxy.resolve(), (home / "etc/panda/panda_harvester.cfg").resolve()}
    from pandaharvester.harvestermessenger.shared_file_messenger import SharedFileMessenger

    spec_name = SharedFileMessenger().jobSpecFileName  # the job description the pilot reads
    job_files = sorted(home.glob(f"workers/*/{spec_name}")) + sorted(home.glob(f"workers/*/*/{spec_name}"))
    assert len(job_files) >= N_JOBS
    wrong_modes = []
    for path in job_files:
        assert job_secrets["MY_TOKEN"] in path.read_text()  # the pilot gets them
        if mode(path) != 0o600 or mode(path.parent) != 0o700:
            wrong_modes.append(f"{path}: {mode(path):o} in {mode(path.parent):o}")
    from pandaharvester.harvestercore import job_secrets

    store = home / "var/lib/harvester/job_secrets"  # the default [db] jobSecretsDir under PANDA_HOME
    stored = sorted(store.glob("*" + job_secrets.SUFFIX))
    assert len(stored) == N_JOBS and mode(store) == 0o700, (stored, oct(mode(store)))
    allowed |= {p.resolve() for p in stored}
    for path in allowed:
        if mode(path) != 0o600:
            wrong_modes.append(f"{path}: {mode(path):o}")
    assert not wrong_modes, wrong_modes
    allowed |= {p.resolve() for p in job_files}
    emulator_dir = home / "emulator"
    for child in home.iterdir():
        if child.resolve() == emulator_dir.resolve():
            continue
        if child.is_dir():
            scan_tree(child, secret_values, result, allowed)
        elif child.resolve() not in allowed:
            scan_bytes(child.name, child.read_bytes(), secret_values, result)
    for db in [home / "harvester.db", *home.glob("*_fifo.db")]:
        if db.exists():
            scan_bytes(f"SQL dump of {db.name}", _sqlite_dump(db), secret_values, result)
    if engine == "sqlite":
        scan_bytes("job rows' decoded blobs", _job_blobs(home / "harvester.db"), secret_values, result)
    else:
        scan_bytes("mysqldump", _mariadb_dump(), secret_values, result)
        scan_bytes("job rows' decoded blobs", _mariadb_job_blobs(), secret_values, result)
    for name, output in outputs.items():
        scan_bytes(name, output, secret_values, result)
    # the scan finds what it looks for: the allowed files, and each encoded form inside other text
    control = ScanResult()
    for path in (token_file, job_files[0], stored[0], proxy):
        scan_bytes(str(path), path.read_bytes(), secret_values, control)
    assert {leak.split(": ")[1].split(" (")[0] for leak in control.leaks} >= {"bad_token", "job_secret_MY_TOKEN",
                                                                                     "proxy_key_line0"}
    for form in secret_forms(token).values():
        probe = ScanResult()
        scan_bytes("probe", b"x=" + form + b"&y", {"token": token}, probe)
        assert probe.leaks, form
    record(f"reliability: secrets_scanned files={result.files} bytes={result.bytes} secrets={len(secret_values)} "
           f"leaks={len(result.leaks)} engine={engine}")
    assert not result.leaks, "\n".join(result.leaks[:30])
