"""Conflicted copy names, Dropbox style: ``report (conflicted copy from laptop 2026-11-24 153012).txt``."""

from __future__ import annotations

import time
from collections.abc import Callable


def conflict_name(name: str, host: str, when: float, exists: Callable[[str], bool] = lambda _: False) -> str:
    """The name for the local copy of ``name`` when both sides changed; never one that ``exists``."""
    stem, dot, ext = name.rpartition(".")
    if not stem or stem.endswith("/"):  # no extension (or a dot file like '.bashrc')
        stem, dot, ext = name, "", ""
    stamp = time.strftime("%Y-%m-%d %H%M%S", time.localtime(when))
    host = host.replace("/", "_")
    for i in range(1, 1000):
        extra = f" {i}" if i > 1 else ""
        candidate = f"{stem} (conflicted copy from {host} {stamp}{extra}){dot}{ext}"
        if not exists(candidate):
            return candidate
    raise RuntimeError("no free conflict name")  # 999 conflicts of one file in one second


def is_conflict_copy(name: str) -> bool:
    return "(conflicted copy from " in name
