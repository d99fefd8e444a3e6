"""Settings: nodes (weight, zone, drain), sync folder and selective sync, ignore rules, bandwidth, start at
login, notifications. Changes that touch nodes or the agent run off the GUI thread."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QObject, QSettings, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QProgressDialog,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop_app.dialogs import ask_trust
from desktop_app.workers import run_async
from sync_agent import api
from sync_agent.api import IGNORE_FILE, AgentClient, NodeConfig, Pool, PoolConfig, PoolDriveError


class SettingsDialog(QDialog):
    def __init__(self, parent, pool: Pool, sync_folder: Path | None) -> None:
        super().__init__(parent)
        self.pool = pool
        self.sync_folder = sync_folder
        self.settings = QSettings("PoolDrive", "PoolDrive")
        self.setWindowTitle("PoolDrive settings")
        self.resize(680, 480)
        tabs = self.tabs = QTabWidget()
        tabs.addTab(self._nodes_tab(), "Nodes")
        tabs.addTab(self._sync_tab(), "Sync")
        tabs.addTab(self._general_tab(), "General")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(tabs)
        layout.addWidget(buttons)

    # --- nodes --------------------------------------------------------------------------------------
    def _nodes_tab(self) -> QWidget:
        w = QWidget()
        self.nodes = QTableWidget(len(self.pool.cfg.nodes), 5)
        self.nodes.setHorizontalHeaderLabels(["Node", "Endpoint", "Weight", "Zone", "State"])
        self.nodes.horizontalHeader().setStretchLastSection(True)
        self.nodes.verticalHeader().setVisible(False)
        self.nodes.setWordWrap(False)
        for col, width in ((0, 110), (1, 240), (2, 70)):
            self.nodes.setColumnWidth(col, width)
        self._fill_nodes()
        drain = QPushButton("Drain selected node…")
        drain.clicked.connect(self.drain)
        self.undrain_button = QPushButton("Take back into service")
        self.undrain_button.clicked.connect(self.undrain)
        self.add_button = QPushButton("Add node…")
        self.add_button.clicked.connect(self.add_node)
        self.remove_button = QPushButton("Remove node")
        self.remove_button.clicked.connect(self.remove_node)
        note = QLabel("Weights decide how much of the data each node holds; after changing one, rebalance moves "
                      "files gradually ('pooldrive rebalance'). A node holding the only copy of a file is drained "
                      "before it can be removed.")
        note.setWordWrap(True)
        layout = QVBoxLayout(w)
        layout.addWidget(self.nodes)
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.remove_button)
        buttons.addWidget(drain)
        buttons.addWidget(self.undrain_button)
        buttons.addStretch(1)
        layout.addLayout(buttons)
        layout.addWidget(note)
        return w

    def drain(self) -> None:
        rows = {i.row() for i in self.nodes.selectedIndexes()}
        if not rows:
            return
        name = self.nodes.item(min(rows), 0).text()
        if QMessageBox.question(self, "Drain node", f"Move every copy off {name}? It keeps working meanwhile.") \
                != QMessageBox.StandardButton.Yes:
            return
        self.drain_progress = DrainProgress(self, name)
        self.drain_progress.show()
        relay = self.drain_progress.relay

        def done(r: api.RepairReport) -> None:
            self.drain_progress.finish(r)
            self._fill_nodes()

        run_async(lambda: api.drain(self.pool, name, on_progress=relay.progressed.emit), done,
                  lambda e: (self.drain_progress.close(), QMessageBox.warning(self, e.title, e.message)))

    def _fill_nodes(self) -> None:
        states = self.pool.catalog.node_states()
        self.nodes.setRowCount(len(self.pool.cfg.nodes))
        for i, n in enumerate(self.pool.cfg.nodes):
            for col, text in enumerate((n.name, n.url, f"{n.weight:g}", n.zone, states.get(n.name, "active"))):
                item = QTableWidgetItem(text)
                if col < 2 or col == 4:
                    item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
                self.nodes.setItem(i, col, item)

    def _nodes_changed(self) -> None:
        self._fill_nodes()
        if hasattr(self.parent(), "nodes_changed"):
            self.parent().nodes_changed()  # type: ignore[attr-defined]

    def add_node(self, trusted_sha256: str = "") -> None:
        """Ask for the node (same checks as the first-run wizard), add it to the running pool."""
        if not trusted_sha256:
            dialog = AddNodeDialog(self)
            if dialog.exec() != QDialog.DialogCode.Accepted:
                return
            self.new_node = dialog.values()
        name, endpoint, secure, access, secret = self.new_node
        node = NodeConfig(name, endpoint, secure=secure or bool(trusted_sha256), cert_sha256=trusted_sha256)
        creds = api.Credentials(access, secret)

        def failed(e: PoolDriveError) -> None:
            check = getattr(e, "check", None)
            if check is not None and check.fingerprint and not trusted_sha256 and \
                    ask_trust(self, endpoint, check.fingerprint):
                self.add_node(trusted_sha256=check.fingerprint)
                return
            QMessageBox.warning(self, e.title, e.message)

        def done(result: tuple[PoolConfig, object]) -> None:
            self.pool.use_config(result[0])
            self._nodes_changed()

        run_async(lambda: api.add_node(self.pool.cfg, node, creds), done, failed)

    def remove_node(self) -> None:
        rows = {i.row() for i in self.nodes.selectedIndexes()}
        if not rows:
            return
        name = self.nodes.item(min(rows), 0).text()
        if QMessageBox.question(self, "Remove node", f"Remove {name} from the pool? Its copies are recreated on "
                                "the other nodes by repair.") != QMessageBox.StandardButton.Yes:
            return

        def done(removal: api.Removal) -> None:
            self.pool.use_config(removal.cfg)
            self._nodes_changed()

        run_async(lambda: api.remove_node(self.pool, name), done,
                  lambda e: QMessageBox.warning(self, e.title, e.message))

    def undrain(self) -> None:
        rows = {i.row() for i in self.nodes.selectedIndexes()}
        if not rows:
            return
        row = min(rows)
        name = self.nodes.item(row, 0).text()

        def done(_: object) -> None:
            self.nodes.item(row, 4).setText("active")

        run_async(lambda: api.undrain(self.pool, name), done, lambda e: QMessageBox.warning(self, e.title,
                                                                                             e.message))

    # --- sync ---------------------------------------------------------------------------------------
    def _sync_tab(self) -> QWidget:
        w = QWidget()
        form = QFormLayout(w)
        form.addRow("Sync folder", QLabel(str(self.sync_folder or "not set")))
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Folders to keep on this computer"])
        form.addRow(self.tree)
        self.excluded: list[str] = []
        self.ignore = QPlainTextEdit()
        self.ignore.setPlaceholderText("gitignore syntax, e.g.\nbuild/\n*.log")
        if self.sync_folder and (self.sync_folder / IGNORE_FILE).exists():
            self.ignore.setPlainText((self.sync_folder / IGNORE_FILE).read_text())
        form.addRow("Ignore rules", self.ignore)

        remote = [""]  # the pool folder the sync folder is paired with ('' the whole pool)

        def fill(entries: list) -> None:  # type: ignore[type-arg]
            cut = len(remote[0]) + 1 if remote[0] else 0
            for e in entries:
                if e.is_dir:
                    rel = e.path[cut:]  # exclusions are paths in the folder pair
                    item = QTreeWidgetItem([e.name])
                    item.setData(0, Qt.ItemDataRole.UserRole, rel)
                    item.setCheckState(0, Qt.CheckState.Unchecked if rel in self.excluded
                                       else Qt.CheckState.Checked)
                    self.tree.addTopLevelItem(item)

        def excluded_then_list() -> list:  # type: ignore[type-arg]
            if self.sync_folder is not None:
                try:
                    st = AgentClient(self.sync_folder).status()
                    self.excluded, remote[0] = st.get("excluded", []), str(st.get("remote") or "")
                except Exception:
                    self.excluded = []
            return self.pool.list(remote[0])

        run_async(excluded_then_list, fill)
        return w

    # --- general ------------------------------------------------------------------------------------
    def _general_tab(self) -> QWidget:
        w = QWidget()
        form = QFormLayout(w)
        self.up = QDoubleSpinBox()
        self.down = QDoubleSpinBox()
        agent = getattr(self.parent(), "_agent", None) or {}  # the running agent owns the limits
        self.agent_limits = agent.get("limits") if isinstance(agent.get("limits"), dict) else None
        for box, key, name in ((self.up, "limit_up", "up"), (self.down, "limit_down", "down")):
            box.setRange(0, 10000)
            box.setSuffix(" MB/s")
            box.setSpecialValueText("unlimited")
            value = self.agent_limits.get(name) if self.agent_limits else self.settings.value(key, 0)
            box.setValue(float(value or 0))
        form.addRow("Upload limit", self.up)
        form.addRow("Download limit", self.down)
        limits_note = QLabel("The sync agent and this window's transfers both follow these limits."
                             if self.agent_limits is not None else
                             "For this window's transfers. The sync agent is not running: its own limits are "
                             "set here while it runs, or with 'pooldrive sync limit'.")
        limits_note.setStyleSheet("color: palette(mid);")
        limits_note.setWordWrap(True)  # on one line it made the dialog wider than an 800-px screen
        form.addRow(limits_note)
        self.autostart = QCheckBox("Start PoolDrive when I log in")
        self.autostart.setChecked(api.autostart_enabled())
        self.notify = QCheckBox("Notify me about conflicts and errors")
        self.notify.setChecked(self.settings.value("notifications", "true") == "true")
        form.addRow(self.autostart)
        form.addRow(self.notify)
        keyring = QLabel("Secrets are kept in the system keyring." if api.keyring_available()
                         else api.KEYRING_HELP)
        keyring.setWordWrap(True)
        form.addRow("Keyring", keyring)
        return w

    def save(self) -> None:
        nodes = []
        for i, n in enumerate(self.pool.cfg.nodes):
            text = self.nodes.item(i, 2).text().strip()
            try:
                weight = float(text)
            except ValueError:
                weight = -1.0
            if not 0 < weight < 1e6:
                self.tabs.setCurrentIndex(0)
                QMessageBox.warning(self, "Weight not valid", f"The weight of {n.name} must be a number above 0 "
                                    f"(1 is the usual, 2 takes twice the share of copies); '{text}' is not.")
                return  # nothing saved: the dialog stays open to fix it
            nodes.append(replace(n, weight=weight, zone=self.nodes.item(i, 3).text().strip()))
        if tuple(nodes) != self.pool.cfg.nodes and self.pool.cfg.path is not None:
            cfg = self.pool.cfg.with_nodes(tuple(nodes))
            api.save_pool(cfg)
            self.pool.use_config(cfg)  # new writes are placed by the new weights and zones at once
            self._nodes_changed()
        self.settings.setValue("limit_up", self.up.value())
        self.settings.setValue("limit_down", self.down.value())
        self.settings.setValue("notifications", "true" if self.notify.isChecked() else "false")
        self.pool.up_limiter.set_rate(self.up.value() * 1e6)
        self.pool.down_limiter.set_rate(self.down.value() * 1e6)
        limits = {"up": self.up.value(), "down": self.down.value()}
        if self.sync_folder is not None and self.agent_limits is not None and limits != self.agent_limits:
            agent = AgentClient(self.sync_folder)  # the agent keeps them across its restarts
            run_async(lambda: agent.set_limits(limits["up"], limits["down"]),
                      on_error=lambda e: QMessageBox.warning(self.parent(), e.title, e.message))
        if self.autostart.isChecked() != api.autostart_enabled():
            if self.autostart.isChecked():
                api.autostart_on(self.sync_folder)
            else:
                api.autostart_off()
        if self.sync_folder is not None:
            (self.sync_folder / IGNORE_FILE).write_text(self.ignore.toPlainText()) \
                if self.ignore.toPlainText().strip() else None
            changes = []
            for i in range(self.tree.topLevelItemCount()):
                item = self.tree.topLevelItem(i)
                path = item.data(0, Qt.ItemDataRole.UserRole)
                want_excluded = item.checkState(0) == Qt.CheckState.Unchecked
                if want_excluded != (path in self.excluded):
                    changes.append(("exclude" if want_excluded else "include", path))
            if changes:
                client = AgentClient(self.sync_folder)
                run_async(lambda: [getattr(client, cmd)(p) for cmd, p in changes],
                          on_error=lambda e: QMessageBox.warning(self.parent(), e.title, e.message))
        self.accept()


class AddNodeDialog(QDialog):
    """A node's address and keys (the keys go to the keyring once the node passes its check)."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setWindowTitle("Add a node")
        form = QFormLayout(self)
        self.name, self.endpoint = QLineEdit(), QLineEdit()
        self.endpoint.setPlaceholderText("host:port, e.g. 192.168.1.10:9000")
        self.secure = QCheckBox("Use https")
        self.access, self.secret = QLineEdit(), QLineEdit()
        self.secret.setEchoMode(QLineEdit.EchoMode.Password)
        for label, w in (("Name", self.name), ("Address", self.endpoint), ("", self.secure),
                         ("Access key", self.access), ("Secret key", self.secret)):
            form.addRow(label, w)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def values(self) -> tuple[str, str, bool, str, str]:
        return (self.name.text().strip(), self.endpoint.text().strip(), self.secure.isChecked(),
                self.access.text().strip(), self.secret.text())


class _Relay(QObject):
    progressed = Signal(int, int)  # done, total; emitted from the drain's worker threads


class DrainProgress(QProgressDialog):
    """Copies moved off a node so far, and about how long the rest will take."""

    def __init__(self, parent: QWidget, node: str) -> None:
        super().__init__(f"Moving every copy off {node}…", "Hide", 0, 0, parent)
        self.node = node
        self.setWindowTitle("Drain")
        self.setMinimumDuration(0)
        self.started = time.monotonic()
        self.relay = _Relay(self)
        self.relay.progressed.connect(self.on_progress)  # queued: runs on the GUI thread

    def on_progress(self, done: int, total: int) -> None:
        self.setMaximum(max(total, 1))
        self.setValue(done)
        left = ""
        if 0 < done < total:
            eta = (time.monotonic() - self.started) / done * (total - done)
            left = f" (about {max(1, round(eta))} s left)" if eta < 120 else f" (about {eta / 60:.0f} min left)"
        self.setLabelText(f"Moving copies off {self.node}: {done} of {total}{left}")

    def finish(self, report: api.RepairReport) -> None:
        self.setMaximum(1)
        self.setValue(1)
        self.setLabelText(f"{self.node}: {report.copies_made} copies moved"
                          + (f", {len(report.errors)} failed (drain again)" if report.errors else
                             "; it can be removed now."))
        self.setCancelButtonText("Close")
