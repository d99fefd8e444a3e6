"""From the three views of the folder to an ordered plan. Pure functions, no I/O.

Order of application (Maestral's, which keeps intermediate states safe): deletes first, then moves, then
transfers in parallel. A local move shows up as a delete plus a create of the same content; it becomes one
server-side move. A move on the pool (another device's, or in the window) shows up as a delete there plus
a new path with the same content; it becomes one local rename, so a moved folder is not trashed and
downloaded again. Too many deletes at once trip the mass-delete guard instead of being applied.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sync_agent import keys
from sync_agent.sync.decide import Action, Conflict, Side, decide


@dataclass(frozen=True)
class Step:
    action: Action
    path: str
    conflict: Conflict | None = None
    target: str = ""  # for moves: the new path


@dataclass
class SyncPlan:
    deletes: list[Step] = field(default_factory=list)
    moves: list[Step] = field(default_factory=list)
    transfers: list[Step] = field(default_factory=list)
    records: list[Step] = field(default_factory=list)  # state-only updates
    issues: dict[str, str] = field(default_factory=dict)
    held: list[str] = field(default_factory=list)  # local deletes the mass-delete guard did not apply

    @property
    def held_deletes(self) -> int:
        return len(self.held)

    @property
    def empty(self) -> bool:
        return not (self.deletes or self.moves or self.transfers or self.records)


def excluded(path: str, folders: Iterable[str]) -> bool:
    return any(keys.is_under(path, f) for f in folders)


def plan(local: dict[str, str], base: dict[str, str], remote: dict[str, str], *,
         scope: Iterable[str] | None = None, excluded_folders: Iterable[str] = (),
         case_insensitive: bool = False, guard_share: float = 0.5, guard_min: int = 20,
         allow_deletes: bool = False, base_count: int | None = None, recent_deletes: int = 0) -> SyncPlan:
    """``local``, ``base`` and ``remote`` map pool paths to SHA-256. ``scope`` limits the paths looked at.

    ``base_count`` is how many files the folder had in sync in all (the mass-delete guard's measure) when
    ``base`` holds only the part of the folder this pass looks at. ``recent_deletes``: local deletes
    applied to the pool in the last minutes; the guard counts them too, so a folder emptied a few files
    per second trips it like one ``rm -rf``.
    """
    out = SyncPlan()
    folders = list(excluded_folders)
    paths = set(scope) if scope is not None else set(local) | set(base) | set(remote)
    if case_insensitive:  # two remote names one local file system cannot tell apart: keep the first
        seen: dict[str, str] = {}
        for p in sorted(set(remote) | set(local)):
            other = seen.setdefault(p.casefold(), p)
            if other != p:
                out.issues[p] = f"differs from '{other}' only in case, which this file system cannot hold apart"
                paths.discard(p)
    for p in sorted(paths):
        sha = local.get(p)
        if sha is not None and sha == base.get(p) == remote.get(p):
            continue  # in sync on all three sides: most paths of a full pass, decided without the objects
        if folders and excluded(p, folders):
            continue
        def side(m: dict[str, str], p: str = p) -> Side | None:
            return Side(m[p]) if p in m else None
        d = decide(side(local), side(base), side(remote))
        step = Step(d.action, p, d.conflict)
        if d.action in (Action.DELETE_REMOTE, Action.TRASH_LOCAL):
            out.deletes.append(step)
        elif d.action in (Action.UPLOAD, Action.DOWNLOAD, Action.CONFLICT):
            out.transfers.append(step)
        elif d.action in (Action.RECORD, Action.FORGET):
            out.records.append(step)
    _find_moves(out, local, base)
    _find_remote_moves(out, local, base, remote)
    deletes = sum(1 for s in out.deletes if s.action == Action.DELETE_REMOTE)  # pool deletes go to the trash
    total = (len(base) if base_count is None else base_count) + recent_deletes
    counted = deletes + recent_deletes
    if deletes and not allow_deletes and counted >= guard_min and counted > guard_share * max(1, total):
        out.held = [s.path for s in out.deletes if s.action == Action.DELETE_REMOTE]
        out.deletes = [s for s in out.deletes if s.action != Action.DELETE_REMOTE]
    return out


def _find_moves(out: SyncPlan, local: dict[str, str], base: dict[str, str]) -> None:
    """A local delete and a local upload of the very content that was deleted: a move, done server-side."""
    _pair(out, Action.DELETE_REMOTE, Action.UPLOAD, Action.MOVE_REMOTE, gone_sha=base, new_sha=local)


def _find_remote_moves(out: SyncPlan, local: dict[str, str], base: dict[str, str], remote: dict[str, str]) -> None:
    """A delete on the pool and a new pool path with the very content this device holds, unchanged, at the
    deleted path: a move on the pool, done here as a rename."""
    _pair(out, Action.TRASH_LOCAL, Action.DOWNLOAD, Action.MOVE_LOCAL, gone_sha=base, new_sha=remote,
          unchanged=lambda p: local.get(p) == base.get(p))


def _pair(out: SyncPlan, delete: Action, create: Action, move: Action, *, gone_sha: dict[str, str],
          new_sha: dict[str, str], unchanged: Callable[[str], bool] = lambda p: True) -> None:
    """Turn a ``delete`` of some content and a ``create`` of a new path with that content into one
    ``move``; each deleted path pairs once, in path order. The paired steps leave the lists in one sweep."""
    gone: dict[str, deque[Step]] = {}
    for s in out.deletes:
        if s.action == delete and s.path in gone_sha and unchanged(s.path):
            gone.setdefault(gone_sha[s.path], deque()).append(s)
    if not gone:
        return
    paired: set[int] = set()
    for step in out.transfers:
        if step.action != create or step.path in gone_sha:
            continue
        candidates = gone.get(new_sha.get(step.path, ""))
        if candidates:
            old = candidates.popleft()  # in path order: of two copies of one content, a/x goes to b/x
            paired.update((id(old), id(step)))
            out.moves.append(Step(move, old.path, target=step.path))
    if paired:
        out.deletes = [s for s in out.deletes if id(s) not in paired]
        out.transfers = [s for s in out.transfers if id(s) not in paired]
