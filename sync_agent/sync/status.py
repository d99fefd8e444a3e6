"""What the agent is doing, for the CLI, the tray and the socket API: state, transfers, recent changes,
per-file issues. Changes are numbered so clients can long-poll (``wait``) instead of polling on a timer."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, TypedDict

from sync_agent.errors import ChangedMeanwhileError, PoolDriveError, QuorumError


class AgentState(StrEnum):
    STARTING = "starting"
    IDLE = "idle"
    SYNCING = "syncing"
    PAUSED = "paused"
    ERROR = "error"
    OFFLINE = "offline"


class IssueKind(StrEnum):
    """What an issue is about, for whoever acts on it (the tray notifies some kinds); its title is for
    people and may change."""

    CONFLICT = "conflict"  # a conflicted copy was made
    CHANGED_MEANWHILE = "changed-meanwhile"  # another device saved first: kept as a conflicted copy
    QUORUM = "quorum"  # not enough nodes took the copies
    MASS_DELETE = "mass-delete"  # many local deletes held for the user's answer
    NOT_SYNCED = "not-synced"  # a file the pass could not sync (the message says why)
    LOCAL_FILE = "local-file"  # the local file system refused
    KEPT_LOCALLY = "kept-locally"  # in an excluded folder and not on the pool
    INCOMPLETE = "incomplete"  # not every node could be read yet
    WATCH = "watch"  # the folder watcher cannot see every change
    FOLDER_MISSING = "folder-missing"  # the sync folder itself is gone: nothing is synced

    @classmethod
    def of(cls, e: PoolDriveError) -> IssueKind:
        if isinstance(e, QuorumError):
            return cls.QUORUM
        if isinstance(e, ChangedMeanwhileError):
            return cls.CHANGED_MEANWHILE
        return cls.NOT_SYNCED


log = logging.getLogger(__name__)


@dataclass
class Transfer:
    path: str
    direction: str  # up | down
    done: int = 0
    total: int = 0
    started: float = field(default_factory=time.time)


@dataclass
class Issue:
    path: str
    title: str
    message: str
    kind: IssueKind = IssueKind.NOT_SYNCED
    since: float = field(default_factory=time.time)


class IssueInfo(TypedDict):
    """An issue as the socket API sends it."""

    path: str
    title: str
    message: str
    kind: str  # an IssueKind value
    since: float


class StatusSnapshot(TypedDict):
    """The agent's status as the socket API sends it, read alike by the tray, the window and the CLI."""

    seq: int
    state: str  # an AgentState value
    detail: str
    transfers: list[dict[str, Any]]
    recent: list[dict[str, Any]]
    issues: list[IssueInfo]
    last_sync: float
    held_deletes: int


class PairStatus(TypedDict):
    """One folder pair of the agent, in a line (``pooldrive sync list``)."""

    folder: str
    remote: str  # the pool folder ('' the whole pool)
    state: str
    detail: str
    issues: int
    last_sync: float


class AgentStatus(StatusSnapshot):
    """The snapshot with what the agent adds about itself (``pooldrive sync status --json`` prints it)."""

    folder: str
    pool: str
    pid: int
    paused: bool
    excluded: list[str]
    limits: dict[str, float]
    remote: str  # the pool folder this folder syncs with ('' the whole pool)
    pairs: list[PairStatus]  # every folder pair the agent serves (this one included)


class Activity:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.seq = 0
        self.state = AgentState.STARTING
        self.detail = ""
        self.transfers: dict[str, Transfer] = {}
        self.recent: deque[dict[str, Any]] = deque(maxlen=50)
        self.issues: dict[str, Issue] = {}
        self.last_sync = 0.0
        self.held_deletes = 0
        self._bulk: Counter[str] | None = None  # during a bulk pass: how many files each action
        self._bulk_started = 0.0
        self._paused = ""  # why the user paused syncing ('' when not): a pass ending meanwhile is not 'idle'

    def _changed(self) -> None:
        self.seq += 1
        self._cond.notify_all()

    def pause(self, why: str) -> None:
        """Paused by the user (``why``), or no longer (''): the state says so until then, whatever pass
        finishes meanwhile (a pause during a pass was overwritten by its 'idle')."""
        with self._cond:
            self._paused = why
        if why:
            self.set_state(AgentState.PAUSED, why)

    def set_state(self, state: AgentState, detail: str = "") -> None:
        with self._cond:
            if self._paused and state in (AgentState.IDLE, AgentState.SYNCING):
                state, detail = AgentState.PAUSED, self._paused
            if (state, detail) != (self.state, self.detail):
                if state != AgentState.SYNCING:
                    log.info("state: %s%s", state.value, f" ({detail})" if detail else "")
                self.state, self.detail = state, detail
                self._changed()

    def transfer(self, path: str, direction: str, total: int) -> Transfer:
        with self._cond:
            t = self.transfers[path] = Transfer(path, direction, 0, total)
            self._changed()
            return t

    def progress(self, t: Transfer, done: int, total: int) -> None:
        t.done, t.total = done, total  # progress is read on demand; it does not wake long-pollers

    def begin_bulk(self) -> None:
        """A pass with many transfers: each file goes to the log at DEBUG, and one line sums them up at the end
        (a first sync of 100,000 files wrote 100,000 'uploaded' lines, and the log rotated away the rest)."""
        with self._cond:
            self._bulk = Counter()
            self._bulk_started = time.monotonic()

    def end_bulk(self) -> None:
        with self._cond:
            done, self._bulk = self._bulk, None
        if done:
            what = ", ".join(f"{n:,} {action}" for action, n in done.most_common())
            log.info("%s in %.0f s (each file at DEBUG level)", what, time.monotonic() - self._bulk_started)

    def finish(self, path: str, action: str) -> None:
        bulk = self._bulk
        if bulk is None:
            log.info("%s: %s", path, action)
        else:
            log.debug("%s: %s", path, action)
        with self._cond:
            if self._bulk is not None:
                self._bulk[action] += 1
            self.transfers.pop(path, None)
            self.recent.appendleft({"path": path, "action": action, "time": time.time()})
            self.issues.pop(path, None)
            self._changed()

    def issue(self, path: str, title: str, message: str, kind: IssueKind = IssueKind.NOT_SYNCED) -> None:
        if path not in self.issues or self.issues[path].message != message:
            log.warning("%s: %s", title, message)
        with self._cond:
            self.transfers.pop(path, None)
            old = self.issues.get(path)
            if old is None or (old.title, old.message, old.kind) != (title, message, kind):
                self.issues[path] = Issue(path, title, message, kind)
                self._changed()

    def clear_issue(self, path: str) -> None:
        with self._cond:
            if self.issues.pop(path, None) is not None:
                self._changed()

    def snapshot(self) -> StatusSnapshot:
        with self._cond:
            issues = [IssueInfo(path=i.path, title=i.title, message=i.message, kind=i.kind.value, since=i.since)
                      for i in self.issues.values()]
            return StatusSnapshot(seq=self.seq, state=self.state.value, detail=self.detail,
                                  transfers=[asdict(t) for t in self.transfers.values()], recent=list(self.recent),
                                  issues=issues, last_sync=self.last_sync, held_deletes=self.held_deletes)

    def wait(self, since: int, timeout: float) -> StatusSnapshot:
        with self._cond:
            self._cond.wait_for(lambda: self.seq > since, timeout=timeout)
        return self.snapshot()
