"""Reading a file from the best replica, verifying it, failing over without starting again.

Bytes stream into a hidden temp file next to the target while their SHA-256 is computed; only a verified
file is renamed into place. When a node fails mid-way, the next replica continues at the same offset
(the content is the same by checksum), and a partial temp file left by an earlier run is resumed.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import io
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, TypeAlias

from sync_agent import keys
from sync_agent.catalog.models import ReplicaState
from sync_agent.catalog.store import VersionInfo
from sync_agent.errors import (
    AuthError,
    IntegrityError,
    LocalIOError,
    NodeError,
    NodeFullError,
    NodeUnreachableError,
    NoReplicaError,
    ObjectMissingError,
    PreconditionFailed,
    keys_refused,
)
from sync_agent.node_types import http_error
from sync_agent.paths import make_user_dirs, user_file_mode
from sync_agent.placement import read_cost, read_order, should_switch
from sync_agent.striped_read import STRIPE_MIN, fetch_striped
from sync_agent.transfer import CHUNK, TransferControl, fsync_dir

if TYPE_CHECKING:
    import urllib3

    from sync_agent.pool_view import PoolView


log = logging.getLogger(__name__)

def resolve_version(pool: PoolView, remote: str, version: int | None) -> tuple[str, VersionInfo]:
    key = keys.normalize(remote)
    if version is None:
        info = pool.catalog.require(key)
        if info.current is None:
            raise NoReplicaError(f"'{key}' has no stored version.", paths=[key])
        return key, info.current
    return key, pool.catalog.version(key, version)


def temp_path(dest: Path, sha256: str) -> Path:
    """Hidden, next to the target (same file system, so the final rename is atomic), and resumable."""
    name = f".{dest.name}.{sha256[:12]}.pooldrive-part"
    if len(name.encode()) > 255:  # a long target name: keep the temp name within the file system's limit
        name = f".pd-{hashlib.sha1(dest.name.encode()).hexdigest()[:20]}.{sha256[:12]}.pooldrive-part"
    return dest.with_name(name)


MAX_RESUMES = 64  # per node and read: a link that drops every few MB still gets a large file through
PIECE = 256 * 1024  # read-ahead pieces: small enough to notice a replica falling behind within a second
SMALL_PIECE = 32 * 1024


class _Whole(io.BytesIO):
    """A small object's whole body, already read in one request (the fast path), read like a response."""

    def release_conn(self) -> None:
        pass


Body: TypeAlias = "urllib3.BaseHTTPResponse | _Whole"  # urllib3 loads with the first read ('ls' needs none)
# objects up to this size are read in one request where the node has the fast path; larger ones stream, so a
# replica that falls behind mid-body is left at a piece boundary (a whole-body request cannot be, and the
# WAN benchmark's 1 MB reads with one link throttled went from the floor, 505 ms, to 1,032 ms at p95)
WHOLE_MAX = 256 * 1024


class _ReadAhead:
    """Reads a response body in a thread, a few pieces ahead, so network, hashing and disk overlap."""

    def __init__(self, resp: Body, depth: int = 32) -> None:
        self.resp = resp
        self.q: queue.Queue[bytes | BaseException] = queue.Queue(maxsize=depth)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._pump, name="pooldrive-read", daemon=True)
        self.thread.start()

    def _pump(self) -> None:
        try:
            while not self.stop.is_set():
                chunk = self.resp.read(PIECE)
                self.q.put(chunk)
                if not chunk:
                    return
        except BaseException as e:
            self.q.put(e)

    def read(self, wait: float) -> bytes | None:
        """The next piece; b'' at the end; None when nothing came within ``wait`` seconds."""
        try:
            item = self.q.get(timeout=wait)
        except queue.Empty:
            return None
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        self.stop.set()
        self.resp.close()  # unblocks a read in progress
        while self.thread.is_alive():
            try:
                self.q.get(timeout=0.05)
            except queue.Empty:
                pass
        self.resp.release_conn()


class _Direct:
    """A small body: read it in this thread (a read-ahead thread would cost more than it saves)."""

    def __init__(self, resp: Body) -> None:
        self.resp = resp

    def read(self, wait: float) -> bytes | None:
        return self.resp.read(SMALL_PIECE)  # a small piece takes a fraction of a second even on a thin link

    def close(self) -> None:
        self.resp.close()
        self.resp.release_conn()


def _get(pool: PoolView, node: str, v: VersionInfo, offset: int) -> Body:
    client = pool.client(node)
    with pool.health.request(node):
        t = time.monotonic()
        version, guard = v.replicas_version(node), v.read_guard(node)
        data = client.get_small(v.key, version, guard) if offset == 0 and v.size <= WHOLE_MAX else None
        resp: Body = _Whole(data) if data is not None else client.get(v.key, version, offset=offset, if_match=guard)
        pool.health.record(node, True, time.monotonic() - t)
        return resp


def _close_quietly(fut: Future[Body]) -> None:
    if not fut.cancelled() and fut.exception() is None:
        resp = fut.result()
        resp.close()
        resp.release_conn()


def hedge_delay(latency: float) -> float:
    """How long to wait for a replica's first answer before asking the next one as well."""
    return max(0.25, 4 * latency)


def _open_hedged(pool: PoolView, v: VersionInfo, remaining: list[str], offset: int,
                 on_error: Callable[[str, NodeError], None], no_hedge: set[str] = frozenset()  # type: ignore[assignment]
                 ) -> tuple[str, Body] | None:
    """Ask the best replica; when it is slower than usual to answer, ask the next one too, and take
    whichever answers first. A frozen node costs a quarter of a second, not a read timeout. Nodes in
    ``no_hedge`` (they fell behind earlier in this read) are only asked once the others have failed."""
    waiting = list(remaining)
    pending: dict[Future[Body], str] = {}

    def launch() -> None:
        node = waiting.pop(0)
        pending[pool.io_executor.submit(_get, pool, node, v, offset)] = node

    launch()
    try:
        while pending:
            first = next(iter(pending.values()))
            hedge = bool(waiting) and waiting[0] not in no_hedge
            delay = hedge_delay(pool.health.get(first).latency) if hedge else None
            done, _ = wait(pending, timeout=delay, return_when=FIRST_COMPLETED)
            if not done:
                launch()
                continue
            for fut in done:
                node = pending.pop(fut)
                try:
                    return node, fut.result()
                except NodeError as e:
                    on_error(node, e)
            if not pending and waiting:
                launch()
        return None
    finally:
        for fut in pending:  # the slower answers are not needed
            fut.add_done_callback(_close_quietly)


class _Attempts:
    """The replicas still worth trying for one read, and why the others failed."""

    def __init__(self, pool: PoolView, path: str, v: VersionInfo) -> None:
        self.pool, self.path, self.v = pool, path, v
        self.remaining = read_order(pool.health.views(v.ok_nodes()), v.size)
        self.errors: list[str] = []
        self.suspects: list[str] = []  # nodes whose stream broke while the node itself stayed up
        self.breaks: dict[str, set[int]] = {}  # node -> byte offsets its bodies broke at
        self.retried: dict[str, int] = {}  # node -> times a broken body was resumed on it
        self.behind: set[str] = set()

    def broke(self, node: str, e: NodeError, *, at: int = -1, progressed: bool = True) -> None:
        """A body that stopped mid-way: a dropped connection, or a copy the node cannot read (bit rot).
        A node that still answers is tried again after the others, from where it stopped, for as long as
        each attempt gets further (a link that drops connections) and once more after one that did not;
        it is asked again later (``verify_suspects``) before the copy is marked, unless it then served past
        the break."""
        if isinstance(e, NodeUnreachableError) and self.pool.client(node).live(1.0):
            self.suspects.append(node)
            self.breaks.setdefault(node, set()).add(at)
            self.errors.append(f"{node}: {e.message}")
            if node in self.remaining:
                self.remaining.remove(node)
            tries = self.retried.get(node, 0)
            if (progressed and tries < MAX_RESUMES) or tries == 0:
                self.retried[node] = tries + 1
                self.remaining.append(node)
            return
        self.failed(node, e)

    def fell_behind(self, node: str) -> None:
        """Too slow for now: the other replicas first, this one only as a last resort."""
        if node in self.remaining:
            self.remaining.remove(node)
        self.remaining.append(node)
        self.behind.add(node)

    def served(self, node: str) -> None:
        """``node`` sent its body to the end: a break it had before was the link, not the copy."""
        while node in self.suspects:
            self.suspects.remove(node)

    def elsewhere(self, nbytes: int) -> float | None:
        """Expected seconds for the best replica still to try to send ``nbytes`` (None: there is none)."""
        views = self.pool.health.views(self.remaining)
        return min((read_cost(r, nbytes) for r in views), default=None)

    def verify_suspects(self) -> None:
        """Read each suspect copy again in full, in the background (the read itself is verified and done):
        a copy that breaks again or does not match is bad now (repair replaces it), while a link that
        merely dropped leaves a good copy alone. Over a thin link this takes a while; nobody waits for it."""
        if self.suspects:
            self.pool.io_executor.submit(self._verify, list(self.suspects))

    def _verify(self, suspects: list[str]) -> None:
        """A copy is bad when it reads whole but wrong, or when it breaks again where it broke before (a
        node stops a body where its own bit-rot check fails, always at the same place); a body that breaks
        elsewhere says the link drops connections, not that the copy is bad."""
        for node in set(suspects):
            received = 0
            sha = hashlib.sha256()
            try:
                with contextlib.closing(_get(self.pool, node, self.v, 0)) as resp:
                    while chunk := resp.read(CHUNK):
                        sha.update(chunk)
                        received += len(chunk)
                good = received == self.v.size and sha.hexdigest() == self.v.sha256
            except (NodeError, http_error(), OSError):
                good = not any(abs(received - at) <= CHUNK for at in self.breaks.get(node, ()))
                if good:
                    log.info("copy of '%s' on %s broke off at another place when checked again: the link, "
                             "not the copy", self.path, node)
            if not good:
                self.pool.mark_corrupt(self.path, self.v.number, node)

    def failed(self, node: str, e: NodeError) -> None:
        self.pool.note_failure(node, e)
        _mark_bad_replica(self.pool, self.path, self.v, node, e)
        self.errors.append(f"{node}: {e.message}")
        if node in self.remaining:
            self.remaining.remove(node)

    def corrupt(self, node: str) -> None:
        self.pool.mark_corrupt(self.path, self.v.number, node)
        self.errors.append(f"{node}: checksum mismatch")

    def next(self, offset: int) -> tuple[str, Body] | None:
        opened = _open_hedged(self.pool, self.v, self.remaining, offset, self.failed, self.behind) \
            if self.remaining else None
        if opened is not None:
            self.remaining.remove(opened[0])
        return opened

    def give_up(self) -> NoReplicaError:
        return NoReplicaError(f"Could not read '{self.path}' from any copy: {'; '.join(self.errors) or 'no copies'}",
                              paths=[self.path])


def _fetch(pool: PoolView, tries: _Attempts, out: BinaryIO, sha: hashlib._Hash, offset: int,
           control: TransferControl | None) -> hashlib._Hash:
    """Fill ``out`` from ``offset`` to the end of the version, replica after replica, until the whole
    matches its SHA-256; returns the finished hash. Each replica continues where the last one stopped."""
    v = tries.v
    while not (offset == v.size and sha.hexdigest() == v.sha256):
        if offset >= v.size:  # complete but wrong: a bad partial file or a bad copy; start over
            out.seek(0)
            out.truncate()
            sha, offset = hashlib.sha256(), 0
        opened = tries.next(offset)
        if opened is None:
            raise tries.give_up()
        node, resp = opened
        try:
            offset = _stream_body(pool, node, v, resp, out, sha, offset, control, tries.elsewhere)
        except _FellBehind:
            tries.fell_behind(node)
        except NodeError as e:
            out.flush()
            tries.broke(node, e, at=out.tell(), progressed=out.tell() > offset)
        else:
            tries.served(node)
            if offset == v.size and sha.hexdigest() != v.sha256:
                tries.corrupt(node)
            continue
        out.flush()
        offset = out.tell()  # the next replica continues where this one stopped
    return sha


class _FellBehind(Exception):
    """The replica being read sends so slowly that another will finish the rest sooner (not a fault)."""


def _stream_body(pool: PoolView, node: str, v: VersionInfo, resp: Body, out: BinaryIO,
                 sha: hashlib._Hash, offset: int, control: TransferControl | None,
                 elsewhere: Callable[[int], float | None] | None = None) -> int:
    """Append the response's bytes to ``out``; returns the new offset.

    ``elsewhere(remaining)``: the expected seconds for the best other replica to send ``remaining`` bytes
    (None: no other). When this one falls well behind that, ``_FellBehind`` is raised at a piece boundary
    and the caller continues at the same offset elsewhere.
    """
    client = pool.client(node)
    body = _ReadAhead(resp) if v.size - offset > 4 * CHUNK else _Direct(resp)
    started, received = time.monotonic(), 0
    with pool.health.request(node):
        try:
            while True:
                if control is not None:
                    control.checkpoint()
                try:
                    chunk = body.read(0.25)
                except (http_error(), OSError) as e:  # the node died mid-body
                    raise client.failure(e, f"downloading '{v.key}'") from e
                if chunk == b"":
                    if offset < v.size:  # the node ended the body early without an error: not the whole copy
                        raise NodeError(f"Node '{node}' sent only {offset} of {v.size} bytes of '{v.key}'.",
                                        node=node)
                    break
                if chunk is not None:
                    out.write(chunk)
                    sha.update(chunk)
                    offset += len(chunk)
                    received += len(chunk)
                    if control is not None:
                        control.advance(len(chunk))
                elapsed = time.monotonic() - started
                if elsewhere is not None and elapsed >= 0.25 and offset < v.size:
                    other = elsewhere(v.size - offset)
                    if other is not None and should_switch(elapsed, received, v.size - offset, other):
                        pool.health.record_rate(node, received, elapsed, partial=True)
                        log.info("%s fell behind reading '%s' (%d bytes in %.1f s); continuing elsewhere",
                                 node, v.key, received, elapsed)
                        raise _FellBehind(node)
        finally:
            body.close()
    pool.health.record_rate(node, received, time.monotonic() - started)
    return offset


def _mark_bad_replica(pool: PoolView, path: str, v: VersionInfo, node: str, err: NodeError) -> None:
    """An answer about the object itself (gone, or refused as bit-rotten by the node) marks that replica."""
    if isinstance(err, PreconditionFailed):
        return  # a newer object at the key (a current-only share): the catalog is behind, the copy is fine
    if isinstance(err, ObjectMissingError):
        pool.catalog.set_replica_state(path, v.number, node, ReplicaState.MISSING)
    elif not isinstance(err, NodeUnreachableError | AuthError | NodeFullError):
        pool.mark_corrupt(path, v.number, node)


def get_version(pool: PoolView, v: VersionInfo, dest: Path, control: TransferControl | None = None,
                     path_for_errors: str = "", *, durable: bool = False) -> Path:
    """Fetch one version into ``dest`` (verified, atomically); tries every healthy replica.

    ``durable`` also fsyncs the file and its folder, so the new name survives a power cut (the sync agent
    wants that; a one-off download does not pay for it).
    """
    label = path_for_errors or v.key
    candidates = read_order(pool.health.views(v.ok_nodes()), v.size)
    refused = {n: pool.auth_failures[n] for n in v.ok_nodes() if n in pool.auth_failures}
    if not candidates and refused and len(refused) == len(v.ok_nodes()):
        raise keys_refused(refused, pool.cfg.shared_by if pool.cfg.is_share else None)
    if not candidates:
        raise NoReplicaError(f"'{label}' has no copy on a reachable node (copies on: "
                             f"{', '.join(v.ok_nodes()) or 'none'}). Bring one of them back.", paths=[label])
    for node in candidates:  # minio-py's client, where a request of this read takes it, made before any request
        client = pool.client(node)  # is timed or hedged: the making is not the node's answer
        if v.size > WHOLE_MAX or client.small is None:
            client.ready()
    try:
        make_user_dirs(dest.parent)
    except OSError as e:
        raise LocalIOError(f"Cannot create {dest.parent}: {e.strerror or e}.", paths=[str(dest)]) from e
    tmp = temp_path(dest, v.sha256)
    sha = hashlib.sha256()
    offset = 0
    if tmp.exists() and tmp.stat().st_size <= v.size:  # resume an earlier partial download
        with open(tmp, "rb") as f:
            while chunk := f.read(CHUNK):
                sha.update(chunk)
                offset += len(chunk)
    if control is not None:
        control.total = v.size
        control.done = offset
    if offset == 0 and v.size >= STRIPE_MIN and len(candidates) >= 2:
        try:
            with open(tmp, "w+b") as out:  # read back too: the hash follows the finished prefix
                whole = fetch_striped(pool, v, candidates, out.fileno(), control)
                if whole and durable:
                    os.fsync(out.fileno())
        except BaseException as e:
            tmp.unlink(missing_ok=True)  # filled out of order: nothing in it can be resumed
            if isinstance(e, OSError):
                raise LocalIOError(f"Cannot write {dest}: {e.strerror or e}.", paths=[str(dest)]) from e
            raise
        if whole:
            return _into_place(tmp, dest, v, durable)
        tmp.unlink(missing_ok=True)
        if control is not None:
            control.done = 0
    tries = _Attempts(pool, label, v)
    try:
        with open(tmp, "ab") as out:
            sha = _fetch(pool, tries, out, sha, offset, control)
            out.flush()
            if durable:
                os.fsync(out.fileno())
    except OSError as e:
        _left_partial(tmp, dest)
        raise LocalIOError(f"Cannot write {dest}: {e.strerror or e}.", paths=[str(dest)]) from e
    except BaseException:
        _left_partial(tmp, dest)
        raise
    tries.verify_suspects()
    if sha.hexdigest() != v.sha256:
        raise IntegrityError(f"'{label}' did not match its checksum on any copy.", paths=[label])
    return _into_place(tmp, dest, v, durable)


def get_small_version(pool: PoolView, v: VersionInfo, dest: Path, *, durable: bool = False,
                      staging: Path | None = None) -> bool:
    """One small version into ``dest`` in one request from the best replica, on the calling thread: the
    fast path of bulk downloads (``batch.get_tree``, the sync engine). No hedging and no failover here: a
    file whose first replica fails, is slow past its timeout or sends the wrong bytes returns False, and
    the caller takes the full path (``get_version``), which tries every replica and marks bad copies. Per
    small file the full path's thread hand-offs cost more CPU than the request itself. The request waits
    the quick timeout at most (a frozen node costs 3 s, not the read timeout), and a replica expected to
    take a good part of that (far away, a thin link) is left to the full path at once. ``durable``: as
    for ``get_version``. ``staging``: a folder on the same file system as ``dest`` that nobody watches, for
    the temporary file (the sync agent's own writes then reach its folder watcher as one event, not six)."""
    if v.size > WHOLE_MAX:
        return False
    views = pool.health.views(v.ok_nodes())
    order = read_order(views, v.size)
    if not order:
        return False
    node = order[0]
    client = pool.client(node)
    if read_cost(next(r for r in views if r.node == node), v.size) > client.timeouts.quick_read / 4:
        return False
    try:
        with pool.health.request(node):
            t = time.monotonic()
            data = client.get_small(v.key, v.replicas_version(node), v.read_guard(node), quick=True)
            if data is None:
                return False
            pool.health.record(node, True, time.monotonic() - t)
    except NodeError as e:
        pool.note_failure(node, e)
        return False
    if len(data) != v.size or hashlib.sha256(data).hexdigest() != v.sha256:
        return False
    tmp = _temp_for(dest, v, staging, "pooldrive-part")
    try:
        _write_whole(tmp, data, dest, v, durable)
        _staged_into_place(tmp, dest, v, durable, staging, stamped=True)
    except BaseException:
        tmp.unlink(missing_ok=True)  # the whole body is in memory: nothing to resume
        raise
    return True


def copy_from_local(src: Path, v: VersionInfo, dest: Path, *, durable: bool = False,
                    staging: Path | None = None) -> bool:
    """Version ``v`` into ``dest`` from a local file that should hold the same bytes (another synced copy of
    the content), checked against the version's SHA-256 as it is copied: nothing that does not match reaches
    ``dest``. False when ``src`` cannot be read or does not hold those bytes: the caller downloads instead.
    ``durable`` and ``staging`` as for ``get_small_version``."""
    tmp = _temp_for(dest, v, staging, "pooldrive-copy")
    digest, size = hashlib.sha256(), 0
    try:
        with open(src, "rb") as source, _create(tmp) as out:
            while block := source.read(CHUNK):
                digest.update(block)
                out.write(block)
                size += len(block)
            if durable:
                out.flush()
                os.fsync(out.fileno())
        if size != v.size or digest.hexdigest() != v.sha256:
            tmp.unlink(missing_ok=True)
            return False
        _staged_into_place(tmp, dest, v, durable, staging)
    except OSError as e:
        log.debug("local copy of %s from %s: %s", dest, src, e)
        tmp.unlink(missing_ok=True)
        return False
    return True


def _temp_for(dest: Path, v: VersionInfo, staging: Path | None, suffix: str) -> Path:
    """Where a whole small body is written before it goes into place: next to ``dest``, or in ``staging``."""
    return temp_path(dest, v.sha256) if staging is None else \
        staging / f"{v.sha256[:32]}.{threading.get_ident()}.{suffix}"


def _open_new(tmp: Path) -> int:
    """A descriptor of ``tmp`` made empty for writing (private, 0600, until it goes into place), its folder
    made first when it is not there yet."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
    try:
        return os.open(tmp, flags, 0o600)
    except FileNotFoundError:
        make_user_dirs(tmp.parent)
        return os.open(tmp, flags, 0o600)


def _create(tmp: Path) -> BinaryIO:
    """``tmp`` opened for writing as a file (``_open_new``); the caller's with closes it."""
    return open(_open_new(tmp), "wb")


def _write_whole(tmp: Path, data: bytes, dest: Path, v: VersionInfo, durable: bool) -> None:
    """A whole small body into ``tmp``, its final mode and mtime set through the open file: fewer system
    calls and path lookups than a file object, chmod and utime (70 us of a small download's 800)."""
    fd = _open_new(tmp)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fchmod(fd, user_file_mode(replacing=dest))
        os.utime(fd, (v.mtime, v.mtime))
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)


def _staged_into_place(tmp: Path, dest: Path, v: VersionInfo, durable: bool, staging: Path | None, *,
                       stamped: bool = False) -> None:
    try:
        _into_place(tmp, dest, v, durable, stamped=stamped)
    except FileNotFoundError:  # staged: the folder it goes to is new
        if staging is None:
            raise
        make_user_dirs(dest.parent)
        _into_place(tmp, dest, v, durable, stamped=stamped)


_PARTIAL: set[Path] = set()  # targets whose download broke off in this process, leaving a partial file
_PARTIAL_LOCK = threading.Lock()


def _left_partial(tmp: Path, dest: Path) -> None:
    """A download broke off: an empty temp file goes (nothing to resume); a partial one stays for the next
    attempt, and the target is remembered so that, once it is in place, partials of other versions go."""
    try:
        if tmp.stat().st_size == 0:
            tmp.unlink()
            return
    except OSError:
        return
    with _PARTIAL_LOCK:
        _PARTIAL.add(dest)


def _into_place(tmp: Path, dest: Path, v: VersionInfo, durable: bool, *, stamped: bool = False) -> Path:
    """``tmp`` becomes ``dest``; ``stamped``: its mode and mtime are set already (``_write_whole``)."""
    if not stamped:
        os.chmod(tmp, user_file_mode(replacing=dest))  # temp files are private (0600) until they are the user's
        os.utime(tmp, (v.mtime, v.mtime))
    try:
        os.replace(tmp, dest)
    except (IsADirectoryError, NotADirectoryError) as e:  # a folder here has the file's name: kept, not replaced
        tmp.unlink(missing_ok=True)
        why = "a folder there has its name" if isinstance(e, IsADirectoryError) else "a file is where its folder goes"
        raise LocalIOError(f"Cannot write {dest}: {why}; nothing there was changed.", paths=[str(dest)]) from e
    with _PARTIAL_LOCK:
        tidy = dest in _PARTIAL
        _PARTIAL.discard(dest)
    if tidy:  # a partial of a version that is not current any more is never resumed: not left in the folder
        for stale in dest.parent.glob(f".{glob.escape(dest.name)}.*.pooldrive-part"):
            try:
                stale.unlink()
            except OSError:
                pass
    if durable:
        fsync_dir(dest.parent)
    return dest


def get_file(pool: PoolView, remote: str, local: Path, *, version: int | None = None,
              control: TransferControl | None = None) -> Path:
    key, v = resolve_version(pool, remote, version)
    if local.is_dir():
        local = local / keys.basename(key)
    return get_version(pool, v, local, control, key)


def read_bytes(pool: PoolView, remote: str, version: int | None = None) -> bytes:
    key, v = resolve_version(pool, remote, version)
    tries = _Attempts(pool, key, v)
    out = io.BytesIO()
    _fetch(pool, tries, out, hashlib.sha256(), 0, None)
    tries.verify_suspects()
    return out.getvalue()


def read_order_for(pool: PoolView, remote: str) -> list[str]:
    """The replicas of a file's current version in the order a read would try them now."""
    _, v = resolve_version(pool, remote, None)
    return read_order(pool.health.views(v.ok_nodes()), v.size)
