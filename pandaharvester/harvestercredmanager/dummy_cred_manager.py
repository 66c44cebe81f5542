"""Dummy credential manager: never needs renewal; counts the calls (handy in tests)."""

from __future__ import annotations

from typing import Any

from .base_cred_manager import BaseCredManager


class DummyCredManager(BaseCredManager):
    """``valid`` (default True) is what check_credential answers; ``lifetime`` hours are reported."""

    def __init__(self, **kwarg: Any) -> None:
        self.valid = True
        self.lifetime = 96.0
        self.nChecks = 0
        self.nRenewals = 0
        BaseCredManager.__init__(self, **kwarg)

    def check_credential(self) -> bool:
        """The ``valid`` attribute."""
        self.nChecks += 1
        return bool(self.valid)

    def renew_credential(self) -> tuple[bool, str]:
        """Always succeeds (and makes the credential valid)."""
        self.nRenewals += 1
        self.valid = True
        return True, ""

    def check_credential_lifetime(self) -> float | None:
        """The ``lifetime`` attribute."""
        return self.lifetime
