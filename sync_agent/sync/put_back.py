"""Repair from a device: when every copy of a file on the pool is lost or bad, a device that synced that very
version puts its own copy back.

Only a file this device last synced at the pool's current version (same SHA-256) qualifies, and its bytes
are checked against that SHA-256 while they are read (``copy_replica(local=...)``): a local edit since the
last sync is never written as the old version. The good copy goes on top of a node's damaged one first;
the damaged one is removed only after that.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from sync_agent.catalog.models import ReplicaState
from sync_agent.errors import PoolDriveError
from sync_agent.placement import write_order
from sync_agent.replication import copy_replica
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
        want = pool.durability(key)
        old = {r.node: r for r in v.replicas}
        made = 0
        for node in write_order(key, pool.specs(), want.copies, pool.writable_nodes()):
            if made >= want.copies:
                break
            try:
                vid = copy_replica(pool, f.id, v, node, limiter=pool.up_limiter, local=path)
                made += 1
            except PoolDriveError as e:
                log.warning("could not put '%s' back on %s from this device: %s", key, node, e.message)
                continue
            bad = old.get(node)  # the damaged copy, below the good one now: removed only after it is there
            if bad is not None and bad.state != ReplicaState.OK and bad.version_id and bad.version_id != vid:
                try:
                    pool.client(node).delete(key, bad.version_id)
                except PoolDriveError as e:  # ObjectMissingError included: nothing left to remove
                    log.info("the damaged copy of '%s' on %s stays below the good one: %s", key, node, e.message)
        if made:
            log.warning("every copy of '%s' on the pool was lost or damaged; put this device's copy back on %d "
                        "node(s)", key, made)
            done.append(key)
    return done


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()
