"""Turn raw queue-config JSON (remote, dynamic, local) into validated :class:`QueueConfig` objects.

Vocabulary (as in the original):

* RT/RQ — templates/queues of the remote source (PanDA cache or URL);
* LT/LQ — templates/queues of the local file;
* DQ — dynamic queues, one per PanDA queue the resolver assigns to this instance;
* FT — final templates: RT overridden by LT.

A queue = its template (deep-copied) overlaid by RQ, then DQ, then LQ; plugin sections
(and ``common``) are merged key by key, every other key is replaced. This module is pure:
no cfg, no DB; the caller supplies the raw dicts and the resolver.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from pandaharvester.errors import QueueConfigError

from . import queue_config_checks as checks
from .queue_config import (
    KNOWN_QUEUE_KEYS,
    MT_NoJob,
    QUEUE_LIMIT_ATTRS,
    UPDATABLE_PLUGIN_ATTRS,
    QueueConfig,
    closest_name,
    is_plugin_dict,
    split_pseudo_queue_name,
)

Log = Callable[[str], None]


class Resolver(Protocol):
    """What the builder asks the PanDA-queue resolver (``info_dicts.PandaQueuesDict``)."""

    def get_all_queue_names(self) -> set[str]: ...
    def get_harvester_template(self, name: str) -> str | None: ...
    def get_type_workflow(self, name: str) -> tuple[str | None, str | None]: ...
    def get_harvester_params(self, name: str) -> dict[str, Any]: ...
    def get_panda_queue_name(self, name: str) -> str | None: ...
    def is_ups_queue(self, name: str) -> bool: ...


@dataclass
class Layer:
    """Templates and queues read from one source."""

    tag: str  # RQ/RT, LQ/LT or DQ
    source: str  # file path, URL or "cache:<key>": named in errors
    templates: dict[str, dict[str, Any]] = field(default_factory=dict)
    queues: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class BuildResult:
    """Outcome of one build: the good queues, one error per problem, and the templates used."""

    queues: dict[str, QueueConfig] = field(default_factory=dict)
    errors: list[QueueConfigError] = field(default_factory=list)
    templates: dict[str, dict[str, Any]] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)  # queue → "RQ,LQ (template X from LT)"


def is_template_entry(name: str, entry: dict[str, Any]) -> bool:
    """A template is flagged ``isTemplateQueue: true`` or named ``*_TEMPLATE``."""
    return entry.get("isTemplateQueue") is True or name.endswith("_TEMPLATE")


def split_source(raw: Any, tag: str, source: str, errors: list[QueueConfigError], warn: Log) -> Layer:
    """Sort a raw ``{name: entry}`` dict into templates and queues (deep copies; input untouched)."""
    layer = Layer(tag=tag, source=source)
    if raw is None:
        return layer
    if not isinstance(raw, dict):
        errors.append(QueueConfigError(f"top level must be a JSON object {{queueName: {{...}}}}, "
                                       f"got {type(raw).__name__}", source=source))
        return layer
    for name, entry in raw.items():
        if not isinstance(entry, dict):
            errors.append(QueueConfigError(f"queue entry must be a JSON object, got {type(entry).__name__}",
                                           queue_name=name, source=source))
            continue
        entry = copy.deepcopy(entry)
        warn_unknown_keys(name, entry, source, warn)
        if is_template_entry(name, entry):
            if entry.pop("templateQueueName", None) is not None:
                warn(f"template {name!r} in {source}: templateQueueName ignored (templates do not chain)")
            entry["isTemplateQueue"] = True
            layer.templates[name] = entry
        else:
            entry["isTemplateQueue"] = False
            layer.queues[name] = entry
    return layer


def warn_unknown_keys(name: str, entry: dict[str, Any], source: str, warn: Log) -> None:
    """One warning per key of a queue or template entry that is unknown but close to a known one (a typo)."""
    kind = "template" if is_template_entry(name, entry) else "queue"
    for key in entry:
        if key in KNOWN_QUEUE_KEYS:
            continue
        close = closest_name(key, KNOWN_QUEUE_KEYS)
        if close is not None:
            warn(f"[{source}] {kind} {name!r}: unknown key {key!r}: did you mean {close}? "
                 "(it has no effect unless a plugin reads it)")


def dynamic_layer(resolver: Resolver, templates: dict[str, dict[str, Any]], default_template: str | None,
                  static_names: set[str], errors: list[QueueConfigError], warn: Log) -> Layer:
    """One DQ entry per queue of this instance known to the resolver.

    Template: the queue's CRIC ``harvester_template``, else ``"<type>.<workflow>"``
    (e.g. ``production.pull``), else ``[qconf] defaultTemplateQueueName``. Only the queue
    limits among the CRIC harvester params are taken over.
    """
    layer = Layer(tag="DQ", source="dynamic (resolver)")
    for name in sorted(resolver.get_all_queue_names() or ()):
        template = resolver.get_harvester_template(name)
        if not template:
            pq_type, workflow = resolver.get_type_workflow(name)
            template = f"{pq_type}.{workflow}" if pq_type and workflow else default_template
        if template not in templates:
            message = (f"no template {template!r} for this dynamic queue; define it (isTemplateQueue: true), "
                       f"set harvester_template in CRIC, or set [qconf] defaultTemplateQueueName")
            if name in static_names:
                warn(f"queue {name!r}: {message}; using its static definition only")
            else:
                errors.append(QueueConfigError(message, queue_name=name, key="templateQueueName",
                                               source=layer.source))
            continue
        params = resolver.get_harvester_params(name) or {}
        entry = {key: copy.deepcopy(value) for key, value in params.items() if key in QUEUE_LIMIT_ATTRS}
        entry["templateQueueName"] = template
        entry["isTemplateQueue"] = False
        layer.queues[name] = entry
    return layer


def overlay(base: dict[str, Any], entry: dict[str, Any]) -> None:
    """Apply ``entry`` on ``base`` in place: plugin sections merge, other keys replace (deep copies)."""
    for key, value in entry.items():
        value = copy.deepcopy(value)
        if key in UPDATABLE_PLUGIN_ATTRS and isinstance(base.get(key), dict) and isinstance(value, dict):
            base[key].update(value)
        else:
            base[key] = value


def prepare_plugin(role: str, conf: dict[str, Any], merged: dict[str, Any], qc: QueueConfig,
                   common: dict[str, Any], source: str, errors: list[QueueConfigError]) -> dict[str, Any]:
    """Copy of a plugin section with ``common`` keys, siteName/queueName, the queue's
    ``pluginCallTimeout`` (as ``callTimeout``, unless the section sets one) and middleware filled in."""
    conf = copy.deepcopy(conf)
    for key, value in common.items():
        if key not in conf and key not in ("module", "name"):
            conf[key] = copy.deepcopy(value)
    conf.setdefault("siteName", qc.siteName)
    conf.setdefault("queueName", qc.queueName)
    if merged.get("pluginCallTimeout") is not None:  # the queue's default time limit of its plugin calls
        conf.setdefault("callTimeout", merged["pluginCallTimeout"])
    if "middleware" in conf:
        middleware = merged.get(conf["middleware"]) if isinstance(conf["middleware"], str) else None
        if isinstance(middleware, dict):
            conf["original_config"] = copy.deepcopy(conf)
            conf.update(copy.deepcopy(middleware))
        else:
            errors.append(QueueConfigError(f"middleware {conf['middleware']!r} does not name a dict at the "
                                           "top level of the queue", queue_name=qc.queueName, key=role,
                                           source=source))
    return conf


class QueueBuilder:
    """Builds every queue of one load; see the module docstring for the layering rules."""

    def __init__(self, *, resolver: Resolver | None = None, dynamic: bool = False,
                 default_template: str | None = None, import_check: bool = True,
                 warn: Log | None = None, debug: Log | None = None) -> None:
        self.resolver = resolver
        self.dynamic = dynamic
        self.default_template = default_template
        self.import_check = import_check
        self.warn = warn or (lambda message: None)
        self.debug = debug or (lambda message: None)

    def build(self, remote: Any, local: Any, remote_source: str = "remote", local_source: str = "local"
              ) -> BuildResult:
        """Build all queues from the raw remote and local JSON (either may be None)."""
        result = BuildResult()
        remote_layer = split_source(remote, "RQ", remote_source, result.errors, self.warn)
        local_layer = split_source(local, "LQ", local_source, result.errors, self.warn)
        templates = {**remote_layer.templates, **local_layer.templates}
        result.templates = templates
        layers = [remote_layer]
        if self.resolver is not None and self.dynamic:
            static_names = set(remote_layer.queues) | set(local_layer.queues)
            layers.append(dynamic_layer(self.resolver, templates, self.default_template, static_names,
                                        result.errors, self.warn))
        layers.append(local_layer)
        names = sorted(set().union(*(layer.queues for layer in layers)))
        for name in names:
            qc, errors = self.build_one(name, layers, templates, remote_layer, local_layer, result)
            result.errors.extend(errors)
            if qc is not None:
                result.queues[name] = qc
        return result

    def build_one(self, name: str, layers: list[Layer], templates: dict[str, dict[str, Any]],
                  remote_layer: Layer, local_layer: Layer, result: BuildResult
                  ) -> tuple[QueueConfig | None, list[QueueConfigError]]:
        """One queue: template + overlays, attributes, checks; (None, errors) when invalid."""
        present = [layer for layer in layers if name in layer.queues]
        source = present[-1].source
        template_name = None
        for layer in present:
            template_name = layer.queues[name].get("templateQueueName", template_name)
        if template_name is not None and not isinstance(template_name, str):
            return None, [QueueConfigError(f"must be the name of a template queue (a string) or null, got "
                                           f"{type(template_name).__name__} {template_name!r}",
                                           queue_name=name, key="templateQueueName", source=source)]
        if template_name is not None and template_name not in templates:
            known = ", ".join(sorted(templates)) or "none"
            return None, [QueueConfigError(f"unknown template {template_name!r} (known templates: {known})",
                                           queue_name=name, key="templateQueueName", source=source)]
        merged: dict[str, Any] = copy.deepcopy(templates[template_name]) if template_name else {}
        for layer in present:
            overlay(merged, layer.queues[name])
        merged.pop("isTemplateQueue", None)
        origin = ",".join(layer.tag for layer in present)
        if template_name:
            from_tags = [tag for tag, lay in (("RT", remote_layer), ("LT", local_layer))
                         if template_name in lay.templates]
            origin += f" (template {template_name} from {','.join(from_tags)})"
        result.origins[name] = origin
        self.debug(f"queue {name} comes from {origin}")
        return self.make_config(name, merged, source)

    def make_config(self, name: str, merged: dict[str, Any], source: str
                    ) -> tuple[QueueConfig | None, list[QueueConfigError]]:
        """Create the QueueConfig from the merged dict, then validate and normalise it."""
        errors: list[QueueConfigError] = []
        qc = QueueConfig(name)
        site_name, pseudo_resource_type = split_pseudo_queue_name(name)
        qc.siteName = site_name
        if pseudo_resource_type is not None:
            qc.resourceType = pseudo_resource_type
            explicit = merged.get("resourceType")
            if explicit is not None and explicit != pseudo_resource_type:
                self.warn(f"queue {name!r}: resourceType {explicit!r} overrides {pseudo_resource_type!r} "
                          "implied by the queue name")
        common = merged.get("common") if isinstance(merged.get("common"), dict) else {}
        for key, value in merged.items():
            if is_plugin_dict(value):
                value = prepare_plugin(key, value, merged, qc, common, source, errors)
            setattr(qc, key, value)
        if not qc.siteFamily:
            qc.siteFamily = qc.siteName
        self.apply_resolver(qc)
        errors += checks.check_types(qc, source, self.warn)
        errors += checks.check_plugins(qc, source, self.import_check and not errors)
        if errors:
            return None, errors
        checks.normalise_limits(qc)
        checks.apply_heartbeat_default(qc)
        qc.set_unique_name()
        return qc, []

    def apply_resolver(self, qc: QueueConfig) -> None:
        """PanDA queue name from the resolver; unified-pilot-streaming queues become slave/NoJob."""
        if self.resolver is None:
            return
        try:
            qc.pandaQueueName = self.resolver.get_panda_queue_name(qc.siteName)
            if self.dynamic and self.resolver.is_ups_queue(qc.queueName):
                qc.runMode = "slave"
                qc.mapType = MT_NoJob
        except Exception as exc:  # a broken resolver must not take the queue down
            self.warn(f"queue {qc.queueName!r}: resolver failed ({exc.__class__.__name__}: {exc})")
