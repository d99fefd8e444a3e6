"""Share views: what a read-only share without history reads.

MinIO cannot keep a folder's past (earlier versions, files deleted before the share, files since moved
out) from a key that may read the folder in a versioned bucket (see ``policy.folder_policy``). So such a
share never reads the owner's bucket: its key reads a bucket of its own on each node, the share's *view*.
The view is unversioned and holds exactly one object per file now in the folder, on the nodes that hold
the owner's current copy of it (a server-side copy within each node: nothing crosses the network). What
the view never held, the recipient can never read, with PoolDrive or any other S3 tool.

The cost is room: the folder's current files are stored once more on the nodes. The owner's PoolDrive keeps
the view in step (``ViewKeeper``, run by the owner's agent): within seconds of a change its catalog records
under the folder (the agent's own writes, and what its folder pairs read from the journal), or of one the
pool's journal names there (the owner's other devices: the keeper reads those paths itself when no pair
does), and every ``FULL_CHECK`` seconds after reading the folder from the nodes (what no journal named).

The rules, kept here in one place:
* the view is written only on the nodes where the share's key exists (``Share.nodes``), into a bucket made
  when the share was made: the keeper never creates one, so a share revoked meanwhile stays removed;
* copies come first; a key leaves a node's view only once nothing can be lost by it: its file was deleted or
  moved out (and the catalog has read the whole folder, so an absence means one), or its current version
  is now held in the view on the nodes holding the owner's copies;
* a file with no good copy left (every copy corrupt or missing) keeps what the view holds of it.

``plan`` is that rule as a pure function; ``update`` reads the nodes and carries it out.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sync_agent import credentials, metadata
from sync_agent.catalog.models import ReplicaState
from sync_agent.errors import IntegrityError, NodeError, PoolDriveError
from sync_agent.journal import Changes
from sync_agent.placement import rank_nodes, read_order

if TYPE_CHECKING:
    from sync_agent.node_client import NodeClient
    from sync_agent.pool import Pool

log = logging.getLogger(__name__)

BUCKET_PREFIX = "pdshare-"
FULL_CHECK = 300.0  # seconds between looks at the shared folders on the nodes (other devices' changes)
IDLE_POLL = 10.0  # seconds between looks for a share while there is none (a new share is filled when made)
COPY_TIMEOUT = 900.0  # seconds a node may take to answer a server-side copy (it answers when done)

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
    # the node holding the owner's copy when it is not the view's own node: no node of the share holds one
    # (copies moved to nodes added after the share was made); then the bytes go through this device
    holder: str = ""
    mtime: float = 0.0
    written: float = 0.0


@dataclass(frozen=True)
class Step:
    node: str
    key: str
    source: Source | None  # None: remove the key from the view


_ABSENT = object()


def plan(want: dict[str, dict[str, Source]], have: dict[str, dict[str, Ident | None]], live: set[str],
         complete: bool) -> tuple[list[Step], list[Step]]:
    """The rule (see the module's docstring): (copies, removals), the removals to be made only for keys
    whose copies all succeeded. ``want``: per node, the folder's files whose current copy the node holds
    (from the owner's catalog). ``have``: per node read, what its view holds (None where an object's metadata
    does not parse). ``live``: every file of the folder now, good copy or not. ``complete``: the catalog has
    read the whole folder, so a key it does not know was deleted or moved out. Nodes not read are left
    alone."""
    wanted_somewhere = {key for held in want.values() for key in held}
    copies: list[Step] = []
    removals: list[Step] = []
    for node, held in sorted(have.items()):
        wanted = want.get(node, {})
        copies += [Step(node, key, src) for key, src in sorted(wanted.items()) if held.get(key, _ABSENT) != src.ident]
        for key in sorted(held.keys() - wanted.keys()):
            if key in wanted_somewhere or (key not in live and complete):
                removals.append(Step(node, key, None))
    return copies, removals


def wanted(pool: Pool, folder: str, nodes: set[str]) -> tuple[dict[str, dict[str, Source]], set[str]]:
    """Per node (of ``nodes``), the current copies of the folder's files it holds, from the owner's catalog;
    and every live file of the folder."""
    out: dict[str, dict[str, Source]] = {}
    live: set[str] = set()
    prefix = folder.strip("/") + "/"
    specs = [s for s in pool.specs() if s.name in nodes]
    for f in pool.catalog.walk(prefix):
        live.add(f.path)
        v = f.current
        if v is None or v.key != f.path:
            continue
        ok = [r for r in v.replicas if r.state == ReplicaState.OK]
        ident = (f.id, v.number, v.sha256)
        for r in ok:
            if r.node in nodes:
                out.setdefault(r.node, {})[v.key] = Source(v.key, r.version_id, v.size, ident)
        if ok and specs and not any(r.node in nodes for r in ok):  # held only by nodes the share lacks
            target = rank_nodes(v.key, specs, 1)[0]
            holder = (read_order(pool.health.views([r.node for r in ok]), v.size) or [ok[0].node])[0]
            out.setdefault(target, {})[v.key] = Source(v.key, v.replicas_version(holder), v.size, ident,
                                                       holder=holder, mtime=v.mtime, written=v.created_at)
    return out, live


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


class Clients:
    """The owner's clients for view buckets, kept between rounds (credentials are read once). Their read
    timeout is long: a node answers a server-side copy only once it is done, minutes for a large file."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self._made: dict[tuple[str, str], NodeClient] = {}
        self._lock = threading.Lock()

    def get(self, node: str, bucket: str) -> NodeClient:
        from sync_agent.node_client import NodeClient

        with self._lock:
            if (node, bucket) not in self._made:
                timeouts = dataclasses.replace(self.pool.timeouts, read=max(self.pool.timeouts.read, COPY_TIMEOUT))
                self._made[node, bucket] = NodeClient(self.pool.cfg.node(node),
                                                      credentials.credentials_for(self.pool.cfg, node), bucket,
                                                      timeouts)
            return self._made[node, bucket]

    def close(self) -> None:
        with self._lock:
            for c in self._made.values():
                c.close()
            self._made.clear()


def _ident(meta: dict[str, str]) -> Ident | None:
    try:
        m = metadata.parse(meta)
    except metadata.BadMetadata:
        return None
    return (m.file_id, m.version, m.sha256)


def create(pool: Pool, share_id: str, clients: Clients, made: list[str]) -> str:
    """Make the share's view bucket on every node (all must answer); returns its name, and adds each node
    where this call made it to ``made`` (what an undo may remove). A bucket of that name that is already
    there, or one the server versions, is refused: the view must hold no past."""
    bucket = bucket_for(share_id)
    for node in pool.clients:
        client = clients.get(node, bucket)
        client.create_bucket()  # refused when the name is taken: someone else's is never ours to fill or remove
        made.append(node)
        client.refuse_versioned_bucket()
    return bucket


def _copy_across(pool: Pool, src: Source, to: NodeClient) -> None:
    """The owner's copy on another node, streamed through this device into the view (with its metadata) and
    checked against its SHA-256 on the way."""
    from sync_agent.replication import HashingSource
    from sync_agent.transfer import PART_SIZE

    fid, number, sha256 = src.ident
    reader = HashingSource(pool.client(src.holder).get(src.key, src.version_id), pool, src.holder, None)
    try:
        to.put(src.key, reader, src.size, metadata.object_meta(fid, number, sha256, src.size, src.mtime,
                                                                src.written), part_size=PART_SIZE)
    finally:
        reader.close()
    if reader.sha.hexdigest() != sha256 or reader.size != src.size:  # a bad copy: never under the right checksum
        to.delete(src.key)
        raise IntegrityError(f"The copy of '{src.key}' on {src.holder} does not match its checksum; it was not "
                             "put in the share.", paths=[src.key])


def update(pool: Pool, share_id: str, bucket: str, folder: str, nodes: list[str], clients: Clients, *,
           parallel: int = 8, progress: Callable[[int, int], None] | None = None,
           stop: threading.Event | None = None) -> ViewReport:
    """Bring the view in step with the owner's catalog on the share's reachable nodes."""
    report = ViewReport(share_id)
    reachable = [n for n in nodes if n in pool.clients and not pool.health.is_down(n)]
    report.skipped_nodes = sorted(set(nodes) - set(reachable))
    want, live = wanted(pool, folder, set(reachable))
    prefix = folder.strip("/") + "/"
    complete = pool.catalog.is_filled(prefix)
    have: dict[str, dict[str, Ident | None]] = {}

    def read(node: str) -> None:
        try:
            have[node] = {o.key: _ident(o.meta) for o in clients.get(node, bucket).list(prefix)}
        except NodeError as e:  # a view removed meanwhile (revoked) is never made again here
            report.skipped_nodes.append(node)
            log.info("share %s: the view on %s is not read now: %s", share_id, node, e.message)

    failed: set[str] = set()  # keys with a step that did not succeed
    lost: list[Step] = []

    def carry_out(step: Step) -> None:
        if stop is not None and stop.is_set():
            failed.add(step.key)
            lost.append(step)
            return
        client = clients.get(step.node, bucket)
        try:
            if step.source is None:
                client.delete(step.key)
            elif step.source.holder:
                _copy_across(pool, step.source, client)
            else:
                client.copy_from(pool.cfg.bucket, step.source.key, step.source.version_id, step.source.size)
        except (NodeError, IntegrityError) as e:
            failed.add(step.key)
            lost.append(step)
            report.errors.append(f"{step.key} on {step.node}: {e.message}")

    with ThreadPoolExecutor(max(1, min(parallel, len(reachable) or 1))) as ex:
        list(ex.map(read, reachable))
    copies, removals = plan(want, have, live, complete)
    total, done = len(copies) + len(removals), 0

    def run(steps: list[Step]) -> None:
        nonlocal done
        with ThreadPoolExecutor(parallel) as ex:
            for _ in ex.map(carry_out, steps):
                done += 1
                if progress is not None:
                    progress(done, total)

    run(copies)  # first: a key leaves a node's view only once its copies are in place
    run([st for st in removals if st.key not in failed])
    report.copied = sum(1 for st in copies if st not in lost)
    report.removed = sum(1 for st in removals if st.key not in failed)
    report.skipped_nodes.sort()
    return report


def drop(pool: Pool, bucket: str, nodes: list[str], clients: Clients) -> list[str]:
    """Remove a view from those of ``nodes`` that answer; returns the nodes where it may still be."""
    left = []
    for node in nodes:
        if node not in pool.clients:  # removed from the pool: nothing of ours to reach it with
            continue
        if pool.health.is_down(node):
            left.append(node)
            continue
        try:
            clients.get(node, bucket).drop_bucket()
        except NodeError as e:
            log.info("the share view %s stays on %s for now: %s", bucket, node, e.message)
            left.append(node)
    return left


def _live_views(pool: Pool) -> list[object]:
    m = pool.catalog.m
    return list(m.Share.select().where((m.Share.view != "") & ~m.Share.view_dropped))


def _over(revoked: object, expires_at: float) -> bool:
    return bool(revoked or (expires_at and expires_at < time.time()))


def ended(row: object) -> bool:
    """Revoked or expired."""
    r: Any = row
    return _over(r.revoked, r.expires_at)


def keep(pool: Pool, clients: Clients, *, read_nodes: bool = False,
         stop: threading.Event | None = None) -> list[ViewReport]:
    """Every view of this pool's shares in step (``read_nodes``: each shared folder read from the nodes
    first, for what other devices changed); the views of revoked or expired shares removed."""
    if pool.cfg.is_share:
        return []
    reports = []
    for row in _live_views(pool):
        r: Any = row
        nodes = json.loads(r.nodes)
        if ended(r):
            m = pool.catalog.m
            fresh = m.Share.get_or_none(m.Share.id == r.id)
            if fresh is None or not ended(fresh):  # extended meanwhile (another process)
                continue
            if not drop(pool, r.view, nodes, clients):  # only this field: the row may have changed meanwhile
                m.Share.update(view_dropped=True).where(m.Share.id == r.id).execute()
                log.info("share %s ended: its view is removed from every node", r.id)
            continue
        if read_nodes:
            from sync_agent.rebuild import refresh

            refresh(pool, r.folder + "/")
        report = update(pool, r.id, r.view, r.folder, nodes, clients, stop=stop)
        if report.copied or report.removed or report.errors:
            log.info("share %s (%s): view in step, %d copied, %d removed%s", r.id, r.folder, report.copied,
                     report.removed, f", {len(report.errors)} errors" if report.errors else "")
        reports.append(report)
    return reports


class ViewKeeper:
    """The owner's agent keeps its shares' views in step: within ``poll`` seconds of a change its catalog
    records under a shared folder (one small query), after a node comes back, and every ``FULL_CHECK``
    seconds after reading the shared folders from the nodes. A round that fails is tried again after 15 s,
    then less often (up to ``FULL_CHECK``)."""

    def __init__(self, pool: Pool, *, poll: float = 2.0, covered: Callable[[str], bool] = lambda _path: True) -> None:
        """``covered(path)``: whether the agent's folder pairs bring that pool path into the catalog; what the
        journal names outside them under a shared folder, the keeper reads from the nodes itself."""
        self.pool, self.poll, self.covered = pool, poll, covered
        self.clients = Clients(pool)
        self._pending = Changes()
        self._pending_lock = threading.Lock()
        self._shared: tuple[str, ...] = ()  # the shared folders ('photos/'), as of the last look
        self._force = False  # a node came back, or anything may have changed: a round now
        self.last: list[ViewReport] = []
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._unsubscribe = pool.health.subscribe(self._health_changed)

    def notice(self, changes: Changes | None) -> None:
        """What the journal, notifications or the reconcile named (None: anything may have changed)."""
        if changes is None:
            self._force = True
            self._wake.set()
            return
        shared = self._shared
        paths = {p for p in changes.paths if p.startswith(shared) and not self.covered(p)}
        folders: set[str] = set()
        for f in changes.folders:
            for folder in shared:
                if f.startswith(folder):
                    narrowest = f  # a folder inside the share
                elif folder.startswith(f):
                    narrowest = folder  # a folder above it: only the shared part is read
                else:
                    continue
                if not self.covered(narrowest):
                    folders.add(narrowest)
        if paths or folders:
            with self._pending_lock:
                self._pending.paths |= paths
                self._pending.folders |= folders
            self._wake.set()

    def _read_pending(self) -> None:
        """Read from the nodes what the journal named under a shared folder that no pair reads."""
        with self._pending_lock:
            pending, self._pending = self._pending, Changes()
        from sync_agent.rebuild import refresh_paths

        try:
            refresh_paths(self.pool, pending.paths, pending.folders)
        except BaseException:
            with self._pending_lock:  # kept for the next round
                self._pending.update(pending)
            raise

    def _fingerprint(self) -> tuple[object, ...] | None:
        """What the catalog says of the shared folders, in a few numbers; None: no view to keep."""
        db = self.pool.catalog.db  # plain SQL: this runs every few seconds for the agent's whole life
        rows = db.execute_sql('SELECT id, folder, revoked, expires_at FROM "share" '
                              'WHERE view != \'\' AND view_dropped = 0').fetchall()
        over = {r[0]: _over(r[2], r[3]) for r in rows}
        self._shared = tuple(str(r[1]).strip("/") + "/" for r in rows if not over[r[0]])
        if not rows:
            return None
        marks: list[object] = []
        for share_id, folder, *_ in rows:
            lo = str(folder).strip("/") + "/"
            marks.append(db.execute_sql(
                'SELECT count(*), max(updated_at), total(version) FROM "file" WHERE path >= ? AND path < ?',
                (lo, lo[:-1] + chr(ord("/") + 1))).fetchone())
            marks.append((share_id, over[share_id]))
        return tuple(marks)

    def _health_changed(self, _event: object) -> None:
        self._force = True
        self._wake.set()

    def _loop(self) -> None:
        seen: tuple[object, ...] | None = None
        full_at, retry_at, backoff = 0.0, 0.0, 15.0
        while not self._stop.is_set():
            self._wake.clear()
            try:
                if self._pending and (not retry_at or time.monotonic() >= retry_at):
                    self._read_pending()
                mark = self._fingerprint()
                now = time.monotonic()
                force, self._force = self._force, False
                due = mark is not None and (mark != seen or force or now >= full_at)
                if retry_at:  # backing off after a failed round: not before its time
                    due = mark is not None and now >= retry_at
                if due:
                    full = now >= full_at
                    if full:
                        full_at = now + FULL_CHECK
                    seen = mark  # as read before the round: what changes during it brings the next one
                    self.last = keep(self.pool, self.clients, read_nodes=full, stop=self._stop)
                    if any(r.errors for r in self.last):  # a down node is no error: its return wakes us
                        retry_at, backoff = now + backoff, min(backoff * 2, FULL_CHECK)
                    else:
                        retry_at, backoff = 0.0, 15.0
            except PoolDriveError as e:
                retry_at, backoff = time.monotonic() + backoff, min(backoff * 2, FULL_CHECK)
                log.warning("share views not brought in step now: %s", e.message)
            except Exception:  # never the end of the agent's other work
                retry_at, backoff = time.monotonic() + backoff, min(backoff * 2, FULL_CHECK)
                log.exception("share views not brought in step now (unexpected); trying again")
            self._wake.wait(self.poll if self._shared or retry_at else IDLE_POLL)

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
            if self._thread.is_alive():  # a long server-side copy: its clients stay open until it ends
                return
            self._thread = None
        self.clients.close()
