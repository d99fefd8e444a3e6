"""Checking a node before it joins a pool: reachable, really S3, right keys, TLS as configured.

Used by `pooldrive pool add-node` and the desktop app's first-run wizard, so both say the same thing in
the same words.
"""

from __future__ import annotations

import logging
import ssl
import time
from dataclasses import dataclass

import urllib3

from sync_agent.config import NodeConfig
from sync_agent.credentials import Credentials
from sync_agent.errors import AuthError, NodeError, NodeUnreachableError, UntrustedCertificateError
from sync_agent.node_client import NodeClient, Timeouts
from sync_agent.tls import pretty_fingerprint, server_fingerprint

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NodeCheck:
    ok: bool
    title: str
    message: str
    latency_ms: float = 0.0
    bucket_exists: bool = False
    admin: bool | None = None  # whether the keys have admin rights (needed for sharing); None: unknown
    fingerprint: str = ""  # the certificate's SHA-256 when it is not trusted yet (for 'Trust this certificate?')


def _tls_problem(exc: BaseException | None) -> str | None:
    while exc is not None:
        if isinstance(exc, ssl.SSLCertVerificationError):
            return f"the node's TLS certificate is not trusted ({exc.verify_message})"
        if "Fingerprints did not match" in str(exc):
            return "the node's TLS certificate is not the one pinned for it"
        if isinstance(exc, ssl.SSLError | urllib3.exceptions.SSLError):
            text = str(exc)
            if "WRONG_VERSION_NUMBER" in text or "wrong version number" in text:
                return "the node does not speak TLS on this port: turn off 'secure' (use http)"
            return f"TLS failed ({text[:120]})"
        exc = exc.__cause__ or exc.__context__ or getattr(exc, "reason", None)
    return None


def check_node(node: NodeConfig, creds: Credentials, bucket: str, *, timeout: float = 5.0) -> NodeCheck:
    client = NodeClient(node, creds, bucket, Timeouts(connect=timeout, read=timeout, retries=0))
    try:
        client.ready()  # (its making is not the node's round trip)
        t = time.monotonic()
        try:
            exists = client.bucket_exists()
        except NodeUnreachableError as e:
            tls = _tls_problem(e.__cause__)
            if isinstance(e, UntrustedCertificateError) and tls:
                try:
                    fp = server_fingerprint(node.endpoint, timeout)
                except NodeError:
                    fp = ""
                shown = f" Its certificate's SHA-256 is {pretty_fingerprint(fp)}." if fp else ""
                return NodeCheck(False, "Certificate not trusted", f"{node.url}: {tls}.{shown}", fingerprint=fp)
            if tls:
                return NodeCheck(False, "TLS problem", f"{node.url}: {tls}.")
            if not node.secure and _speaks_tls(node, timeout):
                return NodeCheck(False, "TLS problem", f"{node.url} expects https: turn on 'secure'.")
            return NodeCheck(False, "Unreachable", f"Nothing answers at {node.url}. Check the host name and port, "
                                                   "and that the server is running and not behind a firewall.")
        except AuthError:
            return NodeCheck(False, "Wrong credentials", f"{node.url} refused the access key '{creds.access_key}' "
                                                         "or its secret key. Check both and try again.")
        except NodeError as e:
            if not node.secure and _speaks_tls(node, timeout):  # Go's https server answers http with a 400
                return NodeCheck(False, "TLS problem", f"{node.url} expects https: turn on 'secure'.")
            return NodeCheck(False, "Not an S3 server", e.message)
        latency = (time.monotonic() - t) * 1000
        admin: bool | None
        try:
            client.server_info()
            admin = True
        except AuthError:
            admin = False
        except NodeError:
            admin = None  # not MinIO, or no admin API: sharing will say so when used
        where = "the bucket exists" if exists else "the bucket will be created"
        return NodeCheck(True, "Connected", f"{node.url} answered in {latency:.0f} ms; {where}.", latency, bool(exists),
                         admin)
    finally:
        client.close()


def _speaks_tls(node: NodeConfig, timeout: float) -> bool:
    """Whether the port answers a TLS handshake (an https node configured as http)."""
    import socket

    host, _, port = node.endpoint.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as sock:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            with ctx.wrap_socket(sock, server_hostname=host):
                return True
    except (OSError, ValueError):
        return False
