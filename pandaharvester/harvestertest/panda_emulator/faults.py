"""Deterministic fault injection for ``/api/v1`` requests.

The decision for the n-th request (n = 1, 2, ...) to an endpoint depends only on
(seed, endpoint, n): the same seed gives the same fault sequence per endpoint, whatever the
interleaving of concurrent requests to other endpoints. Setting the faults resets the counters.

Kinds (what the client sees / what the server did):

=================== ======================================================= ===========
kind                reply                                                    applied?
=================== ======================================================= ===========
http500             HTTP 500 with a JSON envelope                            no
http503             HTTP 503 with a JSON envelope                            no
delay               normal reply after ``delay`` seconds                     yes
timeout             connection closed after ``timeout_delay`` seconds        no
truncated_json      HTTP 200, body cut in the middle                         yes
invalid_json        HTTP 200, an HTML error page                             no
double_body         HTTP 200, the JSON body twice                            yes (once)
duplicate_apply     normal reply; the request was applied twice              yes (twice)
drop                connection closed without a reply                        no
drop_after_commit   connection closed without a reply                        yes
wrong_shape         HTTP 200, valid JSON of the wrong shape (see below)      yes
=================== ======================================================= ===========

``wrong_shape`` sends the real reply bent out of shape, one of (chosen by the same seeded draw):
a bare value instead of the envelope (``7``, ``"OK"``, ``["success", true]``); the envelope
without ``success``; ``data`` replaced by an int; each list in ``data`` (or ``data`` itself) as
a list of strings; the keys holding ``data``'s payload (its lists and objects; each item's first
key in a list of objects; the items of a list of scalars) removed. Endpoints whose ``data`` is a scalar or null get one of the
first two, or a scalar ``data`` as a list of strings.
"""

from __future__ import annotations

import random
import threading
from typing import Any

KINDS = (
    "http500",
    "http503",
    "delay",
    "timeout",
    "truncated_json",
    "invalid_json",
    "double_body",
    "duplicate_apply",
    "drop",
    "drop_after_commit",
    "wrong_shape",
)
# the ways a ``wrong_shape`` reply is bent (see the module docstring)
# kinds after which the request was applied but the client got no usable reply
APPLIED_UNREADABLE = ("drop_after_commit", "truncated_json", "double_body", "wrong_shape")
SHAPE_VARIANTS = ("bare", "no_success", "int_data", "strings", "missing_keys")
BARE_VALUES = (7, "OK", ["success", True])
# kinds that only make sense where applying twice is harmless (updates keyed by id)
IDEMPOTENT_ENDPOINTS = {
    "harvester/heartbeat",
    "harvester/update_workers",
    "pilot/update_jobs_bulk",
    "event/update_event_ranges",
    "harvester/acknowledge_commands",
    "harvester/report_worker_statistics",
    "harvester/update_service_metrics",
    "harvester/add_dialogs",
    "system/is_alive",
    "job/get_status",
    "event/get_available_event_range_count",
}


class FaultConfig:
    """Current fault settings plus per-endpoint counters (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.rate = 0.0
        self.kinds: list[str] = []
        self.endpoints: list[str] = []
        self.seed = 0
        self.delay = 1.0
        self.timeout_delay = 10.0
        self._calls: dict[str, int] = {}
        self.injected: dict[str, dict[str, int]] = {}
        self.lost_jobs: list[int] = []  # PandaIDs dispatched in acquire_jobs replies the client could not read

    def configure(self, settings: dict[str, Any] | None, default_seed: int = 0) -> dict:
        """Replace the settings (keys: rate, kinds, endpoints, seed, delay, timeout_delay)."""
        settings = dict(settings or {})
        unknown = set(settings) - {"rate", "kinds", "endpoints", "seed", "delay", "timeout_delay"}
        if unknown:
            raise ValueError(f"unknown fault settings {sorted(unknown)}")
        rate = float(settings.get("rate", 0.0))
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be between 0 and 1")
        kinds = settings.get("kinds") or []
        if isinstance(kinds, str):
            kinds = [k for k in kinds.split(",") if k]
        bad = [k for k in kinds if k not in KINDS]
        if bad:
            raise ValueError(f"unknown fault kinds {bad}; known: {', '.join(KINDS)}")
        endpoints = settings.get("endpoints") or []
        if isinstance(endpoints, str):
            endpoints = [e for e in endpoints.split(",") if e]
        with self._lock:
            self.rate = rate
            self.kinds = list(kinds)
            self.endpoints = [e.strip("/") for e in endpoints]
            self.seed = int(settings.get("seed", default_seed))
            self.delay = float(settings.get("delay", 1.0))
            self.timeout_delay = float(settings.get("timeout_delay", 10.0))
            self._calls = {}
        return self.describe()

    def describe(self) -> dict:
        """Settings as JSON."""
        return {
            "rate": self.rate,
            "kinds": self.kinds,
            "endpoints": self.endpoints,
            "seed": self.seed,
            "delay": self.delay,
            "timeout_delay": self.timeout_delay,
        }

    def shape_variant(self, endpoint: str, reply: Any) -> tuple[str, int]:
        """How the ``wrong_shape`` reply to the current request to ``endpoint`` is bent:
        ``(variant, pick)`` (``pick`` chooses the bare value), from the seeded draw of that request."""
        with self._lock:
            n = self._calls.get(endpoint, 0)
            rng = random.Random(f"{self.seed}|{endpoint}|{n}|shape")
        options = shape_variants_for(reply)
        return options[rng.randrange(len(options))], rng.randrange(len(BARE_VALUES))

    def decide(self, endpoint: str) -> str | None:
        """Fault kind for this request to ``endpoint`` (None: behave normally)."""
        with self._lock:
            n = self._calls.get(endpoint, 0) + 1
            self._calls[endpoint] = n
            if self.rate <= 0 or not self.kinds:
                return None
            if self.endpoints and endpoint not in self.endpoints:
                return None
            rng = random.Random(f"{self.seed}|{endpoint}|{n}")
            if rng.random() >= self.rate:
                return None
            kinds = self.kinds
            if endpoint not in IDEMPOTENT_ENDPOINTS:
                kinds = [k for k in kinds if k != "duplicate_apply"] or []
            if not kinds:
                return None
            kind = kinds[rng.randrange(len(kinds))]
            self.injected.setdefault(endpoint, {})
            self.injected[endpoint][kind] = self.injected[endpoint].get(kind, 0) + 1
            return kind

    def note_applied(self, endpoint: str, kind: str | None, reply: Any) -> None:
        """Remember the jobs an ``acquire_jobs`` handed out in a reply ``kind`` made unreadable."""
        if endpoint != "pilot/acquire_jobs" or kind not in APPLIED_UNREADABLE or not isinstance(reply, dict):
            return
        data = reply.get("data") if reply.get("success") else None
        jobs = data.get("jobs") if isinstance(data, dict) else None
        with self._lock:
            self.lost_jobs += [job["PandaID"] for job in jobs or [] if isinstance(job, dict) and "PandaID" in job]

    def counters(self) -> dict:
        """{"calls": {endpoint: n}, "injected": {endpoint: {kind: n}}, "lost_jobs": [PandaID, ...]}."""
        with self._lock:
            return {"calls": dict(self._calls), "injected": {k: dict(v) for k, v in self.injected.items()},
                    "lost_jobs": list(self.lost_jobs)}


def shape_variants_for(reply: Any) -> tuple[str, ...]:
    """The ``wrong_shape`` variants that bend ``reply`` (by the type of its ``data``)."""
    data = reply.get("data") if isinstance(reply, dict) else None
    if isinstance(data, (dict, list)) and data:
        return SHAPE_VARIANTS
    if isinstance(data, (int, float)) and not isinstance(data, bool):
        return ("bare", "no_success", "strings")
    return ("bare", "no_success")


def wrong_shape(reply: Any, variant: str, pick: int = 0) -> Any:
    """``reply`` (an API envelope) bent in the way ``variant`` names: valid JSON, wrong shape."""
    if variant == "bare" or not isinstance(reply, dict):
        return BARE_VALUES[pick % len(BARE_VALUES)]
    bent = dict(reply)
    data = bent.get("data")
    if variant == "no_success":
        bent.pop("success", None)
    elif variant == "int_data":
        bent["data"] = 7
    elif variant == "strings":
        bent["data"] = _as_strings(data)
    elif variant == "missing_keys":
        bent["data"] = _without_keys(data)
    else:
        raise ValueError(f"unknown wrong_shape variant {variant!r}")
    return bent


def _as_strings(data: Any) -> Any:
    """Each list in ``data`` (or ``data`` itself) as a list of strings; an object of objects
    with its values as strings; any other object or a scalar as a list of strings."""
    if isinstance(data, list):
        return [str(item) for item in data]
    if isinstance(data, dict):
        lists = [key for key, value in data.items() if isinstance(value, list)]
        if lists:
            return {k: [str(item) for item in v] if k in lists else v for k, v in data.items()}
        if any(isinstance(value, dict) for value in data.values()):
            return {k: str(v) for k, v in data.items()}
        return [f"{k}={v}" for k, v in data.items()]
    return [str(data)]


def _without_keys(data: Any) -> Any:
    """``data`` without the keys of its payload: in an object, those holding lists or objects
    (its first key when none does); in a list of objects, each item's first key; a list of
    anything else loses its items."""
    if isinstance(data, list):
        if not any(isinstance(item, dict) for item in data):
            return []
        return [dict(list(item.items())[1:]) if isinstance(item, dict) else item for item in data]
    if isinstance(data, dict):
        nested = [key for key, value in data.items() if isinstance(value, (list, dict))]
        dropped = set(nested) if nested else set(list(data)[:1])
        return {k: v for k, v in data.items() if k not in dropped}
    return data
