"""Moving one copy between nodes, verified and crash-safe.

``copy_replica`` streams a version from a healthy copy into another node while computing its SHA-256 and
multipart MD5s; the new copy counts only when both match. ``trim_replica`` removes a copy. Both write an
intent first, so ``recover_replication_intents`` can finish or undo whatever a killed process left.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

import urllib3

from sync_agent import metadata
from sync_agent.catalog.models import ReplicaState
from sync_agent.catalog.store import VersionInfo
from sync_agent.errors import ChangedMeanwhileError, IntegrityError, NodeError, NoReplicaError, ObjectMissingError
from sync_agent.minio_link import map_error
from sync_agent.node_client import RemoteObject
from sync_agent.placement import read_order
from sync_agent.processes import pid_alive
from sync_agent.transfer import PART_SIZE, Digest, RateLimiter, etag_fits
from sync_agent.writer import undo_stray_versions

if TYPE_CHECKING:
    from sync_agent.pool import Pool

log = logging.getLogger(__name__)


class SourceError(NodeError):
    """The node we copy *from* failed (as opposed to the one we copy to)."""


class _Hashing:
    """A source for an upload that hashes (and paces) the bytes as they pass."""

    def __init__(self, limiter: RateLimiter | None) -> None:
        self.limiter = limiter
        self.sha = hashlib.sha256()
        self.size = 0

    def _passed(self, data: bytes) -> bytes:
        if self.limiter is not None and data:
            self.limiter.take(len(data))
        self.sha.update(data)
        self.size += len(data)
        return data


class HashingSource(_Hashing):
    """Reads a node's response for minio-py's upload (a repair's copy, a share view's copy)."""

    def __init__(self, resp: urllib3.BaseHTTPResponse, pool: Pool, node: str, limiter: RateLimiter | None) -> None:
        super().__init__(limiter)
        self.resp, self.pool, self.node = resp, pool, node

    def read(self, n: int = -1) -> bytes:
        try:
            data = self.resp.read(None if n < 0 else n)
        except (urllib3.exceptions.HTTPError, OSError) as e:
            err = map_error(e, self.pool.client(self.node).node, "reading a copy")
            raise SourceError(err.message, node=self.node) from e
        return self._passed(data)

    def close(self) -> None:
        self.resp.close()
        self.resp.release_conn()


def _owner_alive(payload: dict[str, object]) -> bool:
    owner = int(payload.get("owner", 0) or 0)  # type: ignore[call-overload]
    return bool(owner) and owner != os.getpid() and pid_alive(owner)


def copy_replica(pool: Pool, file_id: str, v: VersionInfo, dest: str, *, limiter: RateLimiter | None = None
                 ) -> str | None:
    """Put a verified copy of version ``v`` on ``dest``; returns its S3 version id."""
    cat = pool.catalog
    sources = read_order(pool.health.views([n for n in v.ok_nodes() if n != dest]))
    if not sources:
        raise NoReplicaError(f"No readable copy of '{v.key}' to copy from.", paths=[v.key])
    meta = metadata.object_meta(file_id, v.number, v.sha256, v.size, v.mtime, written=v.created_at)
    intent = cat.add_intent("replicate", v.key, file_id, v.number, nodes=[dest], owner=os.getpid())
    errors = []
    try:
        before = newest_entry(pool, dest, v.key)
        if before is not None and _is_copy_of(before, file_id, v):
            # already there (another device's repair made it; this catalog had not heard): a second copy of
            # the same version would waste the space and survive a later trim of the first
            cat.add_replica(file_id, v.number, dest, before.version_id)
            cat.remove_intent(intent)
            return before.version_id
        for src in sources:
            try:
                resp = pool.client(src).get(v.key, v.replicas_version(src))
            except NodeError as e:
                pool.note_failure(src, e)
                if isinstance(e, ObjectMissingError):
                    cat.set_replica_state(v.key, v.number, src, ReplicaState.MISSING)
                errors.append(f"{src}: {e.message}")
                continue
            reader = HashingSource(resp, pool, src, limiter)
            try:
                with pool.health.request(dest):
                    vid, etag = pool.client(dest).put(v.key, reader, v.size, meta, part_size=PART_SIZE)
            except SourceError as e:
                pool.note_failure(src, e)
                errors.append(f"{src}: {e.message}")
                continue
            finally:
                reader.close()
            if reader.sha.hexdigest() != v.sha256 or reader.size != v.size:
                pool.client(dest).delete(v.key, vid)
                cat.set_replica_state(v.key, v.number, src, ReplicaState.CORRUPT)
                errors.append(f"{src}: its copy does not match the checksum")
                continue
            if not etag_fits(etag, Digest(v.sha256, v.size).parts):
                pool.client(dest).delete(v.key, vid)
                raise IntegrityError(f"Node '{dest}' stored '{v.key}' with an unexpected ETag ({etag}); the copy "
                                     "was removed.", paths=[v.key])
            cat.add_replica(file_id, v.number, dest, vid)
            if before is not None and _stays_on_top(pool, before, file_id, v.number):
                _put_back(pool, dest, before, etag)
            cat.remove_intent(intent)
            return vid
        raise NoReplicaError(f"Could not copy '{v.key}' from any node: {'; '.join(errors)}", paths=[v.key])
    except BaseException:
        if any(i.id == intent for i in cat.intents("replicate")) and \
                undo_stray_versions(pool, v.key, file_id, v.number, [dest]):
            cat.remove_intent(intent)
        raise


class _HashingFile(_Hashing):
    """A local file read for an upload (it may change while it is read: the hash tells)."""

    def __init__(self, path: Path, limiter: RateLimiter | None) -> None:
        super().__init__(limiter)
        self.f = open(path, "rb")  # noqa: SIM115 - closed by the caller after the upload

    def read(self, n: int = -1) -> bytes:
        try:
            data = self.f.read(None if n < 0 else n)
        except OSError as e:
            raise SourceError(f"This device's copy could not be read: {e}") from e
        return self._passed(data)

    def close(self) -> None:
        self.f.close()


def put_back_copy(pool: Pool, file_id: str, v: VersionInfo, dest: str, local: Path, *, damaged: str | None = None,
                  limiter: RateLimiter | None = None) -> str | None:
    """Put this device's file back on ``dest`` as version ``v`` (every copy on the pool is lost or bad);
    returns the version id of the good copy now there.

    What ``dest`` holds decides, before anything is written: its damaged copy (version id ``damaged``),
    nothing, or an older version of the file take the copy on top; a good copy of ``v`` (another device put
    it back first) is recorded and kept; a delete marker, another file or a newer version means the file
    changed meanwhile, and nothing is written. The bytes are checked against ``v``'s SHA-256 as they are
    read, and a copy that does not match is removed at once. Only what this call wrote is ever removed."""
    before = newest_entry(pool, dest, v.key)
    if before is not None and before.version_id != damaged:
        if _is_copy_of(before, file_id, v):
            pool.catalog.add_replica(file_id, v.number, dest, before.version_id)
            return before.version_id
        m = None if before.is_delete_marker else metadata.try_parse(before.meta)
        if m is None or isinstance(m, str) or m.file_id != file_id or m.version >= v.number:
            raise ChangedMeanwhileError(f"'{v.key}' changed on {dest} meanwhile (deleted or written again); this "
                                        "device's copy of the old version was not put back there.", paths=[v.key])
    meta = metadata.object_meta(file_id, v.number, v.sha256, v.size, v.mtime, written=v.created_at)
    reader = _HashingFile(local, limiter)
    try:
        with pool.health.request(dest):
            vid, etag = pool.client(dest).put(v.key, reader, v.size, meta, part_size=PART_SIZE)
    finally:
        reader.close()
    if reader.sha.hexdigest() != v.sha256 or reader.size != v.size or not etag_fits(etag, Digest(v.sha256,
                                                                                               v.size).parts):
        pool.client(dest).delete(v.key, vid)
        raise IntegrityError(f"This device's copy of '{v.key}' changed while it was read; it was not put back.",
                             paths=[v.key])
    pool.catalog.add_replica(file_id, v.number, dest, vid)
    return vid


def newest_entry(pool: Pool, node: str, key: str) -> RemoteObject | None:
    """What ``node`` reports as newest at ``key`` (a delete marker included), before a copy goes on top."""
    for o in pool.client(node).list(key, versions=True):
        if o.key == key and o.is_latest:
            return o
    return None


def _is_copy_of(o: RemoteObject, file_id: str, v: VersionInfo) -> bool:
    if o.is_delete_marker or o.size != v.size:
        return False
    m = metadata.try_parse(o.meta)
    return not isinstance(m, str) and (m.file_id, m.version, m.sha256) == (file_id, v.number, v.sha256)


def _stays_on_top(pool: Pool, before: RemoteObject, file_id: str, number: int) -> bool:
    """Whether what a node reported as newest must stay newest after an older version was copied there.

    A copy is always the newest entry on its node, but a copy of an old version (a drain moves every
    version; a repair may act on a catalog a write just overtook) must not become that node's newest:
    readers asking the node would get the old content. Only a copy of the file's current version may
    sit above what was there, and never above a later version of the same file."""
    if before.is_delete_marker:  # a drain of a deleted file's history: the key stays deleted on this node,
        return pool.catalog.get(before.key) is None  # unless a file lives there now (a new marker would hide it)
    m = metadata.try_parse(before.meta)
    if not isinstance(m, str) and m.file_id == file_id:
        return m.version > number
    f = pool.catalog.get_by_id(file_id)
    return f is None or f.deleted or f.version != number


def _put_back(pool: Pool, node: str, before: RemoteObject, above: str) -> None:
    client = pool.client(node)
    try:
        if before.is_delete_marker:
            client.delete(before.key)
        else:
            client.copy_if(before.key, before.version_id, before.meta, if_match=above)
    except NodeError as e:  # the copy is made and verified; the next refresh brings the node in line
        log.info("could not put the newest entry of '%s' back on top on %s: %s", before.key, node, e.message)


def trim_replica(pool: Pool, file_id: str, v: VersionInfo, node: str) -> None:
    """Remove the copy of ``v`` on ``node`` (the catalog first, so no reader picks it meanwhile)."""
    vid = v.replicas_version(node)
    intent = pool.catalog.add_intent("trim", v.key, file_id, v.number, nodes=[node], s3_version=vid,
                                     owner=os.getpid())
    pool.catalog.remove_replica(file_id, v.number, node)
    try:
        pool.client(node).delete(v.key, vid)
    except ObjectMissingError:
        pass
    pool.catalog.remove_intent(intent)


def recover_replication_intents(pool: Pool) -> int:
    """Finish or undo copies and trims a killed process left half-done; returns how many remain."""
    remaining = 0
    for intent in pool.catalog.intents():
        if intent.kind not in ("replicate", "trim") or _owner_alive(intent.payload):
            continue
        nodes = [n for n in intent.nodes() if n in pool.clients]
        try:
            if intent.kind == "replicate":
                done = undo_stray_versions(pool, intent.path, intent.file_id, intent.version, nodes)
            else:
                pool.catalog.remove_replica(intent.file_id, intent.version, nodes[0])
                pool.client(nodes[0]).delete(intent.path, intent.payload.get("s3_version"))  # type: ignore[arg-type]
                done = True
        except ObjectMissingError:
            done = True
        except (NodeError, IndexError):
            done = False
        if done:
            pool.catalog.remove_intent(intent.id)
        else:
            remaining += 1
    return remaining
