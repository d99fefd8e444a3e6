"""Small dialogs: a file's versions (restore), sharing a folder (invitation), shares made."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from desktop_app.node_panel import human
from desktop_app.workers import run_async
from sync_agent.errors import PoolDriveError
from sync_agent.pool import Pool
from sync_agent.sharing import invitation, shares
from sync_agent.sharing.policy import Mode


class VersionsDialog(QDialog):
    def __init__(self, parent, pool: Pool, path: str, on_restored: Callable[[], None]) -> None:
        super().__init__(parent)
        self.pool, self.path, self.on_restored = pool, path, on_restored
        self.setWindowTitle(f"Versions of {path}")
        self.resize(640, 320)
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["Version", "Saved", "Size", "Copies"])
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        restore = QPushButton("Restore this version")
        restore.clicked.connect(self.restore)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(restore)
        layout.addLayout(row)
        run_async(lambda: pool.versions(path), self._fill, lambda e: QMessageBox.warning(self, e.title, e.message))

    def _fill(self, versions: list) -> None:  # type: ignore[type-arg]
        self.table.setRowCount(len(versions))
        for i, v in enumerate(versions):
            for col, text in enumerate((str(v.number), time.strftime("%Y-%m-%d %H:%M", time.localtime(v.created_at)),
                                        human(v.size), ", ".join(v.ok_nodes()))):
                self.table.setItem(i, col, QTableWidgetItem(text))

    def restore(self) -> None:
        rows = {i.row() for i in self.table.selectedIndexes()}
        if not rows:
            return
        number = int(self.table.item(min(rows), 0).text())
        run_async(lambda: self.pool.restore(self.path, number), lambda _: (self.on_restored(), self.accept()),
                  lambda e: QMessageBox.warning(self, e.title, e.message))


class ShareDialog(QDialog):
    """Share a folder: who, read-only or read-write, expiry; shows the invitation to copy or save."""

    def __init__(self, parent, pool: Pool, folder: str) -> None:
        super().__init__(parent)
        self.pool, self.folder = pool, folder
        self.setWindowTitle(f"Share “{folder}”")
        self.resize(560, 360)
        form = QFormLayout()
        self.label = QLineEdit()
        self.label.setPlaceholderText("Who is it for? e.g. Anna")
        self.mode = QComboBox()
        self.mode.addItem("Can view and download", Mode.READ_ONLY)
        self.mode.addItem("Can also add, change and delete", Mode.READ_WRITE)
        self.expiry = QComboBox()
        for text, value in (("1 day", "1d"), ("7 days", "7d"), ("30 days", "30d"), ("1 year", "52w"), ("Never", "")):
            self.expiry.addItem(text, value)
        self.expiry.setCurrentIndex(2)  # 30 days: a forgotten share should not stay open for ever
        self.passphrase = QLineEdit()
        self.passphrase.setEchoMode(QLineEdit.EchoMode.Password)
        self.passphrase.setPlaceholderText("optional: seal the invitation (tell it to them another way)")
        form.addRow("Share with", self.label)
        form.addRow("Access", self.mode)
        form.addRow("Expires", self.expiry)
        form.addRow("Passphrase", self.passphrase)
        self.output = QPlainTextEdit()
        self.output.setReadOnly(True)
        self.output.setPlaceholderText("The invitation appears here. It is a key to the folder: send it privately.")
        self.buttons = QDialogButtonBox()
        self.create = self.buttons.addButton("Create invitation", QDialogButtonBox.ButtonRole.ActionRole)
        self.copy = self.buttons.addButton("Copy", QDialogButtonBox.ButtonRole.ActionRole)
        self.buttons.addButton(QDialogButtonBox.StandardButton.Close)
        self.copy.setEnabled(False)
        self.create.clicked.connect(self.make)
        self.copy.clicked.connect(lambda: QGuiApplication.clipboard().setText(self.output.toPlainText()))
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.output)
        layout.addWidget(self.buttons)

    def make(self) -> None:
        mode = Mode(self.mode.currentData())  # Qt hands the enum back as its text
        value = self.expiry.currentData()
        expires: timedelta | None = shares.parse_duration(value) if value else None
        label, passphrase = self.label.text().strip(), self.passphrase.text()

        def create() -> str:
            _, inv = shares.create_share(self.pool, self.folder, mode, expires=expires, label=label)
            return invitation.encode(inv, passphrase or None)

        def done(text: str) -> None:
            self.output.setPlainText(text)
            self.copy.setEnabled(True)
            self.create.setEnabled(False)

        def failed(e: PoolDriveError) -> None:
            QMessageBox.warning(self, e.title, e.message)

        run_async(create, done, failed)


class SharesDialog(QDialog):
    """Folders shared by me, with revoke."""

    def __init__(self, parent, pool: Pool) -> None:
        super().__init__(parent)
        self.pool = pool
        self.setWindowTitle("Shared by me")
        self.resize(700, 300)
        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["Folder", "For", "Access", "Expires", "Status"])
        self.table.horizontalHeader().setStretchLastSection(True)
        revoke = QPushButton("Revoke")
        revoke.clicked.connect(self.revoke)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Revoking removes the share's key from every node; a node that is down drops it "
                                "when it is back."))
        layout.addWidget(self.table)
        layout.addWidget(revoke)
        self.rows: list[shares.ShareInfo] = []
        self.load()

    def load(self) -> None:
        run_async(lambda: shares.list_shares(self.pool), self._fill,
                  lambda e: QMessageBox.warning(self, e.title, e.message))

    def _fill(self, rows: list[shares.ShareInfo]) -> None:
        self.rows = rows
        self.table.setRowCount(len(rows))
        for i, r in enumerate(rows):
            values = (r.folder, r.label or "-", "read-only" if r.mode == "ro" else "read-write",
                      time.strftime("%Y-%m-%d", time.localtime(r.expires_at)) if r.expires_at else "never", r.status)
            for col, text in enumerate(values):
                self.table.setItem(i, col, QTableWidgetItem(text))

    def revoke(self) -> None:
        rows = {i.row() for i in self.table.selectedIndexes()}
        for r in rows:
            share_id = self.rows[r].id
            run_async(lambda s=share_id: shares.revoke_share(self.pool, s), lambda _: self.load(),
                      lambda e: QMessageBox.warning(self, e.title, e.message))
