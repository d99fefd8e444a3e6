"""Watching the sync folder (watchdog), coalescing bursts of events into one set of dirty paths.

A burst settles before anything happens (editors' save-via-temp-file then rename, unpacking an archive);
a move marks both ends dirty. The agent's own downloads also raise events; they are harmless because the
next pass finds those files exactly as last synced. When inotify runs out of watches, the watcher says how
to raise the limit and falls back to polling.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
import unicodedata
from collections.abc import Callable
from pathlib import Path

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

log = logging.getLogger(__name__)

INOTIFY_HELP = ("The folder has more subfolders than inotify may watch (fs.inotify.max_user_watches). PoolDrive "
                "falls back to polling, which is slower. To raise the limit: "
                "'echo fs.inotify.max_user_watches=524288 | sudo tee /etc/sysctl.d/60-pooldrive.conf && "
                "sudo sysctl --system'.")
INTERESTING = {"created", "modified", "deleted", "moved", "closed"}
# only what changes the folder reaches us: the agent's own reads (hashing, uploading) open and close every
# file, and those inotify events alone cost a large share of a core during a big upload
EVENT_FILTER = [FileCreatedEvent, FileModifiedEvent, FileDeletedEvent, FileMovedEvent, FileClosedEvent,
                DirCreatedEvent, DirDeletedEvent, DirMovedEvent]


class LocalWatcher(FileSystemEventHandler):
    def __init__(self, root: Path, on_change: Callable[[set[str]], None], *, debounce: float = 0.3,
                 on_issue: Callable[[str, str], None] = lambda title, message: None) -> None:
        self.root = root
        self._prefix = os.path.join(os.fsdecode(root), "")  # the root's text with one separator at its end
        self.on_change = on_change
        self.debounce = debounce
        self.on_issue = on_issue
        self.polling = False
        self._pending: set[str] = set()
        self._last = 0.0
        self._cond = threading.Condition()
        self._stop = False
        self._observer: BaseObserver | None = None
        self._thread = threading.Thread(target=self._flush_loop, name="pooldrive-watch", daemon=True)

    def _rel(self, path: str | bytes) -> str | None:
        """The path's key in the folder, by its text (pathlib's relative_to was a tenth of a big download's
        CPU: every file the agent writes reaches here)."""
        p = os.fsdecode(path)
        if not p.startswith(self._prefix):
            return None
        rel = p[len(self._prefix):]
        if os.sep != "/":
            rel = rel.replace(os.sep, "/")
        if rel in ("", ".") or rel == ".pooldrive" or rel.startswith(".pooldrive/"):
            return None
        # the folder's keys are NFC, as the pool's: a name written decomposed (NFD, as macOS and some
        # apps write it) is found on disk from its key (local_scan.on_disk), never from its raw text
        return rel if rel.isascii() else unicodedata.normalize("NFC", rel)

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type not in INTERESTING:
            return
        rels = {self._rel(event.src_path), self._rel(getattr(event, "dest_path", "") or "")} - {None}
        if not rels:
            return
        with self._cond:
            self._pending |= rels  # type: ignore[arg-type]
            self._last = time.monotonic()
            self._cond.notify_all()

    def _flush_loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending or self._stop)
                if self._stop:
                    return
                quiet = time.monotonic() - self._last
                if quiet < self.debounce:
                    self._cond.wait(self.debounce - quiet)
                    continue
                batch, self._pending = self._pending, set()
            self.on_change(batch)

    def start(self) -> LocalWatcher:
        if self.root.is_dir():
            self._watch()
        else:  # on a drive that is not mounted yet: watched once it is there (the engine says it is missing)
            threading.Thread(target=self._wait_for_folder, name="pooldrive-watch-wait", daemon=True).start()
        self._thread.start()
        return self

    def _watch(self) -> None:
        try:
            self._observer = Observer()
            self._observer.schedule(self, str(self.root), recursive=True, event_filter=EVENT_FILTER)
            self._observer.start()
        except OSError as e:
            if e.errno not in (errno.ENOSPC, errno.EMFILE):
                raise
            self.on_issue("Too many folders to watch", INOTIFY_HELP)
            self.polling = True
            self._observer = PollingObserver(timeout=2)
            self._observer.schedule(self, str(self.root), recursive=True)
            self._observer.start()

    def rewatch(self) -> None:
        """Watch the folder afresh (a drive mounted over it hides what the old watch saw)."""
        old, self._observer = self._observer, None
        if old is not None:
            old.stop()
            old.join(timeout=5)
        if self.root.is_dir():
            self._watch()
        else:
            threading.Thread(target=self._wait_for_folder, name="pooldrive-watch-wait", daemon=True).start()

    def _wait_for_folder(self) -> None:
        with self._cond:
            while not self._stop and not self.root.is_dir():
                self._cond.wait(2.0)
            if self._stop:
                return
        log.info("the sync folder %s is there: watching it", self.root)
        self._watch()
        with self._cond:  # whatever it holds now is looked at
            self._pending.add("")  # "": only a full scan can tell
            self._last = time.monotonic()
            self._cond.notify_all()

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
