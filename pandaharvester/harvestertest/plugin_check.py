"""The plugin conformance kit: does a plugin do what Harvester will ask of it, in the shapes it expects?

``harvester-admin plugin check MODULE.CLASS --role ROLE`` and, in a plugin author's tests::

    from pandaharvester.harvestertest.plugin_check import check_plugin

    def test_my_submitter():
        report = check_plugin("my_plugins.MySubmitter", "submitter", params={"command": ["sleep", "1"]},
                              companions={"monitor": "my_plugins.MyMonitor"})
        assert report.passed, report.text()

The kit instantiates the plugin as ``PluginFactory`` does (the queue-config keys become
attributes; a ``dbInterface`` on a scratch DB), checks that the methods of its role exist and
can be called as Harvester calls them, then drives it through its role's lifecycle with real
specs in a scratch Harvester home (:mod:`.plugin_check_env`; the lifecycles are in
:mod:`.plugin_check_steps`), validating every reply with the agents' validator
(:func:`~pandaharvester.harvestercore.plugin_contracts.validate_reply`). Each step gives one
line: PASS, FAIL (with what to fix), WARN (works, but look at it: e.g. workers not final
within ``timeout``, a field the role should not set) or SKIP. The check passes when no step failed.
"""

from __future__ import annotations

import difflib
import inspect
import json
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from pandaharvester.errors import HarvesterError, PluginReplyError
from pandaharvester.harvestercore.plugin_contracts import FieldGuard, get_role, validate_reply

PASS, FAIL, WARN, SKIP = "PASS", "FAIL", "WARN", "SKIP"
BATCH_ROLES = ("submitter", "monitor", "sweeper")
DEFAULT_MESSENGER = {"module": "pandaharvester.harvestermessenger.shared_file_messenger", "name": "SharedFileMessenger"}

# what the agents do when a plugin does not take a keyword they pass (for the WARN line)
_AGENT_KWARG_NOTES = {
    "prod_source_label": "the WorkerMaker calls it without the keyword, as the original did, so it works",
    "queue_config_mapper": "the WorkerAdjuster calls it without the keyword, as the original did, so it works; "
                           "add queue_config_mapper=None to get the queue config mapper",
}


# ---------------------------------------------------------------------------- results
@dataclass
class StepResult:
    """One line of the report."""

    role: str
    step: str
    outcome: str
    message: str
    fix: str = ""

    def line(self) -> str:
        text = f"{self.outcome:<4} {self.role:<11} {self.step:<18} {self.message}"
        label = "fix" if self.outcome == FAIL else "hint"
        return f"{text}\n     {'':<11} {'':<18} {label}: {self.fix}" if self.fix else text


@dataclass
class CheckReport:
    """Every step of one check; ``passed`` when none failed."""

    target: str
    role: str
    steps: list[StepResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not any(step.outcome == FAIL for step in self.steps)

    @property
    def exit_status(self) -> int:
        return 0 if self.passed else 1

    def failures(self) -> list[StepResult]:
        return [step for step in self.steps if step.outcome == FAIL]

    def text(self) -> str:
        n_fail = len(self.failures())
        verdict = "PASSED" if self.passed else f"FAILED ({n_fail} step{'s' if n_fail != 1 else ''})"
        lines = [step.line() for step in self.steps]
        lines.append(f"plugin check of {self.target} as {self.role}: {verdict}")
        return "\n".join(lines)

    def add(self, role: str, step: str, outcome: str, message: str, fix: str = "") -> bool:
        """Record a line; True unless it is a FAIL (so ``return report.add(...)`` reads well)."""
        self.steps.append(StepResult(role, step, outcome, message, fix))
        return outcome != FAIL


@dataclass
class Options:
    """How long and how hard to drive the plugins."""

    workers: int = 2
    timeout: float = 60.0
    interval: float = 0.5
    require_final: bool = False


# ---------------------------------------------------------------------------- plugins under test
@dataclass
class Plugin:
    """A plugin of one role: its queue-config dict and, once built, its instance."""

    role: str
    conf: dict[str, Any]
    instance: Any = None

    @property
    def label(self) -> str:
        return f"{self.conf.get('module')}.{self.conf.get('name')}"


def plugin_conf(target: Any, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """A queue-config plugin dict from ``"module.Class"``, a class or a dict, with ``params`` added."""
    if isinstance(target, dict):
        conf = dict(target)
    elif isinstance(target, type):
        conf = {"module": target.__module__, "name": target.__qualname__}
    else:
        module, _, name = str(target).rpartition(".")
        if not module or not name:
            raise ValueError(f"{target!r} is not MODULE.CLASS (e.g. my_plugins.MySubmitter)")
        conf = {"module": module, "name": name}
    conf.update(params or {})
    return conf


def instantiate(plugin: Plugin, report: CheckReport) -> bool:
    """Build the plugin with ``PluginFactory`` (dbInterface on the scratch DB); one line."""
    from pandaharvester.harvestercore.plugin_factory import PluginFactory

    conf = dict(plugin.conf)
    conf.setdefault("queueName", "PLUGIN_CHECK")
    conf.setdefault("siteName", conf["queueName"].split("/")[0])
    try:
        plugin.instance = PluginFactory().get_plugin(conf, role=plugin.role)
    except HarvesterError as exc:
        return report.add(plugin.role, "instantiate", FAIL, str(exc), _instantiate_fix(exc))
    except Exception as exc:  # a broken plugin must not break the kit
        return report.add(plugin.role, "instantiate", FAIL, f"{plugin.label}: {raised(exc)}")
    if plugin.instance is None:
        return report.add(plugin.role, "instantiate", FAIL, f"{plugin.label}: no module or class name",
                          "give MODULE.CLASS, or a queue-config section with 'module' and 'name'")
    keys = sorted(k for k in conf if k not in ("module", "name"))
    return report.add(plugin.role, "instantiate", PASS, f"{plugin.label}({', '.join(keys)})")


def _instantiate_fix(exc: Exception) -> str:
    text = str(exc)
    if "cannot import module" in text:
        return "put the module on PYTHONPATH, or correct 'module' (a dotted Python path)"
    if "has no class" in text:
        return "correct 'name' (the class name, case-sensitive)"
    if "constructor" in text:
        return "the constructor must accept the queue-config keys as keyword arguments (**kwarg) and set " \
               "defaults before PluginBase.__init__(self, **kwarg)"
    return ""


# ---------------------------------------------------------------------------- interface
def _bind(method: Any, n_params: int, kwargs: Iterable[str] = ()) -> str | None:
    """Why ``method`` cannot be called with ``n_params`` positional arguments (and ``kwargs``), or None."""
    try:
        signature = inspect.signature(method)
    except (TypeError, ValueError):  # a builtin or C method: cannot tell
        return None
    try:
        signature.bind(*range(n_params), **{k: None for k in kwargs})
    except TypeError as exc:
        return str(exc)
    return None


def takes(plugin: "Plugin", method: str, n_params: int, kwarg: str) -> bool:
    """Whether ``plugin.<method>`` takes ``n_params`` positional arguments and the keyword ``kwarg``."""
    return _bind(getattr(plugin.instance, method), n_params, (kwarg,)) is None


def _shown(instance: Any, name: str) -> str:
    try:
        return f"{name}{inspect.signature(getattr(instance, name))}"
    except (TypeError, ValueError):
        return name


def check_interface(plugin: Plugin, report: CheckReport) -> bool:
    """Every required method (or an alternative) exists and takes Harvester's arguments; one line each problem."""
    contract = get_role(plugin.role)
    instance = plugin.instance
    public = [n for n in dir(instance) if not n.startswith("_") and callable(getattr(instance, n, None))]
    contract_names = {n for m in contract.methods for n in m.names}
    problems = 0
    checked: list[str] = []
    seen: set[str] = set()
    for m in contract.methods:
        present = [n for n in m.names if callable(getattr(instance, n, None))]
        if not present:
            if m.required:
                problems += 1
                near = difflib.get_close_matches(m.name, [n for n in public if n not in contract_names], 1, 0.75)
                alt = f" (or {' / '.join(m.alternatives)})" if m.alternatives else ""
                fix = (f"rename {_shown(instance, near[0])} to {m.call_text()}" if near
                       else f"add def {m.name}(self, {', '.join(m.params)})".replace("(self, )", "(self)"))
                report.add(plugin.role, "interface", FAIL,
                           f"{plugin.label} has no method {m.name}{alt}: Harvester calls {m.call_text()}", fix)
            continue
        name = present[0]
        if name in seen:
            continue
        seen.add(name)
        own = contract.method(name)  # an alternative with an entry of its own is checked as that
        why = _bind(getattr(instance, name), len(own.params))
        if why is not None:
            problems += 1
            report.add(plugin.role, "interface", FAIL,
                       f"{plugin.label}.{_shown(instance, name)} cannot be called as Harvester does, "
                       f"{own.call_text()}: {why}",
                       f"give it the signature {own.call_text()}")
            continue
        for kwarg in own.agent_kwargs:
            if _bind(getattr(instance, name), len(own.params), (kwarg,)) is not None:
                report.add(plugin.role, "interface", WARN,
                           f"{plugin.label}.{_shown(instance, name)} takes no {kwarg}= keyword: "
                           f"{_AGENT_KWARG_NOTES.get(kwarg, '')}")
        checked.append(own.call_text() if name == own.name else f"{name} (as {own.call_text()})")
    if problems:
        return False
    if len(checked) > 5:  # a messenger: names only
        checked = [f"{len(checked)} methods: " + ", ".join(text.split("(")[0] for text in checked)]
    return report.add(plugin.role, "interface", PASS, ", ".join(checked) or "no method to check")


# ---------------------------------------------------------------------------- one call
def raised(exc: BaseException) -> str:
    """``ValueError: msg (at file.py:12 in submit_workers)`` from the innermost frame."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno} in {frames[-1].name})" if frames else ""
    return f"raised {type(exc).__name__}: {exc}{where}"


class Caller:
    """Calls plugin methods for the lifecycles: exceptions and bad replies become FAIL lines,
    fields set outside the role become WARN lines."""

    def __init__(self, report: CheckReport) -> None:
        self.report = report

    def call(self, plugin: Plugin, step: str, method: str, *args: Any, items: list | None = None,
             guard: Iterable[Any] = (), quiet: bool = False, **kwargs: Any) -> tuple[bool, Any]:
        """``(True, normalised reply)``, or ``(False, None)`` after a FAIL line."""
        fields = FieldGuard(plugin.role, guard)
        try:
            reply = getattr(plugin.instance, method)(*args, **kwargs)
        except Exception as exc:
            self.report.add(plugin.role, step, FAIL, f"{plugin.label}.{method} {raised(exc)}",
                            "a plugin method must not raise: return the failure with a diagnostic")
            return False, None
        try:
            reply = validate_reply(plugin.role, method, reply, items=items, plugin=plugin.instance)
        except PluginReplyError as exc:
            self.report.add(plugin.role, step, FAIL, str(exc), f"return {exc.expected}")
            return False, None
        for line in fields.warnings(plugin=plugin.instance, method=method):
            self.report.add(plugin.role, step, WARN, line)
        return True, reply

    def has(self, plugin: Plugin | None, method: str) -> bool:
        return plugin is not None and callable(getattr(plugin.instance, method, None))


def until(deadline: float, interval: float) -> Iterable[float]:
    """Yield the elapsed seconds, sleeping ``interval`` between rounds, until ``deadline`` (monotonic)."""
    start = time.monotonic()
    while True:
        yield time.monotonic() - start
        if time.monotonic() + interval > deadline:
            return
        time.sleep(interval)


# ---------------------------------------------------------------------------- the check
def _from_queue_config(path: str, queue: str) -> Any:
    """The queue's QueueConfig, built as the mapper builds it (no import check: the kit reports those)."""
    from pandaharvester.harvestercore.queue_config_builder import QueueBuilder
    from pandaharvester.harvestercore.queue_config_loader import read_file

    raw, error = read_file(path)
    if error is not None:
        raise ValueError(str(error))
    result = QueueBuilder(import_check=False).build(None, raw, local_source=path)
    problems = [str(e) for e in result.errors if getattr(e, "queue_name", None) in (queue, None)]
    if queue not in result.queues:
        known = ", ".join(sorted(result.queues)) or "none"
        raise ValueError("; ".join(problems) or f"no queue {queue!r} in {path} (valid queues: {known})")
    return result.queues[queue]


def _section(queue_config: Any, role: str) -> dict[str, Any] | None:
    value = getattr(queue_config, get_role(role).queue_key, None)
    if isinstance(value, list):  # credmanagers
        value = value[0] if value else None
    return dict(value) if isinstance(value, dict) else None


def check_plugin(target: Any = None, role: str = "submitter", params: dict[str, Any] | None = None, *,
                 companions: dict[str, Any] | None = None, queue_config: str | None = None,
                 queue: str | None = None, workers: int = 2, timeout: float = 60.0, interval: float = 0.5,
                 require_final: bool = False, scratch_dir: str | None = None) -> CheckReport:
    """Check a plugin of ``role``; the report (``.passed``, ``.text()``, ``.exit_status``).

    ``target``: ``"module.Class"``, the class or a plugin dict (else the role's section of
    ``queue`` in the ``queue_config`` file). ``params``: extra queue-config keys. ``companions``:
    ``{role: target}`` for the other plugins of a batch lifecycle (submitter, monitor, sweeper,
    messenger; from the queue config when given there). ``timeout``: seconds to wait for workers
    to end (and transfers to complete); not ending in time is a WARN, a FAIL with ``require_final``.
    """
    from .plugin_check_env import Scratch
    from .plugin_check_steps import run_lifecycle

    contract = get_role(role)
    qc = None
    if queue_config is not None:
        if queue is None:
            raise ValueError("queue_config needs queue (the queue's name)")
        qc = _from_queue_config(queue_config, queue)
    if target is None:
        section = _section(qc, contract.role) if qc is not None else None
        if section is None:
            raise ValueError(f"no {contract.role} plugin: give MODULE.CLASS or a queue config with a "
                             f"{contract.queue_key!r} section")
        target = section
    main = Plugin(contract.role, plugin_conf(target, params))
    report = CheckReport(main.label, contract.role)
    plugins = {contract.role: main}
    if contract.role in BATCH_ROLES:
        wanted = {r: None for r in (*BATCH_ROLES, "messenger") if r != contract.role}
        for other in wanted:
            if companions and other in companions:
                wanted[other] = plugin_conf(companions[other])
            elif qc is not None:
                wanted[other] = _section(qc, other)
        if wanted["messenger"] is None and (contract.role == "submitter" or wanted.get("submitter")):
            wanted["messenger"] = dict(DEFAULT_MESSENGER)
        plugins.update({r: Plugin(r, conf) for r, conf in wanted.items() if conf is not None})
    options = Options(max(int(workers), 1), float(timeout), float(interval), bool(require_final))
    with Scratch(scratch_dir) as scratch:
        built = True
        for plugin in plugins.values():
            built = instantiate(plugin, report) and check_interface(plugin, report) and built
        if not built:
            report.add(contract.role, "lifecycle", SKIP, "not run: fix the lines above first")
            return report
        run_lifecycle(contract.role, plugins, scratch, report, options, qc)
    return report


def assert_plugin_passes(*args: Any, **kwargs: Any) -> CheckReport:
    """:func:`check_plugin`, raising AssertionError with the whole report when a step failed."""
    report = check_plugin(*args, **kwargs)
    if not report.passed:
        raise AssertionError(report.text())
    return report


# ---------------------------------------------------------------------------- CLI
def add_arguments(parser: Any) -> None:
    """The options of ``harvester-admin plugin check``."""
    parser.add_argument("target", nargs="?", help="MODULE.CLASS of the plugin (or take it from --queue-config)")
    parser.add_argument("--role", required=True, help="submitter, monitor, sweeper, preparator, stager, messenger, "
                                                      "workermaker, throttler, zipper, credmanager or extractor")
    parser.add_argument("--params", default=None, help="JSON object of queue-config keys for the plugin")
    parser.add_argument("--with", dest="companions", action="append", default=[], metavar="ROLE=MODULE.CLASS",
                        help="a companion of a batch lifecycle (monitor=..., sweeper=..., submitter=..., "
                             "messenger=...); ROLE=JSON for a whole plugin dict")
    parser.add_argument("--queue-config", default=None, help="queue-config JSON file: take the plugin(s) from it")
    parser.add_argument("--queue", default=None, help="the queue of --queue-config")
    parser.add_argument("--workers", type=int, default=2, help="workers to submit (default 2)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for workers to end (default 60)")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between checks (default 0.5)")
    parser.add_argument("--require-final", action="store_true", help="workers not ending within --timeout fail")
    parser.add_argument("--keep", default=None, metavar="DIR", help="work in DIR and keep it (default: a temporary "
                                                                    "directory, removed)")


def _json_arg(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{what} is not valid JSON ({exc}): {text!r}") from None


def run_cli(options: Any) -> int:
    """``harvester-admin plugin check``: print the report; 0 when every step passed, 1 else, 2 on bad usage."""
    try:
        params = _json_arg(options.params, "--params") if options.params else None
        if params is not None and not isinstance(params, dict):
            raise ValueError(f"--params must be a JSON object, not {options.params!r}")
        companions = {}
        for item in options.companions:
            role, sep, value = item.partition("=")
            if not sep or not value:
                raise ValueError(f"--with {item!r}: use ROLE=MODULE.CLASS")
            companions[get_role(role.strip()).role] = (_json_arg(value, f"--with {role}")
                                                       if value.lstrip().startswith("{") else value.strip())
        report = check_plugin(options.target, options.role, params, companions=companions,
                              queue_config=options.queue_config, queue=options.queue, workers=options.workers,
                              timeout=options.timeout, interval=options.interval,
                              require_final=options.require_final, scratch_dir=options.keep)
    except (ValueError, KeyError) as exc:
        print(f"ERROR: {exc.args[0] if isinstance(exc, KeyError) else exc}")
        return 2
    print(report.text())
    return report.exit_status
