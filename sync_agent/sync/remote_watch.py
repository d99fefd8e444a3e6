"""Noticing changes on the pool within seconds, as deltas: the change journal (a cursor, polled every
second with one tiny listing per node) and MinIO bucket notifications where a deployment delivers them
(each record names its key). Changes by other S3 tools that no notification reports are found by the
background reconcile (``reconcile.py``).

Notifications are not free: with four agents listening, each PUT cost the nodes 1.37 ms of CPU instead of
0.92 (every event is encoded for every listener) and the listener 0.12 ms to read it. During bulk writes,
ours or another device's, they bring nothing the journal does not (every PoolDrive write has its entry),
so listening pauses while writes arrive in bulk (``hush``) and resumes a few seconds after. A write by
another S3 tool in such a window is found by the background reconcile.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from sync_agent.journal import PREFIX as JOURNAL_PREFIX
from sync_agent.journal import Changes
from sync_agent.node_client import timed_out

if TYPE_CHECKING:
    from sync_agent.pool import Pool

log = logging.getLogger(__name__)
EVENTS = ("s3:ObjectCreated:*", "s3:ObjectRemoved:*")
FULL_EVERY = 10
BULK = 50  # paths in one journal read, or transfers in one pass, that count as writes in bulk
HUSH = 10.0  # seconds notifications stay off after the last sign of bulk writes
# polls between cursor saves while only this process's own entries arrive (none while the pool is quiet). A
# restart resumes from the saved cursor, and entries past it look new to the next process: at 300 (5 min),
# an agent restarted after a big upload re-read every entry it had written and relisted their folders.
SAVE_EVERY = 10
# seconds a notification waits for the journal entry of the same write (the journal is polled each second);
# while other devices' entries keep arriving (within JOURNAL_QUIET s) it waits on, NOTIFY_MAX s at most
NOTIFY_DELAY = 1.5
JOURNAL_QUIET = 5.0
NOTIFY_MAX = 30.0
ENTRY_LAG = 0.5  # a writer's entry follows its change by its coalescing (0.2 s) and the entry's PUT


def keys_in_record(line: bytes) -> set[str]:
    """The object keys a notification line names (an untrusted, possibly partial line: never raises)."""
    try:
        body = json.loads(line)
        records = body.get("Records") or []
        out = set()
        for r in records[:1000]:
            key = r["s3"]["object"]["key"]
            if isinstance(key, str):
                out.add(urllib.parse.unquote_plus(key))
        return out
    except (ValueError, KeyError, TypeError, AttributeError):
        return set()


def _lines(resp: Any, stop: threading.Event, limit: int = 4 << 20) -> Iterator[bytes]:
    """Lines of a long-lived streaming response, read in whatever blocks arrive.

    (``readline`` on a urllib3 response reads one byte per call: under a burst of notifications, such as
    our own bulk upload, that alone took most of a core.) A line longer than ``limit`` is dropped.
    """
    buf = b""
    while not stop.is_set():
        block = resp.read1(65536)
        if not block:
            return  # the stream ended: the caller listens again after a pause
        buf += block
        if b"\n" not in block:
            if len(buf) > limit:
                buf = b""
            continue
        *lines, buf = buf.split(b"\n")
        yield from lines


class RemoteWatcher:
    def __init__(self, pool: Pool, on_change: Callable[[Changes, dict[str, str] | None], None], poll: float = 1.0,
                 cursor: dict[str, str] | None = None) -> None:
        """``on_change(changes, cursor)``: what changed, and the journal cursor to save once applied."""
        self.pool = pool
        self.on_change = on_change
        self.poll = poll
        self.cursor = dict(cursor or {})
        self._stop = threading.Event()
        self._streams: dict[str, Any] = {}  # node -> its open notification stream (under _streams_lock)
        self._streams_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.supported: dict[str, bool] = {}
        self._hush_until = 0.0
        self.hushes = 0  # times listening was paused (tests count it)
        self.events = 0  # notification lines read
        self._recent: deque[tuple[float, int]] = deque()  # (when, how many paths) that arrived lately
        self._lock = threading.Lock()
        self._notified_paths: set[str] = set()  # named by notifications, waiting NOTIFY_DELAY (under _lock)
        self._notify_timer: threading.Timer | None = None
        self._journal_named: dict[str, float] = {}  # path -> when a journal entry last named it (under _lock)
        self._journal_at = -1e9  # when an entry of another device was last read
        self._journal_folders: dict[str, float] = {}  # 'a/b/' -> when an entry last named it (under _lock)
        self._notify_first = 0.0  # when the notified paths now waiting began to wait
        self._notify_last = 0.0  # when the last of them arrived
        self._polled_at = -1e9  # when a poll of the journal last finished

    def hush(self, seconds: float | None = None) -> None:
        """Stop listening for the next ``seconds`` (default ``HUSH``; later calls extend it): writes are
        arriving in bulk."""
        until = time.monotonic() + (HUSH if seconds is None else seconds)
        if until <= self._hush_until:
            return
        if self._hush_until < time.monotonic():
            self.hushes += 1
            log.info("bulk writes: bucket notifications paused (the journal names every PoolDrive write)")
        self._hush_until = until
        with self._streams_lock:
            for stream in self._streams.values():
                _shut(stream)

    def _hushed(self) -> None:
        while not self._stop.is_set() and (left := self._hush_until - time.monotonic()) > 0:
            self._stop.wait(min(left, 1.0))

    def _listen(self, node: str) -> None:
        """One long-lived ListenBucketNotification request per node, read line by line.

        (minio-py's EventIterable spins when the stream ends without closing, so the stream is read here.)
        """
        client = self.pool.client(node)
        delay = 1.0
        failing = False  # said once per run of failures, not once per retry
        while not self._stop.is_set():
            self._hushed()
            try:
                resp = client.listen(list(EVENTS))
                if resp is None:
                    continue  # a quiet bucket: nothing to say yet, ask again
                failing = False
                with self._streams_lock:
                    self._streams[node] = resp
                self.supported[node] = True
                delay = 1.0
                try:
                    for line in _lines(resp, self._stop):
                        if self._hush_until > time.monotonic():
                            break  # a request made before the hush, answered by the first bulk write
                        if b"Records" in line:
                            self.events += 1
                            self._notified(keys_in_record(line))
                finally:
                    with self._streams_lock:  # never shut once its connection may serve another request
                        self._streams.pop(node, None)
                    resp.close()
                    resp.release_conn()
            except Exception as e:
                if self._hush_until > time.monotonic():
                    continue  # we cut it: listen again once the bulk writes are over
                if timed_out(e):
                    continue  # a stream that stayed quiet past the read timeout: listen again
                if not failing:
                    log.info("bucket notifications from %s stopped (%s); the journal covers it", node,
                             type(e).__name__)
                failing = True
                self.supported.setdefault(node, False)
            if self._hush_until > time.monotonic():
                continue
            self._stop.wait(delay)
            delay = min(delay * 2, 30.0)

    def _notified(self, keys: set[str]) -> None:
        """Paths a notification named: acted on after ``NOTIFY_DELAY``, unless a journal entry named them
        meanwhile. A notification names one key; the entry of a PoolDrive write names all it changed (a
        move: the old path and the new). Taken alone, the new path of a move was downloaded before the
        entry said the old one had gone, and the old one then went to the trash, instead of one rename."""
        journal = self.pool.journal
        paths = {k for k in keys if not k.startswith(JOURNAL_PREFIX) and not journal.is_own(k)}
        if not paths:
            return
        with self._lock:
            self._notified_paths |= paths
            self._notify_last = time.monotonic()
            if self._notify_timer is None:
                self._notify_first = time.monotonic()
                self._arm_notify_timer()

    def _arm_notify_timer(self) -> None:
        """The notified paths are looked at again in ``NOTIFY_DELAY`` (called under ``_lock``)."""
        self._notify_timer = threading.Timer(NOTIFY_DELAY, self._notified_flush)
        self._notify_timer.daemon = True
        self._notify_timer.start()

    def _notified_flush(self) -> None:
        now = time.monotonic()
        with self._lock:
            folders = tuple(f for f, t in self._journal_folders.items() if now - t <= 2 * NOTIFY_DELAY)
            self._notified_paths = {p for p in self._notified_paths if not p.startswith(folders)
                                    and now - self._journal_named.get(p, -1e9) > 2 * NOTIFY_DELAY}
            waiting = now - self._notify_first < NOTIFY_MAX
            unread = self._polled_at < self._notify_last + ENTRY_LAG  # the journal not read since they came
            if self._notified_paths and waiting and (unread or now - self._journal_at < JOURNAL_QUIET):
                # PoolDrive devices are writing (or may be): their entries will name these paths with whatever
                # else each change touched (a folder move names both folders once it is done). Wait for them
                self._arm_notify_timer()
                return
            self._notify_timer = None
            paths, self._notified_paths = self._notified_paths, set()
        if paths and not self._stop.is_set():  # no cursor with it: only the journal poll says how far it was read
            self._arrived(len(paths))
            self.on_change(Changes(paths=paths, entries=1), None)

    def _named_by_journal(self, changes: Changes) -> None:
        now = time.monotonic()
        with self._lock:
            self._journal_at = now
            self._journal_named.update(dict.fromkeys(changes.paths, now))
            self._journal_folders.update(dict.fromkeys(changes.folders, now))
            if len(self._journal_folders) > 1000:
                self._journal_folders = {f: t for f, t in self._journal_folders.items() if now - t < 4 * NOTIFY_DELAY}
            if len(self._journal_named) > 20_000:  # only the last seconds matter
                self._journal_named = {p: t for p, t in self._journal_named.items() if now - t < 4 * NOTIFY_DELAY}

    def _arrived(self, paths: int) -> None:
        """Another device's changes arrived (from the journal or a notification): many within the time it
        takes to read every node's journal are writes in bulk."""
        if not paths:
            return
        now = time.monotonic()
        with self._lock:
            self._recent.append((now, paths))
            while self._recent[0][0] < now - FULL_EVERY * self.poll:
                self._recent.popleft()
            bulk = sum(n for _, n in self._recent) >= BULK
        if bulk:
            self.hush()

    def _poll_journal(self) -> None:
        """Every ``poll`` seconds the nodes entries are written to; every ``FULL_EVERY`` polls all nodes
        (an entry written while this device saw other nodes as healthy)."""
        tick = 0
        published: dict[str, str] = dict(self.cursor)
        while not self._stop.is_set():
            try:
                journal = self.pool.journal
                nodes = None if tick % FULL_EVERY == 0 else journal.writer_nodes()
                tick += 1
                changes = journal.read(self.cursor, nodes)
                self._polled_at = time.monotonic()
                self._arrived(len(changes.paths))
                if changes:
                    self._named_by_journal(changes)
                if changes or (tick % SAVE_EVERY == 0 and self.cursor != published):
                    published = dict(self.cursor)
                    self.on_change(changes, published)
            except Exception:  # never let the poll die: the next round tries again
                log.exception("reading the change journal failed")
            self._stop.wait(self.poll)

    def start(self) -> RemoteWatcher:
        t = threading.Thread(target=self._poll_journal, name="pooldrive-journal", daemon=True)
        t.start()
        self._threads.append(t)
        for node in self.pool.clients:
            t = threading.Thread(target=self._listen, args=(node,), name=f"pooldrive-notify-{node}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            if self._notify_timer is not None:
                self._notify_timer.cancel()
        with self._streams_lock:
            for stream in self._streams.values():
                _shut(stream)


def _shut(resp: Any) -> None:
    """End a stream another thread is blocked reading (closing it would not wake that read)."""
    try:
        sock = resp.connection.sock if resp.connection is not None else None
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)
    except (OSError, AttributeError) as e:
        log.debug("ending a notification stream: %r", e)
