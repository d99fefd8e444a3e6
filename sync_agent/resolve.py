"""Settling a conflict from any device: keep one of the two versions, on the pool.

A conflict leaves two files on the pool: the one both devices changed and its conflicted copy (the losing
device's version, see ``sync/conflicts.py``). Keeping the original deletes the copy; keeping the copy
makes its content the original's next version (same file, same history) and then deletes the copy.
Either way nothing is lost: the deleted copy and the replaced version stay restorable. Every sync agent
then applies the result like any other change.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from sync_agent.errors import NotFoundError
from sync_agent.sync.conflicts import MARK, Conflict, find, parse

if TYPE_CHECKING:
    from sync_agent.pool import Pool

log = logging.getLogger(__name__)

Keep = Literal["original", "copy"]


def conflicts(pool: Pool) -> list[Conflict]:
    """Every conflicted copy on the pool whose original is still there, newest first."""
    found = find(pool.catalog.live_paths_containing(MARK))
    return [c for c in found if pool.exists(c.original)]


def resolve(pool: Pool, copy: str, keep: Keep) -> Conflict:
    """Keep one side of the conflict ``copy`` names; returns the conflict settled."""
    c = parse(copy)
    if c is None:
        raise NotFoundError(f"'{copy}' is not a conflicted copy.", paths=[copy])
    pool.stat(c.copy)  # raises NotFoundError with the path when it is gone already
    if keep == "copy":
        if not pool.exists(c.original):
            pool.move(c.copy, c.original)  # the original was deleted meanwhile: the copy takes its place
            log.info("conflict on '%s': kept the copy (the original was gone)", c.original)
            return c
        with tempfile.TemporaryDirectory(prefix="pooldrive-resolve-") as tmp:
            local = pool.get_file(c.copy, Path(tmp) / "copy")
            pool.put_file(local, c.original)  # the original's next version: its history stays
    pool.delete(c.copy)
    log.info("conflict on '%s': kept the %s", c.original, "copy" if keep == "copy" else "original")
    return c
