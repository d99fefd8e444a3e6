"""The change journal: a cursor over what changed on the pool, so other devices apply deltas.

MinIO's bucket notifications are not delivered by every deployment (single-drive servers here never
answered a ListenBucketNotification), so every PoolDrive process that changes the pool also writes a small
entry under ``.pooldrive/journal/``: ``<time ns, 20 digits>-<writer id>``, a JSON body naming the paths
(and, for folder operations, the folders) it changed. Entries are coalesced (one per ``coalesce`` seconds
per process) and written to two nodes, so one node being down does not hide them.

Readers keep a cursor per node (the newest entry key they have read) and list with ``start_after`` the
cursor: an idle poll is one tiny listing per node, whatever the pool holds, and a change costs reading its
entry and re-listing just the paths it names (``rebuild.refresh_paths``). Entries from this process are
skipped: our own writes are already in our catalog.

Entries are hints, never truth: anyone who can write to the bucket can write one, so a reader only uses
them to decide *where to look*; what it then finds on the nodes is validated like any other object. The
body is bounded (``MAX_ENTRY_BYTES``, ``MAX_PATHS``); an unreadable entry is ignored (the background
reconcile still catches whatever it described). Agents delete entries older than ``RETENTION``, whoever
wrote them (``prune_expired``, at the start of each reconcile round); a reader whose cursor is older than
that falls back to a full refresh.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sync_agent import keys
from sync_agent.errors import NodeError, NodeUnreachableError, PoolDriveError

if TYPE_CHECKING:
    from sync_agent.pool_view import PoolView

log = logging.getLogger(__name__)

PREFIX = ".pooldrive/journal/"
COPIES = 2
MAX_ENTRY_BYTES = 1024 * 1024
MAX_PATHS = 10_000
RETENTION = 7 * 24 * 3600.0
LOOKBACK_NS = 30 * 10**9  # each poll re-lists the last 30 s of entries (late uploads, small clock skews)


@dataclass
class Changes:
    """What journal entries since a cursor named: paths and folders to look at again."""

    paths: set[str] = field(default_factory=set)
    folders: set[str] = field(default_factory=set)  # 'a/b/' prefixes
    entries: int = 0

    def __bool__(self) -> bool:
        return bool(self.paths or self.folders)

    def update(self, other: Changes) -> None:
        self.paths |= other.paths
        self.folders |= other.folders
        self.entries += other.entries


def entry_key(ns: int, writer: str) -> str:
    return f"{PREFIX}{ns:020d}-{writer}"


def parse_entry(raw: bytes) -> Changes:
    """An entry body as written by ``Journal``; anything else gives an empty change set (never raises)."""
    out = Changes(entries=1)
    if len(raw) > MAX_ENTRY_BYTES:
        return out
    try:
        body = json.loads(raw.decode("utf-8")) if raw else {}
    except (UnicodeDecodeError, ValueError):
        return out
    if not isinstance(body, dict):
        return out
    for name, target in (("paths", out.paths), ("folders", out.folders)):
        items = body.get(name)
        if isinstance(items, list):
            target.update(p for p in items[:MAX_PATHS] if _valid(p, folder=name == "folders"))
    return out


def _valid(p: object, *, folder: bool) -> bool:
    """Only pool paths in their normal form: never '/etc', '../x', control characters or a bare ''."""
    if not isinstance(p, str) or not 0 < len(p) <= 1024:
        return False
    try:
        return (keys.normalize_dir(p) if folder else keys.normalize(p)) == p
    except PoolDriveError:
        return False


ENTRY_NAME = re.compile(r"^(\d{20})-[0-9a-f]{12}$")
MAX_SKEW_NS = 300 * 10**9  # an entry stamped further in the future than this is ignored


def entry_time(key: str) -> int | None:
    """The time (ns) in a well-formed entry key, else None (stray keys never move a cursor)."""
    m = ENTRY_NAME.match(key[len(PREFIX):]) if key.startswith(PREFIX) else None
    return int(m.group(1)) if m else None


class Journal:
    def __init__(self, pool: PoolView, coalesce: float = 0.2) -> None:
        self.pool = pool
        self.coalesce = coalesce
        self.writer = secrets.token_hex(6)  # this process; its own entries are skipped when reading
        self._lock = threading.Lock()
        self._writing = threading.Lock()  # one entry written at a time; ``flush`` waits for the timer's
        self._pending = Changes()
        self._timer: threading.Timer | None = None
        self._own: dict[str, float] = {}  # paths this process changed lately (their notifications are ours)
        self._own_limit = 10_000
        self._read_keys: dict[str, int] = {}  # entries already read (the look-back lists them again)
        self.enabled = not pool.cfg.read_only

    # --- writing ------------------------------------------------------------------------------------
    def record(self, paths: Iterable[str] = (), folders: Iterable[str] = ()) -> None:
        """Note that this process changed ``paths`` (returns at once; written in the background)."""
        if not self.enabled:
            return
        paths = list(paths)
        now = time.monotonic()
        with self._lock:
            self._own.update((p, now) for p in paths)
            self._prune_own(now)
            self._pending.paths.update(paths)
            self._pending.folders.update(folders)
            if self._timer is not None:
                return
            self._timer = threading.Timer(self.coalesce, self._flush)
            self._timer.daemon = True
            self._timer.start()

    def expect(self, paths: Iterable[str]) -> None:
        """This process is about to change ``paths``: notifications about them are ours (they can arrive
        before the change is committed and recorded)."""
        now = time.monotonic()
        with self._lock:
            self._own.update((p, now) for p in paths)
            self._prune_own(now)

    def _prune_own(self, now: float) -> None:
        if len(self._own) > self._own_limit:  # amortised: the limit doubles with what is still recent
            self._own = {p: t for p, t in self._own.items() if now - t < 30}
            self._own_limit = max(10_000, 2 * len(self._own))

    def is_own(self, path: str, within: float = 30.0) -> bool:
        """Whether this process changed (or is changing) ``path`` in the last ``within`` seconds."""
        with self._lock:
            t = self._own.get(path)
        return t is not None and time.monotonic() - t < within

    def flush(self) -> None:
        """Write what is pending now (on close, so a CLI command's changes are announced). An entry the
        timer is writing at this moment is finished first: the pool closes its threads after this, and that
        entry's copies were once refused for it (a test saw "cannot schedule new futures after shutdown")."""
        with self._lock:
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        self._flush(from_timer=False)

    def _flush(self, from_timer: bool = True) -> None:
        with self._writing:
            with self._lock:
                if from_timer:
                    self._timer = None
                pending, self._pending = self._pending, Changes()
            if pending:
                self._write(pending)

    def _write(self, pending: Changes) -> None:
        body = json.dumps({"v": 2, "paths": sorted(pending.paths)[:MAX_PATHS],
                           "folders": sorted(pending.folders)[:MAX_PATHS]}).encode()
        if len(pending.paths) > MAX_PATHS or len(body) > MAX_ENTRY_BYTES:  # huge: name the folders instead
            body = json.dumps({"v": 2, "paths": [],
                               "folders": sorted(_folders_of(pending.paths) | pending.folders)}).encode()
        key = entry_key(time.time_ns(), self.writer)
        # the order readers poll in (``writer_nodes``); COPIES at once, so one frozen node delays no reader
        todo = [n for n in sorted(self.pool.clients) if not self.pool.health.is_down(n)]
        copies = 0
        while todo and copies < COPIES:
            now, todo = todo[:COPIES - copies], todo[COPIES - copies:]
            copies += sum(self.pool.io_executor.map(lambda n: self._put_entry(n, key, body), now))

    def _put_entry(self, node: str, key: str, body: bytes) -> bool:
        try:
            self.pool.client(node).put_if(key, body, {}, if_match=False, quick=True)
            return True
        except NodeError as e:
            log.debug("journal entry not written to %s: %s", node, e)
            if isinstance(e, NodeUnreachableError):
                self.pool.note_failure(node, e)
            return False

    # --- reading ------------------------------------------------------------------------------------
    def cursor(self) -> dict[str, str]:
        """A cursor at the journal's current end on every reachable node (start reading from now)."""
        out: dict[str, str] = {}
        now = time.time_ns()
        for node in self.pool.clients:
            try:
                listed = [o.key for o in self.pool.client(node).list(PREFIX)]
            except NodeError as e:
                log.info("journal cursor: %s not listed (%s)", node, e.message)
                continue
            valid = [k for k in listed if (ts := entry_time(k)) is not None and ts <= now + MAX_SKEW_NS]
            out[node] = max(valid, default="")
            with self._lock:  # what is there now counts as read
                self._read_keys.update((k, entry_time(k) or 0) for k in valid)
        return out

    def writer_nodes(self) -> list[str]:
        """Where entries are written now: the first ``COPIES`` healthy nodes in name order. Every entry is
        on the first healthy node its writer saw, so polling these catches it when health agrees."""
        return [n for n in sorted(self.pool.clients) if not self.pool.health.is_down(n)][:COPIES]

    def read(self, cursor: dict[str, str], nodes: list[str] | None = None) -> Changes:
        """What entries after ``cursor`` name (updating it); one listing per node when nothing changed.

        The cursor is per node the newest well-formed entry read. Each listing also covers the last
        ``LOOKBACK`` of time, so an entry whose upload finished late (or whose writer's clock is a little
        behind) is still seen; entries already read are skipped. Keys that are not entries, or stamped in the future,
        never move the cursor. ``nodes``: which nodes to look at (default all). A node missing from the
        cursor starts at 'now' (its first look only sets the mark).
        """
        out = Changes()
        now = time.time_ns()
        for node in nodes if nodes is not None else list(self.pool.clients):
            if self.pool.health.is_down(node):
                continue
            client = self.pool.client(node)
            first = node not in cursor
            last = cursor.get(node, "")  # read by whoever saved the cursor, even in an earlier process
            mark = entry_time(last) or 0
            # after the cursor, and the last LOOKBACK of time (a late upload can only be that recent): once
            # the pool has been quiet that long, an idle poll lists nothing at all
            start = f"{PREFIX}{min(mark, now - LOOKBACK_NS):020d}" if mark else None
            t = time.monotonic()
            try:
                listed = client.list_keys(PREFIX, start_after=start, quick=True)  # a frozen node: 3 s
            except NodeUnreachableError as e:
                self.pool.note_failure(node, e)
                continue
            except NodeError:  # e.g. a share's scoped key may not read the journal: the reconcile covers it
                continue
            self.pool.health.record(node, True, time.monotonic() - t)  # the poll doubles as a probe
            new = [k for k in listed if (ts := entry_time(k)) is not None and ts <= now + MAX_SKEW_NS]
            if new:
                newest = max(new)
                if newest > cursor.get(node, ""):
                    cursor[node] = newest
            else:
                cursor.setdefault(node, "")
            with self._lock:
                fresh = [k for k in new if k not in self._read_keys and k != last]
                self._read_keys.update((k, entry_time(k) or 0) for k in fresh)
                floor = now - 4 * LOOKBACK_NS
                if len(self._read_keys) > 1000:
                    self._read_keys = {k: ts for k, ts in self._read_keys.items() if ts > floor}
            if first:
                continue
            failed = []
            for key in fresh:
                if not key.endswith("-" + self.writer):
                    got = self._read_entry(client, key)
                    if got is None:
                        failed.append(key)
                    else:
                        out.update(got)
            if failed:  # read again at the next poll: not marked read, and the cursor stays before it
                self._retry_later(node, cursor, failed, new)
        return out

    def _retry_later(self, node: str, cursor: dict[str, str], failed: list[str], listed: list[str]) -> None:
        first_failed = min(failed)
        with self._lock:
            for k in failed:
                self._read_keys.pop(k, None)
        before = [k for k in listed if k < first_failed]
        cursor[node] = max(before) if before else ""
        if not cursor[node]:  # nothing read before it in this listing: a well-formed mark just before it
            cursor[node] = entry_key((entry_time(first_failed) or 1) - 1, "0" * 12)

    def prune_expired(self) -> int:
        """Delete entries older than ``RETENTION`` from every node, whoever wrote them; returns how many
        went. Run now and then, not per poll."""
        cutoff = time.time_ns() - int(RETENTION * 1e9)
        gone = 0
        for node in self.pool.clients:
            if self.pool.health.is_down(node):
                continue
            client = self.pool.client(node)
            try:
                for o in client.list(PREFIX, versions=True):
                    ts = entry_time(o.key)
                    if ts is not None and ts < cutoff:
                        client.delete(o.key, o.version_id)
                        gone += 1
            except NodeError as e:
                log.info("journal pruning skipped %s this time (%s)", node, e.message)
                continue
        return gone

    @staticmethod
    def _read_entry(client, key: str) -> Changes | None:
        """None when the node did not answer (tried again); an entry that cannot be parsed counts as read."""
        try:
            resp = client.get(key)
        except NodeError as e:
            log.info("journal entry %s not read (%s); trying again at the next poll", key, e.message)
            return None
        try:
            return parse_entry(resp.read(MAX_ENTRY_BYTES + 1))
        except Exception as e:  # a broken stream is an unreadable entry, not a reason to stop polling
            log.info("journal entry %s unreadable (%s)", key, type(e).__name__)
            return Changes(entries=1)
        finally:
            resp.close()
            resp.release_conn()


def _folders_of(paths: Iterable[str]) -> set[str]:
    return {p.rsplit("/", 1)[0] + "/" if "/" in p else "" for p in paths}
