"""Time helpers. Harvester stores naive UTC datetimes everywhere (DB columns, specs)."""

from __future__ import annotations

import datetime

DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


def naive_utcnow() -> datetime.datetime:
    """Current UTC time without tzinfo (the form stored in the DB)."""
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def aware_utcnow() -> datetime.datetime:
    """Current UTC time with tzinfo."""
    return datetime.datetime.now(datetime.timezone.utc)


def naive_utcfromtimestamp(timestamp: float) -> datetime.datetime:
    """UTC datetime without tzinfo from a POSIX timestamp."""
    return datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc).replace(tzinfo=None)


def aware_utcfromtimestamp(timestamp: float) -> datetime.datetime:
    """UTC datetime with tzinfo from a POSIX timestamp."""
    return datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc)


def to_panda_string(value: datetime.datetime) -> str:
    """The ``datetime/...`` string form PanDA expects for datetimes in request payloads."""
    return "datetime/" + value.strftime(DATETIME_FORMAT)


def from_panda_string(value: str) -> datetime.datetime:
    """Inverse of :func:`to_panda_string`; also accepts a value without the prefix."""
    if value.startswith("datetime/"):
        value = value[len("datetime/"):]
    for fmt in (DATETIME_FORMAT, "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S"):
        try:
            return datetime.datetime.strptime(value, fmt)
        except ValueError:
            continue
    raise ValueError(f"not a datetime string: {value!r}")
