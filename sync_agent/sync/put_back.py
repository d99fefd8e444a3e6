"""Repair from a device: when every copy of a file on the pool is lost or bad, a device that synced that very
version puts its own copy back.

Only a file this device last synced at the pool's current version (same SHA-256) qualifies, and its bytes
are checked against that SHA-256 while they are read (``replication.put_back_copy``): a local edit since the
last sync is never written as the old version. Nothing is put back over a delete or a newer version made
meanwhile (the nodes that held the file are asked first). The good copy goes on top of a node's damaged
one first; the damaged one is removed only after that.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from sync_agent import metadata
from sync_agent.catalog.models import ReplicaState
from sync_agent.catalog.store import ReplicaInfo, VersionInfo
from sync_agent.errors import ChangedMeanwhileError, PoolDriveError
from sync_agent.placement import write_order
from sync_agent.replication import newest_entry, put_back_copy
from sync_agent.sync.state import Synced

if TYPE_CHECKING:
    from sync_agent.pool import Pool

log = logging.getLogger(__name__)


def put_back(pool: Pool, lost: Iterable[str], local_of: Callable[[str], Path | None],
             synced: Callable[[str], Synced | None]) -> list[str]:
    """Put back the files in ``lost`` (pool paths) this device holds at the pool's current version;
    returns the paths put back. ``local_of``: where a path lives here (None: not in this folder)."""
    done: list[str] = []
    for key in lost:
        f = pool.catalog.get(key)
        path = local_of(key)
        state = synced(key)
        if f is None or f.current is None or path is None or state is None:
            continue
        v = f.current
        if state.sha256 != v.sha256 or state.size != v.size or not path.is_file():
            log.info("'%s' has no good copy on the pool, and this device's copy is not that version", key)
            continue
        if any(r.state == ReplicaState.OK and not pool.health.is_down(r.node) for r in v.replicas):
            continue  # a good copy is there now (repaired meanwhile): nothing to do
        try:  # the whole file first: nothing on a node is touched for a file edited since (same size or not)
            if _sha256(path) != v.sha256:
                log.info("'%s' was edited here since it was synced; not put back as the old version", key)
                continue
        except OSError as e:
            log.warning("could not read '%s' to put it back: %s", path, e)
            continue
        old = {r.node: r for r in v.replicas}
        if _changed_meanwhile(pool, f.id, v, old):
            continue
        want = pool.durability(key)
        made = 0
        for node in write_order(key, pool.specs(), want.copies, pool.writable_nodes()):
            if made >= want.copies:
                break
            bad = old.get(node)
            damaged = bad.version_id if bad is not None and bad.state != ReplicaState.OK else None
            try:
                vid = put_back_copy(pool, f.id, v, node, path, damaged=damaged, limiter=pool.up_limiter)
                made += 1
            except ChangedMeanwhileError as e:
                log.info("'%s' not put back: %s", key, e.message)
                break
            except PoolDriveError as e:
                log.warning("could not put '%s' back on %s from this device: %s", key, node, e.message)
                continue
            if damaged and damaged != vid:  # the damaged copy is below the good one now: removed only after it
                try:
                    pool.client(node).delete(key, damaged)
                except PoolDriveError as e:  # ObjectMissingError included: nothing left to remove
                    log.info("the damaged copy of '%s' on %s stays below the good one: %s", key, node, e.message)
        if made:
            log.warning("every copy of '%s' on the pool was lost or damaged; put this device's copy back on %d "
                        "node(s)", key, made)
            done.append(key)
    return done


def _changed_meanwhile(pool: Pool, file_id: str, v: VersionInfo, held: dict[str, ReplicaInfo]) -> bool:
    """Whether a node that held the file now shows it deleted or written again (this catalog has not heard
    yet): then it is not put back anywhere. A node that cannot be asked does not stop it."""
    for node in held:
        if pool.health.is_down(node) or node not in pool.clients:
            continue
        try:
            o = newest_entry(pool, node, v.key)
        except PoolDriveError:
            continue
        if o is None:
            continue
        m = None if o.is_delete_marker else metadata.try_parse(o.meta)
        if m is None or isinstance(m, str) or m.file_id != file_id or m.version > v.number:
            log.info("'%s' was deleted or written again on %s; not put back from this device", v.key, node)
            return True
    return False


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()
