"""Run every benchmark, print one table, write docs/performance.md and the scaling plot.

    scripts/bench.sh                      # default sizes (about 10 minutes); writes docs/performance.*
    scripts/bench.sh --quick              # smoke run (about a minute); writes to a temporary directory
    scripts/bench.sh --only push,cycle    # a subset (names: db, cycle, idle, push, pull, slurm)

Each benchmark module exposes ``run(quick: bool) -> list[dict]`` with rows
``{"benchmark", "size", "metric", "value", "unit"}``. ``bench/slurm_bench.py`` is included when
it exists and Slurm answers (``sinfo``); otherwise it is skipped with a note. A module that fails
is reported in the table and makes the exit code 1; the others still run.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))

import report  # noqa: E402

# (short name, module) in the order they run: the cheap in-process ones first
MODULES = (("db", "db_bench"), ("cycle", "cycle_bench"), ("idle", "idle_bench"), ("push", "push_bench"),
           ("pull", "pull_bench"), ("slurm", "slurm_bench"))


def slurm_available() -> tuple[bool, str]:
    """(True, "") when bench/slurm_bench.py exists and ``sinfo`` answers; else (False, why)."""
    if not (BENCH_DIR / "slurm_bench.py").exists():
        return False, "bench/slurm_bench.py not present"
    if shutil.which("sinfo") is None:
        return False, "sinfo not found (Slurm not installed)"
    try:
        proc = subprocess.run(["sinfo", "--noheader"], capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"sinfo did not answer: {exc}"
    if proc.returncode != 0:
        return False, f"sinfo failed (Slurm not up): {proc.stderr.strip()[:200]}"
    return True, ""


def run_module(short: str, module_name: str, quick: bool) -> tuple[list[dict], str | None]:
    """Rows of one benchmark module and an error text (None when it ran)."""
    if short == "slurm":
        ok, why = slurm_available()
        if not ok:
            return [], f"skipped: {why}"
    try:
        module = importlib.import_module(module_name)
        rows = list(module.run(quick))
    except Exception as exc:
        traceback.print_exc()
        return [], f"FAILED: {type(exc).__name__}: {exc}"
    for r in rows:
        missing = {"benchmark", "size", "metric", "value", "unit"} - set(r)
        if missing:
            return rows, f"FAILED: row without {sorted(missing)}: {r}"
    return rows, None


def machine_info() -> dict[str, Any]:
    """What the figures were measured on."""
    model = ""
    try:
        with open("/proc/cpuinfo") as stream:
            model = next((line.split(":", 1)[1].strip() for line in stream if line.startswith("model name")), "")
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        commit = ""
    return {"cpus": os.cpu_count(), "cpu_model": model, "python": platform.python_version(),
            "platform": platform.platform(), "commit": commit,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, about a minute; never touches docs/")
    parser.add_argument("--only", default=None, help="comma list of: " + ", ".join(s for s, _m in MODULES))
    parser.add_argument("--out-dir", type=Path, default=None,
                        help="where performance.md/.json/.png go (default docs/, or a temp dir with --quick)")
    parser.add_argument("--render-only", action="store_true",
                        help="measure nothing: rewrite performance.md/.png from performance.json (after editing "
                             "bench/notes.md)")
    args = parser.parse_args(argv)
    if args.render_only:
        return render(args.out_dir or REPO / "docs")
    wanted = [s.strip() for s in args.only.split(",")] if args.only else [s for s, _m in MODULES]
    unknown = set(wanted) - {s for s, _m in MODULES}
    if unknown:
        parser.error(f"unknown benchmark(s) {sorted(unknown)}: use {', '.join(s for s, _m in MODULES)}")
    out_dir = args.out_dir or (Path(tempfile.mkdtemp(prefix="harvester_bench_quick_")) if args.quick
                               else REPO / "docs")
    out_dir.mkdir(parents=True, exist_ok=True)
    info = machine_info()
    info["load_before"] = os.getloadavg()
    info["mode"] = "quick" if args.quick else "default"
    command = "scripts/bench.sh" + (" --quick" if args.quick else "") + (f" --only {args.only}" if args.only else "")
    info["command"] = command
    rows: list[dict] = []
    notes: dict[str, str] = {}
    durations: dict[str, float] = {}
    t_all = time.monotonic()
    for short, module_name in MODULES:
        if short not in wanted:
            continue
        print(f"== {short} ({module_name}) ...", flush=True)
        t0 = time.monotonic()
        got, note = run_module(short, module_name, args.quick)
        durations[short] = time.monotonic() - t0
        rows += [dict(r, module=short) for r in got]
        if note:
            notes[short] = note
            print(f"   {note}", flush=True)
        print(f"   {len(got)} rows in {durations[short]:.1f} s", flush=True)
    info["load_after"] = os.getloadavg()
    info["total_seconds"] = time.monotonic() - t_all
    info["durations"] = durations
    table = report.table(rows)
    targets = report.check_targets(rows)
    print()
    print(table)
    print()
    print(report.targets_text(targets))
    for short, note in notes.items():
        print(f"{short}: {note}")
    (out_dir / "performance.json").write_text(json.dumps({"info": info, "rows": rows, "notes": notes}, indent=1))
    plot = write_report(out_dir, rows, notes, info)
    print(f"\nwrote {out_dir / 'performance.md'}" + (f" and {plot.name}" if plot else " (no plot: matplotlib missing)")
          + f" in {info['total_seconds']:.0f} s")
    return 1 if any(note.startswith("FAILED") for note in notes.values()) else 0


def write_report(out_dir: Path, rows: list[dict], notes: dict[str, str], info: dict) -> Path | None:
    """performance.md (with bench/notes.md) and performance.png in ``out_dir``; the plot's path."""
    plot = report.plot(rows, out_dir / "performance.png")
    notes_md = (BENCH_DIR / "notes.md").read_text() if (BENCH_DIR / "notes.md").exists() else ""
    (out_dir / "performance.md").write_text(report.markdown(rows, report.check_targets(rows), notes, info, plot,
                                                            notes_md))
    return plot


def render(out_dir: Path) -> int:
    """--render-only: the report again from ``out_dir/performance.json``."""
    source = out_dir / "performance.json"
    if not source.exists():
        print(f"{source} not found: run the benchmarks first (scripts/bench.sh)", file=sys.stderr)
        return 2
    data = json.loads(source.read_text())
    write_report(out_dir, data["rows"], data.get("notes", {}), data.get("info", {}))
    print(f"rewrote {out_dir / 'performance.md'} from {source}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
