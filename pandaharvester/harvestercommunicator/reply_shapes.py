"""The shape of every PanDA API v1 reply, checked in one place.

:func:`check_reply` runs on each decoded HTTP-200 reply (``http_client``), before any caller
sees it. What it checks is what the callers rely on: the envelope (an object with a boolean
``success`` and a string or null ``message``) and, when ``success`` is true, the ``data`` of
that endpoint (:data:`DATA_SHAPES`); ``data`` of a failed reply is not read beyond its message.
A reply that does not fit gives one error naming the endpoint, the value and the shape::

    PanDA harvester/acquire_commands replied {'success': True, 'message': '', 'data': ['{...}']}:
    expected data: a list of commands {command_id: int, command: str, params, ack_requested}
    (data[0] is a str)

and the call fails as a garbled reply does (``http_client``): an idempotent call is sent again
(the same bytes), a call that hands something out stops with ``maybe_applied`` (``LOST_REPLY``);
the agent sees a failed call and tries again at its next cycle. The value of a credential
reply (``creds/``) is never shown. The jobs of an ``acquire_jobs`` reply are checked as a list
with at least one job object: the job fetcher keeps each good job and skips a bad one alone
(docs/guarantees.md); a list of nothing but misfits is the wrong shape.
"""

from __future__ import annotations

import dataclasses
from typing import Any

SECRET_PREFIXES = ("creds/", "credential/")
VALUE_LIMIT = 200
# module names some clients use for the same functions
MODULE_ALIASES = {"credential": "creds", "file": "file_server"}


def _kind(value: Any) -> str:
    """``a str``, ``an int``, ``null``, ... (no value: it may be a secret)."""
    if value is None:
        return "null"
    names = {bool: "a bool", int: "an int", float: "a float", str: "a str", list: "a list", dict: "an object"}
    return names.get(type(value), f"a {type(value).__name__}")


def _child(where: str, key: str) -> str:
    """How a problem names a key: ``data.jobs``; a key of the envelope by its name."""
    return key if where == "the reply" else f"{where}.{key}"


class Shape:
    """A JSON shape: :attr:`text` describes it, :meth:`problem` says what does not fit."""

    text = "anything"

    def problem(self, value: Any, where: str) -> str | None:
        """None when ``value`` fits, else what is wrong at ``where`` (e.g. ``data[1] is a str``)."""
        return None


@dataclasses.dataclass(frozen=True)
class Kind(Shape):
    """One of some JSON types (a bool is not an int here)."""

    types: tuple[type, ...]
    text: str

    def problem(self, value: Any, where: str) -> str | None:
        if isinstance(value, bool) and bool not in self.types:
            return f"{where} is a bool"
        return None if isinstance(value, self.types) else f"{where} is {_kind(value)}"


@dataclasses.dataclass(frozen=True)
class ListOf(Shape):
    """A list whose every item fits ``item``."""

    item: Shape
    text: str

    def problem(self, value: Any, where: str) -> str | None:
        if not isinstance(value, list):
            return f"{where} is {_kind(value)}"
        for index, item in enumerate(value):
            found = self.item.problem(item, f"{where}[{index}]")
            if found:
                return found
        return None


@dataclasses.dataclass(frozen=True)
class DictOf(Shape):
    """An object whose every value fits ``value`` (keys are free)."""

    value: Shape
    text: str

    def problem(self, value: Any, where: str) -> str | None:
        if not isinstance(value, dict):
            return f"{where} is {_kind(value)}"
        for key, item in value.items():
            found = self.value.problem(item, f"{where}[{key!r}]")
            if found:
                return found
        return None


@dataclasses.dataclass(frozen=True)
class MostlyListOf(ListOf):
    """A list in which, when it is not empty, at least one item fits ``item``: the caller
    skips the items that do not fit one by one (a list of only misfits is the wrong shape)."""

    def problem(self, value: Any, where: str) -> str | None:
        if not isinstance(value, list):
            return f"{where} is {_kind(value)}"
        if not value or any(self.item.problem(item, where) is None for item in value):
            return None
        return f"no item of {where} is {self.item.text} ({where}[0] is {_kind(value[0])})"


@dataclasses.dataclass(frozen=True)
class Obj(Shape):
    """An object with ``required`` keys, maybe ``optional`` ones (other keys are free);
    ``any_of``: groups of names of which one must be present; ``if_ok``: keys required when
    the object's ``StatusCode`` is 0 (or absent)."""

    text: str
    required: dict[str, Shape] = dataclasses.field(default_factory=dict)
    optional: dict[str, Shape] = dataclasses.field(default_factory=dict)
    any_of: tuple[tuple[str, ...], ...] = ()
    if_ok: dict[str, Shape] = dataclasses.field(default_factory=dict)

    def problem(self, value: Any, where: str) -> str | None:
        if not isinstance(value, dict):
            return f"{where} is {_kind(value)}"
        required = dict(self.required)
        if self.if_ok and value.get("StatusCode", 0) == 0:
            required.update(self.if_ok)
        for key, shape in required.items():
            if key not in value:
                return f"{where} has no {key}"
            found = shape.problem(value[key], _child(where, key))
            if found:
                return found
        for key, shape in self.optional.items():
            found = shape.problem(value[key], _child(where, key)) if key in value else None
            if found:
                return found
        for names in self.any_of:
            if not any(value.get(name) is not None for name in names):
                return f"{where} has none of {', '.join(names)}"
        return None


@dataclasses.dataclass(frozen=True)
class OneOf(Shape):
    """Fits one of ``shapes`` (the problem reported is the first one's)."""

    shapes: tuple[Shape, ...]
    text: str

    def problem(self, value: Any, where: str) -> str | None:
        problems = [shape.problem(value, where) for shape in self.shapes]
        return None if any(p is None for p in problems) else problems[0]


ANY = Shape()
INT = Kind((int,), "int")
STR = Kind((str,), "str")
BOOL = Kind((bool,), "bool")
OPT_STR = Kind((str, type(None)), "str or null")
OPT_INT = Kind((int, type(None)), "int or null")
OPT_OBJ = Kind((dict, type(None)), "an object or null")
OBJ = Kind((dict,), "an object")

ENVELOPE = Obj("an API reply {success: bool, message: str, data}", required={"success": BOOL},
               optional={"message": OPT_STR})
EVENT = Obj("an event range {eventRangeID: str, ...}", required={"eventRangeID": STR})
EVENTS = ListOf(EVENT, "a list of event ranges {eventRangeID: str, ...}")
JOB_RESULT = OneOf((Obj("", required={"success": BOOL}, optional={"message": OPT_STR, "data": OPT_OBJ}),
                    Obj("", required={"StatusCode": INT}), Obj("", required={"content": ANY})),
                   "{success: bool, message, data}")
RESOURCE_TYPES = ListOf(Obj("", required={"resource_name": STR}), "")
COMMAND = Obj("{command_id: int, command: str, params, ack_requested}", required={
    "command_id": INT, "command": STR, "params": ANY, "ack_requested": ANY})

# the ``data`` of a successful reply, per endpoint (endpoints not listed: not read)
DATA_SHAPES: dict[str, Shape] = {
    "pilot/acquire_jobs": Obj("{StatusCode: int, jobs: [job objects]}", optional={
        "StatusCode": INT, "errorDialog": OPT_STR}, if_ok={"jobs": MostlyListOf(OBJ, "a list of job objects")}),
    "pilot/update_jobs_bulk": ListOf(JOB_RESULT, "a list of job results {success: bool, message, data}"),
    # status null: a job PanDA does not know
    "job/get_status": ListOf(Obj("", required={"status": OPT_STR}, optional={"command": OPT_STR}),
                             "a list of {status: str or null, command: str or null}"),
    "event/acquire_event_ranges": OneOf((
        Obj("", optional={"StatusCode": INT}, if_ok={"eventRanges": OneOf((EVENTS, STR), "")}), EVENTS),
        "{StatusCode: int, eventRanges: [event ranges {eventRangeID: str, ...}]}"),
    "event/update_event_ranges": Obj("{StatusCode: int, Returns: [bool or null, ...]}",
                                     optional={"StatusCode": INT},
                                     if_ok={"Returns": ListOf(Kind((bool, type(None)), "bool or null"), "")}),
    "event/get_available_event_range_count": OPT_INT,
    "harvester/acquire_commands": ListOf(COMMAND, f"a list of commands {COMMAND.text}"),
    "harvester/update_workers": ListOf(BOOL, "a list of bools (one per worker)"),
    "harvester/get_worker_statistics": OneOf((Kind((type(None),), ""), DictOf(OBJ, "")),
                                             "{harvester_id: {queue: {...}}}"),
    "harvester/get_current_worker_id": OPT_INT,
    "statistics/active_job_stats_by_site": OneOf((Kind((type(None),), ""), DictOf(DictOf(INT, ""), "")),
                                                 "{site: {status: int}}"),
    "statistics/active_job_detailed_stats_by_site": OneOf((Kind((type(None),), ""), DictOf(DictOf(OBJ, ""), "")),
                                                          "{site: {label: {resource_type: {status: int}}}}"),
    "metaconfig/get_resource_types": OneOf((RESOURCE_TYPES, Obj("", required={"ResourceTypes": RESOURCE_TYPES})),
                                           "a list of resource types {resource_name: str, mincore, ...}"),
    "creds/get_proxy": OneOf((STR, Obj("", any_of=(("user_proxy", "userProxy", "proxy"),))),
                             "{user_proxy: str}"),
    "creds/get_token_key": OneOf((STR, Obj("", any_of=(("tokenKey", "token_key"),))), "{tokenKey: str}"),
    "creds/get_key_pair": Obj("{public_key: str, private_key: str}",
                              any_of=(("public_key", "publicKey"), ("private_key", "privateKey"))),
}


def endpoint_of(path: str) -> str:
    """``module/function`` of a request path (``/pilot/acquire_jobs?x=1`` -> ``pilot/acquire_jobs``)."""
    parts = path.split("?", 1)[0].strip("/").split("/")
    if len(parts) >= 2:
        module = MODULE_ALIASES.get(parts[-2], parts[-2])
        return f"{module}/{parts[-1]}"
    return "/".join(parts)


def shown(endpoint: str, value: Any) -> str:
    """How an error shows a reply: its repr cut at :data:`VALUE_LIMIT` chars; never a credential."""
    if endpoint.startswith(SECRET_PREFIXES):
        return f"<credential reply of {_kind(value)} not shown>"
    text = repr(value)
    return text if len(text) <= VALUE_LIMIT else text[:VALUE_LIMIT] + "..."


def shape_error(endpoint: str, value: Any, expected: str, problem: str) -> str:
    """``PanDA <endpoint> replied <value>: expected <expected> (<problem>)``."""
    return f"PanDA {endpoint} replied {shown(endpoint, value)}: expected {expected} ({problem})"


def check_reply(path: str, reply: Any) -> str | None:
    """None when the decoded reply to ``path`` has the shape its callers rely on, else the error."""
    endpoint = endpoint_of(path)
    found = ENVELOPE.problem(reply, "the reply")
    if found:
        return shape_error(endpoint, reply, ENVELOPE.text, found)
    if not reply["success"]:
        return None
    shape = DATA_SHAPES.get(endpoint)
    found = shape.problem(reply.get("data"), "data") if shape is not None else None
    if found:
        return shape_error(endpoint, reply, f"data: {shape.text}", found)
    return None



def envelope(reply: Any) -> tuple[bool, str, Any]:
    """``(success, message, data)`` of a checked reply (a reply that is not an envelope, only
    possible from a test double, gives ``(False, <what it is>, None)``)."""
    if not isinstance(reply, dict):
        return False, f"unexpected reply {str(reply)[:200]!r}", None
    return reply.get("success") is True, reply.get("message") or "", reply.get("data")
