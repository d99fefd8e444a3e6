"""Byte movement primitives: hashing, metered reading, pause/cancel control, bandwidth limits.

Integrity, end to end: our SHA-256 of the content is stored in each object's metadata and verified on
every read. On the way in, every part is checked by the node itself (minio-py signs each part's SHA-256
over http and sends its Content-MD5 over https), and all copies of one write must report the same ETag.
Hashing the content once more locally with MD5 would only repeat the node's check, at 750 MB/s.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from sync_agent.errors import LocalIOError, PoolDriveError

log = logging.getLogger(__name__)

PART_SIZE = 8 * 1024 * 1024  # multipart part size (and the ETag arithmetic depends on it)
CHUNK = 1024 * 1024


FEWEST_IN_FLIGHT = 8  # files moved at once on a LAN: more only adds CPU contention with the nodes
MOST_IN_FLIGHT = 48
# Small files (one request each) moved at once, at least. MinIO spends less CPU per request when many
# arrive together: 2,000 x 64 KB put at R=2 on loopback took the servers 13.4 CPU-s with 8 in flight and
# 9.9 with 24 (wall 9.3 -> 6.8 s, medians of 3); a download's wall went 2.0 -> 1.6 s. A small file
# holds at most its body in memory, so this costs little.
SMALL_IN_FLIGHT = 24


def files_in_flight(latencies: list[float]) -> int:
    """Files to move at once so the links stay busy: on a LAN the CPU is the limit and 8 is enough; over
    a 40-80 ms link a request mostly waits, so more of them overlap (8 more per 20 ms of median round trip)."""
    if not latencies:
        return FEWEST_IN_FLIGHT
    rtt = sorted(latencies)[len(latencies) // 2]
    return max(FEWEST_IN_FLIGHT, min(MOST_IN_FLIGHT, int(FEWEST_IN_FLIGHT * (1 + rtt / 0.02))))


class Cancelled(PoolDriveError):
    title = "Cancelled"


@dataclass(frozen=True)
class Digest:
    sha256: str
    size: int

    @property
    def parts(self) -> int:
        """How many parts an upload with PART_SIZE makes (1: a single PUT)."""
        return max(1, -(-self.size // PART_SIZE))


def etag_fits(etag: str, parts: int) -> bool:
    """Whether a node's ETag has the shape of an upload in ``parts`` parts (MD5, or MD5-of-MD5s-N)."""
    if parts <= 1:
        return len(etag) == 32 and all(c in "0123456789abcdef" for c in etag.lower())
    return etag.endswith(f"-{parts}")


def drain_hash(resp) -> tuple[str, int]:
    """Read a streaming response to its end: (SHA-256 hex, bytes read); always releases it."""
    sha = hashlib.sha256()
    size = 0
    try:
        while chunk := resp.read(CHUNK):
            sha.update(chunk)
            size += len(chunk)
    finally:
        resp.close()
        resp.release_conn()
    return sha.hexdigest(), size


def digest_file(path: Path, control: TransferControl | None = None) -> Digest:
    """The SHA-256 of a file (about 1.5 GB/s with SHA-NI)."""
    sha = hashlib.sha256()
    size = 0
    try:
        with open(path, "rb", buffering=0) as f:
            while chunk := f.read(4 * CHUNK):
                if control is not None:
                    control.checkpoint()
                sha.update(chunk)
                size += len(chunk)
    except OSError as e:
        raise LocalIOError(f"Cannot read {path}: {e.strerror or e}.", paths=[str(path)]) from e
    return Digest(sha.hexdigest(), size)


def digest_bytes(data: bytes) -> Digest:
    return Digest(hashlib.sha256(data).hexdigest(), len(data))


class RateLimiter:
    """A token bucket shared by all transfers in one direction; 0 means unlimited."""

    def __init__(self, bytes_per_second: float = 0) -> None:
        self.rate = bytes_per_second
        self._lock = threading.Lock()
        self._tokens = 0.0
        self._last = time.monotonic()

    def set_rate(self, bytes_per_second: float) -> None:
        with self._lock:
            self.rate = bytes_per_second

    def take(self, n: int) -> None:
        if self.rate <= 0:
            return
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.rate, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= n
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            time.sleep(wait)


@dataclass
class TransferControl:
    """Lets another thread pause, resume or cancel a transfer, and observe its progress."""

    total: int = 0
    done: int = 0
    on_progress: Callable[[int, int], None] | None = None
    limiter: RateLimiter | None = None
    _cancel: threading.Event = field(default_factory=threading.Event)
    _running: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._running.set()

    def cancel(self) -> None:
        self._cancel.set()
        self._running.set()

    def pause(self) -> None:
        self._running.clear()

    def child(self) -> TransferControl:
        """A control for one file of a batch: paused and cancelled with this one, with progress of its own
        (the batch counts the file when it is done)."""
        return TransferControl(_cancel=self._cancel, _running=self._running)

    def resume(self) -> None:
        self._running.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def checkpoint(self) -> None:
        """Block while paused; raise Cancelled when cancelled."""
        if not self._running.is_set():
            self._running.wait()
        if self._cancel.is_set():
            raise Cancelled("The transfer was cancelled.")

    def advance(self, n: int) -> None:
        if self.limiter is not None:
            self.limiter.take(n)
        self.count(n)

    def count(self, n: int) -> None:
        """Progress of ``n`` bytes already paced by the limiter."""
        with self._lock:
            self.done += n
            done, total = self.done, self.total
        if self.on_progress is not None:
            self.on_progress(done, total)


class MeteredReader:
    """A file-like reader that reports progress and honours pause/cancel (fed to minio-py uploads)."""

    def __init__(self, f: BinaryIO, control: TransferControl | None) -> None:
        self._f = f
        self._control = control

    def read(self, n: int = -1) -> bytes:
        if self._control is not None:
            self._control.checkpoint()
        data = self._f.read(n)
        if self._control is not None and data:
            self._control.advance(len(data))
        return data


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
