"""Two-way sync decisions: a pure function of (local, last synced, remote). No I/O.

Content is compared by SHA-256, so a file saved again unchanged, or changed identically on both sides, is
not a change. An edit always beats a delete (nothing anyone wrote is ever thrown away), and when both
sides changed differently both versions are kept (``Action.CONFLICT``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Action(StrEnum):
    NOTHING = "nothing"
    UPLOAD = "upload"
    DOWNLOAD = "download"
    DELETE_REMOTE = "delete_remote"  # deleted here: delete on the pool (its versions stay restorable)
    TRASH_LOCAL = "trash_local"  # deleted on the pool: move the local file to the trash, never unlink
    RECORD = "record"  # both sides agree already: remember it as synced
    FORGET = "forget"  # gone on both sides: forget it
    CONFLICT = "conflict"  # both changed differently: keep the local one as a conflicted copy, download
    MOVE_REMOTE = "move_remote"  # moved here: move on the pool (server-side); found by the planner
    MOVE_LOCAL = "move_local"  # moved on the pool: rename the file here, not trash + download; by the planner


class Conflict(StrEnum):
    BOTH_EDITED = "both edited"
    BOTH_CREATED = "both created"


@dataclass(frozen=True)
class Side:
    """One side's content of a path; ``None`` where the path does not exist on that side."""

    sha256: str


@dataclass(frozen=True)
class Decision:
    action: Action
    conflict: Conflict | None = None


def decide(local: Side | None, base: Side | None, remote: Side | None) -> Decision:
    if base is None:
        if local is None and remote is None:
            return Decision(Action.NOTHING)
        if remote is None:
            return Decision(Action.UPLOAD)
        if local is None:
            return Decision(Action.DOWNLOAD)
        if local == remote:
            return Decision(Action.RECORD)
        return Decision(Action.CONFLICT, Conflict.BOTH_CREATED)
    local_changed = local != base
    remote_changed = remote != base
    if not local_changed and not remote_changed:
        return Decision(Action.NOTHING)
    if local_changed and not remote_changed:
        return Decision(Action.DELETE_REMOTE if local is None else Action.UPLOAD)
    if remote_changed and not local_changed:
        return Decision(Action.TRASH_LOCAL if remote is None else Action.DOWNLOAD)
    # both changed
    if local == remote:
        return Decision(Action.FORGET if local is None else Action.RECORD)
    if local is None:
        return Decision(Action.DOWNLOAD)  # deleted here, edited there: the edit wins
    if remote is None:
        return Decision(Action.UPLOAD)  # edited here, deleted there: the edit wins
    return Decision(Action.CONFLICT, Conflict.BOTH_EDITED)
