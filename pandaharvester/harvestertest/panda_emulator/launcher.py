"""Start the PanDA server emulator as a real separate process (for tests, demos, benchmarks).

Usage::

    from pandaharvester.harvestertest.panda_emulator.launcher import start_emulator

    with start_emulator(tmp_path, tls=True, tokens=["secret"]) as emu:
        ids = emu.add_task("SITE_A", 3)
        requests.post(f"{emu.base_url}/pilot/acquire_jobs", json={...},
                      headers={"Accept": "application/json"},
                      cert=(emu.client_cert, emu.client_key), verify=emu.ca_cert)

The child process is ``python -m pandaharvester.harvestertest.panda_emulator serve ...``.
It writes ``<state_dir>/emulator.ready.json`` (port, scheme) once listening; the launcher
waits for that file and for ``/emulator/ping`` (never fault-injected) to answer.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Self

import requests

READY_FILE = "emulator.ready.json"
STATE_FILE = "emulator.sqlite"
LOG_FILE = "emulator.log"
PKI_DIR = "pki"


class EmulatorError(RuntimeError):
    """The emulator process did not start, died, or an admin call failed."""


class EmulatorProcess:
    """Handle on a running emulator process (see :func:`start_emulator`)."""

    def __init__(
        self,
        state_dir: Path,
        *,
        tls: bool,
        tokens: list[str],
        require_auth: bool,
        faults: dict | None,
        seed: int,
        port: int,
        extra_args: list[str],
        startup_timeout: float = 30.0,
        sent_timeout: float | None = None,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.tls = tls
        self.tokens = list(tokens)
        self.require_auth = require_auth
        self.faults = dict(faults) if faults else None
        self.seed = seed
        self.port = port
        self.extra_args = list(extra_args)
        self.sent_timeout = sent_timeout
        self.startup_timeout = startup_timeout
        self.state_file = self.state_dir / STATE_FILE
        self.log_file = self.state_dir / LOG_FILE
        self.cert_dir = self.state_dir / PKI_DIR
        self.ca_cert: str | None = None
        self.client_cert: str | None = None
        self.client_key: str | None = None
        self.proc: subprocess.Popen | None = None
        self._session = requests.Session()

    # ------------------------------------------------------------------ URLs
    @property
    def scheme(self) -> str:
        """``https`` or ``http``."""
        return "https" if self.tls else "http"

    @property
    def url(self) -> str:
        """Root URL (admin endpoints live under ``<url>/emulator/...``)."""
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """API base URL, ``<url>/api/v1`` (also the cache base URL)."""
        return f"{self.url}/api/v1"

    # ------------------------------------------------------------- process
    def _command(self) -> list[str]:
        cmd = [
            sys.executable,
            "-m",
            "pandaharvester.harvestertest.panda_emulator",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--state-file",
            str(self.state_file),
            "--ready-file",
            str(self.state_dir / READY_FILE),
            "--seed",
            str(self.seed),
            "--https" if self.tls else "--http",
        ]
        if self.tls:
            cmd += ["--cert-dir", str(self.cert_dir)]
        for token in self.tokens:
            cmd += ["--token", token]
        cmd.append("--require-auth" if self.require_auth else "--no-require-auth")
        if self.faults:
            cmd += ["--faults", json.dumps(self.faults)]
        if self.sent_timeout is not None:
            cmd += ["--sent-timeout", str(self.sent_timeout)]
        cmd += self.extra_args
        return cmd

    def start(self) -> EmulatorProcess:
        """Start the process and wait until it answers."""
        if self.proc is not None and self.proc.poll() is None:
            return self
        ready = self.state_dir / READY_FILE
        if ready.exists():
            ready.unlink()
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        with open(self.log_file, "ab") as log:
            self.proc = subprocess.Popen(
                self._command(), stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise EmulatorError(
                    f"emulator exited with code {self.proc.returncode}; see {self.log_file}:\n{self._log_tail()}"
                )
            if ready.exists():
                try:
                    info = json.loads(ready.read_text())
                except ValueError:
                    info = None
                if info:
                    self.port = int(info["port"])
                    if self.tls:
                        self.ca_cert = info["ca_cert"]
                        self.client_cert = info["client_cert"]
                        self.client_key = info["client_key"]
                    if self._ping():
                        return self
            time.sleep(0.05)
        self.stop()
        raise EmulatorError(
            f"emulator did not answer within {self.startup_timeout}s; see {self.log_file}:\n{self._log_tail()}"
        )

    def _log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def _ping(self) -> bool:
        try:
            r = self._session.get(f"{self.url}/emulator/ping", timeout=2, **self.request_kwargs())
            return r.status_code == 200
        except requests.RequestException:
            return False

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the process (SIGTERM, then SIGKILL after ``timeout``)."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def kill(self) -> None:
        """Kill the process at once (SIGKILL), as a crash would."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(5)

    def restart(self) -> EmulatorProcess:
        """Stop and start again on the same state file, port and certificates."""
        self.stop()
        return self.start()

    @property
    def alive(self) -> bool:
        """True while the process runs."""
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -------------------------------------------------------------- clients
    def request_kwargs(self, *, cert: bool = True, token: bool = True) -> dict:
        """``requests`` keyword arguments carrying this emulator's credentials.

        Includes ``verify`` (the CA) and ``cert`` for HTTPS, and the first token as a bearer
        header when tokens are configured and there is no client certificate to use.
        """
        kw: dict[str, Any] = {"headers": {"Accept": "application/json"}}
        if self.tls:
            kw["verify"] = self.ca_cert
            if cert and self.client_cert:
                kw["cert"] = (self.client_cert, self.client_key)
        if token and self.tokens and not (self.tls and cert):
            kw["headers"]["Authorization"] = f"Bearer {self.tokens[0]}"
        return kw

    def admin(self, method: str, path: str, payload: dict | None = None) -> Any:
        """Call an admin endpoint ``/emulator/<path>`` and return the decoded JSON."""
        path = path.lstrip("/")
        path = path.removeprefix("emulator/")
        url = f"{self.url}/emulator/{path}"
        kw = self.request_kwargs()
        if method.upper() == "GET":
            r = self._session.get(url, params=payload, timeout=30, **kw)
        else:
            r = self._session.request(method.upper(), url, json=payload or {}, timeout=30, **kw)
        try:
            body = r.json()
        except ValueError as exc:
            raise EmulatorError(f"admin {method} {path}: HTTP {r.status_code} {r.text[:300]}") from exc
        if r.status_code != 200:
            raise EmulatorError(f"admin {method} {path}: HTTP {r.status_code} {body}")
        return body

    def _data(self, method: str, path: str, payload: dict | None = None) -> Any:
        body = self.admin(method, path, payload)
        if not body.get("success"):
            raise EmulatorError(f"admin {method} {path}: {body.get('message')}")
        return body.get("data")

    def add_task(self, site: str, n_jobs: int, **kw: Any) -> list[int]:
        """Add a task with ``n_jobs`` activated jobs at ``site``; returns the PandaIDs.

        Keywords: ``cores``, ``walltime``, ``events`` (event ranges per job: makes ES jobs),
        ``prod_source_label`` ("managed"), ``resource_type``, ``ram``, ``n_files``,
        ``task_id``, ``status`` ("activated" or "defined"), ``job_type``, ``secrets`` (a dict or JSON
        string: the jobs carry it as their ``secrets`` field, a JSON string, as the real server sends).
        """
        payload = {"site": site, "n_jobs": n_jobs, **kw}
        return self._data("POST", "add_task", payload)["panda_ids"]

    def state(self) -> dict:
        """The ``/emulator/state`` summary."""
        return self._data("GET", "state")

    def jobs(self, **filters: Any) -> list[dict]:
        """Jobs as stored (filters: site, status, task_id, panda_ids)."""
        return self._data("POST", "jobs", filters)

    def workers(self, **filters: Any) -> list[dict]:
        """Workers as reported (filters: harvester_id, site, status)."""
        return self._data("POST", "workers", filters)

    def history(self, **filters: Any) -> dict:
        """Dispatch and final-report history (filter: ``panda_ids``): ``{"dispatches": [{panda_id,
        attempt_nr, harvester_id, worker_id, node, time}], "final_reports": [{panda_id, attempt_nr,
        job_status, harvester_id, prior_status, applied, message, time}]}``, oldest first."""
        return self._data("POST", "history", filters)

    def set_faults(self, **kw: Any) -> dict:
        """Change fault injection: rate, kinds, endpoints, seed, delay (see docs/emulator.md)."""
        return self._data("POST", "faults", kw)

    def add_command(self, harvester_id: str, command: str, params: Any = None, ack_requested: bool = True) -> int:
        """Queue a command for an instance; returns its command_id."""
        payload = {"harvester_id": harvester_id, "command": command, "params": params, "ack_requested": ack_requested}
        return self._data("POST", "add_command", payload)["command_id"]

    def set_queue_depth(self, site: str, n: int, **kw: Any) -> dict:
        """Set the number of jobs/workers PanDA wants queued at ``site``.

        Keywords: ``resource_type`` ("ANY"), ``job_type`` ("managed", as the real server sends;
        "ANY" possible), ``harvester_id`` (send the SET_N_WORKERS_JOBTYPE command to that instance
        only; without it each live instance serving the site gets its share), ``command`` (False:
        no command). The reply's ``shares`` holds what each instance was sent.
        """
        return self._data("POST", "set_queue_depth", {"site": site, "n": n, **kw})

    def settings(self, **kw: Any) -> dict:
        """Change ``holding_delay``, ``sent_timeout`` or ``instance_timeout`` of the running server;
        returns all three."""
        return self._data("POST", "settings", kw)

    def worker_stats(self) -> dict:
        """The worker statistics PanDA holds: ``{queue: {harvester_id: {job_type: {resource_type:
        {status: n}}}}}``, as ``harvester/get_worker_statistics`` answers."""
        return self._data("GET", "worker_stats")

    def kill_job(self, panda_id: int) -> dict:
        """Mark a job tobekilled (a not-yet-dispatched job is cancelled at once)."""
        return self._data("POST", "kill_job", {"panda_id": panda_id})

    def set_instance_config(
        self,
        harvester_id: str,
        queues: list[str] | None = None,
        cfg: str | None = None,
        queue_config: dict | None = None,
    ) -> dict:
        """Set the instance config served to ``HARVESTER_INSTANCE_CONFIG_URL`` and the queue config JSON."""
        payload = {"harvester_id": harvester_id, "queues": queues, "cfg": cfg, "queue_config": queue_config}
        return self._data("POST", "instance_config", payload)


def start_emulator(
    state_dir: Path,
    *,
    tls: bool = False,
    tokens: list[str] | None = None,
    require_auth: bool | None = None,
    faults: dict | None = None,
    seed: int = 0,
    port: int = 0,
    extra_args: list[str] | tuple[str, ...] = (),
    sent_timeout: float | None = None,
) -> EmulatorProcess:
    """Start an emulator process and wait until it answers.

    ``require_auth`` defaults to True when ``tls`` or ``tokens`` is given. ``port=0`` picks a
    free port (kept across :meth:`EmulatorProcess.restart`). ``extra_args`` are appended to
    the ``serve`` command line (e.g. ``["--holding-delay", "0.5"]``). ``sent_timeout``: seconds
    after which the server's watchdog reassigns a job left in ``sent`` (``serve --sent-timeout``;
    None keeps the server's default, long enough not to disturb a normal run).
    """
    tokens = list(tokens or [])
    if require_auth is None:
        require_auth = bool(tls or tokens)
    emu = EmulatorProcess(
        Path(state_dir),
        tls=tls,
        tokens=tokens,
        require_auth=require_auth,
        faults=faults,
        seed=seed,
        port=port,
        extra_args=list(extra_args),
        sent_timeout=sent_timeout,
    )
    return emu.start()
