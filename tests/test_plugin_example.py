"""The README's worked plugin example (examples/plugins/sleep_plugins.py) runs as documented."""

from __future__ import annotations

import json
import re
import shlex
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


# ---------------------------------------------------------------------------- the README's plugin section
README = Path(__file__).resolve().parent.parent / "README.md"


def _readme_blocks() -> dict[str, list[str]]:
    """{language: [code, ...]} of the README's "Writing a submitter and a monitor plugin" section."""
    text = README.read_text()
    section = text[text.index("## Writing a submitter and a monitor plugin"):text.index("## Slurm plugins")]
    blocks: dict[str, list[str]] = {}
    for match in re.finditer(r"```(\w+)\n(.*?)```", section, re.S):
        blocks.setdefault(match.group(1), []).append(match.group(2))
    return blocks


@pytest.fixture()
def readme_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """The README's plugin module written as my_batch_plugins.py on sys.path; the section's blocks."""
    blocks = _readme_blocks()
    module = blocks["python"][0]
    assert module.startswith('"""my_batch_plugins.py')
    (tmp_path / "my_batch_plugins.py").write_text(module)
    monkeypatch.syspath_prepend(str(tmp_path))
    return blocks


def test_readme_queue_config_loads_and_needs_every_section(readme_module):
    from pandaharvester.harvestercore.queue_config import MANDATORY_PLUGINS
    from pandaharvester.harvestercore.queue_config_builder import QueueBuilder

    [text] = readme_module["json"]
    queues = json.loads(text)
    result = QueueBuilder(import_check=True).build(None, queues)
    assert result.errors == [] and list(result.queues) == ["MY_SITE"]
    queue = result.queues["MY_SITE"]
    assert queue.mapType == "NoJob" and queue.submitter["command"] == ["sleep", "600"]
    assert sorted(MANDATORY_PLUGINS) == sorted(k for k in queues["MY_SITE"] if isinstance(queues["MY_SITE"][k], dict))
    for role in ("preparator", "stager"):  # what the README says a pull queue needs too
        lacking = json.loads(text)
        del lacking["MY_SITE"][role]
        result = QueueBuilder(import_check=True).build(None, lacking)
        assert "MY_SITE" not in result.queues
        assert any(f"mandatory plugin section {role!r} is missing" in str(e) for e in result.errors)


def test_readme_check_command_passes(readme_module, capsys):
    from pandaharvester.harvesterscripts import harvester_admin

    [command] = [line for block in readme_module["sh"] for line in block.splitlines()
                 if line.startswith("harvester-admin plugin check")]
    args = shlex.split(command)
    assert harvester_admin.main(args[1:] + ["--require-final"]) == 0, capsys.readouterr().out
    out = capsys.readouterr().out
    assert "PASS monitor     check until final" in out and "PASS sweeper     sweep" in out


def test_readme_pytest_helper_snippet_passes(readme_module):
    snippet = readme_module["python"][1]
    namespace: dict = {}
    exec(compile(snippet, "README.md", "exec"), namespace)  # noqa: S102  (the README's own code)
    namespace["test_my_submitter"]()
