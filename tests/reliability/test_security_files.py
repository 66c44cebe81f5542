"""Secret-carrying files 0600 in 0700 directories; credential files others may read refuse the start.

The daemon runs with umask 000 (the worst a site's shell may give it) on a push queue whose jobs
carry PanDA secrets, the real NoVomsCredManager making the proxy and the monitor FIFO on. While
it runs and after it stops: the DB and its -wal/-shm, the FIFO DBs, the pid file, the proxy, the
job secret store and the job descriptions are 0600, their directories made by the daemon 0700,
and nothing it wrote (logs included) is group- or world-writable.

Then each credential file a cfg can name (key, proxy, token, multihost auth config, password
file, credential manager input, the cfg holding a password) is made readable by others: the
daemon exits with status 78 and one line naming the key and the path and saying
``chmod 600 <path>``, before it writes anything (no pid file, no DB, no log).
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from e2e_helpers import daemon_run  # noqa: F401
from figures import record
from pandaharvester.harvestertest import instance
from security_helpers import make_grid_ca, mode

N_JOBS = 3
EXIT_CONFIG = 78


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    return make_grid_ca(tmp_path_factory.mktemp("files_grid"))


def _check(path: Path, expected: int, wrong: list[str], checked: list[str]) -> None:
    checked.append(str(path))
    if mode(path) != expected:
        wrong.append(f"{path}: {mode(path):04o}, expected {expected:04o}")


def test_daemon_files_are_owner_only(daemon_run, grid, monkeypatch):  # noqa: F811
    monkeypatch.setenv("X509_CERT_DIR", str(grid["trust"]))
    run = daemon_run(worker_seconds=2, only_queues=["DEMO_PUSH"])
    home = run.home
    proxy_dir = home / "proxy"
    proxy_dir.mkdir(mode=0o700)
    os.chmod(proxy_dir, 0o700)
    proxy = proxy_dir / "x509up"
    run.cfg_changes = {
        "monitor": {"fifoEnable": True, "fifoCheckInterval": 1},
        "credmanager": {"moduleName": "pandaharvester.harvestercredmanager.no_voms_cred_manager",
                        "className": "NoVomsCredManager", "inCertFile": str(grid["plain"]),
                        "outCertFile": str(proxy), "voms": "dummy", "sleepTime": 2},
    }
    run.write_config()
    run.emulator.add_task("DEMO_PUSH", N_JOBS, secrets={"MY_TOKEN": "file-mode-secret-1234"})
    old_umask = os.umask(0)  # the daemon inherits it
    try:
        run.start()
    finally:
        os.umask(old_umask)
    db = home / "harvester.db"
    run.wait_until(lambda: len(list(home.glob("workers/*/HPCJobs.json"))) == N_JOBS and proxy.exists(), 60,
                   "the job descriptions written and the proxy made")
    wrong: list[str] = []
    checked: list[str] = []
    for path in (db, Path(f"{db}-wal"), Path(f"{db}-shm"), run.pid_file, proxy):
        _check(path, 0o600, wrong, checked)  # while the daemon runs
    run.wait_until(lambda: all(j["status"] == "finished" for j in run.jobs("DEMO_PUSH")), 90, "every job finished")
    assert run.stop() == 0
    assert not run.pid_file.exists()

    for path in [db, *home.glob("*_fifo.db"), *home.glob("*_fifo.db-*"), proxy]:
        if path.exists():
            _check(path, 0o600, wrong, checked)
    store = home / "var/lib/harvester/job_secrets"
    _check(store, 0o700, wrong, checked)
    stored = list(store.iterdir())
    assert len(stored) == N_JOBS
    for path in stored:
        _check(path, 0o600, wrong, checked)
    descriptions = list(home.glob("workers/*/HPCJobs.json"))
    assert len(descriptions) == N_JOBS
    for path in descriptions:
        _check(path, 0o600, wrong, checked)
        _check(path.parent, 0o700, wrong, checked)
    # everything else the daemon wrote: not writable by group or others (logs, pilot files, reports)
    made_by_test = {home / "etc", home / "emulator", proxy_dir}
    for dirpath, dirs, files in os.walk(home):
        here = Path(dirpath)
        if any(here == p or p in here.parents for p in made_by_test):
            continue
        for name in files + dirs:
            path = here / name
            if path.is_symlink() or path in made_by_test or path.name.startswith("daemon."):
                continue  # daemon.N.out: the test's own capture of the daemon's stdout
            checked.append(str(path))
            if mode(path) & 0o022:
                wrong.append(f"{path}: {mode(path):04o} is writable by group or others")
    record(f"reliability: file_modes checked={len(checked)} wrong={len(wrong)}")
    assert not wrong, "\n".join(wrong)


# ------------------------------------------------------------------------------ refused at start
def _start(home: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PANDA_HOME=str(home))
    return subprocess.run([sys.executable, "-m", "pandaharvester.harvesterbody.master", "--foreground",
                           "--pid", str(home / "harvester.pid")], env=env, capture_output=True, text=True,
                          timeout=60, cwd=str(home))


def _case(name: str, home: Path, grid: dict) -> tuple[dict, Path]:
    """(cfg overrides, the credential file left readable by others) of one case."""
    secret_dir = home / "private"
    secret_dir.mkdir(mode=0o700, exist_ok=True)
    key = secret_dir / "user.key"
    key.write_bytes(Path(grid["key"]).read_bytes())
    proxy = secret_dir / "x509up"
    proxy.write_bytes(Path(grid["plain"]).read_bytes())
    token = secret_dir / "token"
    token.write_text("tok-files-0123456789\n")
    for path in (key, proxy, token):
        os.chmod(path, 0o600)
    if name == "pandacon key_file":
        return {"pandacon": {"key_file": str(key), "cert_file": str(home / "public.pem")}}, key
    if name == "pandacon cert_file (a proxy)":
        return {"pandacon": {"cert_file": str(proxy), "key_file": str(proxy)}}, proxy
    if name == "pandacon auth_token file":
        return {"pandacon": {"auth_type": "oidc", "auth_token": f"file:{token}"}}, token
    if name == "multihost_auth_config token file":
        config = secret_dir / "multihost.json"
        config.write_text(json.dumps({"other:443": {"auth_type": "oidc", "auth_token": f"file:{token}"}}))
        os.chmod(config, 0o600)
        return {"pandacon": {"multihost_auth_config": str(config)}}, token
    if name == "db password_file":
        pw = secret_dir / "db.pw"
        pw.write_text("db-password-in-a-file\n")
        return {"db": {"password_file": str(pw)}}, pw
    if name == "credmanager inCertFile":
        return {"credmanager": {"moduleName": "pandaharvester.harvestercredmanager.no_voms_cred_manager",
                                "className": "NoVomsCredManager", "inCertFile": str(proxy),
                                "outCertFile": str(secret_dir / "out"), "voms": "dummy"}}, proxy
    if name == "the cfg holding a password":
        return {"db": {"password": "pw-in-the-cfg-1234"}}, home / "etc/panda/panda_harvester.cfg"
    raise AssertionError(name)


CASES = ["pandacon key_file", "pandacon cert_file (a proxy)", "pandacon auth_token file",
         "multihost_auth_config token file", "db password_file", "credmanager inCertFile",
         "the cfg holding a password"]


@pytest.mark.parametrize("file_mode", [0o644, 0o604, 0o640])
def test_a_credential_file_others_may_read_refuses_the_start(tmp_path, grid, file_mode):
    """Each case with ``file_mode``; a cfg may be group-readable (0640), a credential may not."""
    n_refused = 0
    for name in CASES:
        home = tmp_path / name.replace(" ", "_").replace("(", "").replace(")", "")
        (home / "logs").mkdir(parents=True)
        overrides, exposed = _case(name, home, grid)
        cfg = instance.write_cfg(home, overrides)
        os.chmod(exposed, file_mode)
        if name == "the cfg holding a password" and file_mode == 0o640:
            assert str(exposed) not in _problems(home)  # group-readable cfg: allowed
            continue
        res = _start(home)
        assert res.returncode == EXIT_CONFIG, f"{name}: exit {res.returncode}\n{res.stdout}{res.stderr}"
        lines = [line for line in res.stderr.splitlines() if str(exposed) in line]
        assert len(lines) == 1, f"{name}: {res.stderr}"
        assert f"chmod 600 {exposed}" in lines[0] and f"{file_mode:04o}" in lines[0], lines[0]
        assert "Traceback" not in res.stderr and not (home / "harvester.pid").exists()
        assert not (home / "harvester.db").exists() and not list((home / "logs").iterdir()), name
        assert "pw-in-the-cfg" not in res.stderr and "db-password-in-a-file" not in res.stderr
        n_refused += 1
        os.chmod(exposed, 0o600)  # fixed as the message says: that line is gone
        if exposed != cfg:
            assert str(exposed) not in _problems(home), name
    assert n_refused >= len(CASES) - 1


def _problems(home: Path) -> str:
    """The start-up problems of ``home``'s cfg (without starting the daemon)."""
    code = ("from pandaharvester.harvesterbody.master_cli import check_config; "
            "print('\\n'.join(check_config()[0]))")
    env = dict(os.environ, PANDA_HOME=str(home))
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60).stdout


def test_a_public_certificate_may_be_world_readable(tmp_path, grid):
    home = tmp_path / "public"
    (home / "logs").mkdir(parents=True)
    cert = home / "usercert.pem"
    cert.write_text(Path(grid["plain"]).read_text().split("-----BEGIN PRIVATE KEY-----")[0])
    os.chmod(cert, 0o644)
    key = home / "userkey.pem"
    key.write_bytes(Path(grid["key"]).read_bytes())
    os.chmod(key, 0o600)
    instance.write_cfg(home, {"pandacon": {"cert_file": str(cert), "key_file": str(key)}})
    assert str(cert) not in _problems(home) and stat.S_IMODE(cert.stat().st_mode) == 0o644
