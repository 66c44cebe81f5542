"""Plugin contracts, written as code: what a plugin of each role implements, returns and may set.

- :mod:`.protocols`: one ``typing.Protocol`` per role (``SubmitterPlugin``, ``MonitorPlugin``, ...)
  with the original's method names and signatures;
- :mod:`.roles`: :data:`ROLES`, each role's methods (required or optional, alternatives such as
  ``kill_worker`` for ``kill_workers``), reply kinds and the spec fields its plugins may set;
- :mod:`.replies`: :func:`validate_reply`, the one reply validator the agents and the
  conformance kit (``harvester-admin plugin check``) share;
- :mod:`.fields`: :class:`FieldGuard`, the fields a plugin call set outside its role (WARNING).

The agents use them through ``AgentBase.call_plugin(log, plugin, method, ..., role="submitter")``:
``validate_reply(role, method, reply, items=workers, plugin=plugin)`` in ``AgentBase.check_reply``
(a :class:`~pandaharvester.errors.PluginReplyError` names plugin, queue, method, problem and
expected shape) and, around a bulk call, ``FieldGuard(role, workers, tracked=True)`` before /
``guard.warning(plugin=plugin, method=method)`` after it (one line per call).
"""

from .fields import FieldGuard, new_spec_fields
from .protocols import (
    CredManagerPlugin,
    ExtractorPlugin,
    MessengerPlugin,
    MonitorPlugin,
    PreparatorPlugin,
    StagerPlugin,
    SubmitterPlugin,
    SweeperPlugin,
    ThrottlerPlugin,
    WorkerMakerPlugin,
    ZipperPlugin,
)
from .replies import expected_shape, plugin_label, reply_as_is, validate_reply
from .roles import ROLES, MethodContract, RoleContract, get_role, method_contract, role_names, settable_fields_table

__all__ = [
    "ROLES", "MethodContract", "RoleContract", "get_role", "method_contract", "role_names", "settable_fields_table",
    "validate_reply", "reply_as_is", "expected_shape",
    "plugin_label", "FieldGuard", "new_spec_fields", "SubmitterPlugin", "MonitorPlugin", "SweeperPlugin",
    "PreparatorPlugin", "StagerPlugin", "ZipperPlugin", "MessengerPlugin", "WorkerMakerPlugin",
    "ThrottlerPlugin", "CredManagerPlugin", "ExtractorPlugin",
]
