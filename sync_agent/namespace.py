"""Moving, deleting and restoring files: server-side copies and delete markers, never a byte lost.

A move copies the current version to the new key on the nodes that hold it (server-side, no download),
then puts a delete marker on the old key. A delete only adds delete markers, so every version stays
restorable. A restore copies an old version forward as the newest one.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sync_agent import keys, metadata
from sync_agent.catalog.store import FileInfo, VersionInfo
from sync_agent.errors import AlreadyExistsError, NodeError, NotFoundError, QuorumError, UsageError
from sync_agent.name_clash import refuse_clash

if TYPE_CHECKING:
    from sync_agent.pool_view import PoolView

log = logging.getLogger(__name__)


def _server_copy(pool: PoolView, info: FileInfo, v: VersionInfo, dst: str, number: int
                 ) -> dict[str, str | None]:
    """Copy version ``v`` of ``info`` to key ``dst`` as version ``number`` on every node that holds it."""
    meta = metadata.object_meta(info.id, number, v.sha256, v.size, v.mtime)
    written: dict[str, str | None] = {}
    errors: list[str] = []
    for node in v.ok_nodes():
        if pool.health.is_down(node):
            errors.append(f"{node}: down")
            continue
        try:
            written[node] = pool.client(node).copy(v.key, dst, meta, src_version=v.replicas_version(node))
        except NodeError as e:
            pool.note_failure(node, e)
            errors.append(f"{node}: {e.message}")
    # a move or restore re-labels data the pool already holds: with some holders down, one copy is enough
    # now (the old key's versions stay on every node) and repair brings the new key back to R copies
    reachable = [n for n in v.ok_nodes() if not pool.health.is_down(n)]
    quorum = min(pool.cfg.quorum, len(reachable))
    if len(written) < max(1, quorum):
        for node, vid in written.items():
            try:
                pool.client(node).delete(dst, vid)
            except NodeError as e:
                log.info("could not undo a partial move to '%s' on %s: %s", dst, node, e.message)
        raise QuorumError(f"Could not copy '{info.path}' to '{dst}' on enough nodes: {'; '.join(errors)}",
                          paths=[info.path, dst])
    return written


def _delete_markers(pool: PoolView, key: str, nodes: list[str]) -> list[str]:
    """Put a delete marker on ``key`` on each node; returns the nodes that failed."""
    failed = []
    for node in nodes:
        try:
            pool.client(node).delete(key)
        except NodeError as e:
            pool.note_failure(node, e)
            failed.append(node)
    return failed


def _remember_pending_delete(pool: PoolView, info: FileInfo, key: str, nodes: list[str]) -> None:
    if nodes:
        pool.catalog.add_intent("delete", key, info.id, info.version, nodes=nodes, owner=0)


def retry_pending_deletes(pool: PoolView) -> int:
    """Apply delete markers that could not be placed because a node was down; returns how many remain."""
    remaining = 0
    for intent in pool.catalog.intents("delete"):
        live = pool.catalog.get(intent.path)
        if live is not None and live.id == intent.file_id:
            pool.catalog.remove_intent(intent.id)  # the file came back since: nothing to delete
            continue
        nodes = [n for n in intent.nodes() if n in pool.clients]
        failed = _delete_markers(pool, intent.path, nodes)
        if failed:
            pool.catalog.update_intent(intent.id, nodes=failed)
            remaining += 1
        else:
            pool.catalog.remove_intent(intent.id)
    return remaining


def _move_file(pool: PoolView, info: FileInfo, dst: str) -> None:
    assert info.current is not None
    pool.journal.expect([info.path, dst])
    _, number = pool.catalog.file_id_for(info.path)
    written = _server_copy(pool, info, info.current, dst, number)
    pool.catalog.commit_version(file_id=info.id, path=dst, number=number, key=dst, size=info.size,
                                sha256=info.sha256, mtime=info.mtime, replicas=written.items())
    failed = _delete_markers(pool, info.path, info.current.ok_nodes())
    _remember_pending_delete(pool, info, info.path, failed)


def move(pool: PoolView, src: str, dst: str, *, overwrite: bool = False) -> list[str]:
    """Move a file or a folder; returns the new paths of the files moved."""
    src_key = keys.normalize(src)
    dst_key = keys.normalize(dst)
    pool.check_writable(src_key)
    pool.check_writable(dst_key)
    if src_key == dst_key:
        return []
    info = pool.catalog.get(src_key)
    if info is not None:
        if pool.catalog.is_dir(dst_key):
            dst_key = keys.join(dst_key, keys.basename(src_key))
        if pool.catalog.get(dst_key) is not None and not overwrite:
            raise AlreadyExistsError(f"'{dst_key}' already exists; delete it first or choose another name.",
                                     paths=[dst_key])
        refuse_clash(pool.catalog, dst_key)
        _move_file(pool, info, dst_key)
        pool.journal.record([src_key, dst_key])
        return [dst_key]
    if not pool.catalog.is_dir(src_key):
        raise NotFoundError(f"'{src_key}' is not in the pool.", paths=[src_key])
    if keys.is_under(dst_key, src_key):
        raise UsageError(f"Cannot move '{src_key}' into itself.", paths=[src_key, dst_key])
    if pool.catalog.is_dir(dst_key):
        dst_key = keys.join(dst_key, keys.basename(src_key))
    plan = [(f, dst_key + f.path[len(src_key):]) for f in pool.catalog.walk(src_key + "/")]
    taken = [target for _, target in plan if pool.catalog.get(target) is not None]
    if taken and not overwrite:  # looked at before anything moves: a folder is never left split in two
        raise AlreadyExistsError(f"'{taken[0]}' already exists ({len(taken)} of the {len(plan)} files would land on "
                                 "files there); nothing was moved. Move it elsewhere or rename it.", paths=taken[:20])
    for _, target in plan:
        refuse_clash(pool.catalog, target)
    moved = []
    for f, target in plan:
        _move_file(pool, f, target)
        moved.append(target)
    pool.journal.record(folders=[src_key + "/", dst_key + "/"])
    return moved


def delete(pool: PoolView, remote: str, *, recursive: bool = False) -> list[str]:
    """Delete a file (or, with ``recursive``, a folder); versions stay restorable. Returns what went."""
    key = keys.normalize(remote)
    pool.check_writable(key)
    info = pool.catalog.get(key)
    if info is not None:
        targets = [info]
    elif pool.catalog.is_dir(key):
        if not recursive:
            raise UsageError(f"'{key}' is a folder; delete it with --recursive.", paths=[key])
        targets = list(pool.catalog.walk(key + "/"))
    else:
        raise NotFoundError(f"'{key}' is not in the pool.", paths=[key])
    gone = []
    pool.journal.expect(f.path for f in targets)
    for f in targets:
        nodes = f.replicas
        failed = _delete_markers(pool, f.path, nodes)
        if nodes and len(failed) == len(nodes):
            raise QuorumError(f"Could not delete '{f.path}': none of its nodes ({', '.join(nodes)}) answered.",
                              paths=[f.path])
        pool.catalog.mark_deleted(f.path)
        _remember_pending_delete(pool, f, f.path, failed)
        gone.append(f.path)
    pool.journal.record(gone)
    return gone


def restore(pool: PoolView, remote: str, number: int) -> FileInfo:
    """Make version ``number`` the current one again (also brings a deleted file back)."""
    key = keys.normalize(remote)
    pool.check_writable(key)
    info = pool.catalog.get(key, include_deleted=True)
    if info is None:
        raise NotFoundError(f"'{key}' has no history in the pool.", paths=[key])
    live = pool.catalog.get(key)
    if live is not None and live.id != info.id:
        raise AlreadyExistsError(f"Another file now lives at '{key}'; move it away first.", paths=[key])
    v = pool.catalog.version(key, number)
    if info.version == number and not info.deleted:
        return info
    refuse_clash(pool.catalog, key)
    _, new_number = pool.catalog.file_id_for(key)
    written = _server_copy(pool, info, v, key, new_number)
    pool.catalog.commit_version(file_id=info.id, path=key, number=new_number, key=key, size=v.size,
                                sha256=v.sha256, mtime=v.mtime, replicas=written.items())
    for i in pool.catalog.intents("delete"):
        if i.path == key:
            pool.catalog.remove_intent(i.id)
    pool.journal.record([key])
    result = pool.catalog.get(key)
    assert result is not None
    return result
