"""Token helpers (the original's ``harvestermisc.token_utils``).

- :func:`endpoint_to_filename`: the file name a token for a service endpoint (CE, storage) is
  kept under: the MD5 hex digest of the endpoint;
- :class:`WLCG_scopes`: WLCG token scope strings;
- :class:`IssuerBroker`: asks a token issuer for an access token with the OAuth2
  client-credentials flow (``POST <issuer>/token``).

The client secret goes only into the POST body; it is never logged nor put in an error message.
"""

from __future__ import annotations

import json
from typing import Any

import requests

from pandaharvester.harvestercore.core_utils import md5_hex


def _md5sum(data: str) -> str:
    """MD5 hex digest of a text."""
    return md5_hex(data)


def endpoint_to_filename(endpoint: str) -> str:
    """Token file name of a service endpoint: its MD5 hex digest."""
    return _md5sum(endpoint)


class WLCG_scopes:  # noqa: N801  (the original's name)
    """Scope strings of the WLCG token profile."""

    COMPUTE_ALL = "compute.read compute.modify compute.create compute.cancel"


class IssuerBroker:
    """Talks to a token issuer with the client-credentials flow."""

    def __init__(self, issuer: str, client_id: str, client_secret: str, name: str = "unknown") -> None:
        self.issuer = issuer
        self.client_id = client_id
        self.client_secret = client_secret
        self.name = name
        self.timeout = 3
        self.token_request_url = f"{self.issuer}/token"
        self._base_post_data = {"grant_type": "client_credentials", "client_id": self.client_id,
                                "client_secret": self.client_secret}

    def __repr__(self) -> str:
        return f"IssuerBroker(name={self.name!r}, issuer={self.issuer!r}, client_id={self.client_id!r})"

    def _post(self, **kwarg: Any) -> requests.Response:
        """POST the client credentials plus ``kwarg`` (None values left out) to the token URL."""
        data = dict(self._base_post_data)
        data.update({key: value for key, value in kwarg.items() if value is not None})
        return requests.post(self.token_request_url, data=data, timeout=self.timeout)

    def get_access_token(self, aud: str | None = None, scope: str | None = None) -> str | None:
        """An access token for audience ``aud`` and ``scope``.

        Raises ``requests.HTTPError`` when the issuer answers with an error status, and
        ``ValueError``/``KeyError`` when a 200 reply is not JSON with ``access_token``.
        """
        resp = self._post(audience=aud, scope=scope)
        if resp.status_code == requests.codes.ok:
            return json.loads(resp.text)["access_token"]
        resp.raise_for_status()
        return None
