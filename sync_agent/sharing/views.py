"""Share views: what a read-only share without history reads.

MinIO cannot keep a folder's past (earlier versions, files deleted before the share, files since moved
out) from a key that may read the folder in a versioned bucket (see ``policy.folder_policy``). So such a
share never reads the owner's bucket: its key reads a bucket of its own on each node, the share's *view*.
The view is unversioned and holds exactly one object per file now in the folder, on the nodes that hold
the owner's current copy of it (a server-side copy within each node: nothing crosses the network). What
the view never held, the recipient can never read, with PoolDrive or any other S3 tool.

The cost is room: the folder's current files are stored once more on the nodes. The owner's PoolDrive keeps
the view in step: when the share is made, then whenever its catalog changes (``ViewKeeper``, run by the
owner's agent) and every few minutes. The recipient sees a change once the owner's agent has seen it.

``plan`` is the rule, as a pure function; ``update`` reads the nodes and carries it out.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sync_agent import credentials, metadata
from sync_agent.catalog.models import ReplicaState
from sync_agent.errors import NodeError, PoolDriveError

if TYPE_CHECKING:
    from sync_agent.node_client import NodeClient
    from sync_agent.pool import Pool

log = logging.getLogger(__name__)

BUCKET_PREFIX = "pdshare-"
FULL_CHECK = 600.0  # seconds between complete looks at every view, changed catalog or not

Ident = tuple[str, int, str]  # file id, version number, SHA-256: which version of which file an object is


def bucket_for(share_id: str) -> str:
    """The view bucket of a share (share ids are 8 hex digits: a valid bucket name)."""
    return BUCKET_PREFIX + share_id


@dataclass(frozen=True)
class Source:
    """The owner's current copy of a file on one node: what the view there must hold."""

    key: str
    version_id: str | None
    size: int
    ident: Ident


@dataclass(frozen=True)
class Step:
    node: str
    key: str
    source: Source | None  # None: remove the key from the view


_ABSENT = object()


def plan(want: dict[str, dict[str, Source]], have: dict[str, dict[str, Ident | None]]) -> list[Step]:
    """The rule. ``want``: per node, the files of the folder whose current copy the node holds (from the
    owner's catalog). ``have``: per node that could be read, what its view holds (None where an object's
    metadata does not parse). On every node read, the view gets each wanted file it lacks or holds in
    another version, and loses every key not wanted there: a file deleted, moved out, or now kept on other
    nodes. Nodes not read are left alone."""
    steps: list[Step] = []
    for node, held in have.items():
        wanted = want.get(node, {})
        steps += [Step(node, key, src) for key, src in sorted(wanted.items())
                  if held.get(key, _ABSENT) != src.ident]
        steps += [Step(node, key, None) for key in sorted(held.keys() - wanted.keys())]
    return steps


def wanted(pool: Pool, folder: str) -> dict[str, dict[str, Source]]:
    """Per node, the current copies of the folder's files it holds, from the owner's catalog."""
    out: dict[str, dict[str, Source]] = {}
    prefix = folder.strip("/") + "/"
    for f in pool.catalog.walk(prefix):
        v = f.current
        if v is None or not v.key.startswith(prefix):
            continue
        for r in v.replicas:
            if r.state == ReplicaState.OK and r.node in pool.clients:
                out.setdefault(r.node, {})[v.key] = Source(v.key, r.version_id, v.size, (f.id, v.number, v.sha256))
    return out


@dataclass
class ViewReport:
    share_id: str
    copied: int = 0
    removed: int = 0
    skipped_nodes: list[str] = field(default_factory=list)  # down or unreadable: brought in step later
    errors: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.skipped_nodes and not self.errors


def _client(pool: Pool, node: str, bucket: str) -> NodeClient:
    from sync_agent.node_client import NodeClient

    return NodeClient(pool.cfg.node(node), credentials.credentials_for(pool.cfg, node), bucket, pool.timeouts)


def _ident(meta: dict[str, str]) -> Ident | None:
    try:
        m = metadata.parse(meta)
    except metadata.BadMetadata:
        return None
    return (m.file_id, m.version, m.sha256)


def create(pool: Pool, share_id: str) -> str:
    """Make the share's view bucket on every node (all must answer); returns its name."""
    bucket = bucket_for(share_id)
    for node in pool.clients:
        client = _client(pool, node, bucket)
        try:
            client.create_unversioned_bucket()
        finally:
            client.close()
    return bucket


def update(pool: Pool, share_id: str, bucket: str, folder: str, *, parallel: int = 8,
           progress: Callable[[int, int], None] | None = None) -> ViewReport:
    """Bring the view in step with the owner's catalog on every reachable node."""
    report = ViewReport(share_id)
    want = wanted(pool, folder)
    prefix = folder.strip("/") + "/"
    clients = {n: _client(pool, n, bucket) for n in pool.clients if not pool.health.is_down(n)}
    report.skipped_nodes = sorted(set(pool.clients) - set(clients))
    have: dict[str, dict[str, Ident | None]] = {}

    def read(node: str) -> None:
        client = clients[node]
        try:
            client.create_unversioned_bucket()  # a node that was down when the share was made
            have[node] = {o.key: _ident(o.meta) for o in client.list(prefix)}
        except NodeError as e:
            report.skipped_nodes.append(node)
            log.info("share %s: the view on %s is not read now: %s", share_id, node, e.message)

    def carry_out(step: Step) -> None:
        client = clients[step.node]
        try:
            if step.source is None:
                client.delete(step.key)
            else:
                client.copy_from(pool.cfg.bucket, step.source.key, step.source.version_id, step.source.size)
        except NodeError as e:
            report.errors.append(f"{step.key} on {step.node}: {e.message}")

    try:
        with ThreadPoolExecutor(max(1, min(parallel, len(clients) or 1))) as ex:
            list(ex.map(read, list(clients)))
        steps = plan(want, have)
        done = 0
        with ThreadPoolExecutor(parallel) as ex:
            for _ in ex.map(carry_out, steps):
                done += 1
                if progress is not None:
                    progress(done, len(steps))
        report.copied = sum(1 for s in steps if s.source is not None)
        report.removed = len(steps) - report.copied
    finally:
        for c in clients.values():
            c.close()
    report.skipped_nodes.sort()
    return report


def drop(pool: Pool, bucket: str) -> list[str]:
    """Remove a view from every reachable node; returns the nodes where it may still be."""
    left = []
    for node in pool.clients:
        if pool.health.is_down(node):
            left.append(node)
            continue
        client = _client(pool, node, bucket)
        try:
            client.drop_bucket()
        except NodeError as e:
            log.info("the share view %s stays on %s for now: %s", bucket, node, e.message)
            left.append(node)
        finally:
            client.close()
    return left


def keep(pool: Pool) -> list[ViewReport]:
    """Every view of this pool's shares in step; the views of revoked or expired shares removed."""
    if pool.cfg.is_share:
        return []
    m = pool.catalog.m
    reports = []
    now = time.time()
    for row in m.Share.select().where(m.Share.view != ""):
        ended = row.revoked or (row.expires_at and row.expires_at < now)
        if ended:
            if not drop(pool, row.view):
                row.view = ""
                row.save()
                log.info("share %s ended: its view is removed from every node", row.id)
            continue
        report = update(pool, row.id, row.view, row.folder)
        if report.copied or report.removed or report.errors:
            log.info("share %s (%s): view in step, %d copied, %d removed%s", row.id, row.folder, report.copied,
                     report.removed, f", {len(report.errors)} errors" if report.errors else "")
        reports.append(report)
    return reports


class ViewKeeper:
    """The owner's agent keeps its shares' views in step: within ``poll`` seconds of a change to its catalog
    (one cheap local check), after a node comes back, and every ``FULL_CHECK`` seconds regardless."""

    def __init__(self, pool: Pool, *, poll: float = 2.0) -> None:
        self.pool, self.poll = pool, poll
        self.last: list[ViewReport] = []
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._unsubscribe = pool.health.subscribe(lambda ev: self._wake.set())

    def _has_views(self) -> bool:
        m = self.pool.catalog.m
        return bool(m.Share.select().where(m.Share.view != "").exists())

    def _loop(self) -> None:
        seen, full_at, behind = None, 0.0, False
        while not self._stop.is_set():
            try:
                version = self.pool.catalog.data_version()
                due = version != seen or behind or time.monotonic() >= full_at or self._wake.is_set()
                self._wake.clear()
                if due and self._has_views():
                    self.last = keep(self.pool)
                    behind = not all(r.complete for r in self.last)
                    full_at = time.monotonic() + FULL_CHECK
                seen = version
            except PoolDriveError as e:
                behind = True
                log.warning("share views not brought in step now: %s", e.message)
            except Exception:  # never the end of the agent's other work
                behind = True
                log.exception("share views not brought in step now (unexpected); trying again")
            self._wake.wait(self.poll if not behind else max(self.poll, 15.0))

    def start(self) -> ViewKeeper:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="pooldrive-share-views", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._unsubscribe()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
