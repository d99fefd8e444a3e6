"""Many new small files written at once (a folder uploaded, a first sync): the per-file work done per batch.

Why: written one by one, a 64 KB file cost the client 1.5 ms of CPU besides its two PUTs (0.3 ms each):
five catalog queries, two commits waited for, a hand-off per copy. Here a batch of files is prepared at
once (read, hashed, placed; one query says which paths are new; every intent in one transaction), each
file's copies are written by one worker, one after the other, and the finished files are recorded in one
transaction.

Only the plainest case is taken: a file of at most ``MAX_BODY`` bytes whose path the catalog has never
seen, placed on nodes that answer quickly (``quick``). A batch does not race a slow node as the full path
does, so a node far away, or whose copies start taking long, is left to the full path. Every copy is a
compare-and-swap (If-None-Match: *), so a file someone else created meanwhile is never overwritten.
Anything that does not go exactly right (a node failing, refusing or silent past the quick timeout, a
path taken meanwhile, the source changing, a copy with a wrong ETag) is undone and handed back: the
caller sends it through ``writer.put_file``, which moves down the ranking, races slow nodes, asks the
node what it holds and turns a lost race into a conflict, as for any single file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import stat
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sync_agent import metadata, writer
from sync_agent.errors import LocalIOError, NodeError, NodeUnreachableError, PoolDriveError, PreconditionFailed
from sync_agent.placement import Health, ReplicaView, write_order
from sync_agent.small_objects import MAX_BODY
from sync_agent.transfer import Digest, RateLimiter, TransferControl, digest_bytes, etag_fits

if TYPE_CHECKING:
    from sync_agent.pool_view import PoolView

log = logging.getLogger(__name__)

CHUNK = 64  # files prepared, and recorded, together
QUICK_RTT = 0.05  # seconds: nodes farther than this round trip take no batch copies (the full path races them)
SLOW_COPY = 0.5  # seconds: a batch copy that took longer leaves its node to the full path for the rest of the run


@dataclass
class _File:
    local: Path
    key: str
    st: os.stat_result
    body: bytes
    digest: Digest
    file_id: str = ""
    meta: dict[str, str] = field(default_factory=dict)
    nodes: list[str] = field(default_factory=list)
    intent: int = 0
    written: dict[str, str | None] = field(default_factory=dict)
    etags: dict[str, str] = field(default_factory=dict)
    ok: bool = False
    error: PoolDriveError | None = None  # set: reported as failed, not handed back


@dataclass(frozen=True)
class Outcome:
    """One file the batch settled: written as version 1 with this content (``error`` None), or failed.
    ``mtime_ns`` is the file's when it was read, unchanged until its copies were all written."""

    key: str
    size: int
    sha256: str
    mtime_ns: int
    error: PoolDriveError | None = None


def fits(size: int) -> bool:
    return size <= MAX_BODY


def quick(view: ReplicaView) -> bool:
    """Whether a node may take batch copies: up and within ``QUICK_RTT``. Its round trip, not its smoothed
    answer time: a near node slowed by the load of this very upload (a loopback node's PUTs took 50 ms on a
    loaded machine) would otherwise send whole batches the full way. (A thin link with a short round trip
    is found out by its first slow copy, see ``SLOW_COPY``.)"""
    return view.health == Health.UP and view.rtt <= QUICK_RTT


def put_new(pool: PoolView, files: Iterable[tuple[Path, str]], *, parallel: int,
            on_file: Callable[[Outcome], None], control: TransferControl | None = None,
            limiter: RateLimiter | None = None, before_batch: Callable[[], None] | None = None,
            on_left: Callable[[tuple[Path, str]], None] | None = None) -> list[tuple[Path, str]]:
    """Write the new small files among ``files`` (local path, normalized pool key); ``on_file`` is called,
    on this thread, for each one written or failed for good. ``limiter`` paces the copies (else
    ``control``'s); ``before_batch`` runs before each batch is placed. Returns the files left to the full
    path: not small, not new, or not written here for any reason; ``on_left`` is told each of them, on
    this thread, as soon as it is left (the full path can start on it while the batches go on)."""
    if pool.cfg.is_share:  # a recipient's writes are checked against the share: the full path does it
        out = list(files)
        if on_left is not None:
            for item in out:
                on_left(item)
        return out
    left: list[tuple[Path, str]] = []

    def hand_back(items: Iterable[tuple[Path, str]]) -> None:
        for item in items:
            left.append(item)
            if on_left is not None:
                on_left(item)

    done: queue.SimpleQueue[_File] = queue.SimpleQueue()
    finished: list[_File] = []
    in_flight = 0
    todo = list(files)
    pace = limiter if limiter is not None else control.limiter if control is not None else None
    slow: set[str] = set()  # nodes whose batch copies took too long: the full path's, from now on
    slots = _Slots(max(1, parallel))
    unsettled: dict[int, _File] = {}  # submitted, not yet back from its worker

    def settle(f: _File) -> None:
        nonlocal in_flight
        in_flight -= 1
        unsettled.pop(id(f), None)
        if f.ok:
            finished.append(f)
        elif f.error is not None:
            on_file(Outcome(f.key, f.digest.size, f.digest.sha256, f.st.st_mtime_ns, f.error))
        else:
            hand_back([(f.local, f.key)])

    def next_done() -> _File:
        while True:
            slots.watch(slow)
            try:
                return done.get(timeout=0.25)
            except queue.Empty:
                pass

    # threads beyond the slots: a file stuck on a node gives its slot back and waits on its own thread
    ex = ThreadPoolExecutor(2 * max(1, parallel), thread_name_prefix="small-put")
    try:
        for start in range(0, len(todo), CHUNK):
            _record(pool, finished, on_file, control)  # nothing finished waits on a pause
            if control is not None:
                try:
                    control.checkpoint()
                except PoolDriveError:
                    hand_back(todo[start:])  # cancelled: the full path reports each
                    break
            if before_batch is not None:
                before_batch()
            batch, rest = _prepare(pool, todo[start:start + CHUNK], slow)
            hand_back(rest)
            for f in batch:
                unsettled[id(f)] = f
                ex.submit(_write_copies, pool, f, control, pace, slow, slots, done.put)
                in_flight += 1
            while in_flight > 2 * CHUNK:  # two batches ahead at most: bounded memory
                settle(next_done())
            while not done.empty():
                settle(done.get())
            if len(finished) >= CHUNK:
                _record(pool, finished, on_file, control)
        while in_flight:
            settle(next_done())
        _record(pool, finished, on_file, control)
    except BaseException:
        # a catalog error, an interrupt, a failing callback: nothing written here stays unrecorded and undone
        ex.shutdown(wait=True, cancel_futures=True)
        for f in [*finished, *unsettled.values()]:  # written or never started, and not recorded
            if f.intent and f.error is None:
                try:
                    _undo(pool, f)
                except Exception as e:  # the next start undoes what is left (the intent stays)
                    log.info("could not take back the batch write of '%s': %s", f.key, e)
        raise
    ex.shutdown(wait=True)
    return left


class _Slots:
    """``parallel`` files written at once. A file whose copy has taken longer than ``SLOW_COPY`` gives its
    slot back (``watch``) and its node is left to the full path: a node that froze holds a thread until
    its request times out, not the whole batch."""

    def __init__(self, parallel: int) -> None:
        self._free = threading.Semaphore(parallel)
        self._lock = threading.Lock()
        self._copying: dict[int, tuple[str, float]] = {}  # file -> (node, since)
        self._given: set[int] = set()  # files whose slot watch() gave back

    def take(self) -> None:
        self._free.acquire()

    @contextlib.contextmanager
    def copying(self, f: _File, node: str) -> Iterator[None]:
        """One request of ``f`` to ``node``, timed by ``watch`` while it runs."""
        with self._lock:
            self._copying[id(f)] = (node, time.monotonic())
        try:
            yield
        finally:
            with self._lock:
                self._copying.pop(id(f), None)

    def give(self, f: _File) -> None:
        with self._lock:
            if id(f) in self._given:
                self._given.discard(id(f))
                return
        self._free.release()

    def watch(self, slow: set[str]) -> None:
        now = time.monotonic()
        with self._lock:
            stuck = [(k, node) for k, (node, since) in self._copying.items()
                     if now - since > SLOW_COPY and k not in self._given]
            for k, node in stuck:
                self._given.add(k)
                if node not in slow:
                    log.info("%s is slow to take copies; the rest of this upload races it", node)
                slow.add(node)
        for _ in stuck:
            self._free.release()


def _prepare(pool: PoolView, items: list[tuple[Path, str]], slow: set[str]
             ) -> tuple[list[_File], list[tuple[Path, str]]]:
    """Read, hash and place the files of one batch and commit their intents; returns (taken, left)."""
    left: list[tuple[Path, str]] = []
    files: list[_File] = []
    cat = pool.catalog
    known = cat.known_paths([key for _, key in items])  # before reading: a folder uploaded again is read once
    for local, key in items:
        if key in known or cat.name_clash(key) is not None:  # the full path says what is wrong
            left.append((local, key))
            continue
        try:
            st = local.stat()
            if not stat.S_ISREG(st.st_mode) or not fits(st.st_size):
                raise LocalIOError("not a small regular file")
            with open(local, "rb") as fh:
                body = fh.read(st.st_size + 1)  # one more byte: a file grown since its stat is seen
        except (OSError, LocalIOError):
            left.append((local, key))  # the full path says what is wrong, with the file's name
            continue
        if len(body) != st.st_size:
            left.append((local, key))
            continue
        files.append(_File(local, key, st, body, digest_bytes(body)))
    if not files:
        return [], left
    unusable = pool.unusable_nodes()
    usable = [n.name for n in pool.cfg.nodes if n.name not in unusable]
    fast = {v.node for v in pool.health.views(usable) if quick(v) and v.node not in slow}
    specs = pool.specs()
    taken: list[_File] = []
    for f in files:
        copies = pool.durability(f.key).copies
        order = write_order(f.key, specs, copies, usable)
        if len(order) < copies or not fast.issuperset(order[:copies]):
            left.append((f.local, f.key))
            continue
        f.file_id, f.nodes = uuid.uuid4().hex, order[:copies]
        f.meta = metadata.object_meta(f.file_id, 1, f.digest.sha256, f.digest.size, f.st.st_mtime)
        taken.append(f)
    if not taken:
        return [], left
    pool.journal.expect([f.key for f in taken])  # the nodes' notifications about these writes are ours
    pid = os.getpid()
    with cat.atomic():
        for f in taken:
            f.intent = cat.add_intent("put", f.key, f.file_id, 1, nodes=f.nodes, owner=pid, sha256=f.digest.sha256,
                                      written=f.meta["written"], mtime=f.st.st_mtime)
    return taken, left


def _write_copies(pool: PoolView, f: _File, control: TransferControl | None, pace: RateLimiter | None,
                  slow: set[str], slots: _Slots, report: Callable[[_File], None]) -> None:
    """Every copy of one file, one after the other, each only where nothing lives at the path yet."""
    slots.take()
    maybe: list[str] = []  # nodes whose request failed after it may have reached them
    try:
        for node in f.nodes:
            if control is not None:
                control.checkpoint()  # paused: waits here; cancelled: handed back, and reported so there
            if node in slow or pool.health.is_down(node):  # found slow or down since the batch was placed
                raise _Back(f"{node} is slow or down")
            client = pool.client(node)
            if pace is not None:
                pace.take(len(f.body))
            with slots.copying(f, node), pool.health.request(node):
                t = time.monotonic()
                try:
                    vid, etag = client.put_if(f.key, f.body, f.meta, if_match=None, quick=True)
                except NodeError as e:
                    refused = isinstance(e, PreconditionFailed)
                    never_sent = isinstance(e, NodeUnreachableError) and not e.sent
                    if not refused and not never_sent:
                        maybe.append(node)  # a lost answer: the copy may be there
                    raise
                f.written[node] = vid
                f.etags[node] = etag
                if not etag_fits(etag, 1) or len(set(f.etags.values())) != 1:
                    raise _Back(f"{node} stored it with ETag {etag}")
                took = time.monotonic() - t
                pool.health.record(node, True, min(took, pool.health.get(node).latency * 2))  # as the full path
                if took > SLOW_COPY:
                    slow.add(node)
        now = f.local.stat()
        if (now.st_size, now.st_mtime_ns, now.st_ino) != (f.st.st_size, f.st.st_mtime_ns, f.st.st_ino):
            raise _Back("the file changed while it was uploaded")
        f.ok = True
    except (PoolDriveError, OSError, _Back) as e:
        if isinstance(e, NodeError) and e.node:
            pool.note_failure(e.node, e)
        log.debug("'%s' goes the full way: %s", f.key, e)
        _undo(pool, f, maybe)
    except BaseException as e:  # never leave the caller waiting for this file
        _undo(pool, f, maybe)
        f.error = PoolDriveError(f"'{f.key}' could not be uploaded: {type(e).__name__}", paths=[f.key])
        raise
    finally:
        f.body = b""
        slots.give(f)
        report(f)


class _Back(Exception):
    """This file leaves the batch for the full path."""


def _undo(pool: PoolView, f: _File, maybe: list[str] | None = None) -> None:
    """Take back the copies this file's batch write made, and any it may have made where an answer was
    lost (``maybe``), and forget its intent; the file is handed back to the full path.

    A written copy that cannot be deleted now (a reset on a flaky link), or a copy that may land later
    (``maybe``), keeps the intent, marked as watching: the full path recognises such a copy as one this
    device gave up (``writer._Expect``) and writes over it, and the next start or repair round takes it
    back. (A copy that could not be deleted used to fail the file: one in 500 over a link resetting 5 %
    of its connections.)"""
    kept = []
    for node, vid in list(f.written.items()):
        try:
            pool.client(node).delete(f.key, vid)
        except NodeError as e:
            log.info("could not take back a copy of '%s' on %s yet (%s); the next start or repair round does",
                     f.key, node, e.message)
            kept.append(node)
        del f.written[node]
    if maybe or kept:
        pool.catalog.update_intent(f.intent, watch=True)  # no write of it in progress any more
    if maybe and not writer.undo_stray_versions(pool, f.key, f.file_id, 1, maybe, sha256=f.digest.sha256,
                                                written=f.meta["written"]):
        log.info("'%s' may have a copy on %s, which cannot be looked at now; the next start or repair "
                 "round takes it back", f.key, ", ".join(maybe))
    if not maybe and not kept:
        pool.catalog.remove_intent(f.intent)
    f.intent = 0


def _record(pool: PoolView, finished: list[_File], on_file: Callable[[Outcome], None],
            control: TransferControl | None) -> None:
    """Commit the written files, their intents gone, in one transaction; then report them."""
    if not finished:
        return
    cat = pool.catalog
    with cat.atomic():
        for f in finished:
            cat.commit_write(f.intent, file_id=f.file_id, path=f.key, number=1, key=f.key, size=f.digest.size,
                             sha256=f.digest.sha256, mtime=float(f.meta["mtime"]), replicas=list(f.written.items()),
                             created_at=float(f.meta["written"]), etags=f.etags)
    recorded = list(finished)
    finished.clear()
    for f in recorded:
        f.intent = 0  # committed with its version: never undone from here on
    pool.journal.record([f.key for f in recorded])
    for f in recorded:
        if control is not None:
            control.count(f.digest.size)  # paced per copy already
        on_file(Outcome(f.key, f.digest.size, f.digest.sha256, f.st.st_mtime_ns))
