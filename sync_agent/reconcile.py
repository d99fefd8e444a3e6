"""The background reconcile: finds what the change journal did not announce, at a bounded cost.

Other S3 tools write no journal entries, and an entry can be lost (written to nodes that died). So the
agent pages slowly through each node's listing of current objects (``PAGE`` keys a request, a pause
between requests) and compares every page with what the catalog says that node holds in the same key
range. Only the paths that differ are handed on, to be refreshed like journal deltas. The position is
saved after every page, so a restarted agent resumes where it stopped; a whole round runs every
``interval`` seconds. CPU and requests are bounded by the pace, not by the pool's size: the size only
makes a round longer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from sync_agent import keys
from sync_agent.errors import NodeError
from sync_agent.journal import Changes

if TYPE_CHECKING:
    from sync_agent.pool import Pool

log = logging.getLogger(__name__)
PAGE = 1000


class SettingStore(Protocol):
    def setting(self, key: str, default: object = None) -> object: ...
    def set_setting(self, key: str, value: object) -> None: ...


def differing(listed: dict[str, tuple[str, str]], cataloged: dict[str, tuple[str, str]]) -> set[str]:
    """Paths whose (sha256, version) differ between a node's page and the catalog (pure)."""
    return {p for p in listed.keys() | cataloged.keys() if listed.get(p) != cataloged.get(p)}


class Reconciler:
    def __init__(self, pool: Pool, store: SettingStore, on_change: Callable[[Changes], None], *,
                 interval: float = 3600.0, pause: float = 2.0, page: int = PAGE) -> None:
        self.pool, self.store, self.on_change = pool, store, on_change
        self.interval, self.pause, self.page = interval, pause, page
        self.pages = 0
        self._backoff = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _position(self) -> dict[str, object]:
        pos = self.store.setting("reconcile", {})
        return dict(pos) if isinstance(pos, dict) else {}

    def page_once(self, node: str, after: str) -> tuple[str | None, set[str]]:
        """Compare one page of ``node`` after key ``after``; returns (next position or None at the end,
        the paths that differ)."""
        scope = keys.normalize_dir(self.pool.cfg.prefix) if self.pool.cfg.prefix else ""
        listed: dict[str, tuple[str, str]] = {}
        last, seen = None, 0
        for o in self.pool.client(node).list(scope, start_after=after or None):
            last, seen = o.key, seen + 1
            if not o.key.startswith(keys.RESERVED_PREFIX + "/"):
                listed[o.key] = (o.meta.get("sha256", ""), o.meta.get("version", ""))
            if seen >= self.page:
                break
        self.pages += 1
        upto = last if seen >= self.page else None
        cataloged = self.pool.catalog.current_on_node(node, after, upto)
        return upto, differing(listed, cataloged)

    def run_round(self) -> int:
        """One round over every node (resuming a round cut short); returns how many paths differed."""
        found = 0
        pos = self._position()
        cursors = pos.get("cursors") if isinstance(pos.get("cursors"), dict) else {}
        assert isinstance(cursors, dict)
        for node in sorted(self.pool.clients):
            after = str(cursors.get(node, ""))
            if after == "\0done":
                continue
            while not self._stop.is_set():
                if self.pool.health.is_down(node):
                    break
                try:
                    nxt, paths = self.page_once(node, after)
                except NodeError as e:
                    log.info("reconcile: %s could not be listed (%s); next round", node, e.message)
                    break
                if paths:
                    found += len(paths)
                    log.info("reconcile: %d path(s) on %s differ from the catalog", len(paths), node)
                    self.on_change(Changes(paths=paths, entries=1))
                after = nxt if nxt is not None else "\0done"
                cursors[node] = after
                self.store.set_setting("reconcile", {**pos, "cursors": cursors})
                if nxt is None:
                    break
                self._stop.wait(self.pause)
        if all(cursors.get(n) == "\0done" for n in self.pool.clients):
            self.store.set_setting("reconcile", {"cursors": {}, "done_at": time.time()})
        return found

    def _loop(self) -> None:
        while not self._stop.is_set():
            pos = self._position()
            done_at = float(pos.get("done_at", 0) or 0)  # type: ignore[arg-type]
            if not pos.get("cursors") and not done_at:  # first start: the first pass refreshed everything
                self.store.set_setting("reconcile", {"cursors": {}, "done_at": time.time()})
                done_at = time.time()
            wait = done_at + self.interval - time.time() if not pos.get("cursors") else 0
            if wait > 0 and self._stop.wait(min(wait, self.interval)):
                return
            if wait > 0:
                continue
            try:
                if not pos.get("cursors"):  # a new round: drop journal entries everyone has had time to read
                    self.pool.journal.prune_expired()
                self.run_round()
            except Exception:  # never fatal: the next round tries again
                log.exception("reconcile round failed")
            if self._position().get("cursors"):  # cut short (a node down or refusing): not in a tight loop
                self._backoff = min(max(self._backoff * 2, self.pause, 1.0), 600.0)
                self._stop.wait(self._backoff)
            else:
                self._backoff = 0.0

    def start(self) -> Reconciler:
        self._thread = threading.Thread(target=self._loop, name="pooldrive-reconcile", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
