"""Walking the sync folder: which files are there, their content hash (only re-hashed when changed).

Names: pool keys are NFC, local names are whatever the file system holds (a file copied from a Mac is
often NFD). A key is found on disk by its real name (:func:`on_disk`), never by building the NFC path,
which would miss the file and download a second copy beside it. When two local names are one key
('café' in both forms in one folder), one file cannot be two keys and renaming a user's file behind their
back is worse than asking: the one whose name is already the key's form (else the first in code-point
order) is synced, whatever order the disk lists them in, and the other gets an issue naming both.
"""

from __future__ import annotations

import logging
import os
import stat
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sync_agent import keys, paths
from sync_agent.errors import InvalidPathError, LocalIOError
from sync_agent.sync.ignore import IgnoreRules
from sync_agent.sync.state import Synced
from sync_agent.transfer import digest_file

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LocalFile:
    where: str  # the real name on disk (may differ from the key in Unicode normalization)
    size: int
    mtime_ns: int
    sha256: str

    @property
    def path(self) -> Path:
        """Built when asked: a scan makes one LocalFile per file, and only changed ones are opened."""
        return Path(self.where)


@dataclass
class LocalScan:
    files: dict[str, LocalFile] = field(default_factory=dict)  # pool key -> file
    issues: dict[str, str] = field(default_factory=dict)  # local path -> why it is not synced
    complete: bool = True  # False: only part of the tree was scanned
    # keys of files and folders that are there but could not be read (no permission, an I/O error): what
    # is under them is unknown this pass, never taken for deleted
    unreadable: list[str] = field(default_factory=list)

    def cannot_read(self, root: Path, where: str, rel: str, e: OSError) -> None:
        self.issues[_shown(root, Path(where))] = f"cannot be read ({e.strerror or e}); it is left as it was"
        try:
            self.unreadable.append(_key_for(rel))
        except InvalidPathError:
            self.unreadable.append(rel)


def _shown(root: Path, p: Path) -> str:
    """How an issue names a local file: its path in the folder, the same key a transfer error about it
    uses (so one file is one issue), readable even when the name is not valid UTF-8."""
    rel = p.relative_to(root).as_posix()
    try:
        rel.encode("utf-8")
        return keys.normalize(rel)
    except (InvalidPathError, UnicodeError):
        return rel.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _raw_name(root: Path, p: Path) -> str:
    """The file's own name in the folder, not normalized: the issue of a name that lost a clash must not
    share its key with the file that won (whose transfer would clear it)."""
    return p.relative_to(root).as_posix().encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _key_for(rel: str) -> str:
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError as e:
        raise InvalidPathError(f"'{rel!r}' is not valid UTF-8, which S3 names must be; rename it.") from e
    return keys.normalize(rel)


def _entry(root: Path, where: str, rel: str, st: os.stat_result, known: dict[str, Synced], out: LocalScan) -> None:
    try:
        key = _key_for(rel)
    except InvalidPathError as e:
        out.issues[_shown(root, Path(where))] = e.message
        return
    prev = known.get(key)
    if prev is not None and prev.size == st.st_size and prev.mtime_ns == st.st_mtime_ns:
        sha = prev.sha256  # unchanged since the last sync: no need to read it again
    else:
        try:
            sha = digest_file(Path(where)).sha256
        except LocalIOError as e:
            cause = e.__cause__
            if isinstance(cause, FileNotFoundError):
                return  # deleted since the listing: gone, as the next scan will see it too
            out.cannot_read(root, where, rel, cause if isinstance(cause, OSError) else OSError(e.message))
            return
    mine = LocalFile(where, st.st_size, st.st_mtime_ns, sha)
    other = out.files.get(key)
    if other is not None:
        if other.where == where:
            return  # the same file reached twice (a file and its folder both asked for)
        keep, drop = sorted((other, mine), key=lambda f: (f.path.relative_to(root).as_posix() != key, f.where))
        out.files[key] = keep
        out.issues.pop(_raw_name(root, keep.path), None)
        out.issues[_raw_name(root, drop.path)] = (f"has the same name as '{keep.path.name}' once normalized, so only "
                                               "that one is synced; rename one of them")
        return
    out.files[key] = mine


def on_disk(root: Path, key: str) -> list[Path]:
    """Every existing path under ``root`` whose name is ``key`` once normalized: usually one, none when it
    is not there, two when both forms of a name exist. An ASCII part has one form and is looked up as is;
    another is matched against its folder's listing."""
    found = [root]
    for part in key.split("/"):
        nxt: list[Path] = []
        for d in found:
            if part.isascii():
                if os.path.lexists(d / part):
                    nxt.append(d / part)
                continue
            try:
                nxt.extend(d / n for n in sorted(os.listdir(d)) if unicodedata.normalize("NFC", n) == part)
            except OSError:
                continue
        found = nxt
        if not found:
            break
    return found


def gone(root: Path, key: str) -> bool:
    """Whether the file ``key`` is surely not in the folder (a folder that cannot be read says nothing)."""
    try:
        os.lstat(os.path.join(root, key))
        return False
    except (FileNotFoundError, NotADirectoryError):
        return key.isascii() or not on_disk(root, key)  # another normalization of the name may be there
    except OSError:
        return False


def scan(root: Path, rules: IgnoreRules, known: dict[str, Synced], only: Iterable[str] | None = None) -> LocalScan:
    """Scan everything, or only the given keys (files or folders) when ``only`` is set."""
    out = LocalScan(complete=only is None)
    starts = [root] if only is None else [p for k in outermost(only) if _inside(k) for p in on_disk(root, k)]
    for start in starts:
        rel = start.relative_to(root).as_posix() if start != root else ""
        try:
            st = os.lstat(start)
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as e:
            out.cannot_read(root, os.fspath(start), rel, e)
            continue
        if stat.S_ISREG(st.st_mode):
            if not rules.ignored(rel):
                _entry(root, os.fspath(start), rel, st, known, out)
        elif stat.S_ISLNK(st.st_mode):
            out.issues[_shown(root, start)] = "is a symbolic link; links are not followed"
        elif stat.S_ISDIR(st.st_mode):
            _walk(root, start, rel, rules, known, out)
    return out


def _walk(root: Path, top: Path, rel_top: str, rules: IgnoreRules, known: dict[str, Synced], out: LocalScan) -> None:
    """Every file under ``top``, folder by folder. One ``scandir`` per folder gives each entry's type
    without a system call, and one ``lstat`` per file its size and time; paths are built as strings
    (at 100,000 files, pathlib's joins and ``relative_to`` were most of a restart's scan). Ignored
    folders are not entered; links are reported, not followed. A folder that cannot be listed (or whose
    listing breaks off) is reported and marked unreadable: its files are not there for this pass, and
    would otherwise be taken for deleted."""
    stack = [(os.fspath(top), rel_top)]
    while stack:
        dir_path, rel_dir = stack.pop()
        subdirs: list[tuple[str, str]] = []
        try:
            with os.scandir(dir_path) as entries:
                for e in entries:
                    rel = f"{rel_dir}/{e.name}" if rel_dir else e.name
                    try:
                        if e.is_symlink():
                            if not rules.ignored(rel):
                                out.issues[_shown(root, Path(e.path))] = "is a symbolic link; links are not followed"
                        elif e.is_dir(follow_symlinks=False):
                            if not rules.ignored(rel, is_dir=True):
                                subdirs.append((e.path, rel))
                        elif e.is_file(follow_symlinks=False) and not rules.ignored(rel):
                            _entry(root, e.path, rel, e.stat(follow_symlinks=False), known, out)
                    except FileNotFoundError:  # deleted since the listing: gone
                        continue
                    except OSError as err:
                        out.cannot_read(root, e.path, rel, err)
        except (FileNotFoundError, NotADirectoryError):  # deleted (or replaced) since its parent was listed
            continue
        except OSError as err:
            out.cannot_read(root, dir_path, rel_dir, err)
            continue
        stack.extend(reversed(subdirs))  # folders in listing order, depth first, as os.walk goes


def _inside(key: str) -> bool:
    """A scope that stays inside the folder (never '/etc' or '../x', whoever named it)."""
    return not key.startswith("/") and ".." not in key.split("/") and "\0" not in key


def outermost(scopes: Iterable[str]) -> list[str]:
    """The scopes that are not inside another one ('' is the whole folder)."""
    out: list[str] = []
    for s in sorted(set(scopes)):
        if "" in out or any(keys.is_under(s, o) for o in out):
            continue
        out.append(s)
    return out


def case_insensitive(root: Path) -> bool:
    """Whether the folder's file system ignores case (then 'A.txt' and 'a.txt' cannot both exist here);
    probed inside .pooldrive, which the watcher ignores."""
    probe_dir = root / ".pooldrive"
    probe_dir.mkdir(parents=True, exist_ok=True)
    return paths.case_insensitive(probe_dir)
