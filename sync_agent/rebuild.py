"""The catalog from the nodes alone: full rebuild and incremental refresh.

Truth on the nodes: for each key, the newest entry across all nodes wins: an object version (carrying our
metadata: file id, version number, SHA-256, size, mtime) makes the key live, a delete marker makes it empty.
Versions of one file are tied together by its file id, so history survives moves. Objects written by other
S3 tools (no metadata) are adopted: hashed once and given our metadata by a server-side copy.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sync_agent import keys
from sync_agent.errors import InvalidPathError, NodeError
from sync_agent.node_client import RemoteObject
from sync_agent.transfer import CHUNK
from sync_agent.writer import object_meta

if TYPE_CHECKING:
    from sync_agent.pool import Pool

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class VersionState:
    number: int
    key: str
    sha256: str
    size: int
    mtime: float
    created_at: float
    replicas: dict[str, str | None] = field(default_factory=dict)  # node -> S3 version id


@dataclass
class FileState:
    file_id: str
    path: str
    deleted: bool
    versions: dict[int, VersionState] = field(default_factory=dict)
    live_number: int = 0  # the version the newest entry at ``path`` holds (0: deleted)

    @property
    def current(self) -> VersionState:
        return self.versions[self.live_number or max(self.versions)]


@dataclass
class Scan:
    files: dict[str, FileState]
    scanned: list[str]  # nodes listed completely
    failed: dict[str, str]  # node -> why it could not be listed
    skipped: list[str] = field(default_factory=list)  # keys that are not valid pool paths


@dataclass(frozen=True)
class RemoteChange:
    path: str
    kind: str  # added | modified | deleted
    file_id: str
    version: int
    sha256: str


def _ts(o: RemoteObject) -> float:
    """When this entry was made: our ``written`` metadata (kept by repair copies), else the node's clock."""
    try:
        return float(o.meta["written"])
    except (KeyError, ValueError):
        return (o.last_modified or EPOCH).timestamp()


def _adopt(pool: Pool, node: str, o: RemoteObject) -> RemoteObject | None:
    """Give an object written by another S3 tool our metadata (server-side copy); None if it vanished."""
    client = pool.client(node)
    sha = hashlib.sha256()
    size = 0
    try:
        resp = client.get(o.key, o.version_id)
        try:
            while chunk := resp.read(CHUNK):
                sha.update(chunk)
                size += len(chunk)
        finally:
            resp.close()
            resp.release_conn()
        file_id = uuid.uuid5(uuid.NAMESPACE_URL, f"pooldrive:{o.key}:{o.version_id}").hex
        mtime = _ts(o)
        meta = object_meta(file_id, 1, sha.hexdigest(), size, mtime, written=mtime)
        vid = client.copy(o.key, o.key, meta, src_version=o.version_id)
        client.delete(o.key, o.version_id)  # the copy replaces it; keep one entry per version
        return client.stat(o.key, vid)
    except NodeError:
        return None


def scan(pool: Pool, prefix: str = "", *, adopt: bool = True,
         progress: Callable[[str, int], None] | None = None) -> Scan:
    """List every node (versions and delete markers, with metadata) and work out the truth."""
    listings: dict[str, list[RemoteObject]] = {}
    failed: dict[str, str] = {}
    adopt = adopt and not pool.cfg.is_share  # a share's keys may not rewrite the owner's objects

    def list_node(name: str) -> None:
        try:
            out = []
            for o in pool.client(name).list(prefix, versions=True):
                out.append(o)
                if progress is not None and len(out) % 1000 == 0:
                    progress(name, len(out))
            listings[name] = out
        except NodeError as e:
            failed[name] = e.message
            pool.note_failure(name, e)

    with ThreadPoolExecutor(max(1, len(pool.clients))) as ex:
        list(ex.map(list_node, [n for n in pool.clients if not pool.health.is_down(n)]))
    for n in pool.clients:
        if n not in listings and n not in failed:
            failed[n] = "down"

    newest: dict[str, tuple[float, str, RemoteObject]] = {}  # key -> newest entry anywhere
    entries: list[tuple[str, RemoteObject]] = []
    skipped: set[str] = set()
    for node, objs in listings.items():
        for o in objs:
            if o.key.startswith(keys.RESERVED_PREFIX + "/"):
                continue
            try:
                if keys.normalize(o.key) != o.key:
                    raise InvalidPathError("not normalized")
            except InvalidPathError:
                skipped.add(o.key)
                continue
            if not o.is_delete_marker and "file-id" not in o.meta:
                if not (adopt and o.is_latest):
                    continue
                adopted = _adopt(pool, node, o)
                if adopted is None:
                    continue
                o = adopted
            entries.append((node, o))
            best = newest.get(o.key)
            if best is None or _ts(o) > best[0]:
                newest[o.key] = (_ts(o), node, o)

    files: dict[str, FileState] = {}
    for node, o in entries:
        if o.is_delete_marker:
            continue
        fid = o.meta["file-id"]
        try:
            number = int(o.meta.get("version", "1"))
            size = int(o.meta.get("size", o.size))
            mtime = float(o.meta.get("mtime", _ts(o)))
        except ValueError:
            continue
        f = files.setdefault(fid, FileState(fid, o.key, True))
        v = f.versions.get(number)
        if v is None:
            v = f.versions[number] = VersionState(number, o.key, o.meta.get("sha256", ""), size, mtime, _ts(o))
        v.replicas[node] = o.version_id
        v.created_at = min(v.created_at, _ts(o))
    for key, (_, _, o) in newest.items():
        f = None if o.is_delete_marker else files.get(o.meta["file-id"])
        if f is None:
            continue
        number = int(o.meta.get("version", "1"))
        if number > f.live_number:  # after a half-failed move two keys may hold it: the newer wins
            f.deleted, f.path, f.live_number = False, key, number
    for f in files.values():
        if f.deleted:
            f.path = f.current.key
    return Scan(files, sorted(listings), failed, sorted(skipped))


def _apply_file(pool: Pool, f: FileState, scanned: list[str]) -> None:
    cat = pool.catalog
    current = f.current.number
    with cat.atomic():
        for n in sorted(f.versions, key=lambda n: (n == current, n)):  # the current one last
            v = f.versions[n]
            cat.commit_version(file_id=f.file_id, path=f.path, number=n, key=v.key, size=v.size,
                               sha256=v.sha256, mtime=v.mtime, replicas=v.replicas.items(),
                               created_at=v.created_at, current=n == current)
            cat.prune_replicas(f.file_id, n, keep=set(v.replicas), scanned=set(scanned))
        if f.deleted:
            cat.mark_deleted(f.path)


def rebuild(pool: Pool, *, progress: Callable[[str, int], None] | None = None) -> Scan:
    """Throw the catalog away and recreate it from the nodes. Refuses to run with nodes unreachable."""
    s = scan(pool, keys.normalize_dir(pool.cfg.prefix) if pool.cfg.prefix else "", progress=progress)
    if s.failed:
        from sync_agent.errors import RefusedError

        raise RefusedError("Cannot rebuild the catalog while nodes are unreachable ("
                           + "; ".join(f"{n}: {why}" for n, why in s.failed.items())
                           + "): files held only there would be forgotten. Bring them back first.")
    pool.catalog.clear()
    for f in s.files.values():
        _apply_file(pool, f, s.scanned)
    return s


def refresh(pool: Pool, prefix: str = "") -> list[RemoteChange]:
    """Bring this device's catalog in line with the nodes; returns what changed.

    Nodes that cannot be listed right now keep what the catalog says about them.
    """
    prefix = prefix or pool.cfg.prefix
    s = scan(pool, keys.normalize_dir(prefix) if prefix else "")
    cat = pool.catalog
    changes: list[RemoteChange] = []
    seen: set[str] = set()
    for f in s.files.values():
        seen.add(f.file_id)
        before = cat.get_by_id(f.file_id)
        cur = f.current
        if before is None:
            if not f.deleted:
                changes.append(RemoteChange(f.path, "added", f.file_id, cur.number, cur.sha256))
            _apply_file(pool, f, s.scanned)
            continue
        same_version = before.version == cur.number
        known = {r.node for r in before.current.replicas} if before.current and same_version else set()
        unscanned = {n for n in known if n not in s.scanned}
        changed = (not same_version or before.path != f.path or before.deleted != f.deleted
                   or set(cur.replicas) | unscanned != known)
        if not changed:
            continue
        if before.deleted != f.deleted and f.deleted:
            changes.append(RemoteChange(before.path, "deleted", f.file_id, cur.number, cur.sha256))
        elif before.path != f.path and not f.deleted:
            if not before.deleted:
                changes.append(RemoteChange(before.path, "deleted", f.file_id, before.version, before.sha256))
            changes.append(RemoteChange(f.path, "added", f.file_id, cur.number, cur.sha256))
        elif before.version != cur.number or before.deleted != f.deleted:
            kind = "added" if before.deleted else "modified"
            changes.append(RemoteChange(f.path, kind, f.file_id, cur.number, cur.sha256))
        _apply_file(pool, f, s.scanned)
    # files the catalog knows that no scanned node holds any more (and no unscanned node could)
    prefix_dir = keys.normalize_dir(prefix) if prefix else ""
    for info in list(cat.walk(prefix_dir)):
        if info.id in seen:
            continue
        if any(n in s.failed for n in info.replicas):
            continue
        cat.mark_deleted(info.path)
        changes.append(RemoteChange(info.path, "deleted", info.id, info.version, info.sha256))
    return changes
