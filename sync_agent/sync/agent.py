"""The sync agent: watches both sides and runs sync passes when something changed.

Local events trigger a pass over just the dirty paths (after a short quiet time); pool notifications
trigger a remote refresh; a full scan and a full refresh run periodically as the safety net. Errors back
off exponentially; a node outage shows as 'offline' and sync resumes by itself.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from sync_agent.errors import PoolDriveError
from sync_agent.monitor import HealthMonitor
from sync_agent.repair import RepairLoop
from sync_agent.sync.engine import SyncEngine
from sync_agent.sync.remote_watch import RemoteWatcher
from sync_agent.sync.state import SyncState
from sync_agent.sync.status import AgentState
from sync_agent.sync.watcher import LocalWatcher

if TYPE_CHECKING:
    from sync_agent.pool import Pool


class SyncAgent:
    def __init__(self, pool: Pool, folder: Path, *, state: SyncState | None = None, host: str | None = None,
                 parallel: int = 4, debounce: float = 0.3, remote_interval: float = 600.0,
                 full_scan_interval: float = 600.0, notifications: bool = True, repair: bool = True,
                 repair_grace: float = 600.0) -> None:
        self.pool = pool
        self.engine = SyncEngine(pool, folder, state, host=host, parallel=parallel)
        self.activity = self.engine.activity
        self.debounce = debounce
        self.remote_interval = remote_interval
        self.full_scan_interval = full_scan_interval
        self.notifications = notifications
        self.repair = repair
        self.repair_grace = repair_grace
        self._cond = threading.Condition()
        self._dirty: set[str] = set()
        self._remote_dirty = False
        self._full = True
        self._stop = threading.Event()
        self._paused = bool(self.engine.state.setting("paused", False))
        self.passes = 0

    # --- requests from watchers and clients ---------------------------------------------------------
    def local_changed(self, paths: set[str]) -> None:
        with self._cond:
            self._dirty |= paths
            self._cond.notify_all()

    def remote_changed(self) -> None:
        with self._cond:
            self._remote_dirty = True
            self._cond.notify_all()

    def sync_now(self) -> None:
        with self._cond:
            self._full = True
            self._cond.notify_all()

    def pause(self) -> None:
        self._paused = True
        self.engine.state.set_setting("paused", True)
        self.activity.set_state(AgentState.PAUSED, "paused by you")

    def resume(self, allow_deletes: bool = False) -> None:
        self._paused = False
        self.engine.state.set_setting("paused", False)
        self.engine.allow_deletes = allow_deletes
        self.sync_now()

    @property
    def paused(self) -> bool:
        return self._paused

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()

    # --- the loop ---------------------------------------------------------------------------------
    def run(self) -> None:
        local = LocalWatcher(self.engine.root, self.local_changed, debounce=self.debounce,
                             on_issue=lambda t, m: self.activity.issue("*watch", t, m)).start()
        remote = RemoteWatcher(self.pool, self.remote_changed).start() if self.notifications else None
        monitor = HealthMonitor(self.pool, interval=2.0).start()
        repairer = RepairLoop(self.pool, grace=self.repair_grace).start() \
            if self.repair and not self.pool.cfg.is_share else None
        backoff = 1.0
        last_full = last_remote = 0.0
        if self._paused:
            self.activity.set_state(AgentState.PAUSED, "paused by you")
        try:
            while not self._stop.is_set():
                with self._cond:
                    now = time.monotonic()
                    due = min(last_full + self.full_scan_interval, last_remote + self.remote_interval) - now
                    if not (self._full or self._dirty or self._remote_dirty) and due > 0:
                        self._cond.wait(due)
                    if self._stop.is_set():
                        return
                    if self._paused:
                        self._cond.wait(1.0)
                        continue
                    now = time.monotonic()
                    full = self._full or now - last_full >= self.full_scan_interval
                    refresh = full or self._remote_dirty or now - last_remote >= self.remote_interval
                    dirty = None if full else set(self._dirty)
                    self._full, self._remote_dirty = False, False
                    self._dirty.clear()
                if not full and not dirty and not refresh:
                    continue
                try:
                    self.engine.sync(dirty, refresh_remote=refresh)
                    self.passes += 1
                    backoff = 1.0
                    if full:
                        last_full = time.monotonic()
                    if refresh:
                        last_remote = time.monotonic()
                except PoolDriveError as e:
                    self.activity.set_state(AgentState.OFFLINE, e.message)
                    with self._cond:  # try again later, the same work
                        self._full = self._full or full
                        self._remote_dirty = True
                        self._dirty |= dirty or set()
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, 60.0)
        finally:
            local.stop()
            monitor.stop()
            if remote is not None:
                remote.stop()
            if repairer is not None:
                repairer.stop()

    def start_thread(self) -> threading.Thread:
        t = threading.Thread(target=self.run, name="pooldrive-agent", daemon=True)
        t.start()
        return t
