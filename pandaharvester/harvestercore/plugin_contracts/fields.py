"""Which spec fields a plugin call changed that its role may not set (for a WARNING, never an error).

``guard = FieldGuard("submitter", workers)`` before the call takes a snapshot of the specs'
columns (the workers', their jobs' and those jobs' files'); ``guard.warnings(plugin=, method=)``
after it gives one line per spec on which the plugin set a column outside
:meth:`RoleContract.may_set`, naming the spec, the fields and what the role may set;
``guard.warning(...)`` gives one line for the whole call (what the agents log). The snapshot is
shallow (blob dicts are copied one level, not decoded when still lazy), so it costs about one
dict copy per spec; with ``tracked=True`` (the agents, on every bulk call) it relies on the
specs' own change record (``changedAttrs``) instead and costs next to nothing per spec.
:func:`new_spec_fields` does the same for a spec a plugin made (the worker maker's new
WorkSpec) against a fresh instance of its class.
"""

from __future__ import annotations

import copy
from typing import Any, Iterable

from ..spec_base import LazyBlob
from .replies import plugin_label
from .roles import get_role


def _related(spec: Any) -> list[Any]:
    """The spec, then what the plugin may reach through it: a worker's jobs, a job's files."""
    found = [spec]
    get_jobs = getattr(spec, "get_jobspec_list", None)
    if get_jobs is not None:
        for job in get_jobs() or ():
            found.extend(_related(job))
    for attr in ("inFiles", "outFiles"):
        for file_spec in getattr(spec, attr, None) or ():
            found.append(file_spec)
            associated = getattr(file_spec, "associatedFiles", None)
            if associated:
                found.extend(associated)
    return found


def _copy(value: Any) -> Any:
    return copy.copy(value) if isinstance(value, (dict, list, set)) else value


def _differs(before: Any, now: Any) -> bool:
    if now is before and not isinstance(now, (dict, list, set)):
        return False
    if type(before) is LazyBlob:
        return now is not before and before.decode() != now
    return before != now


def _id_text(spec: Any) -> str | None:
    """``workerID=1`` / ``PandaID=7`` / ``fileID=3``: how a line names one spec (greppable)."""
    for attr in ("workerID", "PandaID", "fileID", "lfn"):
        value = getattr(spec, attr, None)
        if value is not None:
            return f"{attr}={value}"
    return None


def _label(spec: Any) -> str:
    ident = _id_text(spec)
    return f"{type(spec).__name__} {ident}" if ident else type(spec).__name__


_NOTHING: dict[str, Any] = {}
_NO_NAMES: frozenset[str] = frozenset()


class FieldGuard:
    """Snapshot of specs before a plugin call; after it, the fields set outside the role's contract.

    ``tracked``: snapshot only the change record of each spec, and the values of the columns
    already in it that the role may not set (so that setting one again is seen too). It sees
    every assignment, i.e. everything the DB writes will carry, but not an in-place change of
    a blob's contents that nobody recorded (which is not written either).
    """

    def __init__(self, role: str, specs: Iterable[Any], *, tracked: bool = False) -> None:
        self.role = get_role(role)
        # id(spec) -> (spec, column values before, change record before)
        self._snapshots: dict[int, tuple[Any, dict[str, Any], frozenset[str]]] = {}
        snapshots = self._snapshots
        for top in specs:
            for spec in _related(top):
                key = id(spec)
                if key in snapshots:
                    continue
                values = getattr(spec, "__dict__", _NOTHING)
                changed = values.get("changedAttrs")
                if changed is None:  # not a spec
                    continue
                if not tracked:
                    snapshots[key] = (spec, {name: _copy(values.get(name)) for name in spec.attributes},
                                      frozenset(changed))
                elif not changed:  # the common case on the agents' hot paths: a spec just read from the DB
                    snapshots[key] = (spec, _NOTHING, _NO_NAMES)
                else:
                    allowed = self.role.may_set(type(spec).__name__)
                    snapshots[key] = (spec, {name: values.get(name) for name in changed if name not in allowed},
                                      frozenset(changed))

    @staticmethod
    def _changed(spec: Any, before: dict[str, Any], changed_before: frozenset[str]) -> set[str] | None:
        values = spec.__dict__
        recorded = values.get("changedAttrs")
        if not before:
            return recorded - changed_before if recorded else None
        names = {name for name, old in before.items() if _differs(old, values.get(name))}
        if recorded:
            names |= recorded - changed_before
        return names

    def changed(self) -> list[tuple[Any, list[str]]]:
        """``[(spec, [column, ...])]`` of every spec whose columns changed since the snapshot."""
        result = []
        for spec, before, changed_before in self._snapshots.values():
            names = self._changed(spec, before, changed_before)
            if names:
                result.append((spec, [n for n in spec.attributes if n in names]))
        return result

    def violations(self) -> list[tuple[Any, list[str]]]:
        """``[(spec, [column, ...])]`` of the changed columns the role may not set."""
        result = []
        for spec, before, changed_before in self._snapshots.values():
            names = self._changed(spec, before, changed_before)
            if names:
                bad = names - self.role.may_set(type(spec).__name__)
                if bad:
                    result.append((spec, [n for n in spec.attributes if n in bad]))
        return result

    def warnings(self, plugin: Any = None, method: str | None = None, queue: str | None = None) -> list[str]:
        """One WARNING line per spec with fields the role may not set (empty when all is well)."""
        return [_warning(self.role.role, self.role.may_set(type(spec).__name__), spec, names, plugin, method, queue)
                for spec, names in self.violations()]

    def warning(self, plugin: Any = None, method: str | None = None, queue: str | None = None) -> str | None:
        """One WARNING line for the whole call: each field set outside the role with every spec it
        was set on (``status of WorkSpec workerID=1 workerID=2``); None when all is well."""
        violations = self.violations()
        if not violations:
            return None
        specs_of: dict[tuple[str, str], list[str]] = {}
        for spec, names in violations:
            for name in names:
                specs_of.setdefault((type(spec).__name__, name), []).append(_id_text(spec) or "(no id)")
        where, who = _who(self.role.role, plugin, method, queue)
        fields = "; ".join(f"{name} of {cls} {' '.join(ids)}" for (cls, name), ids in specs_of.items())
        may = "; ".join(f"{cls}: {', '.join(sorted(self.role.may_set(cls))) or 'none'}"
                        for cls in dict.fromkeys(cls for cls, _name in specs_of))
        return (f"{where}{who} set fields a {self.role.role} plugin may not set: {fields} (it may set {may}); "
                f"Harvester's agents own those fields and may overwrite the change")


def new_spec_fields(role: str, spec: Any, plugin: Any = None, method: str | None = None,
                    queue: str | None = None) -> list[str]:
    """WARNING lines for the columns a plugin set on a spec it made that the role may not set."""
    contract = get_role(role)
    fresh = type(spec)()
    names = [n for n in spec.attributes if _differs(fresh.__dict__.get(n), spec.__dict__.get(n))]
    allowed = contract.may_set(type(spec).__name__)
    bad = [n for n in names if n not in allowed]
    return [_warning(contract.role, allowed, spec, bad, plugin, method, queue)] if bad else []


def _who(role: str, plugin: Any, method: str | None, queue: str | None) -> tuple[str, str]:
    """(``"queue 'Q', "``, ``"submitter plugin mod.Class.method"``) for a warning line."""
    if queue is None and plugin is not None and not isinstance(plugin, (str, type)):
        queue = getattr(plugin, "queueName", None)
    where = f"queue {queue!r}, " if queue else ""
    who = f"{role} plugin {plugin_label(plugin) or ''}".rstrip() + (f".{method}" if method else "")
    return where, who


def _warning(role: str, allowed: frozenset[str], spec: Any, names: list[str], plugin: Any, method: str | None,
             queue: str | None) -> str:
    where, who = _who(role, plugin, method, queue)
    may = ", ".join(sorted(allowed)) or "none"
    return (f"{where}{who} set {', '.join(names)} of {_label(spec)}, which a {role} plugin may not set "
            f"(it may set: {may}); Harvester's agents own those fields and may overwrite the change")
