"""Reading a large file from every live replica at once.

The file is cut into ranges handed out from one list, two streams per replica, so each replica serves in
proportion to its speed: a thin link takes few ranges, a dead one none (its range goes back to the list).
Bytes are written in place (``pwrite``) and the SHA-256 of the whole is taken in order as the finished
prefix grows, so verifying costs no extra pass. When the list is empty, an idle stream also fetches the
range whose stream is furthest behind (the same bytes, so whichever finishes first wins): the tail is not
held by the slowest link.

Anything unexpected (every replica failing, a checksum that does not match) returns False and the caller
reads the file the ordinary way, one replica after another, which knows how to mark bad copies.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sync_agent.catalog.store import VersionInfo
from sync_agent.errors import NodeError, NodeUnreachableError
from sync_agent.node_types import http_error
from sync_agent.transfer import TransferControl

if TYPE_CHECKING:
    from sync_agent.pool_view import PoolView


log = logging.getLogger(__name__)

STRIPE_MIN = 64 * 1024 * 1024  # below this one stream from the best replica is as fast
RANGE = 8 * 1024 * 1024
STREAMS_PER_NODE = 2
STRIKES = 4  # dropped connections before a node's streams give up (a flaky link drops a few)
PIECE = 256 * 1024


@dataclass
class _Range:
    start: int
    end: int
    done: bool = False
    streams: int = 0  # streams fetching it now
    got: int = 0  # bytes of the furthest stream so far
    started: float = 0.0
    by: str = ""  # the node of its first stream


@dataclass
class _Plan:
    ranges: list[_Range]
    lock: threading.Condition = field(default_factory=threading.Condition)
    failed_nodes: set[str] = field(default_factory=set)
    strikes: dict[str, int] = field(default_factory=dict)  # dropped connections per node
    error: BaseException | None = None

    def take(self, node: str) -> _Range | None:
        """A range nobody fetches yet; else the running one furthest behind on another node, fetched by one
        stream only."""
        with self.lock:
            for r in self.ranges:
                if not r.done and r.streams == 0:
                    r.streams, r.got, r.started, r.by = 1, 0, time.monotonic(), node
                    return r
            running = [r for r in self.ranges if not r.done and r.streams == 1 and r.by != node]
            if not running:
                return None
            now = time.monotonic()
            worst = min(running, key=lambda r: r.got / max(now - r.started, 1e-3) / (r.end - r.start))
            worst.streams += 1
            return worst

    def finished(self) -> bool:
        return all(r.done for r in self.ranges)


def fetch_striped(pool: PoolView, v: VersionInfo, nodes: list[str], fd: int, control: TransferControl | None) -> bool:
    """Fill ``fd`` (an empty temp file) with version ``v`` from ``nodes`` in parallel; True when the whole
    matches its SHA-256."""
    plan = _Plan([_Range(s, min(s + RANGE, v.size)) for s in range(0, v.size, RANGE)])
    os.ftruncate(fd, v.size)

    def stream(node: str) -> None:
        client = pool.client(node)
        while control is None or not control.cancelled:
            with plan.lock:
                if node in plan.failed_nodes or plan.error is not None:
                    return
            r = plan.take(node)
            if r is None:
                return
            try:
                _fetch_range(pool, client, node, v, r, fd, plan, control)
            except (NodeError, http_error(), OSError) as e:
                err = e if isinstance(e, NodeError) else client.failure(e, f"downloading '{v.key}'")
                with plan.lock:
                    r.streams -= 1
                    plan.strikes[node] = plan.strikes.get(node, 0) + 1
                    out = plan.strikes[node] >= STRIKES or not isinstance(err, NodeUnreachableError)
                    if out:
                        plan.failed_nodes.add(node)
                    plan.lock.notify_all()
                log.info("%s failed a range of '%s' (%s); %s", node, v.key, err.message,
                         "the others take its ranges" if out else "trying again on a new connection")
                if out:
                    pool.note_failure(node, err)
                    return
            except BaseException as e:  # a cancel, or a bug: stop every stream
                with plan.lock:
                    plan.error = e
                    plan.lock.notify_all()
                return

    workers = [pool.io_executor.submit(stream, n) for n in nodes for _ in range(STREAMS_PER_NODE)]
    sha, hashed = hashlib.sha256(), 0
    with plan.lock:
        while True:
            while hashed < v.size and plan.ranges[hashed // RANGE].done:
                r = plan.ranges[hashed // RANGE]
                plan.lock.release()
                try:
                    sha.update(os.pread(fd, r.end - r.start, r.start))
                finally:
                    plan.lock.acquire()
                hashed = r.end
            if hashed >= v.size or plan.error is not None or all(w.done() for w in workers):
                break
            plan.lock.wait(0.2)
    for w in workers:
        w.result()
    if plan.error is not None:
        raise plan.error
    if hashed < v.size:
        return False  # every replica failed part-way: the ordinary read says why
    if sha.hexdigest() != v.sha256:
        log.warning("'%s' read from %s in parallel did not match its checksum; reading it again replica by "
                    "replica", v.key, ", ".join(nodes))
        return False
    return True


def _fetch_range(pool: PoolView, client, node: str, v: VersionInfo, r: _Range, fd: int,
                 plan: _Plan, control: TransferControl | None) -> None:
    with pool.health.request(node):
        t = time.monotonic()
        resp = client.get(v.key, v.replicas_version(node), offset=r.start, length=r.end - r.start,
                          if_match=v.read_guard(node), quick=True)  # a frozen node: its range goes elsewhere
        pool.health.record(node, True, time.monotonic() - t)
        body_started, pos = time.monotonic(), r.start
        try:
            while pos < r.end:
                if r.done:  # the other stream on this range finished first
                    return
                if control is not None:
                    control.checkpoint()
                piece = resp.read(min(PIECE, r.end - pos))
                if not piece:
                    raise NodeError(f"Node '{node}' ended a range of '{v.key}' early.", node=node)
                os.pwrite(fd, piece, pos)
                pos += len(piece)
                with plan.lock:
                    if pos - r.start > r.got:
                        if control is not None:
                            control.advance(pos - r.start - r.got)
                        r.got = pos - r.start
        finally:
            resp.close()
            resp.release_conn()
        pool.health.record_rate(node, r.end - r.start, time.monotonic() - body_started)
    with plan.lock:
        r.done = True
        r.streams -= 1
        plan.lock.notify_all()
