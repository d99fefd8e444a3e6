"""The catalog from the nodes alone: full rebuild and incremental refresh.

Truth on the nodes: for each key, the newest entry across all nodes wins: an object version (carrying our
metadata: file id, version number, SHA-256, size, mtime) makes the key live, a delete marker makes it empty.
Versions of one file are tied together by its file id, so history survives moves. Objects written by other
S3 tools (no metadata) are adopted: hashed once and given our metadata by a server-side copy.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar

from sync_agent import converge, durability_store, keys, metadata
from sync_agent.errors import InvalidPathError, NodeError
from sync_agent.metadata import ObjectMeta
from sync_agent.node_types import RemoteObject
from sync_agent.transfer import drain_hash

if TYPE_CHECKING:
    from sync_agent.catalog.store import Catalog, FileInfo
    from sync_agent.pool_view import PoolView

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
log = logging.getLogger(__name__)


@dataclass(slots=True)
class VersionState:
    number: int
    key: str
    sha256: str
    size: int
    mtime: float
    created_at: float
    replicas: dict[str, str | None] = field(default_factory=dict)  # node -> S3 version id
    etags: dict[str, str] = field(default_factory=dict)  # node -> ETag (the write's compare-and-swap token)


@dataclass(slots=True)
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
    bad: dict[str, str] = field(default_factory=dict)  # key -> why its metadata was refused
    disagree: list[converge.Disagreement] = field(default_factory=list)  # holders to bring in line


@dataclass(frozen=True)
class RemoteChange:
    path: str
    kind: str  # added | modified | deleted
    file_id: str
    version: int
    sha256: str


def _ts(o: RemoteObject) -> float:
    """When this entry was made: our ``written`` metadata (kept by repair copies), else the node's clock.

    ``written`` is the writer's claim, so it never counts as later than the node received the object: a
    share recipient writing ``written`` far in the future would otherwise keep the owner's later writes at
    that key from ever becoming current. An honest writer is unaffected (it writes ``written`` before the
    upload; a repair copy keeps the original, earlier time), and one whose clock runs ahead is ordered by
    the node's clock instead, which is what it should have been."""
    node_time = (o.last_modified or EPOCH).timestamp()
    if isinstance(o.parsed, ObjectMeta):  # parsed by the scan (range-checked)
        t: float | None = o.parsed.written
    else:
        try:
            t = float(o.meta["written"])
        except (KeyError, ValueError):
            t = None
    if t is not None and math.isfinite(t):
        return min(t, node_time) if o.last_modified else t
    return node_time


def _later(o: RemoteObject, parsed: ObjectMeta | None, ts: float, best: tuple[float, str, RemoteObject]) -> bool:
    """Whether entry ``o`` is newer than ``best`` at the same key. Two versions of one file are ordered by
    their version numbers (a node whose clock runs slow cannot roll a file back); anything else by time."""
    other = best[2]
    if parsed is not None and not other.is_delete_marker:
        theirs = metadata.of_object(other)
        if not isinstance(theirs, str) and theirs.file_id == parsed.file_id and theirs.version != parsed.version:
            return parsed.version > theirs.version
    if ts != best[0]:
        return ts > best[0]
    return _tiebreak(o) > _tiebreak(other)  # parsed only on a tie: this runs for every entry of a scan


def _tiebreak(o: RemoteObject) -> tuple[bool, str, int, str]:
    """Two entries written at the same instant: the same winner whatever order the nodes are listed in
    (content over a delete marker, then by file id and version)."""
    m = metadata.of_object(o) if not o.is_delete_marker else "marker"
    if isinstance(m, str):
        return (not o.is_delete_marker, "", 0, o.version_id or "")
    return (True, m.file_id, m.version, o.version_id or "")


def _adopt(pool: PoolView, node: str, o: RemoteObject) -> RemoteObject | None:
    """Give an object written by another S3 tool our metadata (server-side copy); None if it vanished."""
    client = pool.client(node)
    try:
        sha, size = drain_hash(client.get(o.key, o.version_id))
        # the same bytes at the same key on several nodes (a tool that wrote each node) are one file
        file_id = uuid.uuid5(uuid.NAMESPACE_URL, f"pooldrive:{o.key}:{sha}").hex
        mtime = _ts(o)
        meta = metadata.object_meta(file_id, 1, sha, size, mtime, written=mtime)
        vid = client.copy(o.key, o.key, meta, src_version=o.version_id)
        client.delete(o.key, o.version_id)  # the copy replaces it; keep one entry per version
        return client.stat(o.key, vid)
    except NodeError as e:
        log.warning("could not adopt '%s' on %s (written by another tool): %s", o.key, node, e.message)
        return None


MERGE_PAGE = 2000  # catalog files a full refresh reads at a time (``_merge``)
MERGE_TX = 500  # scanned files a full refresh merges in one transaction
T = TypeVar("T")
GROUP_AT = 16  # this many changed files in one folder: one listing of the folder instead of one per file


def _group(paths: set[str], folders: set[str]) -> list[tuple[str, bool | str]]:
    """Listing targets for changed paths and folders: exact keys, or a folder's own level (``"level"``)
    where many of its files changed at once (another device's bulk upload), or whole trees."""
    by_parent: dict[str, list[str]] = {}
    for p in paths:
        by_parent.setdefault(p.rsplit("/", 1)[0] + "/" if "/" in p else "", []).append(p)
    out: list[tuple[str, bool | str]] = [(f, False) for f in sorted(folders)]
    for parent, members in sorted(by_parent.items()):
        if len(members) >= GROUP_AT:
            out.append((parent, "level"))
        else:
            out.extend((p, True) for p in sorted(members))
    return out


def _list_targets(pool: PoolView, targets: list[tuple[str, bool | str]],
                  progress: Callable[[str, int], None] | None = None, *, quick: bool = False
                  ) -> tuple[dict[str, list[RemoteObject]], dict[str, str]]:
    """List every reachable node: each target is (prefix, how): True keeps only that very key, False lists
    the whole tree under the prefix, ``"level"`` the folder's own files. ``quick``: each page waits the
    quick timeout at most (a few paths named by the journal: a frozen node is a failed one, whose copies
    the catalog keeps as they were, not a 20 s wait before another device's change arrives)."""
    listings: dict[str, list[RemoteObject]] = {}
    failed: dict[str, str] = {}
    shared: dict = {}  # what copies on several nodes carry alike, held once (``metadata.slim``)

    def list_node(name: str) -> None:
        client = pool.client(name)
        try:
            out: list[RemoteObject] = []
            for prefix, how in targets:
                listed: Iterable[RemoteObject] = client.list(prefix, versions=not pool.cfg.current_only,
                                                             recursive=how != "level")
                if quick:  # a few keys: read whole inside the block (a full scan streams, page by page)
                    with client.quickly():
                        listed = list(listed)
                for o in listed:
                    if how is True and o.key != prefix:
                        continue
                    out.append(metadata.slim(o, shared))
                    if progress is not None and len(out) % 1000 == 0:
                        progress(name, len(out))
            listings[name] = out
        except NodeError as e:
            failed[name] = e.message
            pool.note_failure(name, e)

    names = [n for n in pool.clients if not pool.health.is_down(n)]
    if quick:  # a node whose last request failed (a poll that timed out a moment ago) is not waited for again
        failed.update((n, "its last request failed") for n in names if pool.health.get(n).failures)
        names = [n for n in names if n not in failed]
    with ThreadPoolExecutor(max(1, len(pool.clients))) as ex:
        list(ex.map(list_node, names))
    for n in pool.clients:
        if n not in listings and n not in failed:
            failed[n] = "down"
    return listings, failed


def _derived_id(key: str, file_id: str, number: int) -> str:
    """The id of a copy that claims another file's identity: the same on every device and every scan."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"pooldrive-twin:{key}:{file_id}:{number}").hex


def scan(pool: PoolView, prefix: str = "", *, adopt: bool = True,
         progress: Callable[[str, int], None] | None = None,
         targets: list[tuple[str, bool | str]] | None = None) -> Scan:
    """List the nodes (versions and delete markers, with metadata) and work out the truth.

    ``targets`` limits the listing to some keys and folders (a refresh after journal entries);
    otherwise everything under ``prefix`` is listed.
    """
    adopt = adopt and not pool.cfg.is_share  # a share's keys may not rewrite the owner's objects
    listings, failed = _list_targets(pool, targets if targets is not None else [(prefix, False)], progress)
    return _work_out(pool, listings, failed, adopt)


def _work_out(pool: PoolView, listings: dict[str, list[RemoteObject]], failed: dict[str, str],
              adopt: bool) -> Scan:
    newest: dict[str, tuple[float, str, RemoteObject]] = {}  # key -> newest entry anywhere
    entries: list[tuple[str, RemoteObject, ObjectMeta | None]] = []
    skipped: set[str] = set()
    bad: dict[str, str] = {}
    latest: dict[tuple[str, str], RemoteObject] = {}  # (node, key) -> that node's newest entry
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
            parsed: ObjectMeta | None = None
            if not o.is_delete_marker:
                if o.parsed is None and not metadata.has_ours(o.meta):  # written by another S3 tool
                    if not (adopt and o.is_latest):
                        continue
                    adopted = _adopt(pool, node, o)
                    if adopted is None:
                        continue
                    o = adopted
                got = metadata.of_object(o)
                if isinstance(got, str):  # untrusted input: skipped and reported, never fatal
                    bad[o.key] = got
                    continue
                parsed = got
            entries.append((node, o, parsed))
            if o.is_latest:
                latest[(node, o.key)] = o
            best = newest.get(o.key)
            if best is None or _later(o, parsed, _ts(o), best):
                newest[o.key] = (_ts(o), node, o)
    for key, why in bad.items():
        log.warning("ignored an object with bad PoolDrive metadata at '%s': %s", key, why)

    files: dict[str, FileState] = {}
    strays: dict[tuple[str, str, int], list[tuple[str, RemoteObject, ObjectMeta]]] = {}
    for node, o, m in sorted(((n, o, m) for n, o, m in entries if m is not None),
                             key=lambda e: (_node_time(e[1]), e[1].key, e[0])):
        assert m is not None
        f = files.setdefault(m.file_id, FileState(m.file_id, o.key, True))
        v = f.versions.get(m.version)
        if v is None:
            v = f.versions[m.version] = VersionState(m.version, o.key, m.sha256, m.size, m.mtime, _ts(o))
        elif v.key != o.key or v.sha256 != m.sha256:
            # one (file, version) lives at one key with one content (the oldest by the nodes' clocks);
            # a second claim, e.g. a server-side copy of a PoolDrive object, is a file of its own
            strays.setdefault((o.key, m.file_id, m.version), []).append((node, o, m))
            continue
        v.replicas[node] = o.version_id
        if o.etag:
            v.etags[node] = o.etag
        v.created_at = min(v.created_at, _ts(o))
    for (key, fid, number), group in strays.items():
        twin = _derived_id(key, fid, number)
        _, o0, m0 = group[0]
        t = files.setdefault(twin, FileState(twin, key, True))
        v = t.versions.setdefault(number, VersionState(number, key, m0.sha256, m0.size, m0.mtime, _ts(o0)))
        for node, o, _ in group:
            v.replicas[node] = o.version_id
            if o.etag:
                v.etags[node] = o.etag
        bad[key] = f"claims version {number} of a file that lives at another key; kept as a separate file"
    _assign_live_paths(pool, files, newest, bad, strays)
    for f in files.values():
        if f.deleted:
            f.path = f.current.key
    live = [(f.path, f.file_id, f.current.number, f.current.replicas) for f in files.values() if not f.deleted]
    return Scan(files, sorted(listings), failed, sorted(skipped), bad, converge.find(live, latest))


def _bring_in_line(pool: PoolView, s: Scan) -> None:
    """Holders whose newest entry is not the current version get it restated (see ``converge``); a
    share's keys never rewrite the owner's objects, the owner's agent does it."""
    if s.disagree and not pool.cfg.is_share:
        converge.restate(pool, s.disagree)


def _node_time(o: RemoteObject) -> float:
    """When the node stored an entry, by its own clock (a writer cannot choose it, unlike metadata)."""
    return (o.last_modified or EPOCH).timestamp()


def _assign_live_paths(pool: PoolView, files: dict[str, FileState], newest: dict[str, tuple[float, str, RemoteObject]],
                       bad: dict[str, str],
                       strays: dict[tuple[str, str, int], list[tuple[str, RemoteObject, ObjectMeta]]]) -> None:
    """Which key each file lives at now. The rule that keeps other writers in their scope:

    A file id claimed by the newest live object at one key lives there. Claimed at several keys at once
    (a recipient of a shared folder copying an id from outside it, or a move whose delete marker failed),
    it stays where this catalog last saw it live, else at the claim the nodes stored first (their clock,
    not the writer's metadata), and every other claimant becomes a file of its own with an id derived from
    its key: nothing is moved, nothing hidden. A writer can only create claims at keys it can write, and
    only a delete marker at the old key (which needs write access there) lets a file move away from it.
    """
    claims: dict[str, list[tuple[str, int, float]]] = {}
    for key, (_, _, o) in newest.items():
        if o.is_delete_marker:
            continue
        m = metadata.of_object(o)
        if isinstance(m, str):
            continue
        if (key, m.file_id, m.version) in strays:  # a copy of someone else's version: its own file
            twin = files[_derived_id(key, m.file_id, m.version)]
            twin.deleted, twin.path, twin.live_number = False, key, m.version
            continue
        f = files.get(m.file_id)
        if f is None or m.version not in f.versions or f.versions[m.version].key != key:
            continue
        claims.setdefault(m.file_id, []).append((key, m.version, _node_time(o)))
    for fid, cl in claims.items():
        f = files[fid]
        winner = cl[0]
        if len(cl) > 1:
            known = pool.catalog.live_path_of(fid)
            at_known = [c for c in cl if c[0] == known]
            winner = at_known[0] if at_known else min(cl, key=lambda c: (c[2], c[0]))
            for key, number, _ in cl:
                if (key, number) == winner[:2]:
                    continue
                v = f.versions.pop(number)
                twin_id = _derived_id(key, fid, number)
                files[twin_id] = FileState(twin_id, key, False, {number: v}, number)
                bad[key] = f"claims the identity of '{winner[0]}'; kept as a separate file"
        f.deleted, f.path, f.live_number = False, winner[0], winner[1]


def _apply_file(pool: PoolView, f: FileState, scanned: list[str]) -> None:
    cat = pool.catalog
    current = f.current.number
    with cat.atomic():
        for n in sorted(f.versions, key=lambda n: (n == current, n)):  # the current one last
            v = f.versions[n]
            cat.commit_version(file_id=f.file_id, path=f.path, number=n, key=v.key, size=v.size,
                               sha256=v.sha256, mtime=v.mtime, replicas=v.replicas.items(),
                               created_at=v.created_at, current=n == current, etags=v.etags)
            cat.prune_replicas(f.file_id, n, keep=set(v.replicas), scanned=set(scanned))
        if f.deleted:
            cat.mark_deleted(f.path)


def rebuild(pool: PoolView, *, progress: Callable[[str, int], None] | None = None) -> Scan:
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
    pool.catalog.mark_filled()
    _bring_in_line(pool, s)
    _read_classes(pool)
    return s


def _read_classes(pool: PoolView) -> None:
    if not pool.cfg.is_share:  # the folders' durability classes live on the nodes too
        durability_store.fetch(pool)


def refresh(pool: PoolView, prefix: str = "", *, failed: dict[str, str] | None = None) -> list[RemoteChange]:
    """Bring this device's catalog in line with the nodes (everything under ``prefix``); returns what
    changed. Nodes that cannot be listed right now keep what the catalog says about them.

    This lists every version on every node: the safety net. The agent applies journal deltas with
    ``refresh_paths`` instead.
    """
    prefix = prefix or pool.cfg.prefix
    prefix_dir = keys.normalize_dir(prefix) if prefix else ""
    listed_at = time.time()
    s = scan(pool, prefix_dir)
    changes = _merge(pool, s, pool.catalog.walk_pages(prefix_dir, MERGE_PAGE), listed_at)
    _forget_vanished(pool, s, [(prefix_dir.rstrip("/"), False)], listed_at)
    _bring_in_line(pool, s)
    if not prefix_dir:
        _read_classes(pool)
    if not s.failed:  # complete for what was read: the whole pool (or share), or one folder of it
        whole = keys.normalize_dir(pool.cfg.prefix) if pool.cfg.prefix else ""
        pool.catalog.mark_filled("" if prefix_dir == whole else prefix_dir)
    if failed is not None:  # the nodes that could not be read, for the caller to name
        failed.update(s.failed)
    return changes


def refresh_paths(pool: PoolView, paths: Iterable[str], folders: Iterable[str] = (), *,
                  failed: dict[str, str] | None = None) -> list[RemoteChange]:
    """Refresh just ``paths`` (exact keys) and ``folders`` ('a/b/' prefixes): the cost follows the change.

    A file found there that this catalog has live at another path is looked up at that path too, so
    a move is seen whole (and an identity claim is judged against the file's real home). ``failed``
    receives the nodes that could not be read (node -> why).
    """
    scope = keys.normalize_dir(pool.cfg.prefix) if pool.cfg.prefix else ""
    want_paths = {p for p in paths if not scope or p.startswith(scope)}
    want_folders = {f for f in folders if not scope or f.startswith(scope) or scope.startswith(f)}
    if "" in want_folders or (scope and any(scope.startswith(f) for f in want_folders)):
        return refresh(pool, failed=failed)
    targets = _group(want_paths, want_folders)
    listed_at = time.time()
    listings, unread = _list_targets(pool, targets, quick=True)
    # a folder's level listed for many of its paths holds its other files too: only the named ones count.
    # The others may be half of a change still under way (the new path of a move whose entry, naming the old
    # path too, is not written yet: taken alone it was downloaded, and the old path trashed a pass later)
    folders_wanted = tuple(want_folders)
    listings = {node: [o for o in objs if o.key in want_paths or o.key.startswith(folders_wanted)]
                for node, objs in listings.items()} if any(how == "level" for _, how in targets) else listings
    elsewhere: set[str] = set()
    for objs in listings.values():
        for o in objs:
            m = metadata.of_object(o)
            if o.is_delete_marker or isinstance(m, str):
                continue
            home = pool.catalog.live_path_of(m.file_id)
            if home and home not in want_paths and not any(home.startswith(f) for f in want_folders):
                elsewhere.add(home)
    if elsewhere:
        more, more_failed = _list_targets(pool, [(p, True) for p in sorted(elsewhere)], quick=True)
        for node, objs in more.items():
            listings.setdefault(node, []).extend(objs)
        for node, why in more_failed.items():
            listings.pop(node, None)
            unread[node] = why
        want_paths |= elsewhere
    s = _work_out(pool, listings, unread, adopt=not pool.cfg.is_share)
    known = [f for f in (pool.catalog.get(p) for p in sorted(want_paths)) if f is not None]
    for folder in sorted(want_folders):
        known.extend(pool.catalog.walk(folder))
    known.sort(key=lambda f: f.path)
    changes = _merge(pool, s, known, listed_at)
    _forget_vanished(pool, s, [(p, True) for p in sorted(want_paths)] + [(f.rstrip("/"), False)
                                                                        for f in sorted(want_folders)], listed_at)
    _bring_in_line(pool, s)
    if failed is not None:
        failed.update(unread)
    return changes


def _forget_vanished(pool: PoolView, s: Scan, scopes: list[tuple[str, bool]], listed_at: float) -> int:
    """Forget versions stored in ``scopes`` (key, exact) that no node holds any more: purged for good by
    another device (``history.purge``) or another S3 tool. Without this, their rows stayed here: listed
    as versions that cannot be read, and their names still taken for a folder. Only after every node was
    read; never a version written after the listing began, nor a live file's current version (that one
    lost everywhere is the repair's and put-back's business, not forgotten). Returns how many went."""
    if s.failed or pool.cfg.current_only:  # a share's view lists current objects only: old versions look gone
        return 0
    present = {(f.file_id, n): v.key for f in s.files.values() for n, v in f.versions.items()}
    folders = []
    for scope, exact in scopes:  # a folder whose stored versions were all listed: a count, not a read of each
        if not exact and pool.catalog.count_versions(scope) > sum(
                1 for key in present.values() if not scope or key.startswith(scope + "/")):
            folders.append(scope)
    gone = 0
    for v in pool.catalog.stored_at([scope for scope, exact in scopes if exact], folders):
        if (v.file_id, v.number) in present or v.created_at >= listed_at or v.live_current:
            continue
        present[(v.file_id, v.number)] = v.key  # named twice (a key and its folder): forgotten once
        log.info("'%s' version %d is on no node any more (purged): forgotten", v.key, v.number)
        pool.catalog.forget_version(v.file_id, v.number)
        gone += 1
    return gone


def _merge(pool: PoolView, s: Scan, known: Iterable[FileInfo], listed_at: float) -> list[RemoteChange]:
    """Apply a scan to the catalog; ``known`` are the catalog's live files the scan covered, in path order.

    ``known`` is read as the merge goes (a full refresh walks the catalog a page at a time), alongside
    the scan's files in path order: a file still at its path is compared with what the catalog said there,
    without a query of its own (three per file took 80 % of a full refresh at 100,000 files), and without
    holding the whole catalog (a full refresh at 100,000 files peaked at 522-619 MB). Applying a file changes
    rows at its own path only (the file it replaces there is marked deleted), so what was read at that path
    is set aside for the end, and a file met again there, or one that moved, is asked for by its id.
    ``listed_at`` is when the listing began: a file this catalog changed since may be missing from it.
    """
    cat = pool.catalog
    changes: list[RemoteChange] = []
    seen: set[str] = set()
    left: list[FileInfo] = []  # catalog files the scan did not match at their path: checked at the end
    walk = iter(known)
    ahead = next(walk, None)
    here: dict[str, FileInfo] = {}  # the catalog's files at the path being merged, by id
    at: str | None = None
    for f in _in_transactions(cat, sorted(s.files.values(), key=lambda f: (f.path, f.deleted))):
        if f.path != at:
            left.extend(here.values())
            here, at = {}, f.path
            while ahead is not None and ahead.path <= f.path:
                if ahead.path == f.path:
                    here[ahead.id] = ahead
                else:
                    left.append(ahead)
                ahead = next(walk, None)
        seen.add(f.file_id)
        before = here.pop(f.file_id, None) or cat.get_by_id(f.file_id)
        cur = f.current
        if before is not None:
            same_version = before.version == cur.number
            known_nodes = {r.node for r in before.current.replicas} if before.current and same_version else set()
            unscanned = {n for n in known_nodes if n not in s.scanned}
            if (same_version and before.path == f.path and before.deleted == f.deleted
                    and set(cur.replicas) | unscanned == known_nodes):
                continue
        changes.extend(_changed(before, f))
        _apply_file(pool, f, s.scanned)
        left.extend(here.values())  # rows at this path may have changed: read again if needed
        here = {}
    left.extend(here.values())
    if ahead is not None:
        left.append(ahead)
        left.extend(walk)
    # files the catalog knows that no scanned node holds any more (and no unscanned node could)
    gone = [info for info in left if info.id not in seen and not info.deleted
            and not any(n in s.failed for n in info.replicas)]
    for info in _in_transactions(cat, gone):  # what is checked here is what is marked: no write between
        now = cat.live_since(info.id)
        if now is None or now[0] != info.path:
            continue  # moved or replaced by what was just applied
        if now[1] >= listed_at:
            continue  # committed here since the listing began (a write that ended after its node was listed)
        cat.mark_deleted_id(info.id)
        changes.append(RemoteChange(info.path, "deleted", info.id, info.version, info.sha256))
    return changes


def _in_transactions(cat: Catalog, items: Iterable[T]) -> Iterator[T]:
    """``items``, ``MERGE_TX`` of them per catalog transaction: a commit per file was most of filling an
    empty catalog. A loop left by an exception rolls back the transaction it was in (the generator closes
    as the exception leaves the loop's frame); the ones before it stay committed, each of whole files."""
    with contextlib.ExitStack() as tx:
        for i, item in enumerate(items):
            if i % MERGE_TX == 0:
                tx.close()
                tx.enter_context(cat.atomic())
            yield item


def _changed(before: FileInfo | None, f: FileState) -> list[RemoteChange]:
    """What applying ``f`` changes, for the sync engine, from what the catalog said before."""
    cur = f.current
    if before is None:
        return [] if f.deleted else [RemoteChange(f.path, "added", f.file_id, cur.number, cur.sha256)]
    if before.deleted != f.deleted and f.deleted:
        return [RemoteChange(before.path, "deleted", f.file_id, cur.number, cur.sha256)]
    if before.path != f.path and not f.deleted:
        moved = [] if before.deleted else [RemoteChange(before.path, "deleted", f.file_id, before.version,
                                                        before.sha256)]
        return [*moved, RemoteChange(f.path, "added", f.file_id, cur.number, cur.sha256)]
    if before.version != cur.number or before.deleted != f.deleted:
        kind = "added" if before.deleted else "modified"
        return [RemoteChange(f.path, kind, f.file_id, cur.number, cur.sha256)]
    return []
