"""When to try a PanDA request again, and how long to wait before it.

Transient failures are retried a bounded number of times with exponential back-off:
no complete reply (connection refused/reset, timeout), HTTP 5xx (and 408/429), and an HTTP 200
whose body is not valid JSON (truncated or garbled). Anything else is final: other HTTP
statuses, and application-level ``success: false`` replies, which the caller inspects (the only
exception, the first-heartbeat quirk, is handled by the heartbeat method itself).

Every retry resends exactly the same request bytes, so an update whose reply was lost is
presented to the server again unchanged and the server's idempotency makes it a no-op.

Calls that hand something out (``pilot/acquire_jobs``, ``harvester/acquire_commands``,
``event/acquire_event_ranges``) are not idempotent: the server has no key to recognise a
repeat, so a repeat gets a new batch and the first one is lost. They are retried only when
the request surely was not processed: it never reached the server (connection refused, name
not resolved, connect timeout: ``TransportError.never_sent``) or the server refused it
(HTTP 408, 429, 503: :func:`is_refused_status`). Any other failure may have followed the server
applying it, and the caller is told so (``CallResult.maybe_applied`` in ``http_client``).
"""

from __future__ import annotations

import dataclasses
import random
import threading
from typing import Iterator

RETRYABLE_STATUS = frozenset({408, 429})
# statuses by which the server (or its front end) says it did not process the request
REFUSED_STATUS = frozenset({408, 429, 503})
MAX_BACKOFF_SECONDS = 60.0


def is_retryable_status(status_code: int) -> bool:
    """True for HTTP statuses that signal a transient server problem."""
    return status_code >= 500 or status_code in RETRYABLE_STATUS


def is_refused_status(status_code: int) -> bool:
    """True for HTTP statuses that mean the request was not processed (safe to send again)."""
    return status_code in REFUSED_STATUS


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """``max_retries`` further attempts after the first, waiting ``backoff * 2**n`` (±20 %)."""

    max_retries: int = 3
    backoff: float = 1.0
    max_backoff: float = MAX_BACKOFF_SECONDS
    jitter: float = 0.2

    @property
    def attempts(self) -> int:
        """Total number of attempts (first try included)."""
        return 1 + max(0, self.max_retries)

    def delay(self, retry_number: int) -> float:
        """Seconds to wait before retry number ``retry_number`` (1-based)."""
        base = min(self.max_backoff, self.backoff * (2 ** max(0, retry_number - 1)))
        if base <= 0:
            return 0.0
        return max(0.0, random.uniform(base * (1 - self.jitter), base * (1 + self.jitter)))

    def delays(self) -> Iterator[float]:
        """The waits before each retry, in order."""
        for n in range(1, self.attempts):
            yield self.delay(n)


def wait(seconds: float, stop_event: threading.Event | None = None) -> bool:
    """Sleep ``seconds`` (or until ``stop_event``); True when stopped."""
    if seconds <= 0:
        return bool(stop_event is not None and stop_event.is_set())
    if stop_event is None:
        threading.Event().wait(seconds)
        return False
    return stop_event.wait(seconds)
