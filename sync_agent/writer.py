"""Writing a file to R nodes, crash-safely.

1. An intent row is committed first, naming every node we are about to write to.
2. Replicas are written in parallel, moving down the rendezvous ranking when a node fails.
3. Each node verifies every part as it arrives (signed SHA-256 over http, Content-MD5 over https), and
   all copies of one write must report the same ETag.
4. The catalog row is committed only once the write quorum has acknowledged; otherwise what was written is
   removed again and ``QuorumError`` names the nodes that failed.
An intent left behind by a crash is undone by ``recover_intents`` the next time the pool opens.
"""

from __future__ import annotations

import functools
import io
import logging
import os
import stat
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar

from sync_agent import keys, metadata, multipart
from sync_agent.catalog.store import FileInfo, IntentInfo
from sync_agent.errors import (
    ChangedMeanwhileError,
    IntegrityError,
    LocalIOError,
    NodeError,
    NodeTimeoutError,
    NodeUnreachableError,
    ObjectMissingError,
    PoolDriveError,
    PreconditionFailed,
    QuorumError,
)
from sync_agent.health import answer_timeout
from sync_agent.name_clash import refuse_clash
from sync_agent.placement import overtake_after, write_order
from sync_agent.processes import pid_alive
from sync_agent.transfer import (
    PART_SIZE,
    Digest,
    MeteredReader,
    TransferControl,
    digest_bytes,
    digest_file,
    etag_fits,
)

if TYPE_CHECKING:
    from sync_agent.pool_view import PoolView

log = logging.getLogger(__name__)

PARALLEL_PARTS = 4
T = TypeVar("T")


@dataclass
class _Upload:
    """One write in progress: what it writes, and the multipart uploads it may resume."""

    key: str
    file_id: str
    number: int
    intent: int
    digest: Digest
    meta: dict[str, str]
    opener: Callable[[], BinaryIO]
    path: Path | None = None  # a local file: large ones go up resumably, part by part
    body: bytes | None = None  # a small file, read once for all its copies
    uploads: dict[str, str] = field(default_factory=dict)  # node -> multipart upload id
    lock: threading.Lock = field(default_factory=threading.Lock)

    def started(self, pool: PoolView, node: str, upload_id: str) -> None:
        with self.lock:
            self.uploads[node] = upload_id
            pool.catalog.update_intent(self.intent, uploads=dict(self.uploads))


def _put_replicas(pool: PoolView, up: _Upload, order: list[str], control: TransferControl | None, *,
                  want: int | None = None, etags: dict[str, str] | None = None, gate: _Gate | None = None,
                  expect: _Expect | None = None) -> tuple[dict[str, str | None], dict[str, PoolDriveError]]:
    """Write to the first ``want`` (default R) nodes of ``order`` that succeed; returns (node -> version id,
    node -> error). ``etags`` collects each copy's ETag (seeded with copies already made). With ``expect``
    every one-request copy is itself a compare-and-swap (see ``_Expect``)."""
    key, digest, meta, opener = up.key, up.digest, up.meta, up.opener
    want = pool.durability(key).copies if want is None else want
    written: dict[str, str | None] = {}
    errors: dict[str, PoolDriveError] = {}
    etags = {} if etags is None else etags
    lock = threading.Lock()
    candidates = list(order)

    def one(node: str) -> str | None:
        try:
            return copy(node)
        finally:
            if gate is not None and node == gate.arbiter:
                gate.release()  # done, or failed before finishing: the others never wait for nothing

    def copy(node: str) -> str | None:
        client = pool.client(node)
        with pool.health.request(node):
            t = time.monotonic()
            if up.path is not None and digest.parts > 1:
                resuming = up.uploads.get(node)
                if resuming:  # a crash after the node finished it would leave a copy nobody recorded
                    undo_stray_versions(pool, key, up.file_id, up.number, [node])
                version_id, etag = multipart.upload(
                    client, key, up.path, digest.size, meta, upload_id=resuming,
                    on_started=lambda uid: up.started(pool, node, uid), control=control,
                    parallel=PARALLEL_PARTS,
                    finish=gate.finisher(node) if gate is not None else expect.finisher(node) if expect else None)
            elif up.body is not None:  # one request, on the fast path where the node has it
                if control is not None:
                    control.checkpoint()  # paused or cancelled: before the request, as a streamed upload would
                body = up.body
                if expect is None:
                    version_id, etag = client.put_if(key, body, meta, if_match=False)
                else:
                    version_id, etag = expect.write(node, lambda c: client.put_if(key, body, meta, if_match=c))
                if control is not None:
                    control.advance(len(up.body))
            else:
                with opener() as raw:
                    version_id, etag = client.put(key, MeteredReader(raw, control), digest.size, meta,
                                                  part_size=PART_SIZE, parallel=PARALLEL_PARTS)
            with lock:
                etags[node] = etag
                agree = etag_fits(etag, digest.parts) and len(set(etags.values())) == 1
            if not agree:
                try:
                    client.delete(key, version_id)
                finally:
                    raise IntegrityError(f"Node '{node}' stored '{key}' with ETag {etag}, which does not match "
                                         f"the other copies ({', '.join(etags.values())}).", paths=[key])
            pool.health.record(node, True, min(time.monotonic() - t, pool.health.get(node).latency * 2))
            return version_id

    running: dict[Future[str | None], str] = {}
    began: dict[str, float] = {}
    raced: set[str] = set()

    def launch() -> None:
        node = candidates.pop(0)
        began[node] = time.monotonic()
        running[pool.io_executor.submit(one, node)] = node

    while candidates and len(running) < want:
        launch()
    while running and len(written) < want:
        timeout = _race_check(pool, up, running, began, raced, candidates)
        done, _ = wait(running, timeout=timeout, return_when=FIRST_COMPLETED)
        if not done:
            if timeout is not None and candidates:
                limit = overtake_after(up.digest.size, pool.health.views(candidates[:1])[0])
                raced.update(n for n in running.values() if time.monotonic() - began[n] >= limit)
                launch()  # a copy is overdue: the next node races it
            continue
        for fut in done:
            node = running.pop(fut)
            try:
                written[node] = fut.result()
            except PoolDriveError as e:
                errors[node] = e
                if isinstance(e, NodeError):
                    pool.note_failure(node, e)
                stop = (control is not None and control.cancelled) or isinstance(e, ChangedMeanwhileError)
                if not stop and candidates and len(written) + len(running) < want:
                    launch()  # move down the ranking
    if running:
        log.info("'%s' has its %d copies; %s still writing, overtaken", key, len(written), ", ".join(running.values()))
    for fut, node in running.items():  # overtaken: a copy finishing later is one more than R, taken back
        fut.add_done_callback(functools.partial(_take_back, pool, up, node))
    return written, errors


def _race_check(pool: PoolView, up: _Upload, running: dict[Future[str | None], str], began: dict[str, float],
                raced: set[str], candidates: list[str]) -> float | None:
    """Seconds until the slowest unraced copy is overdue (0.01 when it is now), or None for no deadline."""
    if not candidates:
        return None
    spare = pool.health.views(candidates[:1])[0]
    limit = overtake_after(up.digest.size, spare)
    waits = [began[n] + limit - time.monotonic() for n in running.values() if n not in raced]
    return max(0.01, min(waits)) if waits else None


def _take_back(pool: PoolView, up: _Upload, node: str, fut: Future[Any]) -> None:
    """A copy that finished after its write went on without it (overtaken, or an arbiter that stalled):
    one more than the write recorded, taken back. ``fut`` gives a version id or (version id, ETag). One
    that failed after its request went out (a node frozen, then timed out) may still land: watched as any
    copy whose answer was lost (a node that froze mid-upload and ran again kept such copies, unrecorded)."""
    if fut.cancelled():
        return
    if (e := fut.exception()) is not None:
        if isinstance(e, NodeUnreachableError) and e.sent:
            _watch_lost_copies(pool, up, {node: e})
        return
    result = fut.result()
    try:
        pool.client(node).delete(up.key, result[0] if isinstance(result, tuple) else result)
        log.info("copy of '%s' on %s finished after the write had its copies; taken back", up.key, node)
    except NodeError:
        pass  # left as an extra copy of the same version: harmless, and rebuild sees it as one


RESUME_WINDOW = 24 * 3600.0  # an interrupted large upload can be resumed for a day (MinIO keeps parts that long)


def _watch_lost_copies(pool: PoolView, up: _Upload, lost: dict[str, NodeUnreachableError]) -> None:
    """The copies on these nodes failed after their request went out (a connection reset, a timeout): each
    may be on its node now, or land there later, one more than the write recorded. An intent naming only
    these nodes stays, so the next start or repair round looks for them (``settle_watched``;
    ``undo_stray_versions`` takes only unrecorded copies of this very write); a node that answered (a
    reset, not a timeout) is looked at now as well. A node that timed out is not: the save would wait on
    it. (A flaky link left such copies behind: found by a test that lists what the nodes hold after a
    folder upload over it.)"""
    nodes = sorted(lost)
    pool.catalog.add_intent("put", up.key, up.file_id, up.number, nodes=nodes, owner=os.getpid(), watch=True,
                            sha256=up.digest.sha256, written=up.meta["written"], mtime=float(up.meta["mtime"]))
    answering = [n for n in nodes if not isinstance(lost[n], NodeTimeoutError) and not pool.health.is_down(n)]
    if answering:
        undo_stray_versions(pool, up.key, up.file_id, up.number, answering, sha256=up.digest.sha256,
                            written=up.meta["written"])


def _abandon(pool: PoolView, key: str, file_id: str, number: int, intent: int, uploads: dict[str, str],
             written: dict[str, str | None], meta: dict[str, str] | None = None) -> None:
    """Undo a write: abort its multipart uploads, delete the copies it made, forget the intent."""
    for node, upload_id in uploads.items():
        if node in pool.clients:
            multipart.abort(pool.client(node), key, upload_id)
    for node, vid in written.items():
        try:
            pool.client(node).delete(key, vid)
        except NodeError as e:  # the intent stays; recovery removes it later
            log.info("could not undo a partial write of '%s' on %s yet: %s", key, node, e.message)
    if undo_stray_versions(pool, key, file_id, number, list(set(uploads) | set(written)),
                           sha256=meta.get("sha256") if meta else None, written=meta.get("written") if meta else None):
        pool.catalog.remove_intent(intent)


def _owner_alive(payload: dict[str, object]) -> bool:
    owner = int(payload.get("owner", 0) or 0)  # type: ignore[call-overload]
    return bool(owner) and owner != os.getpid() and pid_alive(owner)


def _claim_resumable(pool: PoolView, key: str, digest: Digest, file_id: str, number: int) -> _Upload | None:
    """An interrupted upload of this same content as this same version, to continue; stale others go."""
    claimed = None
    known = pool.catalog.get(key, include_deleted=True) is not None
    for i in pool.catalog.intents("put"):
        if i.path != key or _owner_alive(i.payload):
            continue
        same = (i.payload.get("sha256") == digest.sha256 and i.version == number
                and (i.file_id == file_id or not known) and i.payload.get("uploads"))
        if same and claimed is None:
            meta = metadata.object_meta(i.file_id, number, digest.sha256, digest.size, i.number("mtime"),
                               written=i.number("written"))
            claimed = _Upload(key, i.file_id, number, i.id, digest, meta, io.BytesIO, uploads=i.uploads())
        else:
            _abandon(pool, key, i.file_id, i.version, i.id, i.uploads(), {})
    return claimed


def _write(pool: PoolView, key: str, digest: Digest, mtime: float, opener: Callable[[], BinaryIO],
           control: TransferControl | None, unchanged: Callable[[], bool] = lambda: True,
           source: Path | None = None) -> tuple[FileInfo, bool]:
    """Returns the file and whether a new version was written (False: the pool had this content).

    ``unchanged`` is asked after the copies are written: a source that changed meanwhile would leave
    copies whose bytes do not match the SHA-256 they carry, so the write is undone instead.
    """
    pool.check_writable(key)
    cat = pool.catalog
    refuse_clash(cat, key)
    existing = cat.get(key)
    want = pool.durability(key)  # the folder's class, else the pool's R
    if existing and existing.sha256 == digest.sha256 and existing.size == digest.size \
            and len(existing.replicas) >= pool.cfg.quorum_for(want.copies):
        return existing, False  # the pool already holds exactly this content
    unusable = pool.unusable_nodes()
    order = write_order(key, pool.specs(), want.copies, [n.name for n in pool.cfg.nodes if n.name not in unusable])
    quorum = min(pool.cfg.quorum_for(want.copies), len(pool.cfg.nodes))
    if len(order) < quorum:
        refused = [pool.auth_failures[n] for n in unusable if n in pool.auth_failures]
        if refused and len(refused) == len(unusable):  # not a node problem: the keys are wrong
            raise refused[0]
        why = ", ".join(f"{n} {reason}" for n, reason in unusable.items()) or "none"
        raise QuorumError(f"Cannot store '{key}': it needs {quorum} usable node(s) and only {len(order)} "
                          f"are ({why}). Bring nodes back, free space or add nodes.", paths=[key])
    file_id, number = cat.file_id_for(key)
    pool.journal.expect([key])  # the nodes' notifications about this write are our own
    # only multipart uploads can be resumed: small files skip the look at old intents
    up = _claim_resumable(pool, key, digest, file_id, number) if source is not None and digest.parts > 1 else None
    if up is None:
        meta = metadata.object_meta(file_id, number, digest.sha256, digest.size, mtime)
        # every node we might write to is named up front: one catalog write instead of one per node
        intent = cat.add_intent("put", key, file_id, number, nodes=order, owner=os.getpid(), sha256=digest.sha256,
                                written=meta["written"], mtime=mtime)
        up = _Upload(key, file_id, number, intent, digest, meta, opener)
    else:
        cat.update_intent(up.intent, owner=os.getpid(), nodes=sorted(set(order) | set(up.uploads)))
        up.opener = opener
    up.path = source
    if control is not None:
        control.total = digest.size * min(want.copies, len(order))
    written: dict[str, str | None] = {}
    etags: dict[str, str] = {}
    expect = _Expect(pool, key, up.file_id, up.number, existing, up.meta)
    try:
        if digest.parts <= 1 and digest.size <= SMALL:
            up.body = _read_small(up)
        stalled: set[str] = set()  # the arbiter, when it did not answer in time: left out of this write
        first = _arbitrate(pool, up, existing, order, etags, expect, stalled) if up.body is not None else {}
        written = dict(first)  # undone with the rest if the write fails from here on
        gate = None
        resumable = source is not None and digest.parts > 1  # the multipart path, which the gate guards
        if resumable and (chosen := _choose_arbiter(pool, key, existing, order, expect, stalled)) is not None:
            gate = _Gate(pool, key, *chosen, expect)
            order = [gate.arbiter] + [n for n in order if n != gate.arbiter]  # launched first, never raced away
        more, errors = _put_replicas(pool, up, [n for n in order if n not in first and n not in stalled], control,
                                     want=want.copies - len(first), etags=etags, gate=gate, expect=expect)
        written.update(more)
        lost = next((e for e in errors.values() if isinstance(e, ChangedMeanwhileError)), None)
        if lost is not None:
            raise lost
        if control is not None:
            control.checkpoint()
        if not unchanged():
            raise LocalIOError(f"'{key}' changed while it was being uploaded; it will be uploaded again.",
                               paths=[key])
        if len(written) < quorum:
            detail = "; ".join(f"{n}: {e}" for n, e in errors.items()) or "no node was usable"
            raise QuorumError(f"Stored '{key}' on {len(written)} node(s) but {quorum} are required, so the "
                              f"write was undone. {detail}", paths=[key])
        cat.commit_write(up.intent, file_id=up.file_id, path=key, number=up.number, key=key, size=digest.size,
                         sha256=digest.sha256, mtime=float(up.meta["mtime"]), replicas=list(written.items()),
                         created_at=float(up.meta["written"]), etags=etags)
        if cut := {n: e for n, e in errors.items() if isinstance(e, NodeUnreachableError) and e.sent}:
            _watch_lost_copies(pool, up, cut)
        pool.journal.record([key])
        for node, upload_id in up.uploads.items():  # resumed uploads on nodes this attempt did not use
            if node not in written:
                multipart.abort(pool.client(node), key, upload_id)
    except ChangedMeanwhileError:
        if written:  # a later copy found what the arbiter did not: this write is undone everywhere
            _abandon(pool, up.key, up.file_id, up.number, up.intent, up.uploads, written, up.meta)
        else:
            cat.remove_intent(up.intent)  # nothing was written
        _learn(pool, key)  # what won, so the caller decides on what the pool holds now
        raise
    except (KeyboardInterrupt, SystemExit):
        raise  # the intent stays: the next upload of this file resumes where this one stopped
    except BaseException:
        # cancelled, quorum missed, source changed: leave nothing behind
        if any(i.id == up.intent for i in cat.intents("put")):
            _abandon(pool, up.key, up.file_id, up.number, up.intent, up.uploads, written, up.meta)
        raise
    result = cat.get(key)
    assert result is not None
    return result, True


SMALL = PART_SIZE  # files up to this size go up in one request, and can be written conditionally


def _choose_arbiter(pool: PoolView, key: str, existing: FileInfo | None, order: list[str], expect: _Expect,
                    stalled: set[str]) -> tuple[str, str | None] | None:
    """The arbiter of a write and the ETag it must still hold there (None: no live object yet).

    The arbiter follows from the path alone, the first usable node of its ranking, so two writers agree
    on it whatever each knows: one that has not heard of a file and one about to replace it ask the same
    node (with different views they used to ask different nodes, and both won). When the arbiter holds no
    copy this writer knows of, it is asked what it has (``_Expect.ask``). None: no arbiter answered, and
    the write goes on with only the other copies' conditions (an arbiter that did not answer within
    ``answer_timeout`` is added to ``stalled``).
    """
    if not order:
        return None
    arbiter = order[0]
    if existing is None or existing.current is None:
        return arbiter, None  # a new path: If-None-Match: * asks the node itself, no look first
    known = expect.guess(arbiter)
    if known is not None:
        return arbiter, known
    try:
        return arbiter, _answer(pool, arbiter, 0, lambda: expect.ask(arbiter))
    except _AlreadyThere as done:  # this write's own copy, from an attempt whose answer was lost
        return arbiter, done.etag
    except NodeError as e:
        pool.note_failure(arbiter, e)
        return None
    except _Stalled:
        stalled.add(arbiter)
        return None


class _Stalled(Exception):
    """A request the write waited for did not answer within ``answer_timeout``."""


def _answer(pool: PoolView, node: str, size: int, request: Callable[[], T],
            late: Callable[[Future[T]], None] | None = None) -> T:
    """``request`` (to ``node``, with a body of ``size`` bytes) run on the I/O threads and waited for
    ``answer_timeout`` at most: a node that froze costs seconds, not the read timeout. Then the node counts
    one failure and ``_Stalled`` is raised; the request runs on, and ``late`` gets it when it ends."""
    fut = pool.io_executor.submit(request)
    patience = answer_timeout(pool.health.views([node])[0], size, pool.client(node).timeouts.read)
    wait([fut], timeout=patience)
    if fut.done():
        return fut.result()
    log.info("%s did not answer within %.1f s; the write goes on without it", node, patience)
    pool.health.record(node, False, error=f"no answer within {patience:.1f} s")
    if late is not None:
        fut.add_done_callback(late)
    raise _Stalled(node)


class _AlreadyThere(Exception):
    """The node holds this very write already (its answer was lost and the request made again)."""

    def __init__(self, version_id: str | None, etag: str) -> None:
        super().__init__(version_id, etag)
        self.version_id, self.etag = version_id, etag


@dataclass
class _Expect:
    """What each copy of a write must find on its node: every one-request copy and every multipart
    completion is a compare-and-swap, not only the arbiter's.

    The arbiter is the first usable node of the path's ranking, so it changes while a node is down: a
    file created then lives on the next nodes, and the arbiter, once back, holds nothing. A writer that
    has not heard of that file passes the arbiter with If-None-Match: * but now fails on the node that
    holds the file, and its write becomes the conflict (undone everywhere) instead of two files at one
    path. A copy expects the ETag this device knows on that node (If-Match), else nothing live
    (If-None-Match: *); when that is refused, the node is asked what it holds (``ask``) and the copy is
    tried once more on what it says, so a stale catalog costs one look, never a false conflict.
    """

    pool: PoolView
    key: str
    file_id: str
    number: int
    existing: FileInfo | None
    meta: dict[str, str]  # this write's metadata: its own copy, found by a retry, is recognised by it

    def guess(self, node: str) -> str | None:
        current = self.existing.current if self.existing is not None else None
        return current.etag_on(node) if current is not None and node in current.ok_nodes() else None

    def ask(self, node: str) -> str | None:
        """What the write must replace on ``node``: None when nothing is live there; the ETag of what is
        there when this device has already seen it and knows better (an older version of this file, or a
        file since moved or deleted whose delete the node missed while down: a stale node). Anything else
        was written by someone this device has not heard of: ``ChangedMeanwhileError``. ``NodeError``
        passes."""
        try:
            there = self.pool.client(node).stat(self.key)
        except ObjectMissingError:
            return None
        if all(there.meta.get(k) == self.meta.get(k) for k in ("file-id", "version", "sha256", "written")):
            raise _AlreadyThere(there.version_id, there.etag)  # this very write: a lost answer, tried again
        meta = metadata.try_parse(there.meta)
        if isinstance(meta, metadata.ObjectMeta):
            if meta.file_id == self.file_id:
                if meta.version < self.number:
                    return there.etag
            elif self.pool.catalog.knows(meta.file_id, meta.version, meta.sha256):
                other = self.pool.catalog.get_by_id(meta.file_id)
                if other is None or other.deleted or other.path != self.key:
                    return there.etag  # moved away or deleted since: the node missed it
            elif self._given_up(meta, there.meta.get("written")):
                log.info("'%s' on %s is a copy of a write this device gave up; replacing it", self.key, node)
                return there.etag
        raise _changed_meanwhile(self.key)

    def _given_up(self, meta: metadata.ObjectMeta, written: str | None) -> bool:
        """Whether the copy there belongs to a write of this path that this device gave up and has not
        cleaned up yet (its intent is open): a batch copy whose answer was lost and which the batch's look
        did not find or could not delete, handed to this path (a request cut on the client's side can
        still reach the node after that look). Its intent takes the replaced version away later."""
        return any(i.path == self.key and i.file_id == meta.file_id and i.version == meta.version
                   and i.payload.get("sha256") == meta.sha256 and i.payload.get("written") == written
                   for i in self.pool.catalog.intents("put"))

    def write(self, node: str, attempt: Callable[[str | None], tuple[str | None, str]],
              first: tuple[str | None] | None = None) -> tuple[str | None, str]:
        """``attempt(condition)`` on ``node``: first on what this device knows (``first``: the condition the
        caller has worked out already), then on what the node says. Returns (version id, etag)."""
        try:
            return attempt(self.guess(node) if first is None else first[0])
        except PreconditionFailed:
            log.info("'%s' on %s is not what this device knew; asking the node", self.key, node)
        try:
            condition = self.ask(node)
        except _AlreadyThere as done:
            return done.version_id, done.etag
        try:
            return attempt(condition)
        except PreconditionFailed as e:
            raise _changed_meanwhile(self.key) from e

    def finisher(self, node: str) -> multipart.Finisher:
        """The completion of a multipart copy as a compare-and-swap (no arbiter answered: no gate)."""
        client = self.pool.client(node)

        def finish(upload_id: str, etags: list[str]) -> tuple[str | None, str]:
            try:
                return self.write(node, lambda c: client.complete_upload(self.key, upload_id, etags, if_match=c))
            except ChangedMeanwhileError:
                multipart.abort(client, self.key, upload_id)
                raise

        return finish


def _changed_meanwhile(key: str) -> ChangedMeanwhileError:
    return ChangedMeanwhileError(
        f"'{key}' was changed on the pool by another device while this version was being saved; "
        "nothing was overwritten. The sync agent keeps yours as a conflicted copy; with 'pooldrive put', "
        "run it again to replace the newer version.", paths=[key])


def _learn(pool: PoolView, key: str) -> None:
    """After a lost race: read what won, so the next decision is informed."""
    from sync_agent import rebuild

    try:
        rebuild.refresh_paths(pool, {key})
    except PoolDriveError as e:
        log.info("lost a race for '%s' and could not read what won yet: %s", key, e.message)


class _Gate:
    """The copies of a large write finish only after the arbiter's conditional completion (parts go up to
    every node at once; only the cheap completion waits). Of two devices saving one path at once exactly
    one gets past the arbiter; the other aborts every upload it made. An arbiter that fails for another
    reason releases the others unconditionally, as for small files."""

    def __init__(self, pool: PoolView, key: str, arbiter: str, expected: str | None, expect: _Expect) -> None:
        self.pool, self.key, self.arbiter, self.expected, self.expect = pool, key, arbiter, expected, expect
        self._settled = threading.Event()
        self.lost: ChangedMeanwhileError | None = None

    def release(self) -> None:
        self._settled.set()

    def finisher(self, node: str) -> multipart.Finisher:
        client = self.pool.client(node)

        def finish(upload_id: str, etags: list[str]) -> tuple[str | None, str]:
            if node == self.arbiter:
                try:
                    return self.expect.write(node, lambda c: client.complete_upload(self.key, upload_id, etags,
                                                                                    if_match=c), first=(self.expected,))
                except ChangedMeanwhileError as e:
                    multipart.abort(client, self.key, upload_id)
                    self.lost = e
                    raise
                finally:
                    self._settled.set()
            self._settled.wait()
            if self.lost is not None:
                multipart.abort(client, self.key, upload_id)
                raise self.lost
            return self.expect.finisher(node)(upload_id, etags)

        return finish


def _arbitrate(pool: PoolView, up: _Upload, existing: FileInfo | None, order: list[str],
               etags: dict[str, str], expect: _Expect, stalled: set[str]) -> dict[str, str | None]:
    """Two devices writing one path at once: exactly one wins, the other finds out.

    The first copy goes to one node, the arbiter, with a compare-and-swap: If-None-Match: * when this
    device knows no live file at the path, else If-Match: the ETag of the version it is replacing, on a
    node that holds that version. Writers that saw the same state pick the same arbiter, so only one of
    them gets past it; the other gets ``ChangedMeanwhileError`` (after its catalog learned the newer
    version), and the sync agent turns that into a conflicted copy. The other copies follow, each with its
    own condition (``_Expect``). Returns the arbiter's copy ({} when no arbiter answered).

    An arbiter that does not answer within ``answer_timeout`` (frozen, or its link stalled) is added to
    ``stalled`` and the write goes on as when it fails; should its copy land later, it is taken back.
    """
    chosen = _choose_arbiter(pool, up.key, existing, order, expect, stalled)
    if chosen is None:
        return {}
    arbiter, expected = chosen
    body = up.body
    assert body is not None, "only small files are arbitrated in one request"
    client = pool.client(arbiter)

    def attempt() -> tuple[str | None, str]:
        with pool.health.request(arbiter):  # a stale ETag costs a look at the node, not a false conflict
            return expect.write(arbiter, lambda c: client.put_if(up.key, body, up.meta, if_match=c),
                                first=(expected,))

    try:
        vid, etag = _answer(pool, arbiter, len(body), attempt, functools.partial(_take_back, pool, up, arbiter))
    except NodeError as e:
        pool.note_failure(arbiter, e)
        return {}
    except _Stalled:
        stalled.add(arbiter)
        return {}
    if not etag_fits(etag, up.digest.parts):
        pool.client(arbiter).delete(up.key, vid)
        raise IntegrityError(f"Node '{arbiter}' stored '{up.key}' with ETag {etag}, which does not match its "
                             "content.", paths=[up.key])
    etags[arbiter] = etag
    return {arbiter: vid}


def _read_small(up: _Upload) -> bytes:
    with up.opener() as raw:
        body = raw.read()
    if len(body) != up.digest.size:
        raise LocalIOError(f"'{up.key}' changed while it was being uploaded; it will be uploaded again.",
                           paths=[up.key])
    return body


def put_file(pool: PoolView, local: Path, remote: str, *, control: TransferControl | None = None,
                mtime: float | None = None) -> tuple[FileInfo, bool]:
    """Write ``local`` to ``remote``; returns the file and whether a new version was written (False: the
    pool already held this content)."""
    key = keys.normalize(remote)
    try:
        st = local.stat()
    except OSError as e:
        raise LocalIOError(f"Cannot read {local}: {e.strerror or e}.", paths=[str(local)]) from e
    if not stat.S_ISREG(st.st_mode):
        raise LocalIOError(f"{local} is not a regular file.", paths=[str(local)])
    body: bytes | None = None
    if st.st_size <= SMALL:  # read once: hashed now, and the same bytes go to every copy
        try:
            body = local.read_bytes()
        except OSError as e:
            raise LocalIOError(f"Cannot read {local}: {e.strerror or e}.", paths=[str(local)]) from e
    digest = digest_file(local, control=control) if body is None else digest_bytes(body)

    def unchanged() -> bool:
        try:
            now = local.stat()
        except OSError:
            return False
        return (now.st_size, now.st_mtime_ns, now.st_ino) == (st.st_size, st.st_mtime_ns, st.st_ino)

    def opener() -> BinaryIO:
        return io.BytesIO(body) if body is not None else open(local, "rb")  # the caller closes it

    return _write(pool, key, digest, st.st_mtime if mtime is None else mtime, opener, control, unchanged,
                  source=local)


def put_bytes(pool: PoolView, remote: str, data: bytes, *, mtime: float | None = None) -> FileInfo:
    key = keys.normalize(remote)
    when = time.time() if mtime is None else mtime
    if len(data) > SMALL:  # too big for one request: the multipart path, whose arbiter needs a file
        with tempfile.TemporaryDirectory(prefix="pooldrive-put-") as tmp:
            spool = Path(tmp) / "data"
            spool.write_bytes(data)
            return put_file(pool, spool, key, mtime=when)[0]
    return _write(pool, key, digest_bytes(data), when, lambda: io.BytesIO(data), None)[0]


def recover_intents(pool: PoolView) -> int:
    """Undo writes a crashed process left half-done: remove the versions it wrote, forget the intent.

    Only intents whose owning process is gone are touched, so a CLI run never undoes the daemon's
    write in progress. Returns how many intents were resolved.
    """
    resolved = 0
    for intent in pool.catalog.intents("put"):
        if _owner_alive(intent.payload):
            continue
        uploads = intent.uploads()
        if uploads and time.time() - intent.created_at < RESUME_WINDOW:
            continue  # kept so the next upload of this file picks up where it stopped
        for node, upload_id in uploads.items():
            if node in pool.clients:
                multipart.abort(pool.client(node), intent.path, upload_id)
        resolved += _settle(pool, intent)
    return resolved


WATCH_FOR = 300.0  # seconds a lost copy is waited for: a request that went out lands within its timeouts


def settle_watched(pool: PoolView, *, older_than: float | None = None) -> int:
    """Settle the intents that only watch for copies whose answer was lost (``watch`` in their payload, see
    ``_watch_lost_copies`` and ``small_writes._undo``) once they are ``older_than`` seconds old: no write of
    them is in progress, so this process's own count too. A long-running agent does it in its repair rounds
    (a start does it for every intent); each costs one listing per node it names. Returns how many."""
    cutoff = time.time() - (WATCH_FOR if older_than is None else older_than)
    return sum(_settle(pool, i) for i in pool.catalog.intents("put")  # a node known down is not waited on:
               if i.payload.get("watch") and i.created_at <= cutoff  # the round after it is back looks
               and not any(pool.health.is_down(n) for n in i.nodes() if n in pool.clients))


def _settle(pool: PoolView, intent: IntentInfo) -> bool:
    """Delete what the write of ``intent`` left unrecorded on its nodes and forget it; False when a node
    could not be looked at (it stays for the next try)."""
    sha, when = intent.payload.get("sha256"), intent.payload.get("written")
    if not undo_stray_versions(pool, intent.path, intent.file_id, intent.version, intent.nodes(),
                               sha256=str(sha) if sha else None, written=str(when) if when else None):
        return False
    pool.catalog.remove_intent(intent.id)
    return True


def undo_stray_versions(pool: PoolView, key: str, file_id: str, number: int, nodes: list[str], *,
                        sha256: str | None = None, written: str | None = None) -> bool:
    """Delete copies of (file, version) on ``nodes`` that the catalog does not record; False if a node
    could not be reached (try again later). With ``sha256`` and ``written``, only copies of that one write:
    two devices that edited the same version both write the next number, and the one undoing must never
    take the other's copies with it."""
    known = {(r.node, r.version_id) for v in pool.catalog.versions_by_id(file_id) if v.number == number
             for r in v.replicas}
    clean = True
    for node in nodes:
        if node not in pool.clients:
            continue
        try:
            for obj in pool.client(node).list(key, versions=True):
                ours = (sha256 is None or obj.meta.get("sha256") == sha256) and \
                    (written is None or obj.meta.get("written") == written)
                if obj.key == key and obj.meta.get("file-id") == file_id and ours \
                        and obj.meta.get("version") == str(number) and (node, obj.version_id) not in known:
                    pool.client(node).delete(obj.key, obj.version_id)
        except NodeError:
            clean = False
    return clean
