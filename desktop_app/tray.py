"""The system tray icon: sync state at a glance and the few actions people reach for.

The menu is rebuilt each time it opens (``aboutToShow``) from the agent's last status, so it is never
stale and never waits on the agent. Notifications go out for conflicts and errors, not for every file.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QSettings, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from desktop_app.agent_link import AgentLink
from desktop_app.icons import app_icon, icon
from sync_agent.api import IssueKind

STATE_TEXT = {"idle": "Up to date", "syncing": "Syncing…", "paused": "Paused", "error": "Sync problem",
              "offline": "Offline: nodes unreachable", "starting": "Starting…", None: "Sync agent not running"}

# issues worth a desktop notification, by kind (titles are for people and may change)
# (not CHANGED_MEANWHILE: the agent retries at once, and the conflicted copy it may make says CONFLICT)
NOTIFY_KINDS = {IssueKind.CONFLICT, IssueKind.MASS_DELETE, IssueKind.QUORUM, IssueKind.FOLDER_MISSING}


def tray_state(status: dict[str, Any] | None) -> str:
    if status is None:
        return "offline"
    state = status.get("state", "idle")
    if state in ("idle", "syncing") and status.get("transfers"):
        return "syncing"
    return state if state in ("idle", "syncing", "paused", "error", "offline") else "idle"


class Tray(QObject):
    open_window = Signal()
    quit_app = Signal()

    def __init__(self, link: AgentLink, folder: Path, pool_ref: str | None = None) -> None:
        super().__init__()
        self.link = link
        self.folder = folder
        self.pool_ref = pool_ref  # the pool the agent syncs with (name or config file)
        self.available = QSystemTrayIcon.isSystemTrayAvailable()
        self.icon = QSystemTrayIcon(icon("tray-offline"))
        self.menu = QMenu()
        self.menu.aboutToShow.connect(self.rebuild_menu)
        self.icon.setContextMenu(self.menu)
        self.icon.activated.connect(lambda reason: self.open_window.emit()
                                    if reason == QSystemTrayIcon.ActivationReason.Trigger else None)
        self._notified: set[str] = set()
        link.status.connect(self.on_status)
        self.rebuild_menu()
        if self.available:
            self.icon.show()

    @property
    def status(self) -> dict[str, Any] | None:
        return self.link.last

    def on_status(self, status: dict[str, Any] | None) -> None:
        state = tray_state(status)
        self.icon.setIcon(icon(f"tray-{state}"))
        self.icon.setToolTip(f"PoolDrive: {STATE_TEXT.get(status and status.get('state'), STATE_TEXT[None])}")
        wanted = QSettings("PoolDrive", "PoolDrive").value("notifications", "true") == "true"  # Settings' box
        for issue in (status or {}).get("issues", []):
            key = f"{issue['path']}:{issue.get('kind')}"
            if key not in self._notified and issue.get("kind") in NOTIFY_KINDS:
                self._notified.add(key)
                if self.available and wanted:
                    self.icon.showMessage(f"PoolDrive: {issue['title']}", issue["message"],
                                          QSystemTrayIcon.MessageIcon.Warning, 8000)

    def rebuild_menu(self) -> None:
        m = self.menu
        m.clear()
        st = self.status
        issues = (st or {}).get("issues", [])
        head = m.addAction(STATE_TEXT.get(st and st.get("state"), STATE_TEXT[None])
                           + (f" ({len(st['transfers'])} transfers)" if st and st.get("transfers") else "")
                           + (f", {len(issues)} issue(s)" if issues else ""))
        head.setEnabled(False)
        m.addSeparator()
        m.addAction(icon("folder"), "Open sync folder",
                    lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.folder))))
        m.addAction(app_icon(), "Open PoolDrive", self.open_window.emit)
        if st is None:
            m.addAction(icon("resume"), "Start sync agent", self.start_agent)
        else:
            if st.get("held_deletes"):
                m.addAction(icon("delete"), f"Allow deleting {st['held_deletes']} file(s) on the pool",
                            lambda: self.link.command("resume", allow_deletes=True))
                m.addAction(icon("resume"), f"Restore {st['held_deletes']} deleted file(s)",
                            lambda: self.link.command("restore_held"))
            if st.get("paused") or st.get("state") == "paused":
                if st.get("paused"):
                    m.addAction(icon("resume"), "Resume sync", lambda: self.link.command("resume"))
            else:
                m.addAction(icon("pause"), "Pause sync", lambda: self.link.command("pause"))
            recent = m.addMenu("Recent changes")
            for r in st.get("recent", [])[:10]:
                recent.addAction(f"{time.strftime('%H:%M', time.localtime(r['time']))}  {r['path']}  ({r['action']})")
            if not st.get("recent"):
                recent.addAction("Nothing yet").setEnabled(False)
            issues = st.get("issues", [])
            sub = m.addMenu(f"Sync issues ({len(issues)})")
            for i in issues[:15]:
                sub.addAction(f"{i['title']}: {i['path']}").setToolTip(i["message"])
            sub.setEnabled(bool(issues))
        m.addSeparator()
        m.addAction(app_icon(), "Open agent log", self.open_log)
        m.addAction(icon("cancel"), "Quit PoolDrive", self.quit_app.emit)

    def open_log(self) -> None:
        from sync_agent.api import state_dir_for

        QDesktopServices.openUrl(QUrl.fromLocalFile(str(state_dir_for(self.folder) / "agent.log")))

    def start_agent(self) -> None:
        """Start the background agent for the folder (the same command as 'pooldrive sync start')."""
        from desktop_app.agent_link import start_agent
        from desktop_app.workers import run_async

        run_async(lambda: start_agent(self.folder, self.pool_ref),
                  lambda _out: self.icon.showMessage("PoolDrive", "Sync agent started"),
                  lambda e: self.icon.showMessage("PoolDrive", e.message, QSystemTrayIcon.MessageIcon.Warning, 8000))

    def action(self, text: str):
        self.rebuild_menu()
        for a in self.menu.actions():
            if a.text().startswith(text):
                return a
        return None
