"""Giving freed memory back to the system after a large sync pass.

A first sync or a full pass over 100,000 files allocates a few KB per file for a while, and glibc's
allocator keeps the freed pages (in one arena per thread that allocated) instead of returning them: the
agent's RSS then stays at its peak for the rest of its life. ``malloc_trim`` returns them. Elsewhere (musl,
macOS) it is a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)
_libc: ctypes.CDLL | None = None
_tried = False


def give_back() -> None:
    global _libc, _tried
    if not _tried:
        _tried = True
        name = ctypes.util.find_library("c")
        try:
            libc = ctypes.CDLL(name) if name else None
            _libc = libc if libc is not None and hasattr(libc, "malloc_trim") else None
        except OSError:
            _libc = None
    if _libc is not None:
        _libc.malloc_trim(0)
