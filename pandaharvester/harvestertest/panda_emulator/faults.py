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
=================== ======================================================= ===========
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
)
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

    def counters(self) -> dict:
        """{"calls": {endpoint: n}, "injected": {endpoint: {kind: n}}}."""
        with self._lock:
            return {"calls": dict(self._calls), "injected": {k: dict(v) for k, v in self.injected.items()}}
