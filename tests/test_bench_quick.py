"""The quick benchmark run (what CI runs): every benchmark prints its rows with sane values.

Runs ``bench/run_all.py --quick`` as a separate process in a temporary output directory and
checks the printed table, the written report, and that docs/performance.md is left alone.
No timing target is asserted here (figures are the benchmark's business, not a test's).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

import report  # noqa: E402

EXPECTED = {
    "db micro": {"insert workers", "lock workers", "update workers", "monitor query (500 due)"},
    "monitor cycle": {"all N workers checked", "per 1k workers", "one batch of 500"},
    "sweeper cycle": {"per 1k deleted"},
    "idle daemon": {"start-up to first cycle", "RSS", "CPU"},
    "push e2e": {"jobs/s", "workers/s", "daemon CPU per 1k jobs", "daemon peak RSS"},
    "pull e2e": {"workers/s", "daemon CPU per 1k workers", "daemon peak RSS"},
}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out_dir = tmp_path_factory.mktemp("bench_quick")
    docs = REPO / "docs" / "performance.md"
    before = docs.read_bytes() if docs.exists() else None
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "run_all.py"), "--quick", "--out-dir", str(out_dir)],
                          capture_output=True, text=True, timeout=600, cwd=str(out_dir))
    after = docs.read_bytes() if docs.exists() else None
    return {"proc": proc, "out_dir": out_dir, "docs_unchanged": before == after}


def test_quick_bench_runs_every_benchmark(quick_run: dict) -> None:
    proc = quick_run["proc"]
    assert proc.returncode == 0, f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"
    data = json.loads((quick_run["out_dir"] / "performance.json").read_text())
    rows = data["rows"]
    for benchmark, metrics in EXPECTED.items():
        found = {r["metric"] for r in rows if r["benchmark"] == benchmark}
        assert metrics <= found, f"{benchmark}: missing {metrics - found} in {sorted(found)}"
        # the printed table has the benchmark's rows too
        assert any(line.startswith(benchmark) for line in proc.stdout.splitlines()), benchmark
    # the Slurm benchmark is either measured or skipped with a reason, never silently absent
    assert "slurm" in data["notes"] or any(r["module"] == "slurm" for r in rows)


def test_quick_bench_values_are_sane(quick_run: dict) -> None:
    rows = json.loads((quick_run["out_dir"] / "performance.json").read_text())["rows"]

    def value(benchmark: str, metric: str) -> float:
        return next(r["value"] for r in rows if r["benchmark"] == benchmark and r["metric"] == metric)

    for r in rows:
        assert isinstance(r["value"], (int, float)) and r["value"] == r["value"], r  # a number, not NaN
        assert r["value"] >= 0, r
    assert value("push e2e", "jobs/s") > 0
    assert value("pull e2e", "workers/s") > 0
    assert 5 < value("push e2e", "daemon peak RSS") < 4000
    assert 5 < value("idle daemon", "RSS") < 4000
    assert 0 < value("idle daemon", "start-up to first cycle") < 120
    assert value("pull e2e", "queues with workers") >= 1
    # every worker of the full pass was checked (the bench raises otherwise), at a finite cost
    assert value("monitor cycle", "per 1k workers") > 0


def test_quick_bench_writes_its_own_report_only(quick_run: dict) -> None:
    out_dir = quick_run["out_dir"]
    text = (out_dir / "performance.md").read_text()
    assert "## Targets" in text and "| push e2e |" in text
    assert "scripts/bench.sh --quick" in text
    assert quick_run["docs_unchanged"], "--quick must not overwrite docs/performance.md"


def test_targets_are_checked_against_the_thresholds() -> None:
    rows = [{"benchmark": "push e2e", "size": 10000, "metric": "jobs/s", "value": 499.0, "unit": "jobs/s"},
            {"benchmark": "idle daemon", "size": 100, "metric": "RSS", "value": 119.0, "unit": "MB"},
            {"benchmark": "monitor cycle", "size": 1000, "metric": "per 1k workers", "value": 0.1, "unit": "s"},
            {"benchmark": "monitor cycle", "size": 100000, "metric": "per 1k workers", "value": 0.5, "unit": "s"}]
    checks = {c["target"]: c["met"] for c in report.check_targets(rows)}
    assert checks[">= 500 jobs/s end to end, push mode, 10k jobs"] is False
    assert checks["idle RSS < 120 MB (100 queues)"] is True
    assert checks[">= 1,000 workers/s, pull mode"] is None  # not measured
    assert any("monitor cycle cost linear" in k and v is False for k, v in checks.items())  # 5x per-1k cost


def test_unknown_benchmark_name_is_refused() -> None:
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "run_all.py"), "--only", "push,nosuch"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "nosuch" in proc.stderr
