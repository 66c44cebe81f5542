"""Logging levels and the cost of lines not emitted: at INFO, a DEBUG line is never formatted."""

from __future__ import annotations

import inspect
import logging
from pathlib import Path
from types import SimpleNamespace

import pytest

from pandaharvester.harvestercore import core_utils, log_utils


class Counting:
    """Counts how often it is turned into text."""

    def __init__(self) -> None:
        self.n = 0

    def __str__(self) -> str:
        self.n += 1
        return "counted"

    __repr__ = __str__

    def __format__(self, spec: str) -> str:
        return str(self)


class Hook:
    def __init__(self) -> None:
        self.messages: list[str] = []

    def add_dialog_message(self, message: str, level: str, module_name: str, identifier: str | None = None) -> None:
        self.messages.append(message)


@pytest.fixture()
def configured(tmp_path: Path):
    """Logging as the master sets it up with no level configured anywhere."""
    core_utils.configure_logging(str(tmp_path / "logs"))
    yield tmp_path / "logs"
    core_utils.configure_logging(None)


def test_the_default_level_is_info(configured) -> None:
    logger = core_utils.setup_logger("lazy_default")
    assert logger.getEffectiveLevel() == logging.INFO


def test_a_debug_line_at_info_is_not_formatted(configured) -> None:
    value = Counting()
    base = core_utils.setup_logger("lazy_plain")
    base.debug("value %s", value)
    wrapper = core_utils.make_logger(base, "workerID=1", method_name="check")
    wrapper.debug("value %s", value)
    hooked = log_utils.make_logger(base, "PandaID=2", method_name="update", hook=Hook())
    hooked.debug("value %s", value)
    assert value.n == 0
    wrapper.info("value %s", value)  # emitted: formatted once
    assert value.n == 1
    assert "check <workerID=1> value counted" in (configured / "panda-lazy_plain.log").read_text()


def test_a_level_set_per_logger_wins_over_the_default(tmp_path) -> None:
    core_utils.configure_logging(str(tmp_path), {"lazy_chatty": "DEBUG"}, default_level="WARNING")
    try:
        assert core_utils.setup_logger("lazy_chatty").isEnabledFor(logging.DEBUG)
        assert not core_utils.setup_logger("lazy_quiet").isEnabledFor(logging.INFO)
    finally:
        core_utils.configure_logging(None)


def test_make_logger_names_the_caller_without_reading_the_stack(monkeypatch) -> None:
    def no_stack(*_args, **_kwargs):
        raise AssertionError("inspect.stack() reads the source of every frame: too slow per job")

    monkeypatch.setattr(inspect, "stack", no_stack)

    def check_workers():
        return core_utils.make_logger(core_utils.setup_logger("lazy_stack"), "workerID=3")

    assert check_workers().prefix == "check_workers <workerID=3>"
    assert core_utils.setup_logger().name == "panda.log.test_core_logging"


def test_new_worker_lines_are_not_built_at_info(configured) -> None:
    from pandaharvester.harvesterbody.worker_maker import WorkerMaker

    worker_id = Counting()
    worker = SimpleNamespace(workerID=worker_id, resourceType="SCORE", pilotType="PR", jobType="managed", nCore=1)
    log = core_utils.make_logger(core_utils.setup_logger("lazy_maker"), method_name="make_workers")
    WorkerMaker._log_new_workers(log, [(worker, [SimpleNamespace(PandaID=Counting())])])
    assert worker_id.n == 0
