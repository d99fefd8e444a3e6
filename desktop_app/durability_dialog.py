"""The durability class of a folder: how many copies its files keep, over how many zones, and whether every
file meets it now. Changing it re-replicates or trims the folder's files in the background."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QMessageBox,
    QSpinBox,
    QVBoxLayout,
)

from desktop_app.workers import run_async
from sync_agent import api
from sync_agent.api import Pool, PoolDriveError


class DurabilityDialog(QDialog):
    def __init__(self, parent, pool: Pool, folder: str) -> None:
        super().__init__(parent)
        self.pool, self.folder = pool, folder
        self.setWindowTitle(f"Durability of “{folder}”")
        self.resize(520, 200)
        self.current = QLabel("Reading the classes from the nodes…")
        self.current.setWordWrap(True)
        self.state = QLabel("")
        self.state.setWordWrap(True)
        self.copies = QSpinBox()
        self.copies.setRange(1, max(1, len(pool.cfg.nodes)))
        self.copies.valueChanged.connect(lambda n: self.copies.setSuffix(" copy" if n == 1 else " copies"))
        self.zones = QSpinBox()
        zones = len({n.zone or n.name for n in pool.cfg.nodes})
        self.zones.setRange(1, max(1, zones))
        self.zones.valueChanged.connect(lambda n: self.zones.setSuffix(" zone" if n == 1 else " zones"))
        self.zones.setToolTip("Copies are spread over this many zones (a node without a zone is a zone of its own)."
                              " Set a node's zone in Settings.")
        self.copies.setSuffix(" copy")  # both start at 1; the suffix follows the value from there
        self.zones.setSuffix(" zone")
        form = QFormLayout()
        form.addRow("Now", self.current)
        form.addRow("Files", self.state)
        form.addRow("Keep", self.copies)
        form.addRow("Spread over", self.zones)
        self.buttons = QDialogButtonBox()
        self.apply = self.buttons.addButton("Apply", QDialogButtonBox.ButtonRole.ApplyRole)
        self.clear = self.buttons.addButton("Use the enclosing class", QDialogButtonBox.ButtonRole.ResetRole)
        self.buttons.addButton(QDialogButtonBox.StandardButton.Close)
        self.apply.clicked.connect(lambda _=False: self.change(self.copies.value(), self.zones.value()))
        self.clear.clicked.connect(lambda _=False: self.change(None, 1))
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.buttons)
        self._busy(True)
        run_async(self._read, self._show, self._failed)

    def _read(self) -> api.ClassReport:
        self.pool.fetch_classes()
        return api.class_compliance(self.pool, self.folder)

    def _show(self, report: api.ClassReport) -> None:
        want = report.want
        self.current.setText(want.describe())
        self.state.setText("No files yet." if not report.files else
                           f"All {report.files} files meet it." if report.met else
                           f"{report.meeting} of {report.files} files meet it; the background repair brings the "
                           "others to it (or press Apply).")
        self.copies.setValue(want.copies)
        self.zones.setValue(want.zones)
        self._busy(False)
        self.clear.setEnabled(want.folder == self.folder)

    def _busy(self, busy: bool) -> None:
        for w in (self.apply, self.clear, self.copies, self.zones):
            w.setEnabled(not busy)

    def _failed(self, e: PoolDriveError) -> None:
        self._busy(False)
        self.state.setText(e.message)
        QMessageBox.warning(self, e.title, e.message)

    def change(self, copies: int | None, zones: int) -> None:
        """Set (or clear) the class, then bring the folder's files to it (off the GUI thread)."""
        self._busy(True)
        self.state.setText("Applying: copying and trimming the folder's files…")

        def work() -> api.ClassReport:
            self.pool.set_class(self.folder, copies, zones)
            api.refresh_catalog(self.pool, self.folder)  # other devices' repairs move copies unannounced
            api.repair(self.pool, api.RepairMode.REPAIR, prefix=self.folder)
            return api.class_compliance(self.pool, self.folder)

        run_async(work, self._show, self._failed)
