"""TLS for nodes people run themselves: a private CA, or a pinned certificate fingerprint.

A NAS or a friend's box rarely has a certificate a public CA signed. Two ways to trust one, per node:
* ``ca_file``: the PEM of the CA that signed the node's certificate (normal verification, host name
  included, against that CA instead of the system's);
* ``cert_sha256``: the SHA-256 of the node's own certificate, as SSH pins a host key: exactly that
  certificate is accepted, whoever signed it, and a changed one is refused until the user trusts it again.

Also here: the small CA the dev pool (``devpool up --tls``) and the tests serve their nodes with.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import logging
import re
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from sync_agent import paths
from sync_agent.errors import ConfigError, NodeUnreachableError

log = logging.getLogger(__name__)

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def normalize_fingerprint(text: str) -> str:
    """'AB:CD:…' or 'abcd…' (as browsers and openssl print it) -> 64 lowercase hex digits."""
    fp = text.strip().lower().replace(":", "").replace(" ", "")
    if fp.startswith("sha256"):
        fp = fp.removeprefix("sha256").lstrip("=")
    if not _HEX64.match(fp):
        raise ConfigError(f"'{text}' is not a SHA-256 certificate fingerprint (64 hexadecimal digits, colons "
                          "allowed).")
    return fp


def pretty_fingerprint(fp: str) -> str:
    """The fingerprint as people compare it: 'AB:CD:…'."""
    return ":".join(fp[i:i + 2] for i in range(0, len(fp), 2)).upper()


def server_fingerprint(endpoint: str, timeout: float = 5.0) -> str:
    """The SHA-256 of the certificate the node at ``endpoint`` (host:port) presents, without trusting it
    (to show the user before they decide to)."""
    host, _, port = endpoint.rpartition(":")
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as sock, \
                ctx.wrap_socket(sock, server_hostname=host) as tls:
            der = tls.getpeercert(binary_form=True)
    except (OSError, ValueError) as e:
        raise NodeUnreachableError(f"Could not fetch the TLS certificate of {endpoint}: {e}") from e
    if not der:
        raise NodeUnreachableError(f"{endpoint} presented no TLS certificate.")
    return hashlib.sha256(der).hexdigest()


def pem_fingerprint(pem: bytes) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    return hashlib.sha256(x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER)).hexdigest()


@dataclass(frozen=True)
class DevCA:
    """A private CA in a folder: ``ca.crt`` (what clients trust) and ``ca.key``."""

    folder: Path

    @property
    def cert(self) -> Path:
        return self.folder / "ca.crt"

    @property
    def key(self) -> Path:
        return self.folder / "ca.key"

    @classmethod
    def create(cls, folder: Path, name: str = "PoolDrive dev CA") -> DevCA:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = dt.datetime.now(dt.UTC)
        cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=3650))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                             content_commitment=False, key_encipherment=False,
                                             data_encipherment=False, key_agreement=False, encipher_only=False,
                                             decipher_only=False), critical=True)
                .sign(key, hashes.SHA256()))
        ca = cls(folder)
        paths.private_mkdir(folder)
        paths.write_private(ca.key, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                      serialization.NoEncryption()).decode())
        ca.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return ca

    def issue(self, certs_dir: Path, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")) -> Path:
        """A server certificate for ``hosts`` signed by this CA, laid out as MinIO's ``--certs-dir``
        wants it (public.crt, private.key); returns the certificate's path."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        ca_key = serialization.load_pem_private_key(self.key.read_bytes(), None)
        ca_cert = x509.load_pem_x509_certificate(self.cert.read_bytes())
        key = ec.generate_private_key(ec.SECP256R1())
        alt: list[x509.GeneralName] = []
        for h in hosts:
            try:
                alt.append(x509.IPAddress(ipaddress.ip_address(h)))
            except ValueError:
                alt.append(x509.DNSName(h))
        now = dt.datetime.now(dt.UTC)
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
                .issuer_name(ca_cert.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=825))
                .add_extension(x509.SubjectAlternativeName(alt), critical=False)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .sign(ca_key, hashes.SHA256()))  # type: ignore[arg-type]
        paths.private_mkdir(certs_dir)
        paths.write_private(certs_dir / "private.key", key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode())
        (certs_dir / "public.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return certs_dir / "public.crt"
