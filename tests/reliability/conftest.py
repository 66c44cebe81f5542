"""tests/reliability: crash, fault, bad-input and security tests (quick in CI, ``--full`` for the long run).

The ``full`` fixture says which variant runs; ``figures.record`` keeps the printed figures.
"""

from __future__ import annotations

import pytest

import figures


@pytest.fixture()
def full() -> bool:
    """True for the long variants (``pytest --full`` or ``HARVESTER_RELIABILITY_FULL=1``)."""
    return figures.full()
