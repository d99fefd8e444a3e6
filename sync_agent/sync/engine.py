"""One sync pass: refresh the remote view, scan (part of) the folder, plan, apply.

Applying never loses a byte: downloads land in a temp file and are renamed into place only when verified,
and only over a local file that is still what the plan saw; remote deletes move local files to the trash
(``.pooldrive/trash``); local deletes become delete markers on the pool (versions stay restorable);
conflicts keep both versions. Every step updates the state right after it succeeds, so a pass killed at any
point resumes where it stopped.
"""

from __future__ import annotations

import errno
import logging
import os
import random
import socket
import stat
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from sync_agent import keys, memory, rebuild, small_writes
from sync_agent.errors import ChangedMeanwhileError, PoolDriveError, UsageError
from sync_agent.journal import Changes
from sync_agent.paths import make_user_dirs
from sync_agent.reader import copy_from_local, get_small_version, get_version
from sync_agent.sync import local_scan, planner, put_back
from sync_agent.sync.conflicts import conflict_name
from sync_agent.sync.decide import Action
from sync_agent.sync.ignore import IgnoreRules
from sync_agent.sync.local_scan import LocalScan
from sync_agent.sync.state import Synced, SyncState
from sync_agent.sync.status import Activity, AgentState, IssueKind
from sync_agent.transfer import SMALL_IN_FLIGHT, TransferControl

if TYPE_CHECKING:
    from sync_agent.catalog.store import Catalog, FileInfo, VersionInfo
    from sync_agent.pool import Pool

log = logging.getLogger(__name__)
TRASH = ".pooldrive/trash"
BULK = 50  # transfers in one pass that make it a bulk upload (see on_bulk)
BIG_PASS = 1000  # steps after which a pass gives the memory it used back to the system
DELETE_WINDOW = 300.0  # seconds over which the mass-delete guard adds up local deletes
FILES_IN_FLIGHT = 16  # files an agent transfers at once unless told (its 100,000-file benchmark was tuned with it)
LOCAL_COPY_MIN = 64 * 1024  # bytes from which content already in the folder is copied, not downloaded


class GoneMeanwhile(ChangedMeanwhileError, KeyError):
    """A file the pass planned with left the catalog before its step ran (deleted or moved elsewhere)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return self.message


class CatalogView(Mapping[str, "FileInfo"]):
    """The pool's live files under a folder pair's pool folder as a full pass sees them, by their path in
    the pair: every path's SHA-256 up front (all the planner needs), a file's whole record only when a step
    asks for it."""

    def __init__(self, catalog: Catalog, root: str = "") -> None:
        self.catalog, self.root = catalog, root
        shas = catalog.live_shas()
        if root:
            cut = len(root) + 1
            shas = {k[cut:]: v for k, v in shas.items() if k.startswith(root + "/")}
        self.shas = shas

    def __getitem__(self, path: str) -> FileInfo:
        info = self.catalog.get(f"{self.root}/{path}" if self.root else path) if path in self.shas else None
        if info is None or info.current is None:
            raise GoneMeanwhile(f"'{path}' changed on the pool during this pass; it is looked at again.",
                                paths=[path])
        return info

    def __contains__(self, path: object) -> bool:
        return path in self.shas

    def __iter__(self) -> Iterator[str]:
        return iter(self.shas)

    def __len__(self) -> int:
        return len(self.shas)


class _Window:
    """At most ``size`` items in flight; a full window waits until half of it is free again."""

    def __init__(self, size: int) -> None:
        self.size, self.inside = size, 0
        self._cond = threading.Condition()

    def enter(self) -> None:
        with self._cond:
            while self.inside >= self.size:
                self._cond.wait()
            self.inside += 1

    def leave(self) -> None:
        with self._cond:
            self.inside -= 1
            if self.inside <= self.size // 2:
                self._cond.notify()


MARKER = ".pooldrive/folder"  # in every sync folder: proves it is the folder that was synced


def _pair_text(pair: object) -> str:
    p = pair if isinstance(pair, dict) else {}
    return f"pool '{p.get('pool')}', {repr(p['remote']) if p.get('remote') else 'the whole pool'}"


class SyncEngine:
    def __init__(self, pool: Pool, folder: Path, state: SyncState | None = None, *, host: str | None = None,
                 parallel: int | None = 4, activity: Activity | None = None, remote_root: str = "") -> None:
        """``parallel``: files transferred at once (None: ``FILES_IN_FLIGHT``, and new small files in batches
        at least ``SMALL_IN_FLIGHT``, one request each). ``remote_root``: the pool folder this local folder
        is paired with ('' for the whole pool). Inside the engine every path is relative to the pair
        (``a/b.txt``); ``pool_key`` and ``local_key`` cross to the pool's paths (``photos/a/b.txt``) at each
        call to the pool."""
        self.pool = pool
        self.remote_root = keys.normalize(remote_root, allow_root=True)
        self.root = folder.resolve()
        self.state = state or SyncState(self.root)
        self._check_pair()
        if not self.state.setting("marked", False) and not self._unmarked_but_synced():
            self._mark()  # first use, or a folder an older version synced (it had no marker)
        self.rules = IgnoreRules(self.root)
        self.activity = activity or Activity()
        self.host = host or socket.gethostname()
        self.parallel = parallel
        self.on_bulk: Callable[[], None] | None = None  # told, now and then, while a pass uploads in bulk
        self.on_folder_back: Callable[[], None] | None = None  # told when a missing sync folder is back
        self.allow_deletes = False  # set once by the user after the mass-delete guard tripped
        self.case_insensitive = local_scan.case_insensitive(self.root) if self.root.is_dir() else False
        self.retry: set[str] = set()  # paths to look at again at once (lost a race to another device)
        self.failed: set[str] = set()  # paths whose transfer failed in the last passes (the agent tries again)
        self._collided = False  # a retry is due after two devices' writes undid each other
        self.held: list[str] = []  # local deletes the mass-delete guard holds until the user decides
        # when local deletes reached the pool (the guard's window; kept across restarts, so stopping the agent
        # halfway through a slow mass delete does not reset the count)
        saved = self.state.setting("recent_deletes", [])
        self._targets: keys.Targets | None = None  # where files land, for the pass being applied
        self._staging_dir: Path | None = None  # see _staging
        self._staging_known = False
        self._recent_deletes: deque[float] = deque(
            sorted(float(t) for t in saved if isinstance(t, int | float)) if isinstance(saved, list) else [])
        # this pass's transfers: a pass where every one failed is not 'idle'
        self._succeeded, self._failed = 0, list[PoolDriveError]()

    @property
    def filled(self) -> bool:
        """Whether this device's catalog holds a complete read of the pair's pool folder."""
        return self.pool.catalog.is_filled(self.remote_root + "/" if self.remote_root else "")

    def _check_pair(self) -> None:
        """What this folder's state says it was synced with must be what it is synced with now: a folder
        re-paired with another pool folder (or pool) would otherwise take every file it synced before for
        one deleted on the pool and trash it. Then the state starts afresh: the first pass uploads, downloads
        and keeps both versions where they differ, and deletes nothing."""
        now = {"pool": self.pool.cfg.name, "remote": self.remote_root}
        saved = self.state.setting("pair")
        if saved is None and not self.state.count():
            saved = now  # a new folder: nothing synced to forget
        elif saved is None:  # a state from before pairs: the whole pool (of whichever pool; the name was not kept)
            saved = {"pool": self.pool.cfg.name, "remote": ""}
        if saved != now:
            forgotten = self.state.forget_all()
            for key in ("excluded", "journal_cursor", "journal_cursor_at", "recent_deletes"):
                self.state.set_setting(key, [] if key in ("excluded", "recent_deletes") else None)
            log.warning("%s was synced with %s and is now synced with %s: starting afresh (%d synced file(s) "
                        "forgotten; nothing is deleted, differing files are kept both)", self.root,
                        _pair_text(saved), _pair_text(now), forgotten)
        self.state.set_setting("pair", now)

    # --- the pair's two sides -------------------------------------------------------------------------
    def pool_key(self, key: str) -> str:
        return f"{self.remote_root}/{key}" if self.remote_root and key else (key or self.remote_root)

    def local_key(self, pool_key: str, *, folder: bool = False) -> str | None:
        """The path in this pair of a pool path, None when the pool path is outside the pair's folder. The
        pair's folder itself is '' when ``folder`` (a file named like it is outside)."""
        if not self.remote_root:
            return pool_key
        if pool_key == self.remote_root:
            return "" if folder else None
        return pool_key[len(self.remote_root) + 1:] if pool_key.startswith(self.remote_root + "/") else None

    def _local_changes(self, remote: Changes) -> tuple[set[str], set[str], bool]:
        """The pool paths and folders of ``remote`` inside this pair, and whether a folder enclosing the
        whole pair changed (then all of it is looked at)."""
        root = self.remote_root
        paths = {p for p in remote.paths if self.local_key(p) is not None}
        folders = {f for f in remote.folders if self.local_key(f.rstrip("/"), folder=True) is not None}
        whole = bool(root) and any(root.startswith(f) or f == "" for f in remote.folders)
        return paths, folders, whole

    # --- one pass -----------------------------------------------------------------------------------
    def sync(self, dirty: Iterable[str] | None = None, *, refresh_remote: bool = True,
             remote: Changes | None = None) -> planner.SyncPlan:
        """One pass. ``dirty=None``: the whole folder and (with ``refresh_remote``) the whole pool, the
        safety net. Otherwise only the given local paths (keys of files or folders) and the remote
        ``changes`` named by the journal: the catalog, the synced state and the folder are looked at
        there and nowhere else, so the cost follows the change, not the size of the folder.

        A file another device saved while this pass uploaded it gets its conflicted copy in the same call
        (up to two more passes over just those paths), not at some later pass: a local edit in between
        could otherwise replace content that never reached the pool."""
        plan = self._pass(dirty, refresh_remote=refresh_remote, remote=remote)
        for _ in range(2):
            if not self.retry:
                break
            again = set(self.retry)
            self.retry.clear()
            if self._collided:
                self._collided = False
                time.sleep(random.uniform(0.05, 0.5))
            self._pass(again, refresh_remote=False, remote=None)
        return plan

    def _pass(self, dirty: Iterable[str] | None, *, refresh_remote: bool, remote: Changes | None) -> planner.SyncPlan:
        if self._folder_missing():
            return planner.SyncPlan()
        changed_remote: set[str] = set()
        try:
            if dirty is None and refresh_remote:
                rebuild.refresh(self.pool, self.remote_root)
            elif remote:
                paths, folders, whole = self._local_changes(remote)
                if whole:
                    folders.add(self.remote_root + "/")
                found = {c.path for c in rebuild.refresh_paths(self.pool, paths, folders)} | paths
                changed_remote = {k for p in found if (k := self.local_key(p)) is not None}
                changed_remote |= {k for f in folders if (k := self.local_key(f.rstrip("/"), folder=True)) is not None}
        except PoolDriveError as e:
            self.activity.set_state(AgentState.OFFLINE, e.message)
            raise
        self.rules.reload()
        if dirty is None:
            scopes = None
            known = self.state.all()
            remote_files: Mapping[str, FileInfo] = CatalogView(self.pool.catalog, self.remote_root)
            base_count = None
        else:
            scopes = local_scan.outermost(set(dirty) | changed_remote)
            if not scopes:
                return planner.SyncPlan()
            known = self.state.under(scopes)
            remote_files = self._remote_under(scopes)
            base_count = self.state.count()
        scan = local_scan.scan(self.root, self.rules, known, only=scopes)
        if scopes is not None and (sources := self._moved_from(scan, known)):
            log.debug("new files here hold the content of %d synced file(s) gone from their paths: looked at "
                      "in this pass (moves)", len(sources))
            scopes = local_scan.outermost([*scopes, *sources])
            known.update(self.state.under(sources))
            remote_files = {**remote_files, **self._remote_under(sources)}
        local = {k: f.sha256 for k, f in scan.files.items()}
        now = time.time()
        while self._recent_deletes and now - self._recent_deletes[0] > DELETE_WINDOW:
            self._recent_deletes.popleft()
        plan = planner.plan(local, {k: s.sha256 for k, s in known.items()},
                            remote_files.shas if isinstance(remote_files, CatalogView)
                            else {k: f.sha256 for k, f in remote_files.items()},
                            excluded_folders=[*self.state.excluded, *scan.unreadable],  # unknown this pass
                            case_insensitive=self.case_insensitive, allow_deletes=self.allow_deletes,
                            base_count=base_count, recent_deletes=len(self._recent_deletes))
        self._report_issues(scopes, {**scan.issues, **plan.issues})
        self._keep_unproven_deletes(plan)
        if scopes is None or plan.held:  # a full pass knows every held path; a partial one only adds
            self.held = sorted(set(plan.held) | (set() if scopes is None else set(self.held)))
        self.activity.held_deletes = len(self.held)
        if self.held:
            self.activity.issue("*", "Many files deleted", f"{_files(len(self.held))} deleted here in a short "
                                "time; they were not deleted on the pool. Allow it ('pooldrive sync resume "
                                "--allow-deletes') or bring them back ('pooldrive sync resume --restore').",
                                IssueKind.MASS_DELETE)
        self._succeeded, self._failed = 0, []
        if not plan.empty:
            self.activity.set_state(AgentState.SYNCING)
            self._apply(plan, scan, remote_files)
        if plan.deletes and self.allow_deletes:
            self.allow_deletes = False
            self._recent_deletes.clear()  # the user allowed these: they do not count toward the next guard
        if any(s.action == Action.DELETE_REMOTE for s in plan.deletes):
            self.state.set_setting("recent_deletes", list(self._recent_deletes))
        if dirty is None or len(plan.transfers) + len(plan.records) > BIG_PASS:
            self.pool.catalog.shrink()  # a batch pass wrote its rows from this thread: its cache goes too
            memory.give_back()
        self.activity.last_sync = time.time()  # with the state just below: a status never shows one alone
        if self.held:
            self.activity.set_state(AgentState.PAUSED, "waiting for confirmation of a mass delete")
        elif self._failed and not self._succeeded:  # nothing got through: say why, not 'up to date'
            self.activity.set_state(AgentState.OFFLINE, f"{len(self._failed)} file(s) not synced: "
                                    f"{self._failed[0].message}")
        else:
            self.activity.clear_issue("*")
            self.activity.set_state(AgentState.ERROR if self._fatal() else AgentState.IDLE)
        return plan

    def _mark(self) -> None:
        make_user_dirs(self.root)
        (self.root / MARKER).parent.mkdir(exist_ok=True)
        (self.root / MARKER).write_text("This folder is synced by PoolDrive. Without this file the sync agent "
                                        "takes the folder for a different one and stops syncing it.\n")
        self.case_insensitive = local_scan.case_insensitive(self.root)
        self.state.set_setting("marked", True)

    def _unmarked_but_synced(self) -> bool:
        """An older version synced files here but the folder is missing or empty now: not marked blindly (a
        drive not mounted on the first start after an upgrade); ``_folder_missing`` says so instead."""
        if not self.state.count():
            return False
        return not self.root.is_dir() or not any(p.name != ".pooldrive" for p in self.root.iterdir())

    def folder_missing(self) -> bool:
        """Whether the sync folder is missing now (see ``_folder_missing``), without saying so."""
        return self._folder_missing(report=False)

    def to_restore(self) -> int:
        """How many files the user's 'restore' brings back: the held deletes, or with the sync folder
        missing, every file synced there."""
        return self.state.count() if self._folder_missing(report=False) else len(self.held)

    def _folder_missing(self, report: bool = True) -> bool:
        """Whether the synced folder is gone or replaced (Syncthing's .stfolder rule): a drive that is not
        mounted leaves an empty folder or none, and syncing that would delete every file on the pool.
        Nothing is synced then, the agent says why, and it goes on by itself when the folder is back."""
        if not (self.root / MARKER).is_file() and not self.state.setting("marked", False) \
                and not self._unmarked_but_synced():
            self._mark()  # an older version's folder, there again after all
        if (self.root / MARKER).is_file():
            if report and "*folder" in self.activity.issues:
                self.activity.clear_issue("*folder")
                self.case_insensitive = local_scan.case_insensitive(self.root)  # perhaps another drive
                log.info("the sync folder %s is back", self.root)
                if self.on_folder_back is not None:
                    self.on_folder_back()  # a drive mounted over the folder: watch what is there now
            return False
        if not report:
            return True
        what = "is gone" if not self.root.is_dir() else f"has lost its PoolDrive marker ({MARKER})"
        self.activity.issue("*folder", "Sync folder missing",
                            f"The sync folder {self.root} {what}: moved, deleted, or on a drive that is not "
                            "mounted. Nothing is synced until it is back, and nothing on the pool was changed. "
                            "To fill a new, empty folder in its place from the pool instead, run "
                            "'pooldrive sync resume --restore'.", IssueKind.FOLDER_MISSING)
        self.activity.set_state(AgentState.ERROR, "the sync folder is missing")
        return True

    def restore_held(self) -> int:
        """The user's answer to a held mass delete: bring the files back. They are still on the pool (the
        deletes were never applied), so forgetting that they were synced here makes the next pass
        download them. Returns how many. With the sync folder missing, the answer makes the folder there
        now the sync folder and fills it from the pool (every file is downloaded again; any file already
        there is kept, as a conflicted copy where it differs)."""
        if self._folder_missing(report=False):
            self._mark()
            known = list(self.state.all())
            for path in known:
                self.state.forget(path)
            self.held = []
            self.activity.held_deletes = 0
            self.activity.clear_issue("*folder")
            log.info("the sync folder %s is new: filling it from the pool (%d files)", self.root, len(known))
            return len(known)
        held, self.held = self.held, []
        for path in held:
            self.state.forget(path)
        self.activity.held_deletes = 0
        self.activity.clear_issue("*")
        log.info("restoring %d file(s) held by the mass-delete guard", len(held))
        return len(held)

    def _keep_unproven_deletes(self, plan: planner.SyncPlan) -> None:
        """Absence is not deletion while this device's catalog is incomplete (never filled from every node:
        a new device, a deleted catalog, a node down since): a synced file missing from it may be held by a
        node not read yet. Only a delete the catalog has seen (a delete marker, a move away) trashes a local
        file then; the others wait, and the agent reads the nodes again until the catalog is complete."""
        if self.filled:
            self.activity.clear_issue("*incomplete")
            return
        unproven = [s for s in plan.deletes if s.action == Action.TRASH_LOCAL
                    and self.pool.catalog.get(self.pool_key(s.path), include_deleted=True) is None]
        if not unproven:
            return
        plan.deletes = [s for s in plan.deletes if s not in unproven]
        log.warning("kept %d local file(s) the incomplete catalog does not know (e.g. '%s')", len(unproven),
                    unproven[0].path)
        self.activity.issue("*incomplete", "Waiting for every node",
                            f"{len(unproven)} file(s) of this folder are not in this device's catalog of the "
                            "pool, which is not complete yet (not every node could be read). They stay here "
                            "until every node has been read.", IssueKind.INCOMPLETE)

    def _moved_from(self, scan: LocalScan, known: Mapping[str, Synced]) -> list[str]:
        """Synced files outside this pass holding the content of files new in it, and gone from the folder:
        the other ends of moves. A move's two ends can reach the agent in different passes (a folder moved
        into a folder made a moment before: inotify reports the new folder's files at once, the old path only
        once it stops waiting for the rename's other half), and taken alone the new files were uploaded again
        and the old ones deleted on the pool a pass later: other devices then trashed their copies and
        downloaded them again. Looked at in the same pass, each is one move on the pool."""
        new = {f.sha256 for k, f in scan.files.items() if k not in known}
        if not new:
            return []
        excluded = self.state.excluded
        return sorted(p for paths in self.state.with_content(new).values() for p in paths
                      if p not in known and not self.rules.ignored(p)
                      and not any(keys.is_under(p, x) for x in excluded) and local_scan.gone(self.root, p))

    def _remote_under(self, scopes: list[str]) -> dict[str, FileInfo]:
        """The pool's live files under ``scopes`` (paths in the pair), by their path in the pair."""
        found: dict[str, FileInfo] = {}
        for scope in scopes:
            where = self.pool_key(scope)
            if not where:
                found = {f.path: f for f in self.pool.walk() if f.current is not None}
                break
            f = self.pool.catalog.get(where)
            if f is not None and f.current is not None:
                found[f.path] = f
            found.update((f.path, f) for f in self.pool.catalog.walk(where + "/") if f.current is not None)
        return {k: f for p, f in found.items() if (k := self.local_key(p)) is not None}

    def _report_issues(self, scopes: list[str] | None, issues: dict[str, str]) -> None:
        """Issues found now replace the earlier ones about the same paths (a fixed problem goes away)."""
        for path in list(self.activity.issues):
            if path.startswith("*") or path in issues:
                continue
            rel = path
            try:
                rel = keys.relative_key(self.root, Path(path)) if path.startswith("/") else path
            except PoolDriveError:
                pass  # a path outside the folder: judged by its text
            in_scope = scopes is None or any(keys.is_under(rel, s) for s in scopes)
            if in_scope and self.activity.issues[path].kind == IssueKind.NOT_SYNCED:
                self.activity.clear_issue(path)
        for path, why in issues.items():
            self.activity.issue(path, "Not synced", f"{path} {why}")

    def _fatal(self) -> bool:
        return any(i.kind == IssueKind.FOLDER_MISSING for i in self.activity.issues.values())

    # --- applying ---------------------------------------------------------------------------------
    def _apply(self, plan: planner.SyncPlan, scan: LocalScan, remote: Mapping[str, FileInfo]) -> None:
        self._targets = keys.Targets(self.root)  # each folder resolved once per pass, not once per file
        self._staging()
        for step in plan.deletes:
            self._guarded(step.path, lambda s=step: self._delete(s, scan, remote))
        for step in plan.moves:
            self._guarded(step.target, lambda s=step: self._move(s, scan, remote))
        for step in plan.records:
            try:
                self._record(step, scan, remote)
            except GoneMeanwhile:
                self.retry.add(step.path)
        workers = max(1, self.parallel or FILES_IN_FLIGHT)
        # a bounded window of submitted transfers (a future per file of a 100,000-file first sync, all made up
        # front, was a good part of the agent's peak memory); refilled when half of it has finished: waking
        # this thread for every finished transfer, or waiting on the window's futures, cost a tenth to a
        # fifth of the agent's CPU
        window = _Window(4 * workers)
        failures: list[BaseException] = []

        def finished(f: Future[None]) -> None:
            window.leave()
            if not f.cancelled() and f.exception() is not None:
                failures.append(f.exception())  # type: ignore[arg-type]

        bulk = len(plan.transfers) >= BULK
        if bulk:
            self.activity.begin_bulk()
        try:
            batched = self.parallel or max(workers, SMALL_IN_FLIGHT)
            transfers = self._upload_small_new(plan.transfers, scan, batched) if bulk else plan.transfers
            with ThreadPoolExecutor(workers) as ex:
                for i, step in enumerate(transfers):
                    if bulk and self.on_bulk is not None and i % BULK == 0:
                        self.on_bulk()
                    window.enter()
                    if failures:
                        break
                    fut = ex.submit(self._guarded, step.path, lambda s=step: self._transfer(s, scan, remote))
                    fut.add_done_callback(finished)
        finally:
            self._targets = None  # resolved again next pass
            if bulk:
                self.activity.end_bulk()
        if failures:
            raise failures[0]

    def _upload_small_new(self, steps: list[planner.Step], scan: LocalScan, workers: int) -> list[planner.Step]:
        """A bulk pass's new small files go up in batches (``small_writes``: a first sync is mostly them);
        returns the steps left for one-by-one transfers: everything else, and what a batch hands back."""
        small = {self.pool_key(s.path): s.path for s in steps
                 if s.action == Action.UPLOAD and small_writes.fits(scan.files[s.path].size)}
        if len(small) < 2:
            return steps

        done: set[str] = set()

        def settled(o: small_writes.Outcome) -> None:
            key = small[o.key]
            done.add(key)
            if o.error is None:  # recorded as it was read: an edit since then is seen by the next scan
                self.state.put(Synced(key, o.sha256, o.size, o.mtime_ns, 1))
                self._guarded(key, lambda: self.activity.finish(key, "uploaded"))
            else:
                self._guarded(key, lambda: _raise(o.error))

        try:
            left = small_writes.put_new(self.pool, [(scan.files[k].path, pk) for pk, k in small.items()],
                                        parallel=workers, on_file=settled, limiter=self.pool.up_limiter,
                                        before_batch=self.on_bulk)
        except PoolDriveError as e:  # the batch undid what it had not recorded: the rest goes one by one
            log.warning("batch upload stopped (%s); going on one file at a time", e.message)
            return [s for s in steps if s.path not in done]
        back = {pk for _, pk in left}
        return [s for s in steps if s.action != Action.UPLOAD or (pk := self.pool_key(s.path)) not in small
                or pk in back]

    def _guarded(self, path: str, fn) -> None:
        try:
            fn()
            self._succeeded += 1
        except GoneMeanwhile:
            self.retry.add(path)  # decided again at once, with what the pool holds now
        except PoolDriveError as e:  # per-file: kept as an issue, tried again (see SyncAgent's retry)
            self._failed.append(e)
            self.failed.add(path)
            self.activity.issue(path, e.title, e.message, IssueKind.of(e))
        except OSError as e:
            self.activity.issue(path, "Local file problem", f"{path}: {e.strerror or e}", IssueKind.LOCAL_FILE)

    def put_back_lost(self, lost: list[str]) -> list[str]:
        """Files with no good copy left on the pool that this folder holds at their current version: put
        back from here (``put_back``); returns those put back."""
        def local_of(pool_key: str) -> Path | None:
            key = self.local_key(pool_key)
            if not key or any(keys.is_under(key, x) for x in self.state.excluded):
                return None
            found = [p for p in local_scan.on_disk(self.root, key) if p.is_file()]
            return found[0] if len(found) == 1 else None

        def synced(pool_key: str) -> Synced | None:
            key = self.local_key(pool_key)
            return self.state.get(key) if key else None

        done = put_back.put_back(self.pool, lost, local_of, synced)
        for pool_key in done:
            self.activity.finish(self.local_key(pool_key) or pool_key, "put back on the pool")
        return done

    def _local_path(self, key: str, scan: LocalScan) -> Path:
        f = scan.files.get(key)
        return f.path if f is not None else self._target(key)

    def _target(self, key: str) -> Path:
        """Where a file that is not here yet lands: inside the folder that is already on disk under its
        real name (an NFD folder from a Mac stays one folder), else at the key's own name."""
        target = (self._targets or keys.Targets(self.root))(key)  # validates the untrusted key
        parent = keys.parent(key)
        if parent and not parent.isascii():
            existing = local_scan.on_disk(self.root, parent)
            if existing:
                return existing[0] / target.name
        return target

    def _still_as_scanned(self, key: str, scan: LocalScan) -> bool:
        f = scan.files.get(key)
        try:
            st = os.lstat(self._local_path(key, scan))
        except FileNotFoundError:
            return f is None
        return f is not None and (st.st_size, st.st_mtime_ns) == (f.size, f.mtime_ns)

    def _record_synced(self, key: str, path: Path, sha256: str, version: int) -> None:
        st = os.stat(path)
        self.state.put(Synced(key, sha256, st.st_size, st.st_mtime_ns, version))

    def _delete(self, step: planner.Step, scan: LocalScan, remote: Mapping[str, FileInfo]) -> None:
        key = step.path
        if step.action == Action.DELETE_REMOTE:
            self.pool.delete(self.pool_key(key))
            self._recent_deletes.append(time.time())
            self.state.forget(key)
            self.activity.finish(key, "deleted on the pool")
            return
        # deleted on the pool: move the local file to the trash, if it is still what was last synced
        known = self.state.get(key)
        path = self._local_path(key, scan)
        f = scan.files.get(key)
        if f is None or known is None or f.sha256 != known.sha256 or not self._still_as_scanned(key, scan):
            return  # changed meanwhile: the next pass sees an edit, which wins over the delete
        target = self.root / TRASH / time.strftime("%Y-%m-%d") / key
        make_user_dirs(target.parent)
        if target.exists():
            target = target.with_name(f"{target.name}.{int(time.time() * 1000)}")
        os.replace(path, target)
        self.state.forget(key)
        self._prune_empty_dirs(path.parent)
        self.activity.finish(key, "moved to the trash (deleted on the pool)")

    def _prune_empty_dirs(self, d: Path) -> None:
        while d != self.root and self.root in d.parents:
            try:
                d.rmdir()
            except OSError:
                return
            d = d.parent

    def _move(self, step: planner.Step, scan: LocalScan, remote: Mapping[str, FileInfo]) -> None:
        if step.action == Action.MOVE_LOCAL:
            self._move_here(step, scan, remote)
            return
        self.pool.move(self.pool_key(step.path), self.pool_key(step.target))
        info = self.pool.stat(self.pool_key(step.target))
        self.state.forget(step.path)
        self._record_synced(step.target, self._local_path(step.target, scan), info.sha256, info.version)
        self.activity.finish(step.target, f"moved from {step.path}")

    def _move_here(self, step: planner.Step, scan: LocalScan, remote: Mapping[str, FileInfo]) -> None:
        """Moved on the pool: the file here, still what was last synced, is renamed to its new path (the
        content is the same: nothing to download). Anything changed meanwhile, here or on the pool, is
        left to the next pass, which then sees a plain delete and create."""
        known, f, info = self.state.get(step.path), scan.files.get(step.path), remote.get(step.target)
        src, dest = self._local_path(step.path, scan), self._target(step.target)
        if (f is None or known is None or info is None or len({f.sha256, known.sha256, info.sha256}) != 1
                or not self._still_as_scanned(step.path, scan) or os.path.lexists(dest)):
            self.retry.update((step.path, step.target))
            return
        make_user_dirs(dest.parent)
        os.replace(src, dest)
        self.state.forget(step.path)
        self._record_synced(step.target, dest, info.sha256, info.version)
        self._prune_empty_dirs(src.parent)
        self.activity.finish(step.target, f"moved from {step.path} (moved on the pool)")

    def _record(self, step: planner.Step, scan: LocalScan, remote: Mapping[str, FileInfo]) -> None:
        if step.action == Action.FORGET:
            self.state.forget(step.path)
            return
        f = scan.files.get(step.path)
        if f is not None and step.path in remote:
            self.state.put(Synced(step.path, f.sha256, f.size, f.mtime_ns, remote[step.path].version))

    def _transfer(self, step: planner.Step, scan: LocalScan, remote: Mapping[str, FileInfo]) -> None:
        key = step.path
        if step.action == Action.UPLOAD:
            path = scan.files[key].path
            t = self.activity.transfer(key, "up", scan.files[key].size)
            control = TransferControl(on_progress=lambda d, n: self.activity.progress(t, d, n),
                                      limiter=self.pool.up_limiter)
            try:
                info = self.pool.put_file(path, self.pool_key(key), control=control)
            except ChangedMeanwhileError:
                # another device saved it first: when the catalog learned its version, the next pass (at
                # once) makes ours a conflicted copy; otherwise this is an issue until the change arrives
                now = self.pool.catalog.get(self.pool_key(key))
                if isinstance(remote, CatalogView):
                    before = remote.shas.get(key)  # as planned (the view reads records when asked)
                else:
                    planned = remote.get(key)
                    before = planned.sha256 if planned else None
                if (now.sha256 if now else None) != before:
                    self.retry.add(key)
                    self.activity.finish(key, "changed on another device meanwhile; keeping both")
                    return
                # nothing newer won: two devices that disagreed on the path's arbiter (one still counts a
                # node down that the other sees up) both found the other's copy and both undid theirs.
                # Tried again at once, after a random pause, so one of them goes first this time
                self.retry.add(key)
                self._collided = True
                raise
            self._record_synced(key, path, info.sha256, info.version)
            self.activity.finish(key, "uploaded")
            return
        info = remote[key]
        if step.action == Action.CONFLICT:
            if not self._still_as_scanned(key, scan):
                return  # changed again meanwhile: decide next pass
            local = self._local_path(key, scan)
            copy = local.with_name(conflict_name(local.name, self.host, time.time(),
                                                 lambda n: (local.parent / n).exists()))
            os.replace(local, copy)  # the local version keeps living, under the conflict name
            self.activity.issue(keys.relative_key(self.root, copy), "Conflict",
                                f"'{key}' was changed here and on the pool; your version is now '{copy.name}'.",
                                IssueKind.CONFLICT)
        elif not self._still_as_scanned(key, scan):
            return  # edited locally since the scan: not overwritten; the next pass decides
        dest = self._local_path(key, scan) if step.action == Action.DOWNLOAD else self._target(key)
        assert info.current is not None
        t = self.activity.transfer(key, "down", info.size)
        control = TransferControl(on_progress=lambda d, n: self.activity.progress(t, d, n),
                                  limiter=self.pool.down_limiter)
        source = self._copy_here(key, info.current, dest)
        if source is None and not self._get_small(info.current, dest, control):
            get_version(self.pool, info.current, dest, control, self.pool_key(key), durable=True)
        self._record_synced(key, dest, info.sha256, info.version)
        self.activity.finish(key, "downloaded" if source is None else f"copied from {source} (already here)")

    def _copy_here(self, key: str, v: VersionInfo, dest: Path) -> str | None:
        """Content this folder already holds under another synced path, unchanged since it was synced: copied
        from there (checked against the version's SHA-256 as it is read) instead of downloaded again, so a
        folder copied on another device costs this one no download. Returns the path copied from, or None."""
        if v.size < LOCAL_COPY_MIN:
            return None  # a request costs about what the lookup does
        for other in self.state.with_content([v.sha256]).get(v.sha256, []):
            synced = self.state.get(other)
            found = local_scan.on_disk(self.root, other) if other != key else []
            if synced is None or len(found) != 1:
                continue
            try:
                st = os.lstat(found[0])
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode) or (st.st_size, st.st_mtime_ns) != (synced.size, synced.mtime_ns):
                continue  # changed since it was synced: not known to hold these bytes
            if copy_from_local(found[0], v, dest, durable=True, staging=self._staging_dir):
                return other
        return None

    def _get_small(self, v: VersionInfo, dest: Path, control: TransferControl) -> bool:
        """A small file in one request on this thread (``reader.get_small_version``); False: the full path
        is taken (a large file, or the first replica failed). A new device's first sync is mostly these."""
        control.checkpoint()
        try:
            done = get_small_version(self.pool, v, dest, durable=True, staging=self._staging_dir)
        except OSError as e:  # a local problem: the full path says it with the file's name
            if e.errno == errno.EXDEV and self._staging_dir is not None:  # one device, two mounts (a bind mount)
                log.info("downloads cannot move from %s into the folder: writing them next to their files",
                         self._staging_dir)
                self._staging_dir = None
            log.debug("fast path for %s: %s", dest, e)
            return False
        if done:
            control.total = v.size
            control.advance(v.size)  # paced after the fact: the download limit holds over many files
        return done

    def _staging(self) -> None:
        """Where small downloads are written before they move into the folder (``_staging_dir``): the state
        dir's 'incoming', when it is on the folder's file system (else None: next to the file, as large
        ones). Looked for by a pass before its transfers start, on one thread."""
        if self._staging_known:
            return
        where = self.state.dir / "incoming"
        try:
            where.mkdir(exist_ok=True)
            for left in where.iterdir():  # a stopped agent's (each is written again in full)
                left.unlink(missing_ok=True)
            same = os.stat(where).st_dev == os.stat(self.root).st_dev
        except OSError as e:  # the folder missing, say: looked for again next pass
            log.debug("no staging folder for downloads yet (%s): writing them next to their files", e)
            return
        self._staging_dir, self._staging_known = (where if same else None), True

    # --- selective sync -----------------------------------------------------------------------------
    def exclude(self, folder: str) -> list[str]:
        """Stop syncing a remote folder: its local copy goes only where every file is safely on the pool.

        Returns the local files kept because they are not on the pool (they are reported, never deleted).
        """
        folder = self._in_pair(folder)
        excluded = self.state.excluded
        if folder not in excluded:
            self.state.set_setting("excluded", [*excluded, folder])
        known = self.state.all()
        scan = local_scan.scan(self.root, self.rules, known, only=[folder])
        kept = []
        for key, f in scan.files.items():
            on_pool = self.pool.catalog.get(self.pool_key(key))
            if on_pool is not None and on_pool.sha256 == f.sha256:
                f.path.unlink()
                self._prune_empty_dirs(f.path.parent)
                self.state.forget(key)
            else:
                kept.append(key)
                self.activity.issue(key, "Kept locally", f"'{key}' is in an excluded folder but not on the pool; "
                                    "it was left in place.", IssueKind.KEPT_LOCALLY)
        for key in list(known):
            if keys.is_under(key, folder) and key not in scan.files:
                self.state.forget(key)
        return kept

    def _in_pair(self, folder: str) -> str:
        """A folder named by its pool path ('photos/raw') or by its path in the pair ('raw'), as a path in
        the pair. The pair's own folder is refused: that is 'sync remove'."""
        folder = keys.normalize(folder)
        if self.remote_root and folder == self.remote_root:
            raise UsageError(f"'{folder}' is the pool folder this folder is paired with; to stop syncing it, "
                             "remove the pair ('pooldrive sync remove').", paths=[folder])
        inside = self.local_key(folder) if self.remote_root else None
        return inside or folder

    def include(self, folder: str) -> None:
        folder = self._in_pair(folder)
        self.state.set_setting("excluded", [f for f in self.state.excluded if f != folder])


def _raise(error: BaseException | None) -> None:
    if error is not None:
        raise error


def _files(n: int) -> str:
    return f"{n} file was" if n == 1 else f"{n} files were"
