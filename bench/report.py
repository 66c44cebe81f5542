"""Formatting of benchmark rows: the text table, the target checks, the plot, docs/performance.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any

# (target, benchmark, size, metric, comparison, threshold, unit); size None = every size present
TARGETS = (
    (">= 500 jobs/s end to end, push mode, 10k jobs", "push e2e", 10000, "jobs/s", ">=", 500, "jobs/s"),
    (">= 1,000 workers/s, pull mode", "pull e2e", None, "workers/s", ">=", 1000, "workers/s"),
    ("monitor cycle over 100k live workers < 10 s", "monitor cycle", 100000, "all N workers checked", "<", 10, "s"),
    ("idle RSS < 120 MB (100 queues)", "idle daemon", None, "RSS", "<", 120, "MB"),
    ("start-up to first cycle < 2 s", "idle daemon", None, "start-up to first cycle", "<", 2, "s"),
)
LINEAR_LIMIT = 2.0  # per-worker cost at the largest size / at the smallest: above this, not linear


def fmt(value: Any) -> str:
    """A figure with a sensible number of digits."""
    if not isinstance(value, (int, float)):
        return str(value)
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def table(rows: list[dict]) -> str:
    """Fixed-width text table of every row."""
    header = ("benchmark", "size", "metric", "value", "unit")
    cells = [header] + [(r["benchmark"], f"{r['size']:,}" if isinstance(r["size"], int) else str(r["size"]),
                         r["metric"], fmt(r["value"]), r["unit"]) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(5)]
    lines = []
    for k, c in enumerate(cells):
        lines.append("  ".join(c[i].rjust(widths[i]) if i in (1, 3) else c[i].ljust(widths[i]) for i in range(5)))
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _find(rows: list[dict], benchmark: str, metric: str, size: Any = None) -> list[dict]:
    return [r for r in rows if r["benchmark"] == benchmark and r["metric"] == metric
            and (size is None or r["size"] == size)]


def linearity(rows: list[dict], benchmark: str, metric: str) -> tuple[float, int, int] | None:
    """(ratio of per-unit cost at the largest size to the smallest, smallest, largest), or None."""
    found = sorted(_find(rows, benchmark, metric), key=lambda r: r["size"])
    if len(found) < 2 or not found[0]["value"]:
        return None
    return found[-1]["value"] / found[0]["value"], found[0]["size"], found[-1]["size"]


def check_targets(rows: list[dict]) -> list[dict]:
    """One entry per target: {target, measured, met (True/False/None when not measured)}."""
    checks = []
    for name, benchmark, size, metric, op, threshold, unit in TARGETS:
        found = _find(rows, benchmark, metric, size)
        if not found:
            checks.append({"target": name, "measured": "not measured at this size", "met": None})
            continue
        values = [r["value"] for r in found]
        met = all(v >= threshold for v in values) if op == ">=" else all(v < threshold for v in values)
        measured = ", ".join(f"{fmt(r['value'])} {unit}" + (f" ({r['size']:,})" if size is None and len(found) > 1
                                                            else "") for r in found)
        checks.append({"target": name, "measured": measured, "met": met})
    for benchmark, metric in (("monitor cycle", "per 1k workers"), ("sweeper cycle", "per 1k deleted")):
        lin = linearity(rows, benchmark, metric)
        name = f"{benchmark} cost linear in live workers (per-1k cost ratio < {LINEAR_LIMIT})"
        if lin is None:
            checks.append({"target": name, "measured": "not measured", "met": None})
        else:
            ratio, small, large = lin
            checks.append({"target": name, "met": ratio < LINEAR_LIMIT,
                           "measured": f"per-1k cost at {large:,} / at {small:,} = {ratio:.2f}"})
    return checks


def _mark(met: bool | None) -> str:
    return {True: "met", False: "MISSED", None: "n/a"}[met]


def targets_text(checks: list[dict]) -> str:
    """The target checks as text lines."""
    return "\n".join(f"[{_mark(c['met']):>6}] {c['target']}: {c['measured']}" for c in checks)


def plot(rows: list[dict], path: Path) -> Path | None:
    """PNG of the scaling curves; None when matplotlib is not installed or nothing to draw."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    # (title, y label, series, log y, target line (value, label) or None)
    panels = (
        ("cycle time vs live workers", "s", [("monitor cycle", "all N workers checked", "monitor: all N checked"),
                                             ("monitor cycle", "one batch of 500", "monitor: one batch of 500"),
                                             ("sweeper cycle", None, "sweeper: N/10 deleted")], True,
         (10, "target: 100k monitor cycle < 10 s")),
        ("cost per 1k workers (flat = linear)", "s per 1k", [("monitor cycle", "per 1k workers", "monitor"),
                                                            ("sweeper cycle", "per 1k deleted", "sweeper")], True,
         None),
        ("push mode end to end", "jobs/s", [("push e2e", "jobs/s", "jobs/s")], False, (500, "target 500 jobs/s")),
        ("pull mode end to end", "workers/s", [("pull e2e", "workers/s", "workers/s")], False,
         (1000, "target 1,000 workers/s")),
    )
    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    drawn = False
    for ax, (title, ylabel, series, logy, target) in zip(axes.flat, panels):
        for benchmark, metric, label in series:
            found = sorted((r for r in rows if r["benchmark"] == benchmark
                            and (r["metric"] == metric if metric else r["metric"].endswith("old workers deleted"))),
                           key=lambda r: r["size"])
            if not found:
                continue
            ax.plot([r["size"] for r in found], [r["value"] for r in found], marker="o", label=label)
            drawn = True
        if target is not None:
            ax.axhline(target[0], color="red", linestyle="--", linewidth=1, label=target[1])
        ax.set_xscale("log")
        if logy:
            ax.set_yscale("log")
        else:
            ax.set_ylim(bottom=0)
        ax.set_title(title)
        ax.set_xlabel("N (live workers, jobs or workers)")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    fig.suptitle("pandaharvester scaling (SQLite, dummy plugins)")
    fig.tight_layout()
    if not drawn:
        plt.close(fig)
        return None
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def markdown(rows: list[dict], checks: list[dict], notes: dict[str, str], info: dict, plot_path: Path | None,
             notes_md: str) -> str:
    """docs/performance.md."""
    lines = [
        "# Performance",
        "",
        "Generated by `bench/run_all.py` (do not edit by hand: the hand-written part comes from",
        "`bench/notes.md`). Reproduce with:",
        "",
        f"    {info.get('command', 'scripts/bench.sh')}",
        "",
        f"Measured {info.get('date')} on {info.get('cpus')} CPUs ({info.get('cpu_model') or 'unknown model'}), "
        f"Python {info.get('python')}, commit `{info.get('commit')}`, {info.get('mode')} sizes, "
        f"{info.get('total_seconds', 0):.0f} s in all. Load average before/after: "
        f"{_load(info.get('load_before'))} / {_load(info.get('load_after'))}.",
        "",
        "## Targets",
        "",
        "| target | measured | |",
        "|---|---|---|",
    ]
    lines += [f"| {c['target']} | {c['measured']} | {_mark(c['met'])} |" for c in checks]
    lines += ["", "## Figures", "", "| benchmark | size | metric | value | unit |", "|---|---:|---|---:|---|"]
    lines += [f"| {r['benchmark']} | {r['size']:,} | {r['metric']} | {fmt(r['value'])} | {r['unit']} |"
              if isinstance(r["size"], int) else
              f"| {r['benchmark']} | {r['size']} | {r['metric']} | {fmt(r['value'])} | {r['unit']} |" for r in rows]
    if notes:
        lines += ["", "Not measured:", ""] + [f"- {k}: {v}" for k, v in notes.items()]
    if plot_path is not None:
        lines += ["", "## Scaling curves", "", f"![scaling curves]({plot_path.name})"]
    if notes_md:
        lines += ["", notes_md.strip()]
    return "\n".join(lines) + "\n"


def _load(load: Any) -> str:
    return " ".join(f"{x:.1f}" for x in load) if load else "?"
