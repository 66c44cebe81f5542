"""The start-up check of the plugins panda_harvester.cfg names: each module imports and has its class.

``[communicator] moduleName/className``, each ``[credmanager] moduleName/className`` pair and
``[qconf] resolverModule/resolverClass``: a name that does not import would otherwise be found
only after the daemon made its DB and logs (the communicator) or would leave an agent without
its plugin for good (credential managers, the queue resolver). One line per problem, naming the
file, section, keys and values; the master refuses to start on any (exit status 78).
"""

from __future__ import annotations

from typing import Any

DEFAULT_COMMUNICATOR = ("pandaharvester.harvestercommunicator.panda_communicator", "PandaCommunicator")


def _names(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    return [str(item) for item in value] if isinstance(value, list) else [str(value)]


def _pairs() -> list[tuple[str, str, str, str, str]]:
    """(section, module key, class key, module, class) of every plugin the cfg names."""
    from pandaharvester.harvesterconfig import schema

    module = schema.cfg_value("communicator", "moduleName") or DEFAULT_COMMUNICATOR[0]
    cls = schema.cfg_value("communicator", "className") or DEFAULT_COMMUNICATOR[1]
    pairs = [("communicator", "moduleName", "className", str(module), str(cls))]
    for module, cls in zip(_names(schema.cfg_value("credmanager", "moduleName")),
                           _names(schema.cfg_value("credmanager", "className"))):
        pairs.append(("credmanager", "moduleName", "className", module, cls))
    module, cls = schema.cfg_value("qconf", "resolverModule"), schema.cfg_value("qconf", "resolverClass")
    if module and cls:
        pairs.append(("qconf", "resolverModule", "resolverClass", str(module), str(cls)))
    return pairs


def start_problems() -> list[str]:
    """One line per plugin named in the cfg that cannot be imported."""
    from pandaharvester.harvesterconfig import harvester_config
    from pandaharvester.harvestercore.queue_config_checks import import_problem

    lines = []
    for section, module_key, class_key, module, cls in _pairs():
        problem = import_problem(module, cls)
        if problem is not None:
            where = harvester_config.origin_of(section, module_key)
            lines.append(f"{where} [{section}] {module_key} = {module!r} / {class_key} = {cls!r}: {problem}: "
                         "fix the names (a module on the daemon's PYTHONPATH and a class in it)")
    return lines
