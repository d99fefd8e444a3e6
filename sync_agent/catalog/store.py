"""The catalog: files, versions and where their replicas are, in SQLite (WAL mode).

Reads hand back plain dataclasses, never peewee rows, so callers (the CLI, the GUI thread) hold no
database state.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from peewee import DatabaseError, SqliteDatabase, fn

from sync_agent import keys, paths
from sync_agent.catalog.migrations import migrate
from sync_agent.catalog.models import Models, NodeState, ReplicaState, bind_models
from sync_agent.errors import CatalogUnreadableError, NotFoundError

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class ReplicaInfo:
    node: str
    version_id: str | None
    state: str = ReplicaState.OK
    etag: str | None = None  # known when this device wrote or listed the copy


@dataclass(frozen=True)
class VersionInfo:
    number: int
    key: str
    size: int
    sha256: str
    mtime: float
    created_at: float
    replicas: tuple[ReplicaInfo, ...] = ()

    def ok_nodes(self) -> list[str]:
        return [r.node for r in self.replicas if r.state == ReplicaState.OK]

    def etag_on(self, node: str) -> str | None:
        return next((r.etag for r in self.replicas if r.node == node), None)

    def read_guard(self, node: str) -> str | None:
        """The ETag a read of this copy must match when it has no version id to ask for (a share that
        sees current objects only): a newer object at the key is then refused, never taken for this one."""
        return self.etag_on(node) if self.replicas_version(node) is None else None

    def replicas_version(self, node: str) -> str | None:
        for r in self.replicas:
            if r.node == node:
                return r.version_id
        return None


@dataclass(frozen=True)
class StoredVersion:
    """A version as stored at its key (``Catalog.stored_at``)."""

    file_id: str
    number: int
    key: str
    created_at: float
    live_current: bool  # the current version of a live file


@dataclass(frozen=True)
class FileInfo:
    id: str
    path: str
    size: int
    sha256: str
    mtime: float
    version: int
    deleted: bool
    current: VersionInfo | None = None

    @property
    def replicas(self) -> list[str]:
        return self.current.ok_nodes() if self.current else []


@dataclass(frozen=True)
class DirEntry:
    name: str
    path: str
    is_dir: bool
    size: int = 0
    mtime: float = 0.0
    sha256: str = ""
    replicas: tuple[str, ...] = ()
    files: int = 0  # for folders: files below


@dataclass
class IntentInfo:
    id: int
    kind: str
    path: str
    file_id: str
    version: int
    payload: dict[str, object] = field(default_factory=dict)
    created_at: float = 0.0

    # typed views of the payload (JSON this catalog wrote itself)
    def nodes(self) -> list[str]:
        raw = self.payload.get("nodes")
        return [str(n) for n in raw] if isinstance(raw, list) else []

    def uploads(self) -> dict[str, str]:
        raw = self.payload.get("uploads")
        return {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}

    def number(self, key: str, default: float = 0.0) -> float:
        raw = self.payload.get(key)
        return float(raw) if isinstance(raw, int | float | str) else default


def _writes(fn: Callable[..., T]) -> Callable[..., T]:
    """Run a catalog write in a transaction, committed together with the writes other threads make at the
    same moment (``_GroupCommit``); inside ``Catalog.atomic`` it joins that transaction instead.

    SQLite serializes writers anyway, but threads that find the database locked back off by sleeping
    (1, 2, 5, 10 ... ms); queueing on a Python lock first is much faster under parallel transfers.
    """
    @functools.wraps(fn)
    def wrapper(self: Catalog, *args: object, **kw: object) -> T:
        if getattr(self._local, "inside", False):
            return fn(self, *args, **kw)
        return self._group.run(functools.partial(fn, self, *args, **kw))
    return wrapper


@dataclass
class _Op:
    fn: Callable[[], object]
    value: object = None
    error: BaseException | None = None
    done: bool = False
    lead: bool = False  # handed the lead of the next commit
    wake: threading.Lock = field(default_factory=lambda: _held())  # released once: done, or the lead handed over


def _held() -> threading.Lock:
    lock = threading.Lock()
    lock.acquire()
    return lock


class _GroupCommit:
    """Writes from many threads in one transaction: the first writer to arrive while no commit runs leads,
    takes every write queued by then and commits them at once; the others wait for that commit (each
    returns only once its write is committed, as before). Under 16 parallel transfers a commit per write
    was a sixth of the agent's CPU. A write that fails rolls the batch back; then each write runs alone,
    so every caller gets its own result or its own error.

    Each waiting writer is woken once, by its own lock: when its write is committed, or when it is handed
    the lead of the next commit. (A shared condition woke every waiter at every commit, and each went
    back to sleep: a tenth of a bulk upload's CPU.)"""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._lock = threading.Lock()
        self._queue: list[_Op] = []
        self._busy = False
        self.commits = 0  # transactions committed (tests count them)

    def run(self, fn: Callable[[], T]) -> T:
        me = _Op(fn)
        with self._lock:
            self._queue.append(me)
            if not self._busy:
                self._busy = me.lead = True
        if not me.lead:
            try:
                me.wake.acquire()  # committed, or the lead is ours now
            except BaseException:  # interrupted while waiting (Ctrl+C): leave the queue, pass on a lead
                self._leave(me)
                raise
        if not me.done:
            self._lead()
        if me.error is not None:
            raise me.error
        return me.value  # type: ignore[return-value]

    def _leave(self, me: _Op) -> None:
        """An interrupted writer whose write has not been taken into a commit gives up its place; a lead
        handed to it goes to the next writer (left with it, every later write would wait forever)."""
        with self._lock:
            if me not in self._queue:
                return  # committed, or being committed by a leader: nothing to give up
            self._queue.remove(me)
            nxt = self._pass_lead() if me.lead else None
        if nxt is not None:
            nxt.wake.release()

    def _pass_lead(self) -> _Op | None:
        """(Under the lock.) The next queued writer leads the next commit; none: no commit runs."""
        nxt = self._queue[0] if self._queue else None
        if nxt is not None:
            nxt.lead = True
        else:
            self._busy = False
        return nxt

    def _lead(self) -> None:
        with self._lock:
            batch, self._queue = self._queue, []
        try:
            self._commit(batch)
        finally:
            with self._lock:
                nxt = self._pass_lead()
            for op in batch:
                op.wake.release()
            if nxt is not None:
                nxt.wake.release()

    def _commit(self, batch: list[_Op]) -> None:
        cat = self.catalog
        cat._local.inside = True
        pending = list(batch)
        try:
            try:
                with cat._write_lock, cat.db.atomic():
                    for op in batch:
                        op.value = op.fn()
                self.commits += 1
                pending = []
            except Exception:
                for op in batch:  # one of them failed and the batch was rolled back: each on its own now
                    op.value = None
                    try:
                        with cat._write_lock, cat.db.atomic():
                            op.value = op.fn()
                        self.commits += 1
                    except Exception as e:
                        op.error = e
                    pending.remove(op)
        except BaseException as e:  # interrupted (Ctrl+C in the leader): what was not committed says so
            for op in pending:
                op.error = e
            raise
        finally:
            cat._local.inside = False
            for op in batch:
                op.done = True


UNREADABLE = ("not a database", "malformed", "encrypted")  # SQLite's words for a damaged file
CACHE_KIB = 16000  # SQLite's page cache, per connection (peewee opens one per thread that uses the catalog)


def _past(prefix: str) -> str:
    """The first string after every path that starts with ``prefix`` (non-empty): with ``path >= prefix``,
    a range on the path index."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


class Catalog:
    def __init__(self, path: Path | None) -> None:
        """``path=None`` opens an in-memory catalog (for pure tests)."""
        self.path = path
        self.fresh = path is not None and not path.exists()  # created now: it knows nothing of the pool yet
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self.db = SqliteDatabase(str(path) if path else ":memory:", pragmas={
            "journal_mode": "wal", "foreign_keys": 1, "synchronous": "normal", "busy_timeout": 10000,
            "cache_size": -CACHE_KIB})
        self.m: Models = bind_models(self.db)
        self._write_lock = threading.RLock()
        self._local = threading.local()  # .inside: this thread is in a write transaction already
        self._group = _GroupCommit(self)
        self._atomic_commits = 0  # commits made through atomic() in this process (see data_version)
        self._draining: tuple[float, set[str]] | None = None
        try:
            self.db.connect(reuse_if_open=True)
            migrate(self.db, self.m, path)
        except DatabaseError as e:
            self.db.close()
            if not any(why in str(e).lower() for why in UNREADABLE):
                raise  # locked, disk full, no permission: said as it is, the file is fine
            raise CatalogUnreadableError(f"The catalog {path} cannot be read ({e}). It is only a record of what "
                                         "the nodes hold: 'pooldrive catalog rebuild' sets this file aside and "
                                         "reads the catalog again from the nodes.", paths=[str(path)]) from e
        if path is None:
            self.mark_filled()
        else:
            paths.make_private(path)

    def close(self) -> None:
        if not self.db.is_closed():
            self.db.close()

    # --- completeness ---------------------------------------------------------------------------------
    @property
    def filled(self) -> bool:
        """Whether a read of every node has completed into this catalog. Until then, a file missing from it
        may just be on a node not read yet: nothing may be concluded from an absence (no listing shown as
        the truth, no local file trashed as 'deleted on the pool')."""
        row = self.db.execute_sql('SELECT value FROM "catalog_meta" WHERE key = \'filled\'').fetchone()
        return bool(row and row[0] == "1")

    @_writes
    def mark_filled(self, scope: str = "") -> None:
        """A read of every node completed: of everything (``scope`` ''), or of one folder ('photos/', what a
        folder pair's agent reads)."""
        key = f"filled:{scope}" if scope else "filled"
        self.db.execute_sql('INSERT OR REPLACE INTO "catalog_meta" VALUES (?, \'1\')', (key,))

    def is_filled(self, scope: str = "") -> bool:
        """``filled`` for the folder ``scope`` ('a/b/'): everything was read, or that folder or one above it."""
        if self.filled or not scope:
            return self.filled
        parts = scope.rstrip("/").split("/")
        wanted = [f"filled:{'/'.join(parts[:i])}/" for i in range(1, len(parts) + 1)]
        marks = ", ".join("?" for _ in wanted)
        row = self.db.execute_sql(f'SELECT 1 FROM "catalog_meta" WHERE key IN ({marks}) AND value = \'1\'',
                                  tuple(wanted)).fetchone()
        return row is not None

    def get_meta(self, key: str) -> str | None:
        row = self.db.execute_sql('SELECT value FROM "catalog_meta" WHERE key = ?', (key,)).fetchone()
        return row[0] if row else None

    @_writes
    def set_meta(self, key: str, value: str) -> None:
        self.db.execute_sql('INSERT OR REPLACE INTO "catalog_meta" VALUES (?, ?)', (key, value))

    @contextlib.contextmanager
    def atomic(self) -> Iterator[None]:
        """One transaction for several writes (the same write lock as single writes). It takes SQLite's write
        lock when it begins: one that read first and another process (the agent, a command) committed before
        its first write could not write at all ('database is locked', whatever the busy timeout)."""
        outer = getattr(self._local, "inside", False)
        with self._write_lock, self.db.atomic("IMMEDIATE"):
            self._local.inside = True
            try:
                yield
            finally:
                self._local.inside = outer
        if not outer:
            self._atomic_commits += 1

    # --- nodes -------------------------------------------------------------------------------------
    def node_states(self) -> dict[str, str]:
        return {n.name: n.state for n in self.m.Node.select()}

    @_writes
    def set_node_state(self, name: str, state: str) -> None:
        self.m.Node.insert(name=name, state=state).on_conflict_replace().execute()
        self._draining = None

    def draining_nodes(self) -> set[str]:
        """Asked before every write, so kept in memory (another process's drain shows within 5 s)."""
        now = time.monotonic()
        if self._draining is None or now - self._draining[0] > 5.0:
            self._draining = (now, {n for n, s in self.node_states().items() if s == NodeState.DRAINING})
        return set(self._draining[1])

    @_writes
    def forget_node(self, name: str) -> None:
        """A node taken out of the pool: its copies no longer count (repair makes them elsewhere) and are
        never read (a read used to fail on them with an internal error)."""
        with self.atomic():
            self.m.Replica.delete().where(self.m.Replica.node == name).execute()
            self.m.Node.delete().where(self.m.Node.name == name).execute()
        self._draining = None

    # --- reading -----------------------------------------------------------------------------------
    def _version_info(self, v: object) -> VersionInfo:
        replicas = tuple(ReplicaInfo(r.node, r.s3_version, r.state, r.etag)
                         for r in self.m.Replica.select().where(self.m.Replica.version == v))
        return VersionInfo(v.number, v.key, v.size, v.sha256, v.mtime, v.created_at, replicas)  # type: ignore[attr-defined]

    def _row(self, path: str, include_deleted: bool = True):
        """The live file at ``path``, else (if asked) the one deleted most recently."""
        m = self.m
        q = m.File.select().where(m.File.path == path)
        if not include_deleted:
            q = q.where(~m.File.deleted)
        return q.order_by(m.File.deleted, m.File.updated_at.desc()).first()

    # The per-file hot paths (every upload and download) use plain SQL: building a peewee query costs
    # about 0.3 ms of Python, and a transfer of many small files would spend most of its time there.
    _GET_SQL = (
        'SELECT f.id, f.path, f.size, f.sha256, f.mtime, f.version, f.deleted, v.number, v.key, v.size, '
        'v.sha256, v.mtime, v.created_at, r.node, r.s3_version, r.state, r.etag FROM "file" f '
        'LEFT JOIN "version" v ON v.file_id = f.id AND v.number = f.version '
        'LEFT JOIN "replica" r ON r.version_id = v.id WHERE {where} '
        'ORDER BY f.deleted, f.updated_at DESC, f.id')

    def get(self, path: str, *, include_deleted: bool = False) -> FileInfo | None:
        sql = self._GET_SQL.format(where="f.path = ?" if include_deleted else "f.path = ? AND f.deleted = 0")
        return self._info_of(self.db.execute_sql(sql, (path,)).fetchall())

    def _info_of(self, rows: list[tuple]) -> FileInfo | None:
        """The first file of ``_GET_SQL``'s rows, with its current version and that version's replicas."""
        if not rows:
            return None
        first = rows[0]
        rows = [r for r in rows if r[0] == first[0]]
        current = None
        if first[7] is not None:
            replicas = tuple(ReplicaInfo(r[13], r[14], r[15], r[16]) for r in rows if r[13] is not None)
            current = VersionInfo(first[7], first[8], first[9], first[10], first[11], first[12], replicas)
        return FileInfo(first[0], first[1], first[2], first[3], first[4], first[5], bool(first[6]), current)

    def require(self, path: str) -> FileInfo:
        info = self.get(path)
        if info is None:
            raise NotFoundError(f"'{path}' is not in the pool.", paths=[path])
        return info

    def get_by_id(self, file_id: str) -> FileInfo | None:
        return self._info_of(self.db.execute_sql(self._GET_SQL.format(where="f.id = ?"), (file_id,)).fetchall())

    def data_version(self) -> int:
        """Changes whenever anything committed to the catalog: another process (the agent, a CLI command), or
        this one. SQLite's own counter leaves out the asking connection's commits, so a write made on the
        thread that asks (a window's GUI thread) went unseen; this process's commits are counted as well."""
        theirs = int(self.db.execute_sql("PRAGMA data_version").fetchone()[0])
        return theirs + ((self._group.commits + self._atomic_commits) << 32)

    def deleted_files(self, limit: int = 1000) -> list[FileInfo]:
        """Files deleted from the pool whose path holds no live file now, newest deletion first."""
        rows = self.db.execute_sql(
            'SELECT f.id FROM "file" f WHERE f.deleted = 1 AND NOT EXISTS (SELECT 1 FROM "file" g '
            'WHERE g.path = f.path AND g.deleted = 0) ORDER BY f.updated_at DESC LIMIT ?', (limit,)).fetchall()
        out = []
        for (fid,) in rows:
            f = self.m.File.get_or_none(self.m.File.id == fid)
            if f is not None:
                out.append(FileInfo(f.id, f.path, f.size, f.sha256, f.mtime, f.version, True, None))
        return out

    def live_path_of(self, file_id: str) -> str | None:
        """Where a file lives now (None: unknown or deleted); one indexed lookup."""
        row = self.live_since(file_id)
        return row[0] if row else None

    def live_since(self, file_id: str) -> tuple[str, float] | None:
        """Where a file lives now and when this catalog last changed it (None: unknown or deleted)."""
        row = self.db.execute_sql('SELECT path, updated_at FROM "file" WHERE id = ? AND deleted = 0',
                                  (file_id,)).fetchone()
        return (row[0], row[1]) if row else None

    def current_on_node(self, node: str, after: str, upto: str | None) -> dict[str, tuple[str, str]]:
        """Live files whose current version the catalog has on ``node``, with paths in (after, upto]:
        path -> (sha256, version number as text). Driven by the path index (a page's range), never by
        the node's or the live flag's index, which would visit every file for every page."""
        sql = ('SELECT f.path, f.sha256, f.version FROM "file" f INDEXED BY file_path JOIN "version" v '
               'ON v.file_id = f.id AND v.number = f.version JOIN "replica" r ON r.version_id = v.id '
               'WHERE r.node = ? AND f.deleted = 0 AND f.path > ?' + (' AND f.path <= ?' if upto is not None else ''))
        args = (node, after) + ((upto,) if upto is not None else ())
        return {r[0]: (r[1], str(r[2])) for r in self.db.execute_sql(sql, args).fetchall()}

    def versions(self, path: str) -> list[VersionInfo]:
        f = self._row(path)
        if f is None:
            raise NotFoundError(f"'{path}' has no history in the pool.", paths=[path])
        return self.versions_by_id(f.id)

    def versions_by_id(self, file_id: str) -> list[VersionInfo]:
        rows = self.m.Version.select().where(self.m.Version.file == file_id).order_by(self.m.Version.number.desc())
        return [self._version_info(v) for v in rows]

    def shrink(self) -> None:
        """Free this thread's connection's page cache (up to ``CACHE_KIB``): after a pass that wrote 100,000
        rows from one thread it held 16 MB the agent no longer needs."""
        self.db.execute_sql("PRAGMA shrink_memory")

    def known_paths(self, paths: list[str]) -> set[str]:
        """Which of ``paths`` the catalog has any file at, live or deleted (one query per 500 paths)."""
        out: set[str] = set()
        for i in range(0, len(paths), 500):
            part = paths[i:i + 500]
            rows = self.db.execute_sql(f'SELECT DISTINCT path FROM "file" WHERE path IN ({",".join("?" * len(part))})',
                                       part).fetchall()
            out.update(r[0] for r in rows)
        return out

    def name_clash(self, key: str) -> tuple[str, bool] | None:
        """An object key that ``key`` cannot be stored beside: a key at one of its parent folders, or one
        inside ``key/``. Returns (that key, whether a live file is there now) or None.

        On a node, an object 'a' (any version of it, a delete marker too) hides every key under 'a/' from
        listings, whichever was written first (MinIO stores a key as a folder of its own). A rebuild, a new
        device's first sync or a reconcile would then lose the hidden files. So a file and a folder never
        share a name in a pool, not even with the history of a deleted or moved file."""
        parents = keys.parents(key)
        row = None
        if parents:
            row = self.db.execute_sql(f'SELECT key FROM "version" WHERE key IN ({",".join("?" * len(parents))}) '
                                      "LIMIT 1", parents).fetchone()
        if row is None:
            row = self.db.execute_sql('SELECT key FROM "version" WHERE key >= ? AND key < ? LIMIT 1',
                                      (key + "/", key + "0")).fetchone()  # '0' follows '/'
        if row is None:
            return None
        live = self.db.execute_sql('SELECT 1 FROM "file" WHERE path = ? AND NOT deleted LIMIT 1',
                                   (row[0],)).fetchone()
        return row[0], live is not None

    def knows(self, file_id: str, number: int, sha256: str) -> bool:
        """Whether this catalog has seen version ``number`` of file ``file_id`` with this content."""
        row = self._version_row(file_id, number)
        return row is not None and row.sha256 == sha256

    def version(self, path: str, number: int) -> VersionInfo:
        for v in self.versions(path):
            if v.number == number:
                return v
        raise NotFoundError(f"'{path}' has no version {number}.", paths=[path])

    def _live_under(self, prefix: str):
        """Live files whose path starts with ``prefix``: a range on the path index (case-sensitive; LIKE
        would ignore case and scan the whole table)."""
        q = self.m.File.select().where(~self.m.File.deleted)
        if prefix:
            q = q.where((self.m.File.path >= prefix) & (self.m.File.path < _past(prefix)))
        return q.order_by(self.m.File.path)

    def live_shas(self) -> dict[str, str]:
        """path -> SHA-256 of every live file with a current version: what a full sync pass plans with,
        at a few dozen bytes a file instead of a whole FileInfo (100,000 of those were most of the agent's
        peak memory, and stayed in its RSS after the pass)."""
        rows = self.db.execute_sql('SELECT f.path, f.sha256 FROM "file" f JOIN "version" v ON v.file_id = f.id '
                                   'AND v.number = f.version WHERE f.deleted = 0').fetchall()
        return dict(rows)

    def live_paths_containing(self, text: str) -> list[str]:
        """Paths of live files whose path contains ``text`` (case-sensitive; one pass over the table, a few
        ms at 100,000 files)."""
        rows = self.db.execute_sql('SELECT path FROM "file" WHERE deleted = 0 AND instr(path, ?) > 0 ORDER BY path',
                                   (text,)).fetchall()
        return [r[0] for r in rows]

    def walk(self, prefix: str = "") -> Iterator[FileInfo]:
        """Every live file under ``prefix`` ('' or 'folder/'), with its replicas; one query for all."""
        if prefix:
            yield from self._live_files("AND f.path >= ? AND f.path < ? ",
                                        (prefix, _past(prefix)))
        else:
            yield from self._live_files("", ())

    def walk_pages(self, prefix: str = "", page: int = 2000) -> Iterator[FileInfo]:
        """As ``walk``, read ``page`` files at a time: memory stays flat at any size (a whole walk of
        100,000 files peaked at 266 MB in the background repair). Each page is its own read, so a file
        written meanwhile may be missed or met twice: for rounds that come back (repair), not for moves."""
        bounds, args = ("AND path >= ? AND path < ? ", (prefix, _past(prefix))) \
            if prefix else ("", ())
        after = ""
        while True:
            rows = self.db.execute_sql(
                f'SELECT path FROM "file" INDEXED BY file_path WHERE deleted = 0 {bounds}AND path > ? '
                'ORDER BY path LIMIT ?', (*args, after, page)).fetchall()
            if not rows:
                return
            yield from self._live_files("AND f.path >= ? AND f.path <= ? ", (rows[0][0], rows[-1][0]))
            if len(rows) < page:
                return
            after = rows[-1][0]

    # Plain SQL, one row per copy, files in path order: peewee objects cost ~50 us each, which made a
    # walk of 10,000 files take a second.
    _LIVE_SQL = (
        'SELECT f.id, f.path, f.size, f.sha256, f.mtime, f.version, v.number, v.key, v.size, v.sha256, v.mtime, '
        'v.created_at, r.node, r.s3_version, r.state, r.etag FROM "file" f INDEXED BY file_path '
        'LEFT JOIN "version" v ON v.file_id = f.id AND v.number = f.version '
        'LEFT JOIN "replica" r ON r.version_id = v.id WHERE f.deleted = 0 {where}ORDER BY f.path')

    def _live_files(self, where: str, args: tuple) -> list[FileInfo]:
        out: list[FileInfo] = []
        current: list = []

        def flush() -> None:
            first = current[0]
            v = None
            if first[6] is not None:
                reps = tuple(ReplicaInfo(r[12], r[13], r[14], r[15]) for r in current if r[12] is not None)
                v = VersionInfo(first[6], first[7], first[8], first[9], first[10], first[11], reps)
            out.append(FileInfo(first[0], first[1], first[2], first[3], first[4], first[5], False, v))

        for row in self.db.execute_sql(self._LIVE_SQL.format(where=where), args):
            if current and row[0] != current[0][0]:
                flush()
                current = []
            current.append(row)
        if current:
            flush()
        return out

    def _current_replicas(self, file_ids: list[str]) -> dict[str, VersionInfo]:
        out: dict[str, list[ReplicaInfo]] = {}
        meta: dict[str, object] = {}
        m = self.m
        for i in range(0, len(file_ids), 500):
            chunk = file_ids[i:i + 500]
            q = (m.Version.select(m.Version, m.Replica.node, m.Replica.s3_version, m.Replica.state, m.Replica.etag)
                 .join(m.File, on=((m.Version.file == m.File.id) & (m.Version.number == m.File.version)))
                 .switch(m.Version).join(m.Replica, on=(m.Replica.version == m.Version.id))
                 .where(m.File.id.in_(chunk)).objects())
            for row in q:
                meta[row.file_id] = row
                out.setdefault(row.file_id, []).append(ReplicaInfo(row.node, row.s3_version, row.state, row.etag))
        return {fid: VersionInfo(v.number, v.key, v.size, v.sha256, v.mtime, v.created_at,  # type: ignore[attr-defined]
                                 tuple(out[fid])) for fid, v in meta.items()}

    def list_dir(self, folder: str = "") -> list[DirEntry]:
        """Immediate children of ``folder`` ('' or 'a/b/'): sub-folders first, then files.

        Sub-folders are summed up by SQLite over the path index (no Python object per file below them),
        so opening a folder of a 100k-file pool costs milliseconds, not a walk of the whole tree.
        """
        n = len(folder) + 1
        rng, args = ("AND path >= ? AND path < ? ", (folder, _past(folder))) \
            if folder else ("", ())
        sub = (f'SELECT substr(path, {n}, instr(substr(path, {n}), \'/\') - 1) AS name, COUNT(*), '
               f'COALESCE(SUM(size), 0), MAX(mtime) FROM "file" INDEXED BY file_path WHERE deleted = 0 {rng}'
               f'AND instr(substr(path, {n}), \'/\') > 0 GROUP BY name ORDER BY name')
        dirs = [DirEntry(name, folder + name, True, int(size), int(mtime or 0), files=int(count))
                for name, count, size, mtime in self.db.execute_sql(sub, args).fetchall()]
        files = [DirEntry(f.path[len(folder):], f.path, False, f.size, f.mtime, f.sha256, tuple(f.replicas))
                 for f in self._live_files(rng.replace("path", "f.path") + f"AND instr(substr(f.path, {n}), '/') = 0 ",
                                           args)]
        return dirs + files

    def is_dir(self, folder: str) -> bool:
        return bool(folder) and self._live_under(folder.rstrip("/") + "/").exists()

    def count(self) -> tuple[int, int]:
        m = self.m
        row = m.File.select(fn.COUNT(m.File.id), fn.COALESCE(fn.SUM(m.File.size), 0)).where(
            ~m.File.deleted).scalar(as_tuple=True)
        return int(row[0]), int(row[1])

    def files_on_node(self, node: str) -> list[FileInfo]:
        m = self.m
        ids = [r.id for r in (m.File.select(m.File.id)
               .join(m.Version, on=((m.Version.file == m.File.id) & (m.Version.number == m.File.version)))
               .join(m.Replica, on=(m.Replica.version == m.Version.id))
               .where((m.Replica.node == node) & ~m.File.deleted))]
        infos = self._current_replicas(ids)
        return [FileInfo(f.id, f.path, f.size, f.sha256, f.mtime, f.version, f.deleted, infos.get(f.id))
                for f in m.File.select().where(m.File.id.in_(ids))] if ids else []

    def replicas_on_node(self, node: str) -> int:
        m = self.m
        return m.Replica.select().where(m.Replica.node == node).count()

    # --- writing -----------------------------------------------------------------------------------
    def file_id_for(self, path: str) -> tuple[str, int]:
        """The id to use for a new version of ``path`` and that version's number."""
        row = self.db.execute_sql(
            'SELECT f.id, (SELECT MAX(number) FROM "version" WHERE file_id = f.id) FROM "file" f '
            'WHERE f.path = ? ORDER BY f.deleted, f.updated_at DESC LIMIT 1', (path,)).fetchone()
        if row is None:
            return uuid.uuid4().hex, 1
        return row[0], (row[1] or 0) + 1

    @_writes
    def commit_version(self, *, file_id: str, path: str, number: int, key: str, size: int, sha256: str,
                       mtime: float, replicas: Iterable[tuple[str, str | None]],
                       created_at: float | None = None, current: bool = True,
                       etags: dict[str, str] | None = None) -> None:
        now = time.time()
        sql = self.db.execute_sql
        if current:  # whatever else lives at this path now is replaced (its history stays)
            sql('UPDATE "file" SET deleted = 1, updated_at = ? WHERE path = ? AND id != ? AND deleted = 0',
                (now, path, file_id))
        sql('INSERT OR IGNORE INTO "file" (id, path, size, sha256, mtime, version, deleted, updated_at) '
            'VALUES (?, ?, 0, \'\', 0, 0, ?, ?)', (file_id, path, 0 if current else 1, now))
        if current:
            sql('UPDATE "file" SET path = ?, size = ?, sha256 = ?, mtime = ?, version = ?, deleted = 0, '
                'updated_at = ? WHERE id = ?', (path, size, sha256, mtime, number, now, file_id))
        sql('INSERT OR IGNORE INTO "version" (file_id, number, key, size, sha256, mtime, created_at) '
            'VALUES (?, ?, ?, ?, ?, ?, ?)', (file_id, number, key, size, sha256, mtime, created_at or now))
        vid = sql('SELECT id FROM "version" WHERE file_id = ? AND number = ?', (file_id, number)).fetchone()[0]
        for node, version_id in replicas:
            sql('INSERT OR REPLACE INTO "replica" (version_id, node, s3_version, state, verified_at, etag) '
                'VALUES (?, ?, ?, ?, ?, ?)', (vid, node, version_id, ReplicaState.OK, now, (etags or {}).get(node)))

    @_writes
    def commit_write(self, intent_id: int, **version: Any) -> None:
        """A write that reached its quorum: its version recorded and its intent gone, in one transaction."""
        self.commit_version(**version)
        self.remove_intent(intent_id)

    def _version_row(self, file_id: str, number: int):
        m = self.m
        return m.Version.get_or_none((m.Version.file == file_id) & (m.Version.number == number))

    @_writes
    def add_replica(self, file_id: str, number: int, node: str, version_id: str | None) -> None:
        v = self._version_row(file_id, number)
        if v is not None:
            self.m.Replica.insert(version=v, node=node, s3_version=version_id, state=ReplicaState.OK,
                                  verified_at=time.time()).on_conflict_replace().execute()

    @_writes
    def set_replica_state(self, path: str, number: int, node: str, state: str) -> None:
        f = self._row(path)
        v = self._version_row(f.id, number) if f is not None else None
        if v is not None:
            m = self.m
            m.Replica.update(state=state).where((m.Replica.version == v) & (m.Replica.node == node)).execute()

    @_writes
    def remove_replica(self, file_id: str, number: int, node: str) -> None:
        v = self._version_row(file_id, number)
        if v is not None:
            m = self.m
            m.Replica.delete().where((m.Replica.version == v) & (m.Replica.node == node)).execute()

    def versions_with_replica_on(self, node: str) -> list[tuple[str, str, VersionInfo]]:
        """(file id, current path, version) for every version, of any file, with a copy on ``node``."""
        m = self.m
        rows = (m.Version.select(m.Version, m.File.id.alias("fid"), m.File.path.alias("fpath"))
                .join(m.Replica, on=(m.Replica.version == m.Version.id))
                .switch(m.Version).join(m.File, on=(m.Version.file == m.File.id))
                .where(m.Replica.node == node).objects())
        return [(r.fid, r.fpath, self._version_info(r)) for r in rows]

    @_writes
    def prune_replicas(self, file_id: str, number: int, *, keep: set[str], scanned: set[str]) -> None:
        """Forget replicas on ``scanned`` nodes that do not hold the version any more."""
        gone = sorted(scanned - keep)
        if gone:
            self.db.execute_sql(f'DELETE FROM "replica" WHERE node IN ({", ".join("?" * len(gone))}) AND version_id = '
                                '(SELECT id FROM "version" WHERE file_id = ? AND number = ?)', (*gone, file_id, number))

    def histories(self, scope: str) -> Iterator[tuple[FileInfo, float, list[VersionInfo]]]:
        """Every file, live or deleted, with a version stored at the key ``scope`` or under ``scope/`` ('':
        anywhere): the file, when this catalog last changed it (for a deleted file: when it saw the delete),
        and all its versions wherever they are stored, oldest first. One query; files in id order."""
        args: tuple[str, ...] = (scope, scope + "/", scope + "0") if scope else ()
        where = 'WHERE key = ? OR (key >= ? AND key < ?)' if scope else ""
        rows = self.db.execute_sql(
            'SELECT f.id, f.path, f.size, f.sha256, f.mtime, f.version, f.deleted, f.updated_at, v.number, v.key, '
            'v.size, v.sha256, v.mtime, v.created_at, r.node, r.s3_version, r.state, r.etag FROM "file" f '
            f'JOIN "version" v ON v.file_id = f.id LEFT JOIN "replica" r ON r.version_id = v.id WHERE f.id IN '
            f'(SELECT DISTINCT file_id FROM "version" {where}) ORDER BY f.id, v.number, r.node', args)
        for _, file_rows in itertools.groupby(rows, key=lambda r: r[0]):
            group = list(file_rows)
            head = group[0]
            versions = []
            for _, v_rows in itertools.groupby(group, key=lambda r: r[8]):
                vr = list(v_rows)
                copies = tuple(ReplicaInfo(r[14], r[15], r[16], r[17]) for r in vr if r[14] is not None)
                versions.append(VersionInfo(vr[0][8], vr[0][9], vr[0][10], vr[0][11], vr[0][12], vr[0][13], copies))
            info = FileInfo(head[0], head[1], head[2], head[3], head[4], head[5], bool(head[6]))
            yield info, head[7], versions

    def stored_at(self, keys: Iterable[str] = (), folders: Iterable[str] = ()) -> list[StoredVersion]:
        """The versions stored at ``keys`` or under ``folders`` ('a/b', '' for anywhere), with whether each is
        its file's current version of a live file: one query per 500 keys and one per folder."""
        sql = ('SELECT v.file_id, v.number, v.key, v.created_at, NOT f.deleted AND v.number = f.version '
               'FROM "version" v JOIN "file" f ON f.id = v.file_id WHERE ')
        rows: list[tuple] = []
        wanted = sorted(set(keys))
        for i in range(0, len(wanted), 500):
            part = wanted[i:i + 500]
            rows += self.db.execute_sql(sql + f'v.key IN ({",".join("?" * len(part))})', part).fetchall()
        for folder in folders:
            rows += self.db.execute_sql(sql + 'v.key >= ? AND v.key < ?', (folder + "/", folder + "0")).fetchall() \
                if folder else self.db.execute_sql(sql + "1").fetchall()
        return [StoredVersion(r[0], r[1], r[2], r[3], bool(r[4])) for r in rows]

    def count_versions(self, scope: str) -> int:
        """How many versions are stored under the folder ``scope`` ('': anywhere); one indexed count."""
        if not scope:
            return int(self.db.execute_sql('SELECT COUNT(*) FROM "version"').fetchone()[0])
        return int(self.db.execute_sql('SELECT COUNT(*) FROM "version" WHERE key >= ? AND key < ?',
                                       (scope + "/", scope + "0")).fetchone()[0])

    @_writes
    def forget_version(self, file_id: str, number: int) -> bool:
        """Drop version ``number`` of a file (its copies are gone from every node); the file goes too once it
        has no version left. Returns whether the file went."""
        sql = self.db.execute_sql
        sql('DELETE FROM "version" WHERE file_id = ? AND number = ?', (file_id, number))  # replicas: cascade
        if sql('SELECT 1 FROM "version" WHERE file_id = ? LIMIT 1', (file_id,)).fetchone() is None:
            sql('DELETE FROM "file" WHERE id = ?', (file_id,))
            return True
        return False

    @_writes
    def mark_deleted_id(self, file_id: str) -> None:
        self.db.execute_sql('UPDATE "file" SET deleted = 1, updated_at = ? WHERE id = ?', (time.time(), file_id))

    @_writes
    def mark_deleted(self, path: str) -> None:
        m = self.m
        m.File.update(deleted=True, updated_at=time.time()).where(
            (m.File.path == path) & ~m.File.deleted).execute()

    @_writes
    def clear(self) -> None:
        m = self.m
        for model in (m.Replica, m.Version, m.File, m.Intent):
            model.delete().execute()
        self.db.execute_sql('DELETE FROM "catalog_meta" WHERE key = \'filled\' OR key LIKE \'filled:%\'')

    # --- intents (write-ahead) ---------------------------------------------------------------------
    @_writes
    def add_intent(self, kind: str, path: str, file_id: str, version: int, **payload: object) -> int:
        cur = self.db.execute_sql('INSERT INTO "intent" (kind, path, file_id, version, payload, created_at) '
                                  'VALUES (?, ?, ?, ?, ?, ?)',
                                  (kind, path, file_id, version, json.dumps(payload), time.time()))
        return int(cur.lastrowid)

    @_writes
    def update_intent(self, intent_id: int, **payload: object) -> None:
        row = self.m.Intent.get_or_none(self.m.Intent.id == intent_id)
        if row is not None:
            data = json.loads(row.payload)
            data.update(payload)
            row.payload = json.dumps(data)
            row.save()

    @_writes
    def remove_intent(self, intent_id: int) -> None:
        self.db.execute_sql('DELETE FROM "intent" WHERE id = ?', (intent_id,))

    def intents(self, kind: str | None = None) -> list[IntentInfo]:
        q = self.m.Intent.select().order_by(self.m.Intent.id)
        if kind:
            q = q.where(self.m.Intent.kind == kind)
        return [IntentInfo(i.id, i.kind, i.path, i.file_id, i.version, json.loads(i.payload), i.created_at)
                for i in q]
