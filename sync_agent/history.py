"""Forgetting history for good: versions replaced, and files deleted, before a given time.

Every edit keeps the version it replaced and every delete keeps the file's history (restorable from the
window, ``versions`` and ``restore``), so a pool only ever grows, and a deleted file's name stays taken for
a folder (``name_clash``). ``purge`` ends that where the user says: everything stored at a path (or under a
folder, or anywhere) that is not a live file's current version, and that stopped being current before a
cutoff: a version when the next one was written, a deleted file's last version when it was deleted.

What goes is decided on the catalog just brought in line with the nodes (another device may have restored
the file a minute ago), and only copies named by their S3 version id are deleted: never a delete without
one, which on a versioned bucket would add a delete marker instead of removing anything. Once a key holds
nothing but delete markers on a node, the markers go too, and the name is free again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sync_agent import keys, rebuild
from sync_agent.catalog.store import FileInfo, VersionInfo
from sync_agent.errors import NodeError, NotFoundError, RefusedError

if TYPE_CHECKING:
    from sync_agent.pool_view import PoolView

log = logging.getLogger(__name__)
DAY = 86400.0


@dataclass(frozen=True)
class Doomed:
    """One version to forget, with where its copies are (node, S3 version id)."""

    file_id: str
    path: str  # the file's path (where it lives, or lived when deleted)
    number: int
    key: str  # where this version's bytes are stored
    size: int
    copies: tuple[tuple[str, str | None], ...]
    deleted: bool  # of a deleted file


def plan(histories: Iterable[tuple[FileInfo, float, list[VersionInfo]]], scope: str, cutoff: float) -> list[Doomed]:
    """The versions stored at ``scope`` (a key, or a folder's keys; '' for all) that stopped being current
    at or before ``cutoff`` (a time). A live file's current version always stays; a deleted file's last
    version goes once the delete is older than the cutoff; any other version once the next one is."""
    out = []
    for f, changed_at, versions in histories:
        written = {v.number: v.created_at for v in versions}
        later = sorted(written)
        for v in versions:
            if not _in_scope(v.key, scope):
                continue
            if v.number >= f.version:  # the current version (or one beyond it, being written)
                if not (f.deleted and changed_at <= cutoff):
                    continue
            else:  # replaced when the next version was written (not known here: when the file last changed)
                nxt = next((n for n in later if n > v.number), None)
                replaced = written[nxt] if nxt is not None else changed_at
                if replaced > cutoff and not (f.deleted and changed_at <= cutoff):
                    continue
            out.append(Doomed(f.id, f.path, v.number, v.key, v.size,
                              tuple((r.node, r.version_id) for r in v.replicas), f.deleted))
    return out


def _in_scope(key: str, scope: str) -> bool:
    return not scope or key == scope or key.startswith(scope + "/")


@dataclass
class PurgeReport:
    versions: int = 0  # versions forgotten (all their copies deleted)
    files: int = 0  # deleted files forgotten whole
    bytes: int = 0  # stored bytes freed (every copy counted)
    markers: int = 0  # delete markers removed (names freed)
    left: list[str] = field(default_factory=list)  # copies that could not be deleted, and why
    paths: list[str] = field(default_factory=list)  # the files touched, for the journal and the report


def purge(pool: PoolView, scope: str = "", *, older_than_days: float = 0.0, dry_run: bool = False,
          now: float, progress: Callable[[int, int], None] | None = None) -> tuple[list[Doomed], PurgeReport]:
    """Forget for good what ``plan`` picks under ``scope`` for a cutoff ``older_than_days`` before ``now``.
    Returns what was picked and what was done (nothing with ``dry_run``)."""
    scope = keys.normalize(scope) if scope else ""
    if pool.cfg.is_share:
        raise RefusedError(f"'{pool.cfg.prefix}' is shared with you: its history is kept by its owner"
                           f"{' (' + pool.cfg.shared_by + ')' if pool.cfg.shared_by else ''}, who alone can purge it.")
    failed: dict[str, str] = {}
    if scope:  # what the nodes hold now, at the key and under it (another device may have restored it)
        rebuild.refresh_paths(pool, [scope], [scope + "/"], failed=failed)
    else:
        rebuild.refresh(pool, failed=failed)
    if failed:
        raise RefusedError("Nothing was purged: " + "; ".join(f"{n} cannot be read ({why})" for n, why in
                           failed.items()) + ". Copies there would be left behind and come back as history; "
                           "purge once every node answers.")
    doomed = plan(pool.catalog.histories(scope), scope, now - older_than_days * DAY)
    if scope and not doomed and next(iter(pool.catalog.histories(scope)), None) is None:
        raise NotFoundError(f"'{scope}' has no history in the pool.", paths=[scope])
    report = PurgeReport(paths=sorted({d.path for d in doomed}))
    if dry_run or not doomed:
        report.versions = len(doomed)
        report.files = len({d.file_id for d in doomed if d.deleted})
        report.bytes = sum(d.size * len(d.copies) for d in doomed)
        return doomed, report
    pool.journal.expect(report.paths + sorted({d.key for d in doomed}))
    done = 0
    with ThreadPoolExecutor(8, thread_name_prefix="pooldrive-purge") as ex:
        for d, left in zip(doomed, ex.map(lambda d: _delete_copies(pool, d), doomed), strict=True):
            done += 1
            if progress is not None:
                progress(done, len(doomed))
            report.bytes += d.size * (len(d.copies) - len(left))
            if left:
                report.left.extend(left)
                continue
            report.versions += 1
            if pool.catalog.forget_version(d.file_id, d.number):
                report.files += 1
    touched = {d.key for d in doomed}
    emptied = sorted(touched - {v.key for v in pool.catalog.stored_at(touched)})  # nothing of anyone's left there
    report.markers = sum(_clear_markers(pool, key) for key in emptied)
    pool.journal.record(report.paths + emptied)
    log.info("purged %d version(s) of %d file(s) under '%s' (%d bytes freed, %d copies left)", report.versions,
             len(report.paths), scope or "/", report.bytes, len(report.left))
    return doomed, report


def _delete_copies(pool: PoolView, d: Doomed) -> list[str]:
    """Delete each copy of a version by its S3 version id; returns what was left, and why."""
    left = []
    for node, version_id in d.copies:
        if version_id is None:  # a delete without an id adds a marker: never
            left.append(f"{d.key} v{d.number} on {node}: no version id known for that copy")
            continue
        if node not in pool.clients:
            left.append(f"{d.key} v{d.number} on {node}: the node is not in the pool any more")
            continue
        try:
            pool.client(node).delete(d.key, version_id)
        except NodeError as e:
            pool.note_failure(node, e)
            left.append(f"{d.key} v{d.number} on {node}: {e.message}")
    return left


def _clear_markers(pool: PoolView, key: str) -> int:
    """Remove the delete markers at ``key`` on nodes where nothing else is stored there any more (a marker
    alone still holds the name: it hides a folder of that name from listings). Returns how many went."""
    gone = 0
    for node in pool.clients:
        client = pool.client(node)
        try:
            entries = [o for o in client.list(key, versions=True) if o.key == key]
            if entries and all(o.is_delete_marker for o in entries):
                for o in entries:
                    if o.version_id:
                        client.delete(key, o.version_id)
                        gone += 1
        except NodeError as e:
            log.info("delete markers at '%s' on %s left (%s)", key, node, e.message)
    return gone
