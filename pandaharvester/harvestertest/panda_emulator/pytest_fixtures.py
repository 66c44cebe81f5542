"""Reusable pytest fixtures: a real emulator process per test.

In a test module::

    from pandaharvester.harvestertest.panda_emulator.pytest_fixtures import emulator, emulator_tls  # noqa: F401

    def test_something(emulator):
        ids = emulator.add_task("SITE_A", 2)
        ...

``emulator``: plain HTTP, no authentication (identity "anonymous" has the production role).
``emulator_tls``: HTTPS with the emulator CA; client certificate ``emulator_tls.client_cert``/
``client_key`` and bearer token ``emulator_tls.tokens[0]`` (``EMULATOR_TLS_TOKEN``) accepted;
authentication required. Both use a short holding delay (0.3 s).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .launcher import EmulatorProcess, start_emulator

EMULATOR_TLS_TOKEN = "emulator-test-token"
FAST_ARGS = ["--holding-delay", "0.3"]


@pytest.fixture()
def emulator(tmp_path: Path) -> Iterator[EmulatorProcess]:
    """An HTTP emulator process (stopped after the test)."""
    emu = start_emulator(tmp_path / "panda_emulator", extra_args=FAST_ARGS)
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture()
def emulator_tls(tmp_path: Path) -> Iterator[EmulatorProcess]:
    """An HTTPS emulator process with client-certificate and token authentication."""
    emu = start_emulator(tmp_path / "panda_emulator_tls", tls=True, tokens=[EMULATOR_TLS_TOKEN], extra_args=FAST_ARGS)
    try:
        yield emu
    finally:
        emu.stop()
