"""Helpers shared by the grid submitters (the original's ``harvestersubmitter.submitter_common``).

Pilot options (pilot type → prodSourceLabel, pilot URL, debug flag; job label, job type and
resource type options for unified queues) and the weighting of CEs from worker statistics used
to spread new workers over the CEs of a queue.
"""

from __future__ import annotations

import random
from math import log1p
from typing import Any

# resource types known when a caller does not pass the list (the original's older signature)
DEFAULT_RESOURCE_TYPES = ("SCORE", "MCORE", "SCORE_HIMEM", "MCORE_HIMEM")

_PILOT_URL_BASE = "http://cern.ch/atlas-panda-pilot"
PROD_RC_PILOT_URL = "http://pandaserver.cern.ch:25085/cache/pilot/pilot3-rc.tar.gz"


# ---------------------------------------------------------------- pilot options
def get_complicated_pilot_options(pilot_type: str, pilot_url: str | None = None, pilot_version: str = "",
                                  prod_source_label: str | None = None, prod_rc_permille: float = 0) -> dict:
    """Pilot options of a pilot type.

    ``{"prod_source_label", "pilot_type_opt", "pilot_url_str", "pilot_debug_str"}``:
    RC → rc_test2 with the dev pilot and ``-d``; ALRB → rc_alrb; PT → ptest (pilot type PR) with
    the dev2 pilot and ``-d``; anything else is PR with ``prod_source_label``. ``pilot_url``
    replaces the URL option; without it a PR pilot gets the release-candidate pilot with a
    probability of ``prod_rc_permille`` per mille.
    """
    tarball = "pilot3" if str(pilot_version).startswith("3") else "pilot2"
    options = {
        "RC": {"prod_source_label": "rc_test2", "pilot_type_opt": "RC",
               "pilot_url_str": f"--piloturl {_PILOT_URL_BASE}/{tarball}-dev.tar.gz", "pilot_debug_str": "-d"},
        "ALRB": {"prod_source_label": "rc_alrb", "pilot_type_opt": "ALRB", "pilot_url_str": "",
                 "pilot_debug_str": ""},
        "PT": {"prod_source_label": "ptest", "pilot_type_opt": "PR",
               "pilot_url_str": f"--piloturl {_PILOT_URL_BASE}/{tarball}-dev2.tar.gz", "pilot_debug_str": "-d"},
    }.get(pilot_type) or {"prod_source_label": prod_source_label, "pilot_type_opt": "PR", "pilot_url_str": "",
                          "pilot_debug_str": ""}
    if pilot_url:
        options["pilot_url_str"] = f"--piloturl {pilot_url}"
    elif pilot_type == "PR":
        probability = min(max(prod_rc_permille / 1000.0, 0), 1)
        if random.random() < probability:
            options["pilot_url_str"] = f"--piloturl {PROD_RC_PILOT_URL}"
    return options


def get_python_version_option(python_version: str, prod_source_label: str | None) -> str:
    """The pilot wrapper's ``--pythonversion 3`` when ``python_version`` is 3.x, else ""."""
    return "--pythonversion 3" if str(python_version).startswith("3") else ""


def get_joblabel(prod_source_label: str, is_unified_dispatch: bool = True) -> str:
    """The pilot's job label (``-j``): "unified" for managed and user jobs (unified dispatch).

    ``is_unified_dispatch=False`` (the original's older keyword) keeps the prodSourceLabel.
    """
    if is_unified_dispatch and prod_source_label in ("managed", "user"):
        return "unified"
    return prod_source_label


def get_pilot_job_type(job_type: str, is_unified_dispatch: bool = True) -> str:
    """The pilot's ``--job-type``: "unified" (unified dispatch), else ``job_type``."""
    return "unified" if is_unified_dispatch else job_type


def get_resource_type(resource_type_name: Any, is_unified_queue: bool, all_resource_types: Any = None,
                      is_pilot_option: bool = False) -> str:
    """The resource type of a worker on a unified queue: the name, or ``--resource-type <name>``.

    "" when the queue is not unified or the name is not one of ``all_resource_types``. The
    original's older call ``(name, is_unified_queue, is_pilot_option)`` still works: a bool in
    third place is ``is_pilot_option`` and the standard resource types are used.
    """
    if isinstance(all_resource_types, bool):
        all_resource_types, is_pilot_option = None, all_resource_types
    known = set(DEFAULT_RESOURCE_TYPES if all_resource_types is None else all_resource_types)
    name = str(resource_type_name)
    if not is_unified_queue or name not in known:
        return ""
    return f"--resource-type {name}" if is_pilot_option else name


# ---------------------------------------------------------------- CE weighting
def _throughput(counts: dict | None) -> float:
    """log1p(submitted + running + finished) - log1p(submitted) of one history record."""
    if counts is None:
        return 0.0
    good = float(counts["submitted"] + counts["running"] + counts["finished"])
    return log1p(good) - log1p(float(counts["submitted"]))


def _share_coefficients(fairshare_percent: float) -> tuple[float, float, float]:
    """(throughput, fair share, slots) coefficients of a fair share percentage (clamped 0..100)."""
    fair = min(max(fairshare_percent, 0), 100) / 100.0
    if fair > 0.5:
        return 1.0 - fair, fair, 0.0
    return fair, fair, 1.0 - fair - fair


def get_ce_weighting(ce_endpoint_list: list | None = None, worker_ce_all_tuple: tuple | None = None,
                     is_slave_queue: bool = False, fairshare_percent: float = 50) -> tuple:
    """Weights for choosing the CE of each new worker of a queue.

    ``worker_ce_all_tuple`` is ``(worker_limits, {ce: {submitted, running}} now,
    {ce: {submitted, running, finished}} over the history window, window seconds, n new workers)``.
    Each CE gets a base share mixing its throughput (relative to the queue's), an equal share
    (``fairshare_percent``) and its estimated slots; its weight is how far its queued workers are
    below its share of the target queue (``nQueueLimitWorker`` + new workers), 0 when it already
    queues more than ``nQueueLimitWorker``, reduced when nothing runs there.

    Returns ``(total_score, {ce: weight}, {ce: throughput per day}, target_Q)``; the weights add
    up to ``total_score`` (1000 per CE).
    """
    ces = list(ce_endpoint_list or [])
    limits, now, history, time_window, n_new_workers = worker_ce_all_tuple  # type: ignore[misc]
    n_ce = float(len(ces))
    queue_limit = float(limits["nQueueLimitWorker"])
    all_good = float(sum(c["submitted"] + c["running"] + c["finished"] for c in history.values()))
    all_submitted = float(sum(c["submitted"] for c in history.values()))
    throughput_avg = log1p(all_good) - log1p(all_submitted)
    target_q = queue_limit + float(n_new_workers)
    if is_slave_queue:
        queued_now = sum(float(c["submitted"]) for c in now.values())
        target_q = min(queued_now, queue_limit) + float(n_new_workers)

    def slots(ce: str) -> float:
        past = history[ce]["running"] + history[ce]["finished"] if ce in history else 0
        running = now[ce].get("running", 0) if ce in now else 0
        return (past + running) / 2.0

    total_slots = sum(slots(ce) for ce in ces) or 1
    c_throughput, c_fair, c_slots = _share_coefficients(fairshare_percent)

    def base_share(ce: str) -> float:
        throughput = _throughput(history.get(ce))
        try:
            return c_throughput * throughput / throughput_avg + c_fair * (1 / n_ce) + c_slots * slots(ce) / total_slots
        except ZeroDivisionError:
            if throughput == 0.0:  # no history anywhere: an equal share
                return 1 / n_ce
            raise

    share_sum = sum(base_share(ce) for ce in ces)

    def raw_weight(ce: str) -> float:
        queued = float(now[ce]["submitted"]) if ce in now else 0.0
        running = float(now[ce]["running"]) if ce in now else 0.0
        if ce in now and queued > queue_limit:
            return 0.0
        weight = max(target_q * (base_share(ce) / share_sum) - queued, 2 ** -10)
        if running == 0:  # nothing runs there: maybe a dead CE
            weight /= 1 + log1p(queued) ** 2
        return weight

    raw = {ce: raw_weight(ce) for ce in ces}
    total_score = 1000.0 * n_ce
    try:
        regulator = total_score / sum(raw.values())
    except ZeroDivisionError:
        regulator = 1.0
    weights = {ce: raw[ce] * regulator for ce in ces}
    throughputs = {ce: _throughput(history.get(ce)) * 86400.0 / time_window for ce in ces}
    return total_score, weights, throughputs, target_q


def choose_ce(weighting: tuple) -> str | None:
    """A CE drawn with probability proportional to its weight (None when all weights are 0)."""
    total_score, weights, _throughputs, _target_q = weighting
    lucky_number = random.random() * total_score
    cumulative = 0.0
    last = None
    for ce, weight in weights.items():
        if weight == 0.0:
            continue
        last = ce
        cumulative += weight
        if cumulative >= lucky_number:
            return ce
    return last if weights.get(last, -1) > 0.0 else None


def get_ce_stats_weighting_display(ce_list: list, worker_ce_all_tuple: tuple, ce_weighting: tuple,
                                   fairshare_percent: Any = None) -> str:
    """One log line with the queue's limits and each CE's counts, throughput (T) and weight (W)."""
    limits, now, history, time_window, n_new_workers = worker_ce_all_tuple
    _total, weights, throughputs, target_q = ce_weighting
    general = (f"maxWorkers={int(limits.get('maxWorkers'))} nQueueLimitWorker={int(limits.get('nQueueLimitWorker'))} "
               f"nNewWorkers={int(n_new_workers)} target_Q={int(target_q)} hist_timeWindow={int(time_window)} "
               f"fairshare_perc={fairshare_percent} ")
    parts = []
    for ce in ce_list:
        current = now.get(ce, {"submitted": 0, "running": 0})
        past = history.get(ce, {"submitted": 0, "running": 0, "finished": 0})
        parts.append(f'"{ce}": now_S={int(current.get("submitted"))} now_R={int(current.get("running"))} '
                     f'hist_S={int(past.get("submitted"))} hist_R={int(past.get("running"))} '
                     f'hist_F={int(past.get("finished"))} T={throughputs.get(ce):.02f} W={weights.get(ce):.03f} ')
    return general + " ; " + " , ".join(parts)
