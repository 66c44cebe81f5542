"""The one reply validator: is what a plugin method returned the shape its role's contract says?

``validate_reply(role, method, reply, n_items, plugin=, queue=)`` returns the reply normalised
(lists for any iterable, ``(status, diag)`` tuples, a missing diagnostic as ``""``, 0/1 as
False/True) or raises :class:`~pandaharvester.errors.PluginReplyError` naming the queue, the
role, the plugin class, the method, what was wrong (with the index and workerID/PandaID of a
bad entry) and the shape expected. It is as lenient as the agents are (lists for tuples, a
bare status from ``renew_credential``) and strict where they would misread the reply.
"""

from __future__ import annotations

import functools
from numbers import Real
from typing import Any, Callable

from pandaharvester.errors import PluginReplyError

from ..work_spec import WorkSpec
from .roles import MethodContract, RoleContract, get_role


class _Bad(Exception):
    """What is wrong with a reply (internal: becomes a PluginReplyError)."""

    def __init__(self, problem: str, index: int | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.index = index


def plugin_label(plugin: Any) -> str | None:
    """``module.Class`` of a plugin instance or class; a string as is; None for None."""
    if plugin is None or isinstance(plugin, str):
        return plugin
    cls = plugin if isinstance(plugin, type) else type(plugin)
    return f"{cls.__module__}.{cls.__qualname__}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _status_text(statuses: tuple[Any, ...]) -> str:
    return "|".join(repr(s) for s in statuses)


# ---------------------------------------------------------------------------- pieces
def _status(value: Any, statuses: tuple[Any, ...], index: int | None) -> Any:
    if value is None and None in statuses:
        return None
    if isinstance(value, bool):
        return value
    if type(value) is int and value in (0, 1):  # the original's agents test truth
        return bool(value)
    raise _Bad(f"status {_short(value)} ({type(value).__name__}) is not one of {_status_text(statuses)}", index)


def _diag(value: Any) -> str:
    return "" if value is None else value if isinstance(value, str) else str(value)


def _pair(value: Any, statuses: tuple[Any, ...], index: int | None = None) -> tuple[Any, str]:
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        if index is None:
            raise _Bad(f"returned {_short(value)}, not a (status, diagnostic) pair")
        raise _Bad(f"entry {_short(value)} is not a (status, diagnostic) pair", index)
    return _status(value[0], statuses, index), _diag(value[1])


def _sequence(value: Any, what: str) -> list:
    if isinstance(value, (str, bytes, dict)) or value is None:
        raise _Bad(f"returned {_short(value)} ({type(value).__name__}), not a list of {what}")
    try:
        return list(value)
    except TypeError:
        raise _Bad(f"returned {_short(value)} ({type(value).__name__}), not a list of {what}") from None


def _count(items: list, n_items: int | None, noun: str) -> None:
    if n_items is not None and len(items) != n_items:
        replies = "reply" if len(items) == 1 else "replies"
        raise _Bad(f"returned {len(items)} {replies} for {n_items} {noun}s (one reply per {noun}, in order)")


# ---------------------------------------------------------------------------- reply kinds
def _reply_list(reply: Any, m: MethodContract, n_items: int | None, role: RoleContract) -> list:
    items = _sequence(reply, "(status, diagnostic) pairs")
    _count(items, n_items, role.items)
    return [_pair(item, m.statuses, index) for index, item in enumerate(items)]


def _reply(reply: Any, m: MethodContract, n_items: int | None, role: RoleContract) -> tuple[Any, str]:
    return _pair(reply, m.statuses)


def _reply_or_status(reply: Any, m: MethodContract, n_items: int | None, role: RoleContract) -> tuple[Any, str]:
    if isinstance(reply, (tuple, list)):
        return _pair(reply, m.statuses)
    return _status(reply, m.statuses, None), ""  # the CredManager agent takes a bare status too


_KNOWN_STATUSES = frozenset(WorkSpec.ST_LIST)


def _monitor_reply(reply: Any, m: MethodContract, n_items: int | None, role: RoleContract,
                   keep: Callable[[_Bad], None] | None = None) -> tuple[bool, Any]:
    if not isinstance(reply, (tuple, list)) or len(reply) != 2:
        raise _Bad(f"returned {_short(reply)}, not a (bool, statuses) pair")
    if not (isinstance(reply[0], bool) or (type(reply[0]) is int and reply[0] in (0, 1))):
        raise _Bad(f"returned {_short(reply)}, not a (bool, statuses) pair: its first item is "
                   f"{_short(reply[0])}, not True or False")
    ok = bool(reply[0])
    if not ok:
        return False, _diag(reply[1])
    items = _sequence(reply[1], "(status, diagnostic) pairs")
    _count(items, n_items, role.items)
    known = _KNOWN_STATUSES
    result = []
    for index, item in enumerate(items):
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise _Bad(f"entry {_short(item)} is not a (status, diagnostic) pair", index)
        status = item[0]
        if status is not None and status not in known:
            bad = _Bad(f"unknown status {status!r}: not a WorkSpec.ST_* value ({', '.join(WorkSpec.ST_LIST)}) "
                       f"nor None", index)
            if keep is None:
                raise bad
            keep(bad)  # the agent handles that worker alone; the entry stays as returned
        result.append((status, _diag(item[1])))
    return True, result


def _worker_updates(reply: Any, m: MethodContract, n_items: int | None, role: RoleContract) -> list:
    items = _sequence(reply, "(workerID, timestamp) pairs")
    result = []
    for index, item in enumerate(items):
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise _Bad(f"entry {_short(item)} is not a (workerID, timestamp) pair", index)
        try:
            worker_id = int(item[0])
        except (TypeError, ValueError):
            raise _Bad(f"workerID {_short(item[0])} is not an integer", index) from None
        result.append((worker_id, item[1]))
    return result


def _workspec_or_none(reply: Any, m: MethodContract, n_items: int | None, role: RoleContract) -> Any:
    if reply is None or isinstance(reply, WorkSpec):
        return reply
    raise _Bad(f"returned {_short(reply)} ({type(reply).__name__})")


def _aux_inputs(reply: Any, m: MethodContract, n_items: int | None, role: RoleContract) -> dict:
    if reply is None:
        return {}
    if not isinstance(reply, dict):
        raise _Bad(f"returned {_short(reply)} ({type(reply).__name__}), not a dict")
    for lfn, attrs in reply.items():
        if not isinstance(lfn, str) or not isinstance(attrs, dict):
            raise _Bad(f"entry {_short(lfn)}: {_short(attrs)} is not lfn (str): attributes (dict)")
    return reply


def _type_check(accepts: Callable[[Any], bool], to_bool: bool = False) -> Callable[..., Any]:
    """A check for a reply of one type; ``to_bool``: a 0/1 is accepted and made a bool."""
    def check(reply: Any, m: MethodContract, n_items: int | None, role: RoleContract) -> Any:
        if not accepts(reply):
            raise _Bad(f"returned {_short(reply)} ({type(reply).__name__})")
        return bool(reply) if to_bool and type(reply) is int else reply
    # true for a reply this check returns unchanged (the agents' fast path)
    if to_bool:
        check.as_is = lambda reply: type(reply) is not int and accepts(reply)  # type: ignore[attr-defined]
    else:
        check.as_is = accepts  # type: ignore[attr-defined]
    return check


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


_KINDS: dict[str, tuple[Callable[..., Any], str]] = {
    "reply_list": (_reply_list, "a list of ({statuses}, diagnostic) pairs, one per {item}, in order"),
    "reply": (_reply, "a ({statuses}, diagnostic) pair"),
    "reply_or_status": (_reply_or_status, "a ({statuses}, diagnostic) pair"),
    "monitor_reply": (_monitor_reply, "(True, [(WorkSpec.ST_* status or None, diagnostic), ...]) with one pair "
                                      "per worker, in order, or (False, diagnostic)"),
    "worker_updates": (_worker_updates, "a list of (workerID, update timestamp) pairs"),
    "workspec_or_none": (_workspec_or_none, "a WorkSpec, or None when no worker can be made"),
    "aux_inputs": (_aux_inputs, "a dict {{lfn: {{'scope': ..., 'INTERNAL_FileType': ..., 'INTERNAL_URL': ...}}}}"),
    "bool": (_type_check(lambda v: isinstance(v, bool) or (type(v) is int and v in (0, 1)), to_bool=True),
             "True or False"),
    "bool_or_none": (_type_check(lambda v: v is None or isinstance(v, bool) or (type(v) is int and v in (0, 1)),
                                 to_bool=True), "True, False or None"),
    "count": (_type_check(lambda v: v is None or isinstance(v, bool) or _is_int(v)),
              "a number of jobs (0, False or None: none)"),
    "int": (_type_check(_is_int), "a non-negative int"),
    "int_or_none": (_type_check(lambda v: v is None or _is_int(v)), "a non-negative int or None"),
    "number_or_none": (_type_check(lambda v: v is None or (isinstance(v, Real) and not isinstance(v, bool))),
                       "a number (hours), or None when unknown"),
    "dict": (_type_check(lambda v: isinstance(v, dict)), "a dict"),
    "dict_or_none": (_type_check(lambda v: v is None or isinstance(v, dict)), "a dict (None: nothing)"),
    "list": (_type_check(lambda v: isinstance(v, (list, tuple, set, frozenset))), "a list"),
    "list_or_none": (_type_check(lambda v: v is None or isinstance(v, (list, tuple, set, frozenset))),
                     "a list (None: nothing)"),
    "any": (lambda reply, m, n, role: reply, "anything"),
}


def expected_shape(role: str, method: str) -> str:
    """What ``method`` of ``role`` must return, in words (the end of every PluginReplyError message)."""
    contract = get_role(role)
    m = contract.method(method)
    return _KINDS[m.reply][1].format(statuses=_status_text(m.statuses), item=contract.items)


def _item_label(item: Any) -> str | None:
    for attr in ("workerID", "PandaID"):
        value = getattr(item, attr, None)
        if value is not None:
            return f"{attr}={value}"
    return None


def validate_reply(role: str, method: str, reply: Any, n_items: int | None = None, *, plugin: Any = None,
                   queue: str | None = None, items: list | None = None,
                   bad_items: list[PluginReplyError] | None = None) -> Any:
    """The normalised ``reply`` of ``plugin.<method>`` for a plugin of ``role``.

    ``n_items``: how many workers/jobs the call was about (per-item replies must match; with
    ``items`` it is ``len(items)`` and a bad entry is named by its workerID/PandaID). ``queue``
    defaults to the plugin's ``queueName`` (set by the queue config). Raises
    :class:`PluginReplyError` (message: queue, role, plugin, method, problem, expected shape).
    ``bad_items`` (the monitor's ``check_workers``): a list that gets the error of each
    well-formed entry with an unknown status instead of failing the whole reply; such entries
    stay as returned, for the agent to handle that worker alone.
    """
    contract, m, check = _prepared(role, method)
    if items is not None and n_items is None:
        n_items = len(items)
    try:
        if bad_items is None:
            return check(reply, m, n_items, contract)
        return check(reply, m, n_items, contract,
                     lambda bad: bad_items.append(_error(bad, role, method, plugin, queue, items)))
    except _Bad as bad:
        raise _error(bad, role, method, plugin, queue, items) from None


def reply_as_is(role: str, method: str) -> Callable[[Any], bool] | None:
    """A cheap test, true for a reply of ``method`` that :func:`validate_reply` would return
    unchanged (a dict where a dict is due, ...), for the agents to make before the full check at
    every plugin call; None for the kinds that always need the full check (per-item replies)."""
    return getattr(_prepared(role, method)[2], "as_is", None)


@functools.lru_cache(maxsize=None)
def _prepared(role: str, method: str) -> tuple[RoleContract, MethodContract, Callable[..., Any]]:
    """(role contract, method contract, reply check) of ``role``/``method``, looked up once (the
    agents validate every plugin call); KeyError naming the known roles or methods."""
    contract = get_role(role)
    m = contract.method(method)
    return contract, m, _KINDS[m.reply][0]


def _error(bad: _Bad, role: str, method: str, plugin: Any, queue: str | None, items: list | None
           ) -> PluginReplyError:
    contract = get_role(role)
    item = None
    if bad.index is not None and items is not None and bad.index < len(items):
        item = _item_label(items[bad.index])
    problem = bad.problem
    if bad.index is not None:
        problem = f"reply #{bad.index}{f' ({item})' if item else ''}: {problem}"
    if queue is None and plugin is not None and not isinstance(plugin, (str, type)):
        queue = getattr(plugin, "queueName", None)
    return PluginReplyError(problem, plugin=plugin_label(plugin), queue=queue, role=contract.role, method=method,
                            expected=expected_shape(contract.role, method), index=bad.index, item=item)
