"""The sync agent: watches both sides and runs sync passes when something changed.

Local events make a pass over just the dirty paths (after a short quiet time); the change journal and
bucket notifications name the remote paths that changed, and a pass refreshes and plans just those. The
safety nets are rare and incremental: the background reconcile pages through the nodes slowly (changes
by other S3 tools, lost journal entries), a full local scan runs hourly or when the watcher lost events.
The journal cursor is saved after each pass, so a restart picks up the deltas it missed instead of
listing the pool again.

Errors back off exponentially; a node outage shows as 'offline' and sync resumes by itself. An
unexpected exception is logged and the pass retried; after ``MAX_CRASHES`` in a row the agent gives up
and the daemon exits non-zero (so a service manager restarts it), never silently.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from sync_agent.errors import PoolDriveError, UsageError
from sync_agent.health import HealthEvent
from sync_agent.journal import RETENTION, Changes
from sync_agent.monitor import HealthMonitor
from sync_agent.placement import Health
from sync_agent.reconcile import Reconciler
from sync_agent.repair import RepairLoop, scrub
from sync_agent.sharing.views import ViewKeeper
from sync_agent.sync.engine import SyncEngine
from sync_agent.sync.remote_watch import RemoteWatcher
from sync_agent.sync.state import SyncState
from sync_agent.sync.status import AgentState, IssueKind
from sync_agent.sync.watcher import LocalWatcher

if TYPE_CHECKING:
    from sync_agent.pool import Pool

log = logging.getLogger(__name__)
MAX_CRASHES = 8
REPAIR_FIRST_WAIT = 600.0  # s the first background repair round waits at most for the first sync pass
INCOMPLETE_RETRY = 30.0  # first wait before reading every node again while the catalog is incomplete
INCOMPLETE_RETRY_MAX = 1800.0  # it doubles up to this (a node that never comes back costs little)
FAILED_RETRY = 30.0  # first wait before files whose transfer failed are tried again (also at once when a node
FAILED_RETRY_MAX = 600.0  # comes back up); it doubles up to this while they keep failing
FOLDER_CHECK = 2.0  # s between looks at whether the sync folder is still there (moving it sends no event)


class SyncAgent:
    def __init__(self, pool: Pool, folder: Path, *, state: SyncState | None = None, host: str | None = None,
                 parallel: int | None = None, debounce: float = 0.3, remote_interval: float = 0.0,
                 full_scan_interval: float = 3600.0, notifications: bool = True, repair: bool = True,
                 repair_grace: float = 600.0, reconcile: bool = True, reconcile_interval: float = 3600.0,
                 reconcile_pause: float = 2.0, backoff: float = 1.0,
                 limits: tuple[float | None, float | None] = (None, None), remote_root: str = "",
                 services: bool = True) -> None:
        """``remote_interval``: seconds between full refreshes from the nodes (0: never; the journal and
        the background reconcile cover the pool). ``backoff``: the first wait after a failed pass (it
        doubles up to a minute). ``remote_root``: the pool folder this folder is paired with ('' the whole
        pool). ``services``: run the pool's health monitor, repair, journal watcher and reconcile here (one
        folder per process); off when a ``PoolAgent`` runs them once for all its pairs."""
        self.pool = pool
        self.services = services
        self.engine = SyncEngine(pool, folder, state, host=host, parallel=parallel, remote_root=remote_root)
        self.activity = self.engine.activity
        self.debounce = debounce
        self.remote_interval = remote_interval
        self.full_scan_interval = full_scan_interval
        self.notifications = notifications
        self.repair = repair
        self.repair_grace = repair_grace
        self.reconcile = reconcile
        self.reconcile_interval = reconcile_interval
        self.reconcile_pause = reconcile_pause
        self.first_backoff = backoff
        self._cond = threading.Condition()
        self._dirty: set[str] = set()
        self._remote = Changes()
        self._cursor: dict[str, str] | None = None  # the journal cursor to save after the next pass
        self._full = True  # a full local scan
        self._refresh = False  # a full refresh from the nodes
        self._restore = False  # bring back the files of a held mass delete before the next pass
        self._failed: set[str] = set()  # files whose transfer failed: tried again at _retry_at
        self._retry_at = 0.0
        self._retry_wait = FAILED_RETRY
        self._missing = False  # the sync folder is missing: pending work waits for it
        self._stop = threading.Event()
        self._paused = bool(self.engine.state.setting("paused", False))
        self.passes = 0
        self.failure: BaseException | None = None  # set when the worker gave up
        self.set_limits(*limits)  # as given now, else as last set (kept in the state)
        self.remote: RemoteWatcher | None = None  # while running with notifications

    # --- requests from watchers and clients ---------------------------------------------------------
    def local_changed(self, paths: set[str]) -> None:
        with self._cond:
            if "" in paths:  # the watcher lost events: only a full scan can tell
                self._full = True
            self._dirty |= paths
            self._cond.notify_all()

    def remote_changed(self, changes: Changes | None = None, cursor: dict[str, str] | None = None) -> None:
        """``changes`` named by the journal, notifications or the reconcile; None: refresh everything."""
        with self._cond:
            if changes is None:
                self._refresh = True
            else:
                self._remote.update(changes)
            if cursor is not None:
                self._cursor = cursor
            self._cond.notify_all()

    def _node_changed(self, ev: HealthEvent) -> None:
        """A node came back up: the files that failed (all nodes were down, too few for R) go again now."""
        if ev.new == Health.UP:
            with self._cond:
                if self._failed:
                    self._retry_at = 0.0
                    self._cond.notify_all()

    def _note_failed(self) -> None:
        failed, self.engine.failed = self.engine.failed, set()
        with self._cond:
            if failed:
                self._failed |= failed
                self._retry_at = time.monotonic() + self._retry_wait
                self._retry_wait = min(self._retry_wait * 2, FAILED_RETRY_MAX)
            elif not self._failed:
                self._retry_wait = FAILED_RETRY

    def sync_now(self) -> None:
        with self._cond:
            self._full = True
            self._refresh = True
            self._cond.notify_all()

    @property
    def limits(self) -> dict[str, float]:
        """The agent's bandwidth limits in MB/s (0: none), kept in its state so a restart keeps them."""
        raw = self.engine.state.setting("limits", {})
        raw = raw if isinstance(raw, dict) else {}
        return {k: float(v) if isinstance(v, int | float) and math.isfinite(v) and v >= 0 else 0.0
                for k, v in ((k, raw.get(k, 0)) for k in ("up", "down"))}

    def set_limits(self, up: float | None = None, down: float | None = None) -> dict[str, float]:
        """Change the upload and/or download limit (MB/s, 0: none); applied at once and kept."""
        old = self.limits
        new = dict(old)
        for name, value in (("up", up), ("down", down)):
            if value is None:
                continue
            if not (isinstance(value, int | float) and math.isfinite(value) and 0 <= value <= 1e6):
                raise UsageError(f"A bandwidth limit is a number of MB/s, 0 for none; {value!r} is not.")
            new[name] = float(value)
        self.engine.state.set_setting("limits", new)
        self.pool.up_limiter.set_rate(new["up"] * 1e6)
        self.pool.down_limiter.set_rate(new["down"] * 1e6)
        if new != old:
            log.info("bandwidth limits: up %s, down %s",
                     *(f"{new[k]:g} MB/s" if new[k] else "none" for k in ("up", "down")))
        return new

    def pause(self) -> None:
        self._paused = True
        self.engine.state.set_setting("paused", True)
        self.activity.pause("paused by you")

    def resume(self, allow_deletes: bool = False) -> None:
        self._paused = False
        self.engine.state.set_setting("paused", False)
        self.activity.pause("")
        self.engine.allow_deletes = allow_deletes
        self.sync_now()

    def restore_held(self) -> int:
        """Bring back the files a held mass delete removed here (they are still on the pool)."""
        with self._cond:  # done by the worker before its next pass, never in the middle of one
            self._restore = True
            n = self.engine.to_restore()
        self.resume()
        return n

    def verify(self) -> dict[str, int]:
        """Read this folder's files back from the nodes now (``scrub``): bad copies are replaced from good
        ones, and files with no good copy left are put back from here."""
        report = scrub(self.pool, prefix=self.engine.remote_root, parallel=4)
        back = self.engine.put_back_lost(list(report.unrecoverable)) if report.unrecoverable else []
        lost = [p for p in report.unrecoverable if p not in back]
        for path in lost:
            self.activity.issue(path, "No good copy left", "Every copy of this file on the pool is lost or damaged, "
                                "and this device does not hold that version.", IssueKind.INCOMPLETE)
        return {"files": report.files, "checked": report.checked, "bad": len(report.corrupt),
                "repaired": report.copies_made, "put_back": len(back), "lost": len(lost)}

    @property
    def paused(self) -> bool:
        return self._paused

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()

    # --- the loop ---------------------------------------------------------------------------------
    def _saved_cursor(self) -> dict[str, str] | None:
        """The journal cursor of the last pass, if recent enough that the journal still holds what came
        after it (else the first pass refreshes everything)."""
        state = self.engine.state
        saved_at = float(state.setting("journal_cursor_at", 0) or 0)  # type: ignore[arg-type]
        cursor = state.setting("journal_cursor")
        if not isinstance(cursor, dict) or time.time() - saved_at > RETENTION / 2:
            return None
        return {str(k): str(v) for k, v in cursor.items()}

    def _save_cursor(self, cursor: dict[str, str]) -> None:
        self.engine.state.set_setting("journal_cursor", cursor)
        self.engine.state.set_setting("journal_cursor_at", time.time())

    def run(self) -> None:
        if self.services:
            try:
                self.pool.recover()
            except PoolDriveError as e:  # a node down: the next start tries again, nothing is lost meanwhile
                log.info("could not undo every half-done write yet: %s", e.message)
        cursor = self._saved_cursor()
        if cursor is None or not self.engine.filled:
            self._refresh = True
            cursor = self.pool.journal.cursor() if self.notifications else {}
        self._cursor = dict(cursor)
        local = LocalWatcher(self.engine.root, self.local_changed, debounce=self.debounce,
                             on_issue=lambda t, m: self.activity.issue("*watch", t, m, IssueKind.WATCH)).start()
        self.engine.on_folder_back = local.rewatch
        services = Services(self.pool, self.engine.state, self.remote_changed, cursor,
                            notifications=self.notifications, repair=self.repair, repair_grace=self.repair_grace,
                            reconcile=self.reconcile, reconcile_interval=self.reconcile_interval,
                            reconcile_pause=self.reconcile_pause, on_lost=self.engine.put_back_lost,
                            first_pass_done=lambda: self.passes > 0) \
            if self.services else None
        if services is not None and services.remote is not None:
            self.engine.on_bulk = services.remote.hush  # our own bulk uploads: their notifications are noise
        self.remote = services.remote if services is not None else None
        unsubscribe = self.pool.health.subscribe(self._node_changed)
        backoff = self.first_backoff
        crashes = 0
        last_full = last_refresh = time.monotonic()
        fill_wait = INCOMPLETE_RETRY
        if self._paused:
            self.activity.pause("paused by you")
        try:
            while not self._stop.is_set():
                with self._cond:
                    now = time.monotonic()
                    due = last_full + self.full_scan_interval - now
                    refresh_every = self.remote_interval
                    if not self.engine.filled:  # read every node again until one read completes
                        refresh_every = min(refresh_every or fill_wait, fill_wait)
                    if refresh_every:
                        due = min(due, last_refresh + refresh_every - now)
                    if self._failed:
                        due = min(due, self._retry_at - now)
                    idle = not (self._full or self._dirty or self._remote or self._refresh)
                    if (idle or self._missing) and due > 0:
                        self._cond.wait(min(due, FOLDER_CHECK))
                    if self._stop.is_set():
                        return
                    if self._paused:
                        self._cond.wait(1.0)
                        continue
                    missing = self.engine.folder_missing()
                    if missing and self._missing and not self._restore:
                        continue  # said so already: what the pool and the folder changed waits for it
                    if not missing and self._missing:
                        self._full = True  # back: whatever changed in it meanwhile, and what the pool did
                    self._missing = missing
                    dirty: set[str] | None = set()  # a pass that only says the folder is missing, when it is
                    remote_changes, cursor, full, refresh = Changes(), None, False, False
                    now = time.monotonic()
                    if self._failed and now >= self._retry_at and not missing:
                        self._dirty |= self._failed
                        self._failed = set()
                    if not missing:
                        full = self._full or now - last_full >= self.full_scan_interval
                        refresh = self._refresh or (bool(refresh_every) and now - last_refresh >= refresh_every)
                        dirty = None if full else set(self._dirty)
                        remote_changes, cursor = self._remote, self._cursor
                        self._full, self._refresh, self._remote, self._cursor = False, False, Changes(), None
                        self._dirty.clear()
                    if self._restore:
                        self._restore = False
                        self.engine.restore_held()
                        if missing:  # the folder there now is the sync folder, filled from the pool
                            self._missing, self._full = False, True
                            continue
                if missing:
                    try:
                        self.engine.sync(set(), refresh_remote=False)  # says so, and syncs nothing
                    except Exception:  # the loop goes on, waiting for the folder
                        log.exception("could not report the missing sync folder")
                    continue
                if not full and not dirty and not remote_changes and not refresh:
                    if cursor is not None:  # the journal moved on with nothing for us: remember how far
                        self._save_cursor(cursor)
                    continue
                try:
                    if refresh and dirty is not None:  # a full refresh is planned over the whole folder
                        dirty = None
                    self.engine.sync(dirty, refresh_remote=refresh, remote=remote_changes)
                    self.passes += 1
                    self._note_failed()
                    if self.engine.retry:
                        self.local_changed(set(self.engine.retry))
                        self.engine.retry.clear()
                    backoff, crashes = self.first_backoff, 0
                    if cursor is not None:
                        self._save_cursor(cursor)
                    if dirty is None:
                        last_full = time.monotonic()
                    if refresh:
                        last_refresh = time.monotonic()
                        filled = self.engine.filled
                        fill_wait = INCOMPLETE_RETRY if filled else min(fill_wait * 2, INCOMPLETE_RETRY_MAX)
                except Exception as e:
                    if isinstance(e, PoolDriveError):
                        self.activity.set_state(AgentState.OFFLINE, e.message)
                        log.warning("sync pass failed, retrying in %.0f s: %s", backoff, e.message)
                    else:
                        crashes += 1
                        log.exception("unexpected error in a sync pass (%d in a row)", crashes)
                        self.activity.set_state(AgentState.ERROR, f"internal error: {e!r}; retrying")
                        if crashes >= MAX_CRASHES:
                            self.failure = e
                            return
                    with self._cond:  # try again later, the same work
                        self._full = self._full or dirty is None
                        self._refresh = self._refresh or refresh
                        self._remote.update(remote_changes)
                        if cursor is not None and self._cursor is None:
                            self._cursor = cursor
                        self._dirty |= dirty or set()
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, 60.0)
        finally:
            unsubscribe()
            local.stop()
            if services is not None:
                services.stop()

    def start_thread(self) -> threading.Thread:
        return start_guarded(self, "pooldrive-agent")


class _Runs(Protocol):
    failure: BaseException | None

    def run(self) -> None: ...


def start_guarded(owner: _Runs, name: str) -> threading.Thread:
    """``owner.run()`` on a thread that never dies unnoticed: an unexpected error is logged and kept in
    ``owner.failure`` (the daemon exits non-zero on it, so a service manager restarts the agent)."""
    def guarded() -> None:
        try:
            owner.run()
        except BaseException as e:
            log.exception("the sync agent stopped on an unexpected error")
            owner.failure = e
    t = threading.Thread(target=guarded, name=name, daemon=True)
    t.start()
    return t


class Services:
    """What an agent runs once per pool, whatever the number of folder pairs: the health monitor, the
    background repair (with repair from this device's folders), the change journal's watcher and the
    background reconcile. Changes they find go to ``changed`` (every pair's worker, which keeps its part)."""

    def __init__(self, pool: Pool, state: SyncState, changed: Callable[..., None], cursor: dict[str, str], *,
                 notifications: bool = True, repair: bool = True, repair_grace: float = 600.0,
                 reconcile: bool = True, reconcile_interval: float = 3600.0, reconcile_pause: float = 2.0,
                 on_lost: Callable[[list[str]], list[str]] | None = None,
                 covered: Callable[[str], bool] = lambda _path: True,
                 first_pass_done: Callable[[], bool] | None = None) -> None:
        """``covered(pool_path)``: whether a folder pair reads that path into the catalog (what the journal
        names elsewhere, the share views' keeper reads itself). ``first_pass_done()``: whether every folder
        pair finished its first pass (the background repair's first round waits for it)."""
        views = ViewKeeper(pool, covered=covered) if not pool.cfg.is_share else None  # this owner's shares

        def told(changes: Changes | None = None, cursor: dict[str, str] | None = None) -> None:
            changed(changes, cursor)
            if views is not None:
                views.notice(changes)

        self.remote = RemoteWatcher(pool, told, cursor=cursor).start() if notifications else None
        self.monitor = HealthMonitor(pool, interval=5.0).start()  # the journal poll probes too
        self.repairer = (RepairLoop(pool, grace=repair_grace, first_delay=REPAIR_FIRST_WAIT, ready=first_pass_done)
                         if repair and not pool.cfg.is_share else None)
        if self.repairer is not None:
            self.repairer.on_lost = on_lost  # every pool copy bad: this device's copy goes back
            self.repairer.start()
        self.reconciler = Reconciler(pool, state, lambda ch: told(ch), interval=reconcile_interval,
                                     pause=reconcile_pause).start() if reconcile else None
        self.views = views.start() if views is not None else None

    def stop(self) -> None:
        self.monitor.stop()
        for part in (self.remote, self.repairer, self.reconciler, self.views):
            if part is not None:
                part.stop()
