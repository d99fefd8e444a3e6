"""A tiny change journal on the nodes, so other devices notice a change within a second or two.

MinIO's bucket notifications are not delivered by every deployment (single-drive servers here never
answered a ListenBucketNotification), so every PoolDrive client that changes the pool also drops a
zero-byte marker under ``.pooldrive/journal/`` (coalesced: at most one every half second per process,
and it removes its previous one). Agents list that prefix on every node with ``start_after`` their last
marker, a cheap request, and refresh their catalog only when something new is there. Changes made by
other S3 tools are still found by the periodic full refresh.
"""

from __future__ import annotations

import io
import os
import secrets
import threading
import time
from typing import TYPE_CHECKING

from sync_agent.errors import NodeError

if TYPE_CHECKING:
    from sync_agent.pool import Pool

PREFIX = ".pooldrive/journal/"


class Journal:
    def __init__(self, pool: Pool, coalesce: float = 0.5) -> None:
        self.pool = pool
        self.coalesce = coalesce
        self._lock = threading.Lock()
        self._pending = False
        self._last: tuple[str, str, str | None] | None = None  # (node, key, version id) of our marker
        self.enabled = not pool.cfg.read_only

    def touch(self) -> None:
        """Note that this process changed the pool (returns at once; written in the background)."""
        if not self.enabled:
            return
        with self._lock:
            if self._pending:
                return
            self._pending = True
        timer = threading.Timer(self.coalesce, self._write)
        timer.daemon = True
        timer.start()

    def _write(self) -> None:
        with self._lock:
            self._pending = False
        key = f"{PREFIX}{time.time_ns():020d}-{os.getpid()}-{secrets.token_hex(3)}"
        for node in sorted(self.pool.clients):
            if self.pool.health.is_down(node):
                continue
            try:
                vid, _ = self.pool.client(node).put(key, io.BytesIO(b""), 0, {}, part_size=5 * 1024 * 1024)
            except NodeError:
                continue
            previous, self._last = self._last, (node, key, vid)
            if previous is not None:
                try:
                    self.pool.client(previous[0]).delete(previous[1], previous[2])
                except NodeError:
                    pass
            return

    def newest(self, node: str) -> str:
        """The newest marker key on ``node`` ('' if none)."""
        newest = ""
        for o in self.pool.client(node).list(PREFIX, versions=False):
            newest = max(newest, o.key)
        return newest

    def changed(self, seen: dict[str, str]) -> bool:
        """Whether any node has a marker newer than ``seen[node]``; updates ``seen``."""
        changed = False
        for node in self.pool.clients:
            try:
                newest = self.newest(node)
            except NodeError:
                continue
            if node not in seen:  # the first look only sets the mark
                seen[node] = newest
            elif newest > seen[node]:
                changed = True
                seen[node] = newest
        return changed
