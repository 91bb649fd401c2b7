"""Test certificates made on the spot with ``cryptography``: a CA, server and client certificates.

    ca = make_ca(tmp_path)                                   # -> Issued(cert_file, key_file, not_after)
    srv = make_cert(tmp_path, "server", ca, hosts=["127.0.0.1", "localhost"], days=2)
    cli = make_cert(tmp_path, "client", ca, client=True)
    self_signed = make_cert(tmp_path, "expired", None, days=-1)  # already expired, self-signed
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass
class Issued:
    cert_file: Path
    key_file: Path
    not_after: dt.datetime
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def _write(dirpath: Path, name: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> tuple[Path, Path]:
    dirpath.mkdir(parents=True, exist_ok=True)
    cert_file = dirpath / f"{name}.crt"
    key_file = dirpath / f"{name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_file.chmod(0o600)
    return cert_file, key_file


def make_ca(dirpath: Path, name: str = "ca", days: int = 365) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"shaobing test {name}")])
    now = dt.datetime.now(dt.timezone.utc)
    not_after = now + dt.timedelta(days=days)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = _write(dirpath, name, cert, key)
    return Issued(cert_file, key_file, not_after, cert, key)


def make_cert(
    dirpath: Path,
    name: str,
    ca: Optional[Issued],
    hosts: tuple[str, ...] | list[str] = ("127.0.0.1", "localhost"),
    days: float = 30,
    client: bool = False,
) -> Issued:
    """A leaf certificate signed by ``ca`` (self-signed when None); ``days`` < 0 makes it already expired."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    not_after = now + dt.timedelta(days=days)
    not_before = min(now - dt.timedelta(days=2), not_after - dt.timedelta(days=1))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0] if hosts else name)])
    sans: list[x509.GeneralName] = []
    for h in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            sans.append(x509.DNSName(h))
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.cert.subject if ca else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        # Python 3.13 verifies with VERIFY_X509_STRICT, which wants the Authority Key Identifier.
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key((ca.key if ca else key).public_key()), critical=False
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH]),
            critical=False,
        )
    )
    cert = builder.sign(ca.key if ca else key, hashes.SHA256())
    cert_file, key_file = _write(dirpath, name, cert, key)
    return Issued(cert_file, key_file, not_after, cert, key)
