"""Conflicted copy names, Dropbox style: ``report (conflicted copy from laptop 2026-11-24 153012).txt``."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

MARK = "(conflicted copy from "
_COPY = re.compile(r" \(conflicted copy from (?P<host>.+?) (?P<stamp>\d{4}-\d{2}-\d{2} \d{6})(?: \d+)?\)")


MAX_NAME = 255  # bytes of one file name on every common file system


def conflict_name(name: str, host: str, when: float, exists: Callable[[str], bool] = lambda _: False) -> str:
    """The name for the local copy of ``name`` when both sides changed; never one that ``exists``. A long
    name is shortened before the mark so the copy's name still fits in ``MAX_NAME`` bytes (a conflict on a
    name near 255 bytes left both sides out of step: 'File name too long')."""
    stem, dot, ext = name.rpartition(".")
    if not stem or stem.endswith("/"):  # no extension (or a dot file like '.bashrc')
        stem, dot, ext = name, "", ""
    stamp = time.strftime("%Y-%m-%d %H%M%S", time.localtime(when))
    host = host.replace("/", "_")[:64]
    folder, slash, base = stem.rpartition("/")
    for i in range(1, 1000):
        extra = f" {i}" if i > 1 else ""
        mark = f" (conflicted copy from {host} {stamp}{extra}){dot}{ext}"
        room = max(1, MAX_NAME - len(mark.encode()))
        short = _cut(base, room)
        candidate = f"{folder}{slash}{short or '_'}{mark}"
        if not exists(candidate):
            return candidate
    raise RuntimeError("no free conflict name")  # 999 conflicts of one file in one second


def is_conflict_copy(name: str) -> bool:
    return MARK in name


@dataclass(frozen=True)
class Conflict:
    """A conflicted copy on the pool and the file it is a version of."""

    copy: str  # pool path of the conflicted copy
    original: str  # pool path of the file both devices changed
    host: str  # the device whose version the copy holds
    stamp: str  # when that device found the conflict, 'YYYY-MM-DD HHMMSS' in its local time
    copy_version: int = 0  # the versions as listed (0: not looked at): settling it checks they still are
    original_version: int = 0


def parse(path: str) -> Conflict | None:
    """The conflict a path names, if it is a conflicted copy (untrusted text: never raises). A copy of a
    copy names the copy it was made from; a name that would leave no usable original is not a conflict."""
    folder, _, name = path.rpartition("/")
    matches = list(_COPY.finditer(name))
    if not matches:
        return None
    m = matches[-1]  # the mark added last: 'a (… h1 …) (… h2 …).txt' is a copy of 'a (… h1 …).txt'
    original = name[:m.start()] + name[m.end():]
    if not original.strip() or original in (".", "..") or original != original.strip() or "/" in original:
        return None
    return Conflict(path, f"{folder}/{original}" if folder else original, m["host"], m["stamp"])


def _cut(text: str, room: int) -> str:
    """``text`` cut to ``room`` bytes the way ``conflict_name`` cuts a long name."""
    return text if len(text.encode()) <= room else text.encode()[:room].decode("utf-8", "ignore").rstrip()


def long_original(copy: str, siblings: Iterable[str]) -> str | None:
    """The file a conflicted copy of a long name was made from. Its name was cut to fit ``MAX_NAME`` bytes
    (``conflict_name``), so the original the copy names is shorter than the real one (the conflict was not
    listed at all: no such file). Of ``siblings`` (names in the copy's folder), the one whose name, cut the
    same way, is the one the copy names; None unless exactly one is."""
    folder, slash, name = copy.rpartition("/")
    matches = list(_COPY.finditer(name))
    if not matches:
        return None
    m = matches[-1]
    short, ext = name[:m.start()], name[m.end():]  # ext: '.txt' or ''
    room = max(1, MAX_NAME - len(name[m.start():].encode()))
    found = [s for s in siblings if s.endswith(ext) and s not in (name, short + ext)
             and _cut(s[:len(s) - len(ext)] if ext else s, room) == short]
    return f"{folder}{slash}{found[0]}" if len(found) == 1 else None


def find(paths: Iterable[str]) -> list[Conflict]:
    """The conflicts among ``paths``, newest first."""
    found = [c for p in paths if (c := parse(p)) is not None]
    return sorted(found, key=lambda c: (c.stamp, c.copy), reverse=True)
