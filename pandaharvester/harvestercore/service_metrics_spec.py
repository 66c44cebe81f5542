"""ServiceMetricSpec: a sample of the service's health metrics — a row of ``sm_table``."""

from __future__ import annotations

import socket
from typing import Any

from .spec_base import SpecBase
from .time_utils import naive_utcnow


class ServiceMetricSpec(SpecBase):
    """Metrics (a dict) measured on this host at creationTime."""

    attributesWithTypes = (
        "creationTime:timestamp / index",
        "hostName:text",
        "metrics:blob",
    )

    def __init__(self, service_metrics: Any = None) -> None:
        """Stamp the metrics with now and this host's FQDN; without metrics, an empty spec."""
        super().__init__()
        if service_metrics is not None:
            self.creationTime = naive_utcnow()
            self.hostName = socket.getfqdn()
            self.metrics = service_metrics
