"""Base class of credential managers (proxies, tokens)."""

from __future__ import annotations

from typing import Any

from pandaharvester.harvestercore.plugin_base import PluginBase


class BaseCredManager(PluginBase):
    """Defaults: the credential is always fine and renewing it always works."""

    def __init__(self, **kwarg: Any) -> None:
        PluginBase.__init__(self, **kwarg)

    def check_credential_lifetime(self) -> float | None:
        """Remaining lifetime in hours for monitoring, or None when unknown."""
        return None

    def check_credential(self) -> bool:
        """True if the credential is valid long enough."""
        return True

    def renew_credential(self) -> tuple[bool, str]:
        """Renew the credential: (True, "") on success, (False, reason) otherwise."""
        return True, ""
