"""What this folder last agreed with the pool on, per file; and the agent's own settings.

Kept in SQLite under the user's state dir (one database per sync folder), never in the folder itself.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sync_agent import paths

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Synced:
    path: str
    sha256: str
    size: int
    mtime_ns: int  # the local file's mtime when it was last synced (unchanged files are not re-hashed)
    version: int  # the pool's version number it was synced at


def state_dir_for(folder: Path) -> Path:
    digest = hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:16]
    return paths.state_dir() / "sync" / f"{folder.resolve().name}-{digest}"


class SyncState:
    def __init__(self, folder: Path, root: Path | None = None) -> None:
        self.dir = root or state_dir_for(folder)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.db = sqlite3.connect(self.dir / "state.sqlite3", check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS synced (path TEXT PRIMARY KEY, sha256 TEXT, size INTEGER, "
                        "mtime_ns INTEGER, version INTEGER)")
        self.db.execute("CREATE TABLE IF NOT EXISTS setting (key TEXT PRIMARY KEY, value TEXT)")
        self.db.execute("CREATE INDEX IF NOT EXISTS synced_sha ON synced (sha256)")  # where content was
        paths.make_private(self.dir / "state.sqlite3")

    def close(self) -> None:
        self.db.close()

    def all(self) -> dict[str, Synced]:
        with self._lock:
            rows = self.db.execute("SELECT path, sha256, size, mtime_ns, version FROM synced").fetchall()
        return {r[0]: Synced(*r) for r in rows}

    def get(self, path: str) -> Synced | None:
        with self._lock:
            r = self.db.execute("SELECT path, sha256, size, mtime_ns, version FROM synced WHERE path = ?",
                                (path,)).fetchone()
        return Synced(*r) if r else None

    def under(self, scopes: Iterable[str]) -> dict[str, Synced]:
        """The entries at or under each scope (a file key or a folder key): indexed range queries."""
        out: dict[str, Synced] = {}
        with self._lock:
            for scope in scopes:
                if not scope:
                    rows = self.db.execute("SELECT path, sha256, size, mtime_ns, version FROM synced").fetchall()
                else:
                    rows = self.db.execute(
                        "SELECT path, sha256, size, mtime_ns, version FROM synced WHERE path = ? "
                        "OR (path >= ? AND path < ?)", (scope, scope + "/", scope + "0")).fetchall()
                out.update((r[0], Synced(*r)) for r in rows)
        return out

    def with_content(self, shas: Iterable[str]) -> dict[str, list[str]]:
        """The synced paths holding each of ``shas`` (content -> paths; contents nowhere are left out)."""
        wanted = sorted(set(shas))
        out: dict[str, list[str]] = {}
        with self._lock:
            for i in range(0, len(wanted), 500):
                chunk = wanted[i:i + 500]
                marks = ",".join("?" * len(chunk))
                rows = self.db.execute(f"SELECT sha256, path FROM synced WHERE sha256 IN ({marks})", chunk).fetchall()
                for sha, path in rows:
                    out.setdefault(sha, []).append(path)
        return out

    def count(self) -> int:
        with self._lock:
            return int(self.db.execute("SELECT COUNT(*) FROM synced").fetchone()[0])

    def put(self, s: Synced) -> None:
        with self._lock:
            self.db.execute("INSERT OR REPLACE INTO synced VALUES (?, ?, ?, ?, ?)",
                            (s.path, s.sha256, s.size, s.mtime_ns, s.version))

    def forget_all(self) -> int:
        """Forget every synced file (the folder is now paired with something else); returns how many."""
        with self._lock:
            n = self.db.execute("SELECT COUNT(*) FROM synced").fetchone()[0]
            self.db.execute("DELETE FROM synced")
        return int(n)

    def forget(self, path: str) -> None:
        with self._lock:
            self.db.execute("DELETE FROM synced WHERE path = ?", (path,))

    def setting(self, key: str, default: object = None) -> object:
        with self._lock:
            r = self.db.execute("SELECT value FROM setting WHERE key = ?", (key,)).fetchone()
        return json.loads(r[0]) if r else default

    def set_setting(self, key: str, value: object) -> None:
        with self._lock:
            self.db.execute("INSERT OR REPLACE INTO setting VALUES (?, ?)", (key, json.dumps(value)))

    @property
    def excluded(self) -> list[str]:
        raw = self.setting("excluded", [])
        return [str(x) for x in raw] if isinstance(raw, list) else []
