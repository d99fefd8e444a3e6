"""The minio-py side of a node: its urllib3 connection pool, its minio-py client, and their failures mapped to
our errors.

Its own module because minio-py and urllib3 take 0.2 s of CPU to import, most of a short command's start:
a command that moves only small files, and a probe, go through obstore (``small_objects``) and never load
them. ``NodeClient`` makes these on first use.
"""

from __future__ import annotations

import contextlib
import logging
import re
import ssl
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import urllib3
from minio import Minio
from minio.error import InvalidResponseError, MinioAdminException, S3Error, ServerError

from sync_agent.config import NodeConfig
from sync_agent.credentials import Credentials
from sync_agent.errors import (
    AuthError,
    BucketMissingError,
    NodeError,
    NodeFullError,
    NodeTimeoutError,
    NodeUnreachableError,
    ObjectMissingError,
    PreconditionFailed,
    UntrustedCertificateError,
)
from sync_agent.node_types import Timeouts
from sync_agent.small_objects import AUTH_CODES as _SMALL_AUTH
from sync_agent.small_objects import FULL_CODES

log = logging.getLogger(__name__)

AUTH_CODES = _SMALL_AUTH | {"XMinioAdminNoSuchUser"}
MISSING_CODES = {"NoSuchKey", "NoSuchVersion", "NoSuchObject"}
# what a minio-py or urllib3 request raises when it fails (``map_error`` says which of ours it is)
FAILURES: tuple[type[BaseException], ...] = (S3Error, ServerError, InvalidResponseError, urllib3.exceptions.HTTPError,
                                             OSError, TimeoutError, MinioAdminException)
# and what reading a listing's pages raises besides (a page that is not a listing: a NodeError naming the node)
PAGE_FAILURES: tuple[type[BaseException], ...] = (*FAILURES, ET.ParseError, ValueError)


def _tls_failure(exc: BaseException | None) -> str | None:
    """Why TLS refused the node, when that is what failed (urllib3 wraps it in a few layers)."""
    seen = 0
    while exc is not None and seen < 8:
        seen += 1
        if isinstance(exc, ssl.SSLCertVerificationError):
            return str(exc.verify_message or exc)
        if isinstance(exc, ssl.SSLError | urllib3.exceptions.SSLError):
            text = str(exc)
            if "Fingerprints did not match" in text:
                return "fingerprint mismatch"
            if "CERTIFICATE_VERIFY_FAILED" in text:
                why = text.split("certificate verify failed:")[-1]
                return re.sub(r"\s*\(_ssl\.c:\d+\)", "", why).strip(" )'\"") or "verify failed"
            return None  # another TLS failure (e.g. http spoken to an https port): not about trust
        exc = exc.__cause__ or exc.__context__ or getattr(exc, "reason", None)
    return None


def map_error(exc: BaseException, node: NodeConfig, what: str = "") -> NodeError:
    """Translate a minio-py or urllib3 failure into an error a user can act on."""
    where = f"Node '{node.name}' ({node.url})"
    doing = f" while {what}" if what else ""
    if isinstance(exc, S3Error):
        code = exc.code or ""
        if code in AUTH_CODES:
            return AuthError(f"{where} refused the credentials{doing} ({code}). Check the access key and "
                             "secret key for this node.", node=node.name)
        if code == "NoSuchBucket":
            return BucketMissingError(f"{where} has no bucket '{exc.bucket_name}'. Run 'pooldrive pool "
                                      "init' to create it.", node=node.name)
        if code == "PreconditionFailed":
            return PreconditionFailed(f"{where}: '{exc.object_name}' is no longer the version asked for{doing}.",
                                      node=node.name)
        if code in MISSING_CODES:
            return ObjectMissingError(f"{where} does not hold '{exc.object_name}'.", node=node.name)
        if code in FULL_CODES or "minimum free drive" in (exc.message or "").lower():
            return NodeFullError(f"{where} is full{doing}: {exc.message}. Free space on it or add a node.",
                                 node=node.name)
        return NodeError(f"{where} answered with an error{doing}: {code}: {exc.message}", node=node.name)
    if isinstance(exc, ServerError):
        if exc.status_code in (503, 507):
            return NodeFullError(f"{where} is out of space or overloaded{doing} (HTTP {exc.status_code}).",
                                 node=node.name) if exc.status_code == 507 else \
                NodeUnreachableError(f"{where} is overloaded or starting{doing} (HTTP 503).", node=node.name)
        return NodeError(f"{where} had a server error{doing} (HTTP {exc.status_code}).", node=node.name)
    if isinstance(exc, InvalidResponseError):
        return NodeError(f"{where} answered, but not like an S3 server{doing} (HTTP {exc._code}). Check the "
                         "endpoint's host and port.", node=node.name)
    if isinstance(exc, MinioAdminException):
        if exc._code in ("401", "403"):
            return AuthError(f"{where} refused an admin request{doing}: these credentials lack admin rights.",
                             node=node.name)
        return NodeError(f"{where} admin API failed{doing}: HTTP {exc._code}.", node=node.name)
    tls = _tls_failure(exc)
    if tls is not None:
        if "fingerprint" in tls.lower():
            return UntrustedCertificateError(
                f"{where} presented a TLS certificate other than the one trusted for it{doing}. If its "
                f"certificate was renewed, check the new one and trust it again ('pooldrive pool trust "
                f"{node.name}'); if not, someone may be between you and the node.", node=node.name)
        return UntrustedCertificateError(
            f"{where}: its TLS certificate is not trusted{doing} ({tls}). Give the CA that signed it "
            f"('pooldrive pool trust {node.name} --ca-file CA.pem') or trust this very certificate "
            f"('pooldrive pool trust {node.name}').", node=node.name)
    if isinstance(exc, urllib3.exceptions.HTTPError | OSError | TimeoutError):
        reason = type(getattr(exc, "reason", None) or exc).__name__
        never = isinstance(getattr(exc, "reason", None) or exc, urllib3.exceptions.NewConnectionError)
        if "Timeout" in reason or "timed out" in str(exc):
            return NodeTimeoutError(f"{where} did not answer in time{doing}. It may be down, frozen or "
                                    "overloaded.", node=node.name, sent="ConnectTimeout" not in reason)
        return NodeUnreachableError(f"{where} cannot be reached{doing} ({reason}). Is it running, and is "
                                    "the address right?", node=node.name, sent=not never)
    if isinstance(exc, NodeError):
        return exc
    log.info("unexpected failure from %s: %r", node.name, exc)
    return NodeError(f"{where}: unexpected failure{doing}: {exc!r}", node=node.name)


def tls_options(node: NodeConfig) -> dict[str, Any]:
    """How an https node is trusted (see ``tls``): its pinned certificate, else its own CA file, else the
    system's CAs."""
    if not node.secure:
        return {}
    if node.cert_sha256:
        return {"cert_reqs": "CERT_NONE", "assert_fingerprint": node.cert_sha256}
    if node.ca_file:
        return {"cert_reqs": "CERT_REQUIRED", "ca_certs": node.ca_file}
    return {"cert_reqs": "CERT_REQUIRED"}


class _Retry(urllib3.Retry):
    """A 503 with Retry-After is asked again once (a node still starting says so), after at most a second:
    MinIO answers an object failing its bit-rot check the same way, and a read waits on another copy
    instead of on the header's delay."""

    def get_retry_after(self, response: urllib3.BaseHTTPResponse) -> float | None:
        after = super().get_retry_after(response)
        return None if after is None else min(after, 1.0)


class Limited(urllib3.PoolManager):
    """A pool whose requests made inside ``limit(seconds)`` wait at most that long for an answer (health
    probes); every other request keeps the pool's timeouts."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self._local = threading.local()

    @contextlib.contextmanager
    def limit(self, seconds: float) -> Iterator[None]:
        self._local.seconds = seconds
        try:
            yield
        finally:
            self._local.seconds = None

    def urlopen(self, method: str, url: str, redirect: bool = True,  # type: ignore[override]  # as urllib3 does
                **kw: Any) -> urllib3.BaseHTTPResponse:
        seconds = getattr(self._local, "seconds", None)
        if seconds is not None and "timeout" not in kw:
            default = self.connection_pool_kw["timeout"]
            kw["timeout"] = urllib3.Timeout(connect=min(seconds, default.connect_timeout), read=seconds)
        return super().urlopen(method, url, redirect, **kw)


def connect(node: NodeConfig, creds: Credentials, timeouts: Timeouts) -> tuple[Limited, Minio]:
    """A node's HTTP pool, with our timeouts and retries, and the minio-py client that uses it."""
    http = Limited(timeout=urllib3.Timeout(connect=timeouts.connect, read=timeouts.read), maxsize=32,
                   retries=_Retry(total=timeouts.retries, connect=timeouts.retries, read=0, backoff_factor=0.2,
                                  status_forcelist=[]), **tls_options(node))
    return http, Minio(node.endpoint, access_key=creds.access_key, secret_key=creds.secret_key,
                       secure=node.secure, http_client=http)


def live(http: Limited, url: str, timeout: float) -> bool:
    """MinIO's liveness check at ``url`` through ``http``: answered 200 within ``timeout`` seconds."""
    try:
        r = http.request("GET", f"{url}/minio/health/live", timeout=urllib3.Timeout(connect=timeout, read=timeout),
                         retries=False)
        return r.status == 200
    except FAILURES:
        return False


def lost(key: str, node: str, e: NodeError) -> NodeError:
    """A failed compare-and-swap as ``PreconditionFailed``; any other failure as it is."""
    cause = e.__cause__
    if isinstance(cause, S3Error) and cause.code in ("PreconditionFailed", "NoSuchKey"):
        return PreconditionFailed(f"'{key}' on node '{node}' is no longer the version this write was based on.",
                                  node=node)
    return e


def bucket_taken(e: BaseException | None) -> bool:
    """Whether creating a bucket failed because the name is taken."""
    return isinstance(e, S3Error) and e.code in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists")


def region_asked(e: BaseException | None) -> str | None:
    """The region a node said a request must be signed for (it refused one signed for another), if that is
    why it failed."""
    if isinstance(e, S3Error) and e.code == "AuthorizationHeaderMalformed":
        found = re.search(r"expecting '([\w.-]+)'", e.message or "")
        return found.group(1) if found else None
    return None
