"""Figures the reliability tests measure, printed at the end of the pytest run.

``record("reliability: kills=20 jobs=300 ...")`` keeps a line for the terminal summary (see
``conftest.pytest_terminal_summary``) and appends it, with the time, to
``$HARVESTER_FIGURES_FILE`` when that is set, so a long run leaves its figures in a file.
``full()`` says whether the long variants run (``--full`` or ``HARVESTER_RELIABILITY_FULL=1``).
"""

from __future__ import annotations

import os
import time

_LINES: list[str] = []
_FULL = {"option": False}


def record(line: str) -> str:
    """Keep ``line`` for the summary (and the figures file); returns it."""
    _LINES.append(line)
    path = os.environ.get("HARVESTER_FIGURES_FILE")
    if path:
        with open(path, "a") as out:
            out.write(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {line}\n")
    print(line)
    return line


def recorded() -> list[str]:
    return list(_LINES)


def set_full_option(value: bool) -> None:
    _FULL["option"] = bool(value)


def full() -> bool:
    """The long variants: ``pytest --full`` or ``HARVESTER_RELIABILITY_FULL=1``."""
    return _FULL["option"] or os.environ.get("HARVESTER_RELIABILITY_FULL", "") not in ("", "0", "false", "False")
