"""Small dialogs: a file's versions (restore), sharing a folder (invitation), shares made."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QCheckBox,
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
    QWidget,
)

from desktop_app.node_panel import human
from desktop_app.workers import run_async
from sync_agent import api
from sync_agent.api import Pool, PoolDriveError, ShareMode


class VersionsDialog(QDialog):
    def __init__(self, parent, pool: Pool, path: str, on_restored: Callable[[], None]) -> None:
        super().__init__(parent)
        self.pool, self.path, self.on_restored = pool, path, on_restored
        self.setWindowTitle(f"{path}: copies and versions")
        self.resize(720, 360)
        self.info = QLabel("")  # the file info panel: checksum, copies with reachability
        self.info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.info.setWordWrap(True)
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["Version", "Saved", "Size", "Copies"])
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        restore = QPushButton("Restore this version")
        restore.clicked.connect(self.restore)
        layout = QVBoxLayout(self)
        layout.addWidget(self.info)
        layout.addWidget(self.table)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(restore)
        layout.addLayout(row)
        run_async(lambda: pool.versions(path), self._fill, lambda e: QMessageBox.warning(self, e.title, e.message))

    def _fill(self, versions: list) -> None:  # type: ignore[type-arg]
        if versions:
            cur = versions[0]
            copies = []
            for r in cur.replicas:
                down = self.pool.health.is_down(r.node)
                copies.append(f"{r.node} ({'unreachable now' if down else r.state})")
            self.info.setText(f"SHA-256 {cur.sha256}\nCopies of the current version: {', '.join(copies) or 'none'} "
                              f"(the pool keeps {self.pool.cfg.replicas})")
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
        self.mode.addItem("Can view and download", ShareMode.READ_ONLY)
        self.mode.addItem("Can also add, change and delete", ShareMode.READ_WRITE)
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
        self.history = QCheckBox("Show them earlier versions and deleted files too")
        form.addRow("History", self.history)
        self.history_hint = QLabel()
        self.history_hint.setWordWrap(True)
        self.history_hint.setEnabled(False)  # drawn as secondary text
        form.addRow("", self.history_hint)
        self._history_chosen = False
        self.mode.currentIndexChanged.connect(self._mode_changed)
        self.history.toggled.connect(self._show_hint)
        self._mode_changed()
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

    def _mode_changed(self) -> None:
        """A read-write share always comes with history (``sharing.shares.create_share`` says why)."""
        rw = ShareMode(self.mode.currentData()) == ShareMode.READ_WRITE
        if rw and self.history.isEnabled():
            self._history_chosen = self.history.isChecked()  # given back if they pick read-only again
        self.history.setChecked(True if rw else self._history_chosen)
        self.history.setEnabled(not rw)
        self.history.setToolTip(
            "People who can change the folder can also read its earlier versions and deleted files." if rw else
            "Off: they can read the files in the folder now and nothing of its past, with PoolDrive or any other "
            "tool. A copy of those files is kept on the nodes for them (it takes room) and follows your changes.")
        self._show_hint()

    def _show_hint(self) -> None:
        rw = ShareMode(self.mode.currentData()) == ShareMode.READ_WRITE
        self.history_hint.setText(
            "People who can change the folder also see its earlier versions and deleted files." if rw else
            "They can also read its earlier versions and deleted files." if self.history.isChecked() else
            "They see the files in it now, never its past. A copy of those files is kept on your nodes for "
            "them; your sync agent keeps it up to date.")

    def make(self) -> None:
        mode = ShareMode(self.mode.currentData())  # Qt hands the enum back as its text
        value = self.expiry.currentData()
        expires: timedelta | None = api.parse_duration(value) if value else None
        label, passphrase = self.label.text().strip(), self.passphrase.text()
        history = self.history.isChecked()

        def create() -> str:
            _, inv = api.create_share(self.pool, self.folder, mode, expires=expires, label=label, history=history)
            return api.encode_invitation(inv, passphrase or None)

        def done(text: str) -> None:
            self.output.setPlainText(text)
            self.copy.setEnabled(True)
            self.create.setEnabled(False)

        def failed(e: PoolDriveError) -> None:
            QMessageBox.warning(self, e.title, e.message)

        run_async(create, done, failed)


class SharesDialog(QDialog):
    """Folders shared by me and file links: revoke, or give a share 30 more days."""

    def __init__(self, parent, pool: Pool) -> None:
        super().__init__(parent)
        self.pool = pool
        self.setWindowTitle("Shared by me")
        self.resize(700, 300)
        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["Shared item", "For", "Access", "Expires", "Status"])
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.revoke_button = QPushButton("Revoke")
        self.revoke_button.clicked.connect(self.revoke)
        self.extend_button = QPushButton("Extend by 30 days")
        self.extend_button.setToolTip("The share then ends 30 days from now")
        self.extend_button.clicked.connect(self.extend)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Revoking removes the share's key from every node; a node that is down drops it "
                                "when it is back."))
        layout.addWidget(self.table)
        buttons = QHBoxLayout()
        buttons.addWidget(self.revoke_button)
        buttons.addWidget(self.extend_button)
        buttons.addStretch(1)
        close = QPushButton("Close")
        close.clicked.connect(self.reject)
        buttons.addWidget(close)
        layout.addLayout(buttons)
        self.rows: list[api.ShareInfo] = []
        self.load()

    def load(self) -> None:
        run_async(lambda: api.list_shares(self.pool), self._fill,
                  lambda e: QMessageBox.warning(self, e.title, e.message))

    def _fill(self, rows: list[api.ShareInfo]) -> None:
        self.rows = rows
        self.table.setRowCount(len(rows))
        for i, r in enumerate(rows):
            values = (r.folder, r.label or "-", _mode_text(r),
                      time.strftime("%Y-%m-%d", time.localtime(r.expires_at)) if r.expires_at else "never", r.status)
            for col, text in enumerate(values):
                self.table.setItem(i, col, QTableWidgetItem(text))

    def revoke(self) -> None:
        rows = {i.row() for i in self.table.selectedIndexes()}
        for r in rows:
            share_id = self.rows[r].id
            run_async(lambda s=share_id: api.revoke_share(self.pool, s), lambda _: self.load(),
                      lambda e: QMessageBox.warning(self, e.title, e.message))

    def extend(self) -> None:
        for r in sorted({i.row() for i in self.table.selectedIndexes()}):
            share = self.rows[r]
            if share.mode == "link":
                QMessageBox.information(self, "Links", "A link cannot be extended: make a new one.")
                continue
            run_async(lambda s=share.id: api.extend_share(self.pool, s, timedelta(days=30)),
                      lambda _: self.load(), lambda e: QMessageBox.warning(self, e.title, e.message))


class DeletedDialog(QDialog):
    """Files deleted from the pool (their versions stay): pick some and restore them."""

    def __init__(self, parent, pool: Pool, on_restored: Callable[[], None]) -> None:
        super().__init__(parent)
        self.pool, self.on_restored = pool, on_restored
        self.setWindowTitle("Deleted files")
        self.resize(720, 420)
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["File", "Size", "Last version"])
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setColumnWidth(0, 420)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.restore_button = QPushButton("Restore selected")
        self.restore_button.clicked.connect(self.restore)
        self.forget_button = QPushButton("Delete forever…")
        self.forget_button.setToolTip("Forget the selected files and all their versions on every node: frees "
                                      "their space and their names. Cannot be undone.")
        self.forget_button.clicked.connect(self.forget)
        for b in (self.restore_button, self.forget_button):
            b.setEnabled(False)  # until a row is chosen
        self.table.itemSelectionChanged.connect(self._chosen)
        layout = QVBoxLayout(self)
        note = QLabel("Deleting keeps every version on the pool: restoring brings the newest back, and deleting "
                      "forever frees the space they take.")
        note.setWordWrap(True)  # one long line widened the dialog past 760 px
        layout.addWidget(note)
        layout.addWidget(self.table)
        buttons = QHBoxLayout()
        buttons.addWidget(self.forget_button)
        buttons.addStretch(1)
        buttons.addWidget(self.restore_button)
        layout.addLayout(buttons)
        self.rows: list = []  # type: ignore[type-arg]
        self.load()

    def load(self) -> None:
        run_async(lambda: self.pool.catalog.deleted_files(), self._fill,
                  lambda e: QMessageBox.warning(self, e.title, e.message))

    def _fill(self, rows: list) -> None:  # type: ignore[type-arg]
        self.rows = rows
        self.table.setRowCount(len(rows))
        for i, f in enumerate(rows):
            for col, text in enumerate((f.path, human(f.size), f"version {f.version}")):
                self.table.setItem(i, col, QTableWidgetItem(text))

    def _chosen(self) -> None:
        for b in (self.restore_button, self.forget_button):
            b.setEnabled(bool(self.table.selectedIndexes()))

    def _selected(self) -> list:  # type: ignore[type-arg]
        return [self.rows[r] for r in sorted({i.row() for i in self.table.selectedIndexes()})]

    def forget(self) -> None:
        chosen = self._selected()
        if not chosen:
            return
        what = f"'{chosen[0].path}'" if len(chosen) == 1 else f"these {len(chosen)} files"
        answer = QMessageBox.question(self, "Delete forever", f"Forget {what} and every version on every node? "
                                      "This frees their space and cannot be undone.")
        if answer != QMessageBox.StandardButton.Yes:
            return

        def work() -> tuple[int, int]:
            freed = files = 0
            for f in chosen:
                _, report = self.pool.purge(f.path)
                freed, files = freed + report.bytes, files + report.files
            return files, freed

        def done(result: tuple[int, int]) -> None:
            files, freed = result
            self.load()
            QMessageBox.information(self, "Deleted forever", f"{files} file(s) forgotten; {human(freed)} freed.")

        run_async(work, done, lambda e: QMessageBox.warning(self, e.title, e.message))

    def restore(self) -> None:
        chosen = self._selected()
        if not chosen:
            return

        def work() -> int:
            for f in chosen:
                self.pool.restore(f.path, f.version)
            return len(chosen)

        def done(n: int) -> None:
            self.load()
            self.on_restored()
            QMessageBox.information(self, "Restored", f"{n} file is back." if n == 1 else f"{n} files are back.")

        run_async(work, done, lambda e: QMessageBox.warning(self, e.title, e.message))


class AcceptDialog(QDialog):
    """Accept an invitation someone sent: paste it or open the file; a sealed one asks its passphrase."""

    def __init__(self, parent) -> None:
        super().__init__(parent)
        self.setWindowTitle("Accept an invitation")
        self.resize(560, 320)
        self.text = QPlainTextEdit()
        self.text.setPlaceholderText("Paste the invitation here (it starts with 'pooldrive-invite')")
        self.passphrase = QLineEdit()
        self.passphrase.setEchoMode(QLineEdit.EchoMode.Password)
        self.passphrase.setPlaceholderText("only for a sealed invitation")
        open_file = QPushButton("Open a file…")
        open_file.clicked.connect(self.open_file)
        self.accept_button = QPushButton("Accept")
        self.accept_button.clicked.connect(self.do_accept)
        self.result_label = QLabel("")
        self.result_label.setWordWrap(True)
        self.accepted_name: str | None = None
        form = QFormLayout()
        form.addRow("Passphrase", self.passphrase)
        layout = QVBoxLayout(self)
        layout.addWidget(self.text)
        layout.addWidget(open_file)
        layout.addLayout(form)
        layout.addWidget(self.accept_button)
        layout.addWidget(self.result_label)

    def open_file(self) -> None:
        from PySide6.QtWidgets import QFileDialog

        path, _ = QFileDialog.getOpenFileName(self, "Invitation file")
        if path:
            try:
                self.text.setPlainText(Path(path).read_text()[:100_000])
            except (OSError, UnicodeDecodeError) as e:
                QMessageBox.warning(self, "Invitation problem", f"Cannot read {path}: {e}")

    def do_accept(self) -> None:
        raw, passphrase = self.text.toPlainText().strip(), self.passphrase.text() or None

        def work() -> str:
            inv = api.decode_invitation(raw, passphrase)
            return api.accept_invitation(inv).name

        def done(name: str) -> None:
            self.accepted_name = name
            self.result_label.setText(f"Added as pool '{name}': Pool → Open another pool → {name}.")

        run_async(work, done, lambda e: QMessageBox.warning(self, e.title, e.message))


def _mode_text(r: api.ShareInfo) -> str:
    return r.access


def ask_trust(parent: QWidget, endpoint: str, fingerprint: str) -> bool:
    """A node with a certificate no known CA signed (a NAS, a self-signed box): show its fingerprint, as SSH
    shows a host key, and let the user pin it. The wizard and Settings → Add node both ask with this."""
    from sync_agent.api import pretty_fingerprint

    box = QMessageBox(QMessageBox.Icon.Question, "Trust this certificate?",
                      f"{endpoint} presents a certificate that no authority this computer knows has signed. If it "
                      "is your own server, compare this fingerprint with the one on it (openssl x509 -in "
                      f"public.crt -noout -fingerprint -sha256):\n\nSHA-256 {pretty_fingerprint(fingerprint)}\n\n"
                      "Trust exactly this certificate for this node? A different one will be refused.",
                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, parent)
    box.setDefaultButton(QMessageBox.StandardButton.No)
    return box.exec() == QMessageBox.StandardButton.Yes
