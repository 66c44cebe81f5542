"""Helpers of the security tests: a test CA and proxy, the encoded forms of a secret, a scan of files.

``secret_forms(secret)`` gives the byte strings a leak of ``secret`` may take (as is, JSON- and
URL-escaped, hex, base64 at each of the three alignments, url-safe base64); ``scan`` looks for
each form of each secret in every file under a directory and returns where it found them.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import stat
import subprocess
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def mode(path: Path | str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def make_grid_ca(base: Path) -> dict[str, Path]:
    """A CA hashed into a trust directory, and a user certificate + unencrypted key in one 0600 file."""
    base.mkdir(parents=True, exist_ok=True)
    os.chmod(base, 0o700)
    ca_key, ca_pem = base / "ca.key", base / "ca.pem"
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca_pem),
            "-days", "30", "-subj", "/DC=test/DC=harvester/CN=Security Test CA",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    user_key, user_csr, user_pem = base / "user.key", base / "user.csr", base / "user.pem"
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(user_key), "-out", str(user_csr),
            "-subj", "/DC=test/DC=harvester/CN=Security Robot")
    ext = base / "user.ext"
    ext.write_text("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n")
    openssl("x509", "-req", "-in", str(user_csr), "-CA", str(ca_pem), "-CAkey", str(ca_key), "-CAcreateserial",
            "-out", str(user_pem), "-days", "10", "-extfile", str(ext))
    plain = base / "robot.plain"
    plain.write_bytes(user_pem.read_bytes() + user_key.read_bytes())
    os.chmod(plain, 0o600)
    os.chmod(user_key, 0o600)
    trust = base / "certificates"
    trust.mkdir(mode=0o700, exist_ok=True)
    subject_hash = subprocess.run(["openssl", "x509", "-hash", "-noout", "-in", str(ca_pem)], check=True,
                                  capture_output=True, text=True).stdout.strip()
    shutil.copy(ca_pem, trust / f"{subject_hash}.0")
    return {"key": user_key, "plain": plain, "trust": trust, "home": base}


def pem_key_lines(pem_text: str) -> list[str]:
    """The base64 lines of every private key block of ``pem_text`` (each one a secret)."""
    lines, inside = [], False
    for line in pem_text.splitlines():
        if line.startswith("-----BEGIN") and "PRIVATE KEY" in line:
            inside = True
        elif line.startswith("-----END"):
            inside = False
        elif inside and len(line.strip()) >= 40:
            lines.append(line.strip())
    return lines


def secret_forms(secret: str) -> dict[str, bytes]:
    """The byte strings that show ``secret`` leaked (edges of the base64 forms trimmed)."""
    raw = secret.encode()
    forms = {"raw": raw, "json": json.dumps(secret)[1:-1].encode(), "url": urllib.parse.quote(secret, safe="").encode(),
             "url+": urllib.parse.quote_plus(secret).encode(), "hex": raw.hex().encode()}
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw)
        urlsafe = base64.urlsafe_b64encode(b"\0" * shift + raw)
        # drop the characters mixing the padding bytes or the unknown neighbours in
        head = (shift * 8 + 5) // 6 if shift else 0
        core, url_core = encoded[head:len(encoded) - 4], urlsafe[head:len(urlsafe) - 4]
        if len(core) >= 8:
            forms[f"b64/{shift}"] = core.rstrip(b"=")
            forms[f"b64url/{shift}"] = url_core.rstrip(b"=")
    return {name: value for name, value in forms.items() if value}


@dataclass
class ScanResult:
    files: int = 0
    bytes: int = 0
    leaks: list[str] = field(default_factory=list)


def scan_bytes(name: str, data: bytes, secrets: dict[str, str], result: ScanResult) -> None:
    result.files += 1
    result.bytes += len(data)
    for label, secret in secrets.items():
        for form, needle in secret_forms(secret).items():
            if needle in data:
                at = data.index(needle)
                context = data[max(0, at - 80):at + len(needle) + 40].decode(errors="replace")
                result.leaks.append(f"{name}: {label} ({form}) ...{context}...")
                break


def scan_tree(root: Path, secrets: dict[str, str], result: ScanResult, skip: set[Path] = frozenset()) -> None:
    """Every regular file under ``root`` but ``skip`` (resolved paths)."""
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath, name)
            if path.resolve() in skip or not path.is_file():
                continue
            scan_bytes(str(path.relative_to(root)), path.read_bytes(), secrets, result)
