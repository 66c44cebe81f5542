"""Shared fixtures: every test session runs against its own Harvester home (PANDA_HOME)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harvester_env  # noqa: E402
from slurm_helpers import slurm, slurm_walltime_worker  # noqa: E402,F401  (session fixtures of the Slurm tests)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", default=False, help="run the long variants")
    parser.addoption("--full", action="store_true", default=False,
                     help="tests/reliability: the long variants (100 kills, 1,000+ fuzz cases); "
                          "also HARVESTER_RELIABILITY_FULL=1")


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """Print the figures the reliability tests recorded (``figures.record``), one line each."""
    import figures

    lines = figures.recorded()
    if lines:
        terminalreporter.section("reliability figures")
        for line in lines:
            terminalreporter.write_line(line)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    import figures

    figures.set_full_option(config.getoption("--full"))
    if config.getoption("--runslow"):
        return
    skip_slow = pytest.mark.skip(reason="long variant: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)


@pytest.fixture(scope="session", autouse=True)
def harvester_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A PANDA_HOME with a cfg from the template; the DB and logs live below it."""
    home = tmp_path_factory.mktemp("harvester_home")
    harvester_env.activate(home)
    return home


@pytest.fixture()
def fresh_home(tmp_path: Path, harvester_home: Path):
    """A per-test PANDA_HOME; ``fresh_home(overrides)`` rewrites the cfg with overrides."""
    made: list[Path] = []

    def make(overrides: dict | None = None) -> Path:
        harvester_env.activate(tmp_path, overrides)
        made.append(tmp_path)
        return tmp_path

    yield make
    if made:
        harvester_env.activate(harvester_home)
