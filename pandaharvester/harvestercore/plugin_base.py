"""Base class of every plugin (submitter, monitor, messenger, ...).

A plugin is built from the dict found in the queue config (``{"module": ..., "name": ...,
<other keys>}``): every key other than ``module``/``name`` arrives here as a keyword argument
and becomes an instance attribute of the same name, so ``"nCorePerNode": 8`` in the queue
config is ``self.nCorePerNode`` in the plugin. Subclasses that need defaults set them before
calling ``PluginBase.__init__`` so that the queue config overrides them.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

from . import log_utils


class PluginBase:
    """Turns constructor keyword arguments into attributes and makes dialog-aware loggers."""

    def __init__(self, **kwarg: Any) -> None:
        for key, value in kwarg.items():
            setattr(self, key, value)

    def make_logger(self, base_log: logging.Logger | logging.LoggerAdapter, token: Any = None,
                    method_name: str | None = None, send_dialog: bool = True) -> log_utils.LogWrapper:
        """A logger whose lines read ``<method> <token> message``.

        With ``send_dialog`` and a ``dbInterface`` attribute (set by the plugin factory), lines at
        or above the dialog level are also stored in the DB and propagated to PanDA.
        """
        if method_name is None:
            frame = inspect.currentframe()
            caller = frame.f_back if frame is not None else None
            method_name = caller.f_code.co_name if caller is not None else "plugin"
        hook = getattr(self, "dbInterface", None) if send_dialog else None
        return log_utils.make_logger(base_log, token=token, method_name=method_name, hook=hook)
