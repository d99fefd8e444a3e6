"""The tray's line to the sync agent: its local-socket API, long-polled on a thread (no busy timers).

When no agent runs for the folder, the link says so and checks again every few seconds.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from desktop_app.workers import run_async
from sync_agent.api import AgentClient, AgentNotRunning, PoolDriveError, user_umask


class AgentLink(QObject):
    status = Signal(object)  # dict from the agent, or None when no agent runs
    failed = Signal(object)  # PoolDriveError from a command

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.client = AgentClient(folder)
        self.last: dict[str, Any] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="pooldrive-agent-link", daemon=True)

    def start(self) -> AgentLink:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _poll(self) -> None:
        seq = -1
        while not self._stop.is_set():
            try:
                st = self.client.status() if seq < 0 else self.client.wait(seq, timeout=20)
                seq = st["seq"]
                self.last = st
                self.status.emit(st)
            except AgentNotRunning:
                seq = -1
                if self.last is not None or not self._stop.is_set():
                    self.last = None
                    self.status.emit(None)
                self._stop.wait(3.0)
            except PoolDriveError:
                seq = -1
                self._stop.wait(3.0)

    def command(self, name: str, **args: Any) -> None:
        run_async(lambda: getattr(self.client, name)(**args), on_error=self.failed.emit)


def start_agent(folder: Path, pool: str | None = None) -> str:
    """Start the background agent for ``folder`` with the same command as 'pooldrive sync start' (blocks up
    to a minute: run it off the GUI thread). Returns what the command said; raises when it failed."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "sync_agent.cli.main", *(["--pool", pool] if pool else []), "sync", "start",
           "--folder", str(folder)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=90, check=False,
                       umask=user_umask())  # not the app's private 077: the agent writes the user's files
    if r.returncode != 0:
        raise PoolDriveError(f"The sync agent did not start: {(r.stdout + r.stderr).strip()[-400:]}",
                             title="Sync not started")
    return r.stdout.strip()
