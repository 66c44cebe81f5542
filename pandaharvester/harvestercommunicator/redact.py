"""Keep secrets out of log lines.

Everything the communicator logs about a request or a reply goes through :class:`Redactor`:
structured data first (values under secret-looking keys are replaced), then the text (bearer
tokens, PEM blocks, ``key=value`` / ``"key": value`` pairs with secret-looking keys, and every
secret string the communicator currently holds, e.g. the OIDC token it sends).
"""

from __future__ import annotations

import re
import threading
from typing import Any, Iterable

MASK = "***"

# keys whose values are credentials (compared case-insensitively, '-' and '_' ignored)
SECRET_KEYS = frozenset(
    k.replace("_", "").replace("-", "").lower()
    for k in (
        "authorization", "auth_token", "auth_token_str", "access_token", "refresh_token", "id_token",
        "token", "token_key", "tokenKey", "user_proxy", "userProxy", "proxy", "private_key",
        "public_key", "key_pair", "password", "passphrase", "secret", "secrets", "pilotSecrets", "client_secret",
        "cookie",
    )
)

_KEY_ALTERNATION = "|".join((
    r"authorization", r"auth_?token(?:_?str)?", r"access_?token", r"refresh_?token", r"id_?token",
    r"token_?key", r"token", r"user_?proxy", r"proxy", r"private_?key", r"public_?key", r"key_?pair",
    r"password", r"passphrase", r"client_?secret", r"pilot_?secrets", r"secrets?", r"cookie",
))

_PEM = re.compile(r"-----BEGIN [^-\r\n]{1,64}-----.*?(?:-----END [^-\r\n]{1,64}-----|$)", re.DOTALL)
_BEARER = re.compile(r"(?i)\b(bearer)(\s+|%20|\+)[A-Za-z0-9._~+/=\-]+")
# "key": "value" | 'key': 'value' | key=value (also inside query strings)
_KEYED = re.compile(
    r"""(?ix)
    (?P<head>["']?(?:%s)["']?\s*(?::|=)\s*)
    (?P<value>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[^\s,&}\]]+)
    """ % _KEY_ALTERNATION
)


def _is_secret_key(key: Any) -> bool:
    return isinstance(key, str) and key.replace("_", "").replace("-", "").lower() in SECRET_KEYS


def mask_data(value: Any, _depth: int = 0) -> Any:
    """A copy of ``value`` (dicts/lists nested) with secret-keyed values replaced by ``***``."""
    if _depth > 20:
        return MASK
    if isinstance(value, dict):
        return {k: (MASK if _is_secret_key(k) and v not in (None, "") else mask_data(v, _depth + 1))
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(mask_data(v, _depth + 1) for v in value)
    return value


class Redactor:
    """Masks known secrets and secret-looking text. Thread-safe; secrets can be added at run time."""

    MIN_SECRET_LENGTH = 6
    MAX_SECRETS = 64  # the oldest are forgotten first (renewed tokens, proxies)

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._secrets: dict[str, None] = {}
        for secret in secrets:
            self.add_secret(secret)

    def add_secret(self, secret: str | None) -> None:
        """Remember ``secret`` so that it is masked wherever it shows up."""
        if not secret or not isinstance(secret, str):
            return
        secret = secret.strip()
        if len(secret) < self.MIN_SECRET_LENGTH:
            return
        with self._lock:
            self._secrets.pop(secret, None)
            self._secrets[secret] = None
            while len(self._secrets) > self.MAX_SECRETS:
                del self._secrets[next(iter(self._secrets))]

    def text(self, value: Any) -> str:
        """``str(value)`` with every secret masked."""
        text = value if isinstance(value, str) else str(mask_data(value))
        with self._lock:
            secrets = sorted(self._secrets, key=len, reverse=True)
        for secret in secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        text = _PEM.sub(MASK, text)
        text = _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", text)
        text = _KEYED.sub(lambda m: m.group("head") + _quoted_mask(m.group("value")), text)
        return text

    __call__ = text


def _quoted_mask(value: str) -> str:
    if value[:1] in ("'", '"'):
        return value[0] + MASK + value[0]
    return MASK
