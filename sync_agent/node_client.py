"""Talking to one S3 node: a thin wrapper over minio-py and obstore that maps every failure to our errors.

Whole small objects, key listings and health probes go through obstore (``small_objects``); the rest through
minio-py, which is loaded only when a request first needs it (``minio_link``: 0.2 s of a short command's
start). All network timeouts are short and bounded so that a frozen node (SIGSTOP) costs seconds, never
minutes.
"""

from __future__ import annotations

import base64
import builtins
import contextlib
import hashlib
import json
import logging
import re
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

from sync_agent import listing_xml, small_objects
from sync_agent.config import NodeConfig
from sync_agent.credentials import Credentials
from sync_agent.errors import (
    BucketMissingError,
    NodeError,
    NodeUnreachableError,
    ObjectMissingError,
    PreconditionFailed,
    RefusedError,
)
from sync_agent.node_types import Capacity, RemoteObject, Timeouts

if TYPE_CHECKING:
    import urllib3
    from minio import Minio
    from minio.minioadmin import MinioAdmin

    from sync_agent.minio_link import Limited

log = logging.getLogger(__name__)

META_PREFIX = "pd-"
LIST_PAGE = 1000  # entries per listing request (S3's most)


class Readable(Protocol):
    """What an upload reads from: a file, or a wrapper that meters or hashes one."""

    def read(self, n: int = -1, /) -> bytes: ...


def _meta_from_headers(headers: Any) -> dict[str, str]:
    """Our metadata (``pd-*`` keys, lowercased) from list/stat results, whatever their spelling."""
    out: dict[str, str] = {}
    for k, v in (headers or {}).items():
        kl = k.lower()
        for prefix in ("x-amz-meta-", ""):
            if kl.startswith(prefix + META_PREFIX):  # a listing holds these names once per object: shared
                out[sys.intern(kl[len(prefix) + len(META_PREFIX):])] = v if isinstance(v, str) else str(v)
    return out


def timed_out(exc: BaseException | None) -> bool:
    """Whether a failure was a read that waited longer than its timeout (the request reached the node)."""
    u3 = sys.modules.get("urllib3.exceptions")  # not loaded: none of its failures can be here
    kinds: tuple[type[BaseException], ...] = (TimeoutError, u3.ReadTimeoutError) if u3 else (TimeoutError,)
    seen = 0
    while exc is not None and seen < 8:
        seen += 1
        if isinstance(exc, kinds):
            return True
        exc = exc.__cause__ or exc.__context__ or getattr(exc, "reason", None)
    return False


class NodeClient:
    """One node of the pool, seen through one bucket."""

    def __init__(self, node: NodeConfig, creds: Credentials, bucket: str,
                 timeouts: Timeouts = Timeouts(), scope: str = "") -> None:
        """``scope``: a folder prefix these credentials are limited to (a share), or '' for the bucket."""
        self.node = node
        self.scope = scope
        self.name = node.name
        self.bucket = bucket
        self.timeouts = timeouts
        self._creds = creds
        self.requests = 0  # S3 requests started through this client (tests count work with it)
        self.retries = 0  # requests sent again after the link dropped them
        self._link: tuple[Limited, Minio] | None = None
        self._link_lock = threading.Lock()
        self._small = small_objects.SmallObjects(
            node, creds, bucket, connect=timeouts.connect, read=timeouts.read, quick=timeouts.quick_read
        ) if small_objects.usable(node) else None

    @property
    def small(self) -> small_objects.SmallObjects | None:
        """The fast path for whole-object requests, listings of keys and probes (see ``small_objects``); None
        for a node it cannot serve."""
        return self._small

    @property
    def s3(self) -> Minio:
        """minio-py's client for this node, made on first use (see ``minio_link``)."""
        return self._linked()[1]

    @property
    def _http(self) -> Limited:
        """The connection pool minio-py's client uses, with its timeouts; made with it."""
        return self._linked()[0]

    def ready(self) -> None:
        """Make minio-py's client now (the first one in a process loads minio-py: 0.2 s), before requests that
        are timed or raced: its making must not count as the node's answer."""
        self._linked()

    def _linked(self) -> tuple[Limited, Minio]:
        link = self._link
        if link is None:
            with self._link_lock:
                if self._link is None:
                    from sync_agent import minio_link

                    self._link = minio_link.connect(self.node, self._creds, self.timeouts)
                link = self._link
        return link

    def __repr__(self) -> str:
        return f"NodeClient({self.name}, {self.node.url})"

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        self.requests += 1
        try:
            return fn(*args, **kw)
        except Exception as e:
            from sync_agent import minio_link  # loaded: fn is minio-py's

            if isinstance(e, minio_link.FAILURES):
                raise minio_link.map_error(e, self.node, what) from e
            raise

    # --- bucket -----------------------------------------------------------------------------------
    def ensure_bucket(self) -> None:
        from minio.versioningconfig import ENABLED, VersioningConfig

        if not self._call("checking the bucket", self.s3.bucket_exists, self.bucket):
            with contextlib.suppress(NodeError):  # (another device making it at the same moment: the next call
                self._make_bucket("creating the bucket")  # tells)
        self._call("turning on versioning", self.s3.set_bucket_versioning, self.bucket,
                   VersioningConfig(ENABLED))

    def probe(self, timeout: float | None = None) -> float:
        """An authenticated round trip, waiting ``timeout`` seconds at most (default: the read timeout);
        returns its latency in seconds."""
        if self._small is not None:
            self.requests += 1
            return self._small.probe(self.scope, timeout)
        t = time.monotonic()
        with self._http.limit(timeout) if timeout is not None else contextlib.nullcontext():
            if self.scope:  # scoped keys may not look at the bucket itself, only inside their folder
                self._call("listing the shared folder",
                           lambda: next(iter(self.s3.list_objects(self.bucket, prefix=self.scope)), None))
                return time.monotonic() - t
            if not self._call("checking the bucket", self.s3.bucket_exists, self.bucket):
                raise BucketMissingError(f"Node '{self.name}' ({self.node.url}) has no bucket '{self.bucket}'. "
                                         "Run 'pooldrive pool init' to create it.", node=self.name)
        return time.monotonic() - t

    def live(self, timeout: float = 2.0) -> bool:
        """Whether the node says it is alive (MinIO's unauthenticated liveness check), within ``timeout`` s."""
        from sync_agent import minio_link

        return minio_link.live(self._http, self.node.url, timeout)

    def admin(self) -> MinioAdmin:
        from minio.credentials import StaticProvider
        from minio.minioadmin import MinioAdmin

        return MinioAdmin(endpoint=self.node.endpoint, secure=self.node.secure, http_client=self._http,
                          credentials=StaticProvider(self._creds.access_key, self._creds.secret_key))

    def bucket_exists(self) -> bool:
        return bool(self._call("checking the bucket", self.s3.bucket_exists, self.bucket))

    def server_info(self) -> dict[str, Any]:
        """MinIO's admin server info (raises AuthError for keys without admin rights)."""
        return dict(json.loads(self._call("reading server info", self.admin().info)))

    def admin_call(self, what: str, fn_name: str, **kw: Any) -> str:
        """One MinIO admin API call by its minio-py name (service accounts, policies)."""
        return str(self._call(what, getattr(self.admin(), fn_name), **kw))

    def presign_get(self, key: str, version_id: str | None, expires: timedelta,
                    signer: Credentials | None = None) -> str:
        """A pre-signed GET URL; ``signer``: the keys to sign with (a link key that can be revoked on its
        own) instead of this client's. Signing is local; the region comes from this client."""
        s3 = self.s3
        if signer is not None:
            from minio import Minio

            region = self._call("reading the bucket's region", self.s3._get_region, self.bucket)
            s3 = Minio(self.node.endpoint, access_key=signer.access_key, secret_key=signer.secret_key,
                       secure=self.node.secure, region=region, http_client=self._http)
        return str(self._call("signing a link", s3.presigned_get_object, self.bucket, key, expires=expires,
                              version_id=version_id))

    def listen(self, events: list[str]) -> urllib3.BaseHTTPResponse | None:
        """A long-lived ListenBucketNotification stream (read it line by line; close it to stop); None when
        nothing happened within the read timeout (a single-drive MinIO answers only with the first event,
        so a quiet bucket looks like a slow answer: ask again).

        (minio-py's EventIterable spins when the stream ends without closing, so the raw stream is given.)
        """
        try:
            return self._call("listening for changes", self.s3._execute, "GET", self.bucket,
                              preload_content=False, query_params={"prefix": self.scope, "suffix": "",
                                                                   "events": events})
        except NodeUnreachableError as e:
            if timed_out(e):
                return None
            raise

    def capacity(self) -> Capacity | None:
        """Drive space from MinIO's admin API; None where the node does not offer it."""
        try:
            info = self.server_info()
        except NodeError:
            return None
        total = used = free = 0
        for server in info.get("servers", []):
            for d in server.get("drives", []):
                total += int(d.get("totalspace", 0))
                used += int(d.get("usedspace", 0))
                free += int(d.get("availspace", 0))
        return Capacity(total, used, free) if total else None

    # --- objects ----------------------------------------------------------------------------------
    def put(self, key: str, data: Readable, length: int, meta: dict[str, str], *, part_size: int,
            parallel: int = 3, progress: Any = None) -> tuple[str | None, str]:
        """Upload; returns (version id, etag)."""
        headers = {META_PREFIX + k: v for k, v in meta.items()}
        r = self._call(f"uploading '{key}'", self.s3.put_object, self.bucket, key, data, length,
                       metadata=headers, part_size=part_size, num_parallel_uploads=parallel,
                       progress=progress)
        return r.version_id, (r.etag or "").strip('"')

    def put_if(self, key: str, data: bytes, meta: dict[str, str], *, if_match: str | bool | None = None,
               quick: bool = False) -> tuple[str | None, str]:
        """A single-request upload that only happens if the key's latest version is still what the writer
        saw: ``if_match`` an ETag, or None for 'no live object here yet' (If-None-Match: *); False writes
        unconditionally. Returns (version id, etag); raises ``PreconditionFailed`` when someone else wrote
        first. ``quick``: wait ``timeouts.quick`` at most (a caller that has another way to go on).

        (minio-py's put_object turns unknown headers into metadata, so its request is made here.)
        """
        doing = f"uploading '{key}'"
        if len(data) <= small_objects.MAX_BODY and (small := self.small) is not None:
            self.requests += 1
            try:
                return small.put(key, data, {META_PREFIX + k: v for k, v in meta.items()}, if_match, doing,
                                 quick=quick)
            except ObjectMissingError as e:  # If-Match on a key with nothing live any more
                raise PreconditionFailed(f"'{key}' on node '{self.name}' is no longer the version this write "
                                         "was based on.", node=self.name) from e
        headers: dict[str, str] = {f"x-amz-meta-{META_PREFIX}{k}": v for k, v in meta.items()}
        headers["Content-Type"] = "application/octet-stream"
        headers["Content-MD5"] = base64.b64encode(hashlib.md5(data).digest()).decode()  # checked by the node
        headers.update(self._condition(if_match))
        try:
            with self._http.limit(self.timeouts.quick_read) if quick else contextlib.nullcontext():
                resp = self._call(doing, self.s3._execute, "PUT", self.bucket, key, body=data, headers=headers)
        except NodeError as e:
            raise self._lost(key, e) from e
        return resp.headers.get("x-amz-version-id"), (resp.headers.get("etag") or "").strip('"')

    @staticmethod
    def _condition(if_match: str | bool | None) -> dict[str, str]:
        """Headers of a compare-and-swap: False none, None 'no live object here yet', else an ETag."""
        if if_match is False:
            return {}
        if if_match is None:
            return {"If-None-Match": "*"}
        return {"If-Match": f'"{str(if_match).strip(chr(34))}"'}

    def _lost(self, key: str, e: NodeError) -> NodeError:
        from sync_agent import minio_link

        return minio_link.lost(key, self.name, e)

    # --- multipart uploads (large files, resumable) -----------------------------------------------
    def start_upload(self, key: str, meta: dict[str, str]) -> str:
        headers: dict[str, str | list[str] | tuple[str]] = {f"x-amz-meta-{META_PREFIX}{k}": v
                                                           for k, v in meta.items()}
        headers["Content-Type"] = "application/octet-stream"
        return str(self._call(f"starting the upload of '{key}'", self.s3._create_multipart_upload, self.bucket,
                              key, headers))

    def upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> str:
        return str(self._call(f"uploading part {number} of '{key}'", self.s3._upload_part, self.bucket, key,
                              data, None, upload_id, number))

    def list_parts(self, key: str, upload_id: str) -> dict[int, tuple[int, str]]:
        """The parts the node has of an upload: number -> (size, etag)."""
        parts: dict[int, tuple[int, str]] = {}
        marker: str | None = None
        while True:
            result = self._call("listing uploaded parts", self.s3._list_parts, self.bucket, key, upload_id,
                                max_parts=1000, part_number_marker=marker)
            parts.update({p.part_number: (p.size, p.etag) for p in result.parts})
            if not result.is_truncated:
                return parts
            marker = result.next_part_number_marker

    def complete_upload(self, key: str, upload_id: str, etags: list[str], *,
                        if_match: str | bool | None = False) -> tuple[str | None, str]:
        """Finish an upload from its parts' ETags (in order); ``if_match`` as in ``put_if`` makes it a
        compare-and-swap (raises ``PreconditionFailed``). Returns (version id, etag)."""
        body = ("<CompleteMultipartUpload>" + "".join(
            f'<Part><PartNumber>{i}</PartNumber><ETag>"{etag}"</ETag></Part>' for i, etag in enumerate(etags, 1))
            + "</CompleteMultipartUpload>").encode()
        headers = {"Content-Type": "application/xml",
                   "Content-MD5": base64.b64encode(hashlib.md5(body).digest()).decode(),
                   **self._condition(if_match)}
        try:
            resp = self._call(f"finishing the upload of '{key}'", self.s3._execute, "POST", self.bucket, key,
                              body=body, headers=headers, query_params={"uploadId": upload_id})
        except NodeError as e:
            raise self._lost(key, e) from e
        from minio.datatypes import CompleteMultipartUploadResult

        result = CompleteMultipartUploadResult(resp)
        return result.version_id, (result.etag or "").strip('"')

    def abort_upload(self, key: str, upload_id: str) -> None:
        self._call("abandoning an upload", self.s3._abort_multipart_upload, self.bucket, key, upload_id)

    def get(self, key: str, version_id: str | None = None, offset: int = 0,
            length: int = 0, if_match: str | None = None, *, quick: bool = False) -> urllib3.BaseHTTPResponse:
        """A streaming response (``length`` bytes from ``offset``; 0: to the end); the caller must ``close()``
        and ``release_conn()`` it. ``if_match``: only if the object's ETag is this one (reading the current
        object without a version id), else ``PreconditionFailed``. ``quick``: the answer, and every read of
        the body, waits ``timeouts.quick`` at most (a caller whose other streams take over)."""
        headers = {"If-Match": f'"{if_match}"'} if if_match else None
        with self._http.limit(self.timeouts.quick_read) if quick else contextlib.nullcontext():
            return self._call(f"downloading '{key}'", self.s3.get_object, self.bucket, key,
                              version_id=version_id, offset=offset, length=length, request_headers=headers)

    def quickly(self) -> contextlib.AbstractContextManager[None]:
        """Requests made in the block, on this thread, wait ``timeouts.quick`` at most (for a caller that has
        another way to go on)."""
        return self._http.limit(self.timeouts.quick_read)

    def get_small(self, key: str, version_id: str | None = None, if_match: str | None = None, *,
                  quick: bool = False) -> bytes | None:
        """A whole object (up to ``small_objects.MAX_BODY``) in one request through the fast path; None when
        this node has none (use ``get``). ``quick``: as for ``put_if``."""
        if (small := self.small) is None:
            return None
        self.requests += 1
        return small.get(key, version_id, if_match, f"downloading '{key}'", quick=quick)

    def stat(self, key: str, version_id: str | None = None) -> RemoteObject:
        o = self._call(f"reading '{key}'", self.s3.stat_object, self.bucket, key, version_id=version_id)
        return RemoteObject(key=key, size=o.size or 0, last_modified=o.last_modified,
                            version_id=o.version_id, etag=(o.etag or "").strip('"'),
                            meta=_meta_from_headers(o.metadata))

    def delete(self, key: str, version_id: str | None = None) -> None:
        """Without a version id this adds a delete marker (the old versions stay restorable)."""
        self._call(f"deleting '{key}'", self.s3.remove_object, self.bucket, key, version_id=version_id)

    def copy(self, src_key: str, dst_key: str, meta: dict[str, str],
             src_version: str | None = None) -> str | None:
        """Server-side copy with new metadata; returns the new version id."""
        from minio.commonconfig import CopySource

        r = self._call(f"copying '{src_key}'", self.s3.copy_object, self.bucket, dst_key,
                       CopySource(self.bucket, src_key, version_id=src_version),
                       metadata={META_PREFIX + k: v for k, v in meta.items()},
                       metadata_directive="REPLACE")
        return r.version_id

    def copy_if(self, key: str, src_version: str | None, meta: dict[str, str], *, if_match: str | bool | None
                ) -> tuple[str | None, str]:
        """Server-side copy of a version of ``key`` onto ``key`` itself (it becomes the latest), as a
        compare-and-swap on what is latest now (``if_match`` as in ``put_if``). Returns (version id, etag).

        The conditional headers are sent, but MinIO checks only the copy source's conditions on CopyObject,
        so the swap is made good afterwards: unless the entry just below the new copy is the one expected
        (None: nothing live), the copy is deleted again and ``PreconditionFailed`` raised."""
        source = "/" + urllib.parse.quote(f"{self.bucket}/{key}", safe="/~")
        if src_version:
            source += "?versionId=" + urllib.parse.quote(src_version, safe="")
        headers: dict[str, str] = {f"x-amz-meta-{META_PREFIX}{k}": v for k, v in meta.items()}
        headers.update({"x-amz-copy-source": source, "x-amz-metadata-directive": "REPLACE",
                        **self._condition(if_match)})
        doing = f"copying '{key}'"
        before = self._newest(key)
        if if_match is not False and (before.etag if before and not before.is_delete_marker else None) != (
                None if if_match is None else str(if_match).strip('"')):
            raise PreconditionFailed(f"'{key}' on node '{self.name}' is no longer the version this copy was "
                                     "based on.", node=self.name)
        try:
            resp = self._call(doing, self.s3._execute, "PUT", self.bucket, key, headers=headers)
        except NodeError as e:
            raise self._lost(key, e) from e
        vid = resp.headers.get("x-amz-version-id")
        if if_match is not False:
            entries = [o for o in self.list(key, versions=True) if o.key == key]
            mine = next((i for i, o in enumerate(entries) if o.version_id == vid), None)
            below = entries[mine + 1] if mine is not None and mine + 1 < len(entries) else None
            if mine != 0 or (below.version_id if below else None) != (before.version_id if before else None):
                self._call(doing, self.s3.remove_object, self.bucket, key, version_id=vid)
                raise PreconditionFailed(f"'{key}' on node '{self.name}' changed while it was being copied.",
                                         node=self.name)
        found = re.search(rb"<ETag>(?:&quot;|&#34;|\")?([0-9a-fA-F-]+)", resp.data or b"")
        return vid, found.group(1).decode() if found else ""

    # --- a share's view (sharing.views): a bucket of its own on the same node ------------------------------
    def create_bucket(self) -> None:
        """Make this client's bucket (a share view); a bucket of that name already there is refused, never
        taken over. One request: no look first that another client could overtake."""
        from sync_agent import minio_link

        try:
            self._make_bucket("creating the share's bucket")
        except NodeError as e:
            if minio_link.bucket_taken(e.__cause__):
                raise RefusedError(f"Node '{self.name}' already has a bucket '{self.bucket}'; try sharing "
                                   "again.") from e
            raise

    def _make_bucket(self, doing: str) -> None:
        """One CreateBucket; a node set to a region of its own refuses one for the default region and names
        its own: then asked again once, in that one."""
        from sync_agent import minio_link

        try:
            self._call(doing, self.s3.make_bucket, self.bucket)
        except NodeError as e:
            region = minio_link.region_asked(e.__cause__)
            if not region:
                raise
            self._call(doing, self.s3.make_bucket, self.bucket, region)

    def refuse_versioned_bucket(self) -> None:
        """A share view must hold no past: refused on a server that versions every new bucket."""
        status = self._call("checking the share's bucket", self.s3.get_bucket_versioning, self.bucket).status
        if status not in (None, "", "Off"):
            raise RefusedError(f"Node '{self.name}' keeps versions in every new bucket, so a share there could "
                               "read the past of what it shows. Share with history, or turn that off on the node.")

    def copy_from(self, src_bucket: str, key: str, version_id: str | None, size: int) -> None:
        """Server-side copy of one version of ``key`` in ``src_bucket`` on this same node to ``key`` here,
        metadata included: nothing crosses the network."""
        if size < 5 * 2**30:  # one CopyObject, the metadata copied as it is
            source = "/" + urllib.parse.quote(f"{src_bucket}/{key}", safe="/~")
            if version_id:
                source += "?versionId=" + urllib.parse.quote(version_id, safe="")
            self._call(f"copying '{key}' into the share", self.s3._execute, "PUT", self.bucket, key,
                       headers={"x-amz-copy-source": source, "x-amz-metadata-directive": "COPY"})
            return
        from minio.commonconfig import CopySource

        o = self._call(f"reading '{key}'", self.s3.stat_object, src_bucket, key, version_id=version_id)
        meta = {k: v for k, v in o.metadata.items() if k.lower().startswith("x-amz-meta-")}
        self._call(f"copying '{key}' into the share", self.s3.copy_object, self.bucket, key,
                   CopySource(src_bucket, key, version_id=version_id), metadata=meta, metadata_directive="REPLACE")

    def drop_bucket(self) -> None:
        """Remove this client's bucket and everything in it (a share view that ended); no-op if it is gone."""
        from minio.deleteobjects import DeleteObject

        from sync_agent import minio_link

        try:
            if not self._call("checking the share's bucket", self.s3.bucket_exists, self.bucket):
                return
            doomed = (DeleteObject(o.object_name or "", o.version_id) for o in
                      self.s3.list_objects(self.bucket, recursive=True, include_version=True))
            for err in self.s3.remove_objects(self.bucket, doomed):
                log.warning("could not remove %s from %s on %s: %s", err.name, self.bucket, self.name, err.message)
            self._call("removing the share's bucket", self.s3.remove_bucket, self.bucket)
        except minio_link.FAILURES as e:
            raise minio_link.map_error(e, self.node, "removing the share's bucket") from e

    def _newest(self, key: str) -> RemoteObject | None:
        """The newest entry at ``key`` (a delete marker included), or None."""
        return next((o for o in self.list(key, versions=True) if o.key == key), None)

    def list(self, prefix: str = "", *, versions: bool = False, recursive: bool = True,
             start_after: str | None = None) -> Iterator[RemoteObject]:
        """Objects under ``prefix`` with our metadata (MinIO returns it in listings), in key order;
        ``start_after`` resumes a listing after that key (a cursor: only what is newer is sent)."""
        self.requests += 1
        # the query minio-py's list_objects sends (an empty delimiter and max-keys are what bucket policies
        # are evaluated against); the pages are read by listing_xml, not minio-py's parser (see there)
        query = {"versions": ""} if versions else {"list-type": "2"}
        query |= {"metadata": "true", "delimiter": "" if recursive else "/", "max-keys": str(LIST_PAGE),
                  "prefix": prefix}
        if start_after:
            query["key-marker" if versions else "start-after"] = start_after
        s3 = self.s3
        from sync_agent import minio_link

        try:
            while True:
                r = s3._execute("GET", self.bucket, query_params=query)  # type: ignore[arg-type]
                page = listing_xml.parse(r.data, _meta_from_headers)
                yield from page.objects
                if not page.truncated or page.next_key is None:
                    return
                if versions:
                    query["key-marker"] = page.next_key
                    if page.next_version:
                        query["version-id-marker"] = page.next_version
                    else:
                        query.pop("version-id-marker", None)
                else:
                    query["continuation-token"] = page.next_key
        except minio_link.PAGE_FAILURES as e:
            raise minio_link.map_error(e, self.node, f"listing '{prefix or '/'}'") from e

    def list_keys(self, prefix: str, *, start_after: str | None = None, quick: bool = False) -> builtins.list[str]:
        """The keys under ``prefix`` after ``start_after``, in order, without metadata (see
        ``SmallObjects.keys``); through minio-py where the fast path is not used. ``quick``: as for
        ``put_if``."""
        small = self.small
        if small is None:
            with self._http.limit(self.timeouts.quick_read) if quick else contextlib.nullcontext():
                return [o.key for o in self.list(prefix, start_after=start_after)]
        self.requests += 1
        return small.keys(prefix, start_after, f"listing '{prefix}'", quick=quick)

    def failure(self, exc: BaseException, what: str = "") -> NodeError:
        """A failure met while reading a response this client gave (``map_error`` for this node)."""
        from sync_agent import minio_link

        return minio_link.map_error(exc, self.node, what)

    def close(self) -> None:
        if self._link is not None:
            self._link[0].clear()
