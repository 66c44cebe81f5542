"""Summarise a py-spy raw (collapsed) profile: the functions with the most samples.

    .venv/bin/python bench/profile_summary.py PROFILE [--top 40] [--match pandaharvester]

"self" counts samples where the function is the innermost frame; "total" where it is on the
stack at all (once per sample). Idle waits (sleep, Event.wait, select) are left out.
"""

from __future__ import annotations

import argparse
import collections

IDLE = ("wait (threading.py", "sleep (", "select (", "_wait_for_tstate_lock", "poll (selectors", "accept (")


def summarise(path: str, top: int, match: str | None) -> None:
    self_counts: collections.Counter = collections.Counter()
    total_counts: collections.Counter = collections.Counter()
    n_samples = 0
    with open(path) as stream:
        for line in stream:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack:
                continue
            frames = stack.split(";")
            if any(marker in frames[-1] for marker in IDLE):
                continue
            n = int(count)
            n_samples += n
            self_counts[frames[-1]] += n
            for frame in set(frames):
                if match is None or match in frame:
                    total_counts[frame] += n
    print(f"{n_samples} busy samples")
    print("--- self")
    for frame, n in self_counts.most_common(top):
        print(f"{100 * n / n_samples:6.1f}% {frame}")
    print("--- total")
    for frame, n in total_counts.most_common(top):
        print(f"{100 * n / n_samples:6.1f}% {frame}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--match", default=None)
    args = parser.parse_args()
    summarise(args.profile, args.top, args.match)


if __name__ == "__main__":
    main()
