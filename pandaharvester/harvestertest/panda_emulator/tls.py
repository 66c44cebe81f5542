"""A throw-away PKI for the emulator: CA, server certificate, client certificates.

Files written to the cert dir (keys mode 0600): ``ca.pem``/``ca.key``, ``server.pem``/
``server.key`` (SAN localhost, 127.0.0.1, ::1), ``client.pem``/``client.key`` (CN
``harvester-client``). Existing files are reused so that a restarted emulator keeps them.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from pathlib import Path

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
except ImportError:  # only making certificates needs it: plain HTTP works without
    x509 = None  # type: ignore[assignment]

ORG = "PanDA Emulator"
CLIENT_CN = "harvester-client"


class TLSUnavailable(RuntimeError):
    """Certificates cannot be made: the ``cryptography`` package is missing."""


def _need_cryptography() -> None:
    if x509 is None:
        raise TLSUnavailable("the emulator's HTTPS mode makes its certificates with the Python package "
                             "'cryptography', which is not installed: pip install 'pandaharvester[emulator]', "
                             "or run the emulator with --http")


def _write(path: Path, data: bytes, secret: bool) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if secret else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    if secret:
        os.chmod(path, 0o600)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _name(cn: str, ou: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORG)]
    if ou:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


def _load_ca(cert_dir: Path):
    ca_cert = x509.load_pem_x509_certificate((cert_dir / "ca.pem").read_bytes())
    ca_key = serialization.load_pem_private_key((cert_dir / "ca.key").read_bytes(), None)
    return ca_cert, ca_key


def _issue(ca_cert, ca_key, subject: x509.Name, key, *, server: bool, days: int = 30) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    if server:
        sans = [
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("::1")),
        ]
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    else:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def ensure_pki(cert_dir: Path) -> dict[str, str]:
    """Create (or reuse) the CA, server and default client certificates; return their paths."""
    _need_cryptography()
    cert_dir = Path(cert_dir)
    cert_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(cert_dir, 0o700)
    if not ((cert_dir / "ca.pem").exists() and (cert_dir / "ca.key").exists()):
        key = _key()
        now = datetime.datetime.now(datetime.UTC)
        name = _name("PanDA Emulator CA")
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
            .sign(key, hashes.SHA256())
        )
        _write(cert_dir / "ca.key", _key_pem(key), True)
        _write(cert_dir / "ca.pem", cert.public_bytes(serialization.Encoding.PEM), False)
        for stale in ("server.pem", "server.key", "client.pem", "client.key"):
            (cert_dir / stale).unlink(missing_ok=True)
    ca_cert, ca_key = _load_ca(cert_dir)
    if not ((cert_dir / "server.pem").exists() and (cert_dir / "server.key").exists()):
        key = _key()
        cert = _issue(ca_cert, ca_key, _name("localhost"), key, server=True)
        _write(cert_dir / "server.key", _key_pem(key), True)
        _write(cert_dir / "server.pem", cert.public_bytes(serialization.Encoding.PEM), False)
    if not ((cert_dir / "client.pem").exists() and (cert_dir / "client.key").exists()):
        make_client_cert(cert_dir, "client", CLIENT_CN)
    return {
        "ca_cert": str(cert_dir / "ca.pem"),
        "server_cert": str(cert_dir / "server.pem"),
        "server_key": str(cert_dir / "server.key"),
        "client_cert": str(cert_dir / "client.pem"),
        "client_key": str(cert_dir / "client.key"),
    }


def make_client_cert(
    cert_dir: Path, name: str, cn: str, ou: str | None = None, *, self_signed: bool = False
) -> tuple[str, str]:
    """Issue a client certificate ``<name>.pem``/``<name>.key`` with the given CN (and OU).

    ``self_signed=True`` makes a certificate NOT signed by the emulator CA (for negative tests).
    Returns (cert path, key path).
    """
    _need_cryptography()
    cert_dir = Path(cert_dir)
    key = _key()
    subject = _name(cn, ou)
    if self_signed:
        ca_cert = x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            ca_cert.public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256())
        )
    else:
        ca, ca_key = _load_ca(cert_dir)
        cert = _issue(ca, ca_key, subject, key, server=False)
    cert_path, key_path = cert_dir / f"{name}.pem", cert_dir / f"{name}.key"
    _write(key_path, _key_pem(key), True)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), False)
    return str(cert_path), str(key_path)


def server_context(paths: dict[str, str]) -> ssl.SSLContext:
    """Server-side TLS context: client certificates optional but verified against the CA."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(paths["server_cert"], paths["server_key"])
    ctx.load_verify_locations(paths["ca_cert"])
    ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx


def peer_dn(cert: dict | None) -> str | None:
    """RFC-4514-like DN (``/O=.../CN=...`` grid style) from ``SSLSocket.getpeercert()``."""
    if not cert:
        return None
    parts = []
    short = {
        "organizationName": "O",
        "organizationalUnitName": "OU",
        "commonName": "CN",
        "countryName": "C",
        "domainComponent": "DC",
    }
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            parts.append(f"/{short.get(key, key)}={value}")
    return "".join(parts)
