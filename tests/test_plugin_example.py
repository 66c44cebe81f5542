"""The README's worked plugin example (examples/plugins/sleep_plugins.py) runs as documented."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from pandaharvester.harvestercore.plugin_factory import PluginFactory
from pandaharvester.harvestercore.work_spec import WorkSpec

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "plugins"


@pytest.fixture()
def factory(monkeypatch: pytest.MonkeyPatch) -> PluginFactory:
    monkeypatch.syspath_prepend(str(EXAMPLES))
    return PluginFactory(no_db=True)


def _workers(n: int) -> list[WorkSpec]:
    workers = []
    for worker_id in range(1, n + 1):
        work_spec = WorkSpec()
        work_spec.workerID = worker_id
        workers.append(work_spec)
    return workers


def _wait_final(monitor, workers, timeout: float = 10) -> list[tuple[str, str]]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        ok, statuses = monitor.check_workers(workers)
        assert ok
        if all(status in (WorkSpec.ST_finished, WorkSpec.ST_failed) for status, _diag in statuses):
            return statuses
        time.sleep(0.1)
    raise AssertionError(f"workers not final after {timeout} s: {statuses}")


def test_example_plugins_submit_and_finish(factory: PluginFactory) -> None:
    submitter = factory.get_plugin({"module": "sleep_plugins", "name": "SleepSubmitter", "command": ["sleep", "0.2"]})
    monitor = factory.get_plugin({"module": "sleep_plugins", "name": "SleepMonitor"})
    workers = _workers(2)
    assert submitter.submit_workers(workers) == [(True, ""), (True, "")]
    assert all(w.batchID for w in workers)
    ok, statuses = monitor.check_workers(workers)
    assert ok and [s for s, _d in statuses] == [WorkSpec.ST_running] * 2
    time.sleep(0.5)
    # another Popen makes Python reap finished children of discarded Popen objects: the
    # example must still know how its workers ended
    subprocess.run(["true"], check=True)
    assert [s for s, _d in _wait_final(monitor, workers)] == [WorkSpec.ST_finished] * 2


def test_example_plugins_report_failures(factory: PluginFactory) -> None:
    failing = factory.get_plugin({"module": "sleep_plugins", "name": "SleepSubmitter",
                                  "command": [sys.executable, "-c", "raise SystemExit(3)"]})
    monitor = factory.get_plugin({"module": "sleep_plugins", "name": "SleepMonitor"})
    workers = _workers(1)
    assert failing.submit_workers(workers) == [(True, "")]
    assert _wait_final(monitor, workers) == [(WorkSpec.ST_failed, "exit code 3")]
    missing = factory.get_plugin({"module": "sleep_plugins", "name": "SleepSubmitter",
                                  "command": ["/nonexistent/batch-command"]})
    ok, diag = missing.submit_workers(_workers(1))[0]
    assert ok is False and "/nonexistent/batch-command" in diag
