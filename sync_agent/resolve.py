"""Settling a conflict from any device: keep one of the two versions, on the pool.

A conflict leaves two files on the pool: the one both devices changed and its conflicted copy (the losing
device's version, see ``sync/conflicts.py``). Keeping the original deletes the copy; keeping the copy
makes its content the original's next version (same file, same history) and then deletes the copy.
Either way nothing is lost: the deleted copy and the replaced version stay restorable. Every sync agent
then applies the result like any other change.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from sync_agent import keys
from sync_agent.errors import ChangedMeanwhileError, NotFoundError
from sync_agent.sync.conflicts import MARK, Conflict, find, long_original, parse

if TYPE_CHECKING:
    from sync_agent.pool import Pool

log = logging.getLogger(__name__)

Keep = Literal["original", "copy"]


def conflicts(pool: Pool) -> list[Conflict]:
    """Every conflicted copy on the pool whose original is still there, newest first, with both versions
    as they are now (settling it later checks they still are)."""
    out = []
    for c in find(pool.catalog.live_paths_containing(MARK)):
        c = _named_in_full(pool, c)
        copy, original = pool.catalog.get(c.copy), pool.catalog.get(c.original)
        if copy is not None and original is not None:
            out.append(dataclasses.replace(c, copy_version=copy.version, original_version=original.version))
    return out


def _named_in_full(pool: Pool, c: Conflict) -> Conflict:
    """``c`` with its original's whole name when the copy's name had to cut it (a name near 255 bytes)."""
    if pool.catalog.get(c.original) is not None:
        return c
    folder = c.copy.rpartition("/")[0]
    siblings = [e.name for e in pool.catalog.list_dir(folder + "/" if folder else "") if not e.is_dir]
    full = long_original(c.copy, siblings)
    return dataclasses.replace(c, original=full) if full else c


def resolve(pool: Pool, copy: str, keep: Keep, *, seen: Conflict | None = None) -> Conflict:
    """Keep one side of the conflict ``copy`` names; returns the conflict settled. ``seen``: the conflict
    as the user was shown it: if either side changed since, nothing is done and ChangedMeanwhileError says
    so (a version from another device is never overwritten or deleted unseen)."""
    copy = keys.normalize(copy)
    c = parse(copy)
    if c is None:
        raise NotFoundError(f"'{copy}' is not a conflicted copy.", paths=[copy])
    c = _named_in_full(pool, c)
    now_copy = pool.stat(c.copy)  # raises NotFoundError with the path when it is gone already
    now_original = pool.catalog.get(c.original)
    if seen is not None and (now_copy.version != seen.copy_version or
                             (now_original.version if now_original else 0) != seen.original_version):
        raise ChangedMeanwhileError(f"'{c.original}' or its conflicted copy changed since the list was shown; "
                                    "nothing was changed. Look at them again.", paths=[c.original, c.copy])
    if keep == "original":
        if now_original is None:
            raise NotFoundError(f"'{c.original}' was deleted meanwhile, so keeping it would leave neither "
                                "version: keep the conflicted copy, or restore the original first.",
                                paths=[c.original])
        pool.delete(c.copy)
    elif now_original is None:
        pool.move(c.copy, c.original)  # the original was deleted meanwhile: the copy takes its place
    else:
        with tempfile.TemporaryDirectory(prefix="pooldrive-resolve-") as tmp:
            local = pool.get_file(c.copy, Path(tmp) / "copy")
            pool.put_file(local, c.original)  # the original's next version: its history stays
        pool.delete(c.copy)
    log.info("conflict on '%s': kept the %s", c.original, "conflicted copy" if keep == "copy" else "original")
    return c
