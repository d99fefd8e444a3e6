"""Single-request reads and writes of small objects, and key-only listings, through obstore (Rust),
for one node.

Why: a pool of many small files is bound by the client's CPU per request, not by the network. minio-py
spends 0.45-0.56 ms of Python per PUT or GET on this machine (signing, urllib3, header parsing, all under
the GIL); obstore spends 0.20 ms and releases the GIL while it waits. Everything else (listings with
metadata, multipart, admin, links) stays on minio-py in ``node_client``.

The same guarantees as the minio-py path: the payload's SHA-256 is signed (the node rejects a body that
does not match it), conditional writes are real compare-and-swaps (If-None-Match / If-Match), nothing is
retried after a request may have reached the node (a resent conditional write would fail against itself),
and every failure becomes one of our errors.

The node's region is not asked for first (a request, and minio-py to make it): requests are signed for
"us-east-1", MinIO's own default, and a node set to another region refuses the first one, naming its
region; that request is sent again once, signed for it (refused at the signature, it changed nothing).

Used for plain-http nodes and https nodes trusted through the system's CAs. A node trusted by a pinned
certificate or its own CA file keeps minio-py: obstore can add a CA but not restrict trust to it, and it
cannot pin. ``POOLDRIVE_S3_CLIENT=minio-py`` turns this path off (benchmarks compare the two with it).
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

import obstore
from obstore import exceptions as obx
from obstore.store import S3Store

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

log = logging.getLogger(__name__)
T = TypeVar("T")

FULL_CODES = {  # S3 error codes that mean the node is out of space (node_client uses them too)
    "XMinioStorageFull", "XMinioAdminBucketQuotaExceeded", "QuotaExceeded", "EntityTooLarge", "XMinioDiskFull"}
AUTH_CODES = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken", "ExpiredToken"}
MAX_BODY = 1024 * 1024  # larger bodies keep minio-py: obstore's timeout covers the whole request, not each read
# environment variables obstore (AWS settings) or its HTTP client (proxies) would act on and minio-py does not
FOREIGN_ENV = ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_SKIP_SIGNATURE", "AWS_REQUEST_PAYER",
               "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")
_CODE = re.compile(r"<Code>(\w+)</Code>")
_REGION = re.compile(r"<Region>([\w.-]+)</Region>")
_WRONG_REGION = ("AuthorizationHeaderMalformed", "InvalidRegion")
DEFAULT_REGION = "us-east-1"
PROBE_KEY = ".pooldrive-probe"  # a probe lists the keys under this name: normally none
_STATUS = re.compile(r"status code: (\d{3})")
# the request cannot have reached the node: no connection was made. A word, not a prefix: a reset after
# the request went out reads "kind: ConnectionReset"; a batch copy cut that way was taken for never sent,
# not looked for, and its copy met by the full path as someone else's write
_NO_CONNECTION = re.compile(r"tcp connect error|connection refused|connectionrefused|kind: connect\b|\(\s*connect,")
_TRANSPORT = ("error sending request", "tcp connect error", "connection reset", "connection closed",
              "broken pipe", "connection refused", "incompletemessage", "kind: connect", "kind: request")


def usable(node: NodeConfig) -> bool:
    """Whether this node's requests may go through obstore (see the module docstring)."""
    if os.environ.get("POOLDRIVE_S3_CLIENT", "") == "minio-py" or any(os.environ.get(v) for v in FOREIGN_ENV):
        return False
    return not node.secure or not (node.cert_sha256 or node.ca_file)


class SmallObjects:
    """obstore's view of one node's bucket: whole-object PUT and GET of up to ``MAX_BODY`` bytes."""

    def __init__(self, node: NodeConfig, creds: Credentials, bucket: str, *, connect: float, read: float,
                 quick: float | None = None, region: str = DEFAULT_REGION) -> None:
        """``read``: how long a request may take in all; ``quick``: the same for the requests made with
        ``quick=True``, which their callers take again the long way when they fail (default ``read``)."""
        self.node = node
        self.region = region
        self._settings = (node, creds, bucket, connect)
        # obstore's timeout is one per store: quick requests have one of their own (its own connections).
        # Each is made on first use (7 ms of CPU, holding the GIL: a download uses only the quick ones)
        self._read, self._quick = read, quick if quick is not None and quick < read else read
        self._stores: dict[float, S3Store] = {}
        self._lock = threading.Lock()

    @property
    def store(self) -> S3Store:
        return self._made(self._read)

    def _made(self, timeout: float) -> S3Store:
        store = self._stores.get(timeout)
        if store is None:
            with self._lock:  # one store per timeout, whichever thread asks first
                store = self._stores.get(timeout)
                if store is None:
                    store = self._stores[timeout] = self._store(timeout)
        return store

    def _store(self, timeout: float) -> S3Store:
        node, creds, bucket, connect = self._settings
        return S3Store(  # every setting that matters given, so no AWS_* variable can change it
            bucket, endpoint=node.url, access_key_id=creds.access_key, secret_access_key=creds.secret_key,
            region=self.region, virtual_hosted_style_request=False, unsigned_payload=False,
            skip_signature=False, conditional_put="etag",
            client_options={"allow_http": not node.secure, "connect_timeout": timedelta(seconds=connect),
                            "timeout": timedelta(seconds=timeout), "pool_max_idle_per_host": "64"},
            retry_config={"max_retries": 0, "retry_timeout": timedelta(seconds=timeout),
                          "backoff": {"init_backoff": timedelta(milliseconds=100),
                                      "max_backoff": timedelta(seconds=1), "base": 2.0}})

    def _for(self, quick: bool) -> S3Store:
        return self._made(self._quick if quick else self._read)

    def _sent(self, request: Callable[[], T], key: str, doing: str, *, conditional: bool = False) -> T:
        """``request()``, sent again once if the node refused it for being signed for another region than
        its own (the error names the node's: every later request is signed for it)."""
        for attempt in (1, 2):
            try:
                return request()
            except Exception as e:  # obstore raises its own hierarchy and, for transport faults, bare errors
                if attempt == 1 and self._learned_region(str(e)):
                    continue
                raise self.error(e, key, doing, conditional=conditional) from e
        raise AssertionError("unreachable")

    def _learned_region(self, text: str) -> bool:
        code, region = _CODE.search(text), _REGION.search(text)
        if not (code and code.group(1) in _WRONG_REGION and region) or region.group(1) == self.region:
            return False
        with self._lock:
            log.info("node %s is in region %s", self.node.name, region.group(1))
            self.region = region.group(1)
            self._stores.clear()  # made again, signing for it
        return True

    def put(self, key: str, data: bytes, meta: dict[str, str], condition: str | bool | None,
            doing: str, *, quick: bool = False) -> tuple[str | None, str]:
        """One PUT; ``condition`` as in ``NodeClient.put_if``. Returns (version id, etag)."""
        mode: Any = "overwrite" if condition is False else "create" if condition is None else \
            {"e_tag": f'"{str(condition).strip(chr(34))}"'}
        attributes: Any = {**meta, "Content-Type": "application/octet-stream"}
        r = self._sent(lambda: obstore.put(self._for(quick), key, data, attributes=attributes, mode=mode,
                                           use_multipart=False), key, doing, conditional=condition is not False)
        return r.get("version"), (r.get("e_tag") or "").strip('"')

    def get(self, key: str, version_id: str | None, if_match: str | None, doing: str, *,
            quick: bool = False) -> bytes:
        options: Any = {}
        if version_id:
            options["version"] = version_id
        if if_match:
            options["if_match"] = f'"{if_match}"'
        return self._sent(lambda: bytes(obstore.get(self._for(quick), key, options=options).bytes()), key, doing,
                          conditional=bool(if_match))

    def keys(self, prefix: str, start_after: str | None, doing: str, *, quick: bool = False) -> list[str]:
        """Every key under ``prefix`` after ``start_after``, in order: a listing without metadata (the change
        journal's poll: 0.37 ms of client CPU against minio-py's 1.1 ms, most of an idle agent's CPU)."""
        return self._sent(lambda: [m["path"] for chunk in obstore.list(self._for(quick), prefix=prefix,
                                                                          offset=start_after) for m in chunk],
                          prefix, doing)

    def probe(self, scope: str, timeout: float | None) -> float:
        """An authenticated round trip that proves the keys and the bucket (a listing of a name that holds
        nothing, inside ``scope``, where a share's keys may look), answered within ``timeout`` seconds
        (default: the read timeout); returns its seconds. Raises like any request (``BucketMissingError``,
        ``AuthError``, ...). The store is made before the clock starts: making one takes about 10 ms, which
        is not the node's distance (the health book keeps the quickest round trip of a minute or two)."""
        wait = self._probe_timeout(timeout)
        self._made(wait)
        t = time.monotonic()
        self._sent(lambda: obstore.list(self._made(wait), prefix=scope + PROBE_KEY).collect(), scope,
                   "checking the bucket")
        return time.monotonic() - t

    def _probe_timeout(self, asked: float | None) -> float:
        """The timeout of a store for a probe that asked for ``asked`` seconds: the first of quick, 2x and
        4x quick, and read, that gives it as long (one store each, not one per figure a probe asks for)."""
        if asked is None:
            return self._read
        return next((t for t in sorted({self._quick, 2 * self._quick, 4 * self._quick}) if t < self._read
                     and asked <= t), self._read)

    def error(self, exc: BaseException, key: str, doing: str, *, conditional: bool = False) -> NodeError:
        """The same errors ``node_client.map_error`` gives for minio-py's failures: decided by the node's
        S3 error code and HTTP status first (obstore's exception classes fold 404 and 409 into 'precondition'
        for conditional requests), by the kind of transport failure only when the node said nothing."""
        node = self.node
        where = f"Node '{node.name}' ({node.url})"
        while_ = f" while {doing}"
        text = str(exc)
        code = (m.group(1) if (m := _CODE.search(text)) else "")
        status = int(m.group(1)) if (m := _STATUS.search(text)) else 0
        if code == "NoSuchBucket":
            return BucketMissingError(f"{where} has no bucket for the pool. Run 'pooldrive pool init' to create "
                                      "it.", node=node.name)
        if code in AUTH_CODES or (not code and status in (401, 403)):
            return AuthError(f"{where} refused the credentials{while_} ({code or status}). Check the access "
                             "key and secret key for this node.", node=node.name)
        if code == "PreconditionFailed" or status == 412:
            return PreconditionFailed(f"{where}: '{key}' is no longer the version asked for{while_}.",
                                      node=node.name)
        if code in ("NoSuchKey", "NoSuchVersion") or (not code and status == 404):
            if conditional and code != "NoSuchVersion":  # If-Match on a key with nothing live any more
                return PreconditionFailed(f"'{key}' on node '{node.name}' is no longer the version this "
                                          "request was based on.", node=node.name)
            return ObjectMissingError(f"{where} does not hold '{key}'.", node=node.name)
        if code in FULL_CODES or status == 507 or "minimum free drive" in text.lower():
            return NodeFullError(f"{where} is full{while_}. Free space on it or add a node.", node=node.name)
        if code:
            return NodeError(f"{where} answered with an error{while_}: {code}.", node=node.name)
        if status == 503:
            return NodeUnreachableError(f"{where} is overloaded or starting{while_} (HTTP 503).", node=node.name)
        if status:
            return NodeError(f"{where} answered, but not like an S3 server{while_} (HTTP {status}). Check the "
                             "endpoint's host and port.", node=node.name)
        low = text.lower()
        if "certificate" in low or "unknownissuer" in low:
            return UntrustedCertificateError(
                f"{where}: its TLS certificate is not trusted{while_}. Give the CA that signed it ('pooldrive "
                f"pool trust {node.name} --ca-file CA.pem') or trust this very certificate ('pooldrive pool "
                f"trust {node.name}').", node=node.name)
        never = _NO_CONNECTION.search(low) is not None
        if "kind: timeout" in low or "timed out" in low or "deadline has elapsed" in low:  # not 'retry_timeout:'
            return NodeTimeoutError(f"{where} did not answer in time{while_}. It may be down, frozen or "
                                    "overloaded.", node=node.name, sent=not never)
        if isinstance(exc, obx.GenericError) and any(t in low for t in _TRANSPORT):
            return NodeUnreachableError(f"{where} cannot be reached{while_}. Is it running, and is the "
                                        "address right?", node=node.name, sent=not never)
        log.info("unexpected failure from %s: %s", node.name, text[:500])
        return NodeError(f"{where}: unexpected failure{while_}: {text.splitlines()[0][:200] if text else exc!r}",
                         node=node.name)
