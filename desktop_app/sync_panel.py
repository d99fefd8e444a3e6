"""The sync agent in the window: what it is doing now, what it did lately, and the conflicts to settle.

Three tabs beside the window's own transfer queue:
* Sync: the agent's state, the folders synced with the pool (folder pairs: add one, stop one), its current
  transfers with progress, and its recent changes (double-click one: the browser shows that file);
* Conflicts: every conflicted copy on the pool next to its original, with Open both, Keep the original and
  Keep the conflicted copy (the other side stays restorable);
* Issues: what the agent could not do, one line each, with the reason.
The panel only shows what it is given (the agent's long-polled status, the conflicts the window loads off
the GUI thread) and says what the user asked for through signals: it never talks to the engine itself.
"""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from desktop_app.node_panel import human
from sync_agent.api import Conflict


def _table(headers: list[str]) -> QTableWidget:
    t = QTableWidget(0, len(headers))
    t.setHorizontalHeaderLabels(headers)
    t.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    t.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
    t.verticalHeader().setVisible(False)
    t.verticalHeader().setDefaultSectionSize(t.fontMetrics().height() + 8)
    t.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
    t.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
    t.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
    t.setWordWrap(False)
    return t


def _fill(t: QTableWidget, rows: list[list[str]], tips: list[str] | None = None,
          ids: list[str] | None = None) -> None:
    """Replace the rows, keeping the selected row selected if it is still there (rows are told apart by
    ``ids``, default their first cell); a selected row that is gone leaves nothing selected."""
    ids = ids if ids is not None else [cells[0] if cells else "" for cells in rows]
    current = _selected_id(t)
    t.row_ids = ids  # kept in Python: reading item data that holds nothing crashed PySide ('deallocating None')
    t.clearSelection()
    t.setCurrentCell(-1, -1)
    t.setRowCount(len(rows))
    for r, cells in enumerate(rows):
        for c, text in enumerate(cells):
            item = QTableWidgetItem(text)
            if tips is not None:
                item.setToolTip(tips[r])
            t.setItem(r, c, item)
        if current is not None and ids[r] == current:
            t.selectRow(r)


def _selected_id(t: QTableWidget) -> str | None:
    """The id ``_fill`` gave the one selected row, if one is selected."""
    rows = {i.row() for i in t.selectedIndexes()}
    ids: list[str] = getattr(t, "row_ids", [])
    return ids[next(iter(rows))] if len(rows) == 1 and next(iter(rows)) < len(ids) else None


class SyncPanel(QTabWidget):
    reveal = Signal(str)  # a pool path the user wants to see in the browser
    resolve = Signal(object, str)  # the Conflict as shown, 'original' or 'copy'
    open_both = Signal(object)  # Conflict
    pair_add = Signal()  # the user wants to sync another local folder with a pool folder
    pair_remove = Signal(str)  # the local folder the user wants to stop syncing

    def __init__(self, transfers: QWidget) -> None:
        super().__init__()
        self.addTab(transfers, "Transfers")
        self.addTab(self._build_sync(), "Sync")
        self.addTab(self._build_conflicts(), "Conflicts")
        self.addTab(self._build_issues(), "Issues")
        self.conflicts: list[Conflict] = []
        self.settling = False
        self.status: dict[str, Any] | None = None
        self.set_conflicts([])
        self.set_status(None)

    # --- sync ---------------------------------------------------------------------------------------
    def _build_sync(self) -> QWidget:
        w = QWidget()
        self.state = QLabel("")
        self.running = _table(["Transferring", "Direction", "Progress"])
        self.recent = _table(["Recent change", "What happened", "When"])
        self.recent.cellDoubleClicked.connect(lambda row, _col: self._reveal(self.recent, row))
        self.recent.setToolTip("Double-click to show the file")
        self.pairs = _table(["Synced folder", "Pool folder", "State"])
        self.pairs.setMaximumHeight(self.pairs.verticalHeader().defaultSectionSize() * 4 + 30)
        self.pair_add_button = QPushButton("Add folder…")
        self.pair_add_button.setToolTip("Sync another folder of this computer with a folder of the pool")
        self.pair_remove_button = QPushButton("Stop syncing")
        self.pair_remove_button.setToolTip("Its files stay where they are, here and on the pool")
        self.pair_add_button.clicked.connect(lambda _=False: self.pair_add.emit())
        self.pair_remove_button.clicked.connect(lambda _=False: self._remove_pair())
        self.pairs.itemSelectionChanged.connect(
            lambda: self.pair_remove_button.setEnabled(_selected_id(self.pairs) is not None))
        lay = QVBoxLayout(w)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.state)
        pairs = QHBoxLayout()
        pairs.addWidget(self.pairs, 1)
        buttons = QVBoxLayout()
        buttons.addWidget(self.pair_add_button)
        buttons.addWidget(self.pair_remove_button)
        buttons.addStretch(1)
        pairs.addLayout(buttons)
        lay.addLayout(pairs)
        row = QHBoxLayout()
        row.addWidget(self.running, 2)
        row.addWidget(self.recent, 3)
        lay.addLayout(row)
        return w

    def set_pairs(self, rows: list[tuple[str, str, str]]) -> None:
        """The folder pairs: (local folder, pool folder or '' for the whole pool, state)."""
        _fill(self.pairs, [[local, remote or "(whole pool)", state] for local, remote, state in rows])
        self.pair_remove_button.setEnabled(_selected_id(self.pairs) is not None)

    def _remove_pair(self) -> None:
        folder = _selected_id(self.pairs)
        if folder is not None:
            self.pair_remove.emit(folder)

    def _reveal(self, table: QTableWidget, row: int) -> None:
        item = table.item(row, 0)
        if item is not None:
            self.reveal.emit(item.text())

    def set_status(self, st: dict[str, Any] | None) -> None:
        from desktop_app.tray import STATE_TEXT

        self.status = st
        if st is None:
            self.state.setText("The sync agent is not running for this pool on this device.")
            _fill(self.running, [])
            _fill(self.recent, [])
            _fill(self.issues, [])
            self.setTabText(3, "Issues")
            return
        state = STATE_TEXT.get(st.get("state"), str(st.get("state")))
        last = st.get("last_sync") or 0
        self.state.setText(f"Sync: {state}" + (f" — {st['detail']}" if st.get("detail") else "")
                           + (f" · last pass {time.strftime('%H:%M:%S', time.localtime(last))}" if last else ""))
        _fill(self.running, [[t["path"], "up" if t.get("direction") == "up" else "down",
                              _progress(t)] for t in st.get("transfers", [])[:200]])
        _fill(self.recent, [[r["path"], r["action"], time.strftime("%H:%M:%S", time.localtime(r["time"]))]
                            for r in st.get("recent", [])[:200]])
        issues = [i for i in st.get("issues", [])]
        _fill(self.issues, [[i["title"], i["message"]] for i in issues], [i["message"] for i in issues])
        self.setTabText(3, f"Issues ({len(issues)})" if issues else "Issues")

    # --- conflicts ----------------------------------------------------------------------------------
    def _build_conflicts(self) -> QWidget:
        w = QWidget()
        self.conflict_table = _table(["File", "Conflicted copy", "From", "When"])
        self.conflict_table.itemSelectionChanged.connect(self._conflict_buttons)
        self.conflict_table.cellDoubleClicked.connect(lambda row, _col: self._reveal(self.conflict_table, row))
        self.conflict_buttons: dict[str, QPushButton] = {}
        buttons = QHBoxLayout()
        for name, text, tip in (
                ("open", "Open both", "Open the file and its conflicted copy side by side"),
                ("original", "Keep the original", "Delete the conflicted copy (it stays restorable)"),
                ("copy", "Keep the conflicted copy",
                 "Make the copy's content the file's next version and delete the copy (the replaced version "
                 "stays restorable)")):
            b = QPushButton(text)
            b.setToolTip(tip)
            b.clicked.connect(lambda _=False, n=name: self._conflict_action(n))
            buttons.addWidget(b)
            self.conflict_buttons[name] = b
        buttons.addStretch(1)
        self.conflict_note = QLabel("")
        self.conflict_note.setWordWrap(True)
        lay = QVBoxLayout(w)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.conflict_note)
        lay.addWidget(self.conflict_table)
        lay.addLayout(buttons)
        return w

    def set_conflicts(self, conflicts: list[Conflict]) -> None:
        self.conflicts = list(conflicts)
        _fill(self.conflict_table, [[c.original, c.copy.rpartition("/")[2], c.host, _stamp(c.stamp)]
                                    for c in self.conflicts], ids=[c.copy for c in self.conflicts])
        self.setTabText(2, f"Conflicts ({len(conflicts)})" if conflicts else "Conflicts")
        self.conflict_note.setText(
            "Both devices changed these files before either saw the other's change. Nothing was lost: pick "
            "the version to keep." if conflicts else "No conflicts.")
        self._conflict_buttons()

    def selected_conflict(self) -> Conflict | None:
        """The conflict of the selected row, found by its copy's path (never by row number alone)."""
        copy = _selected_id(self.conflict_table)
        return next((c for c in self.conflicts if c.copy == copy), None) if copy is not None else None

    def _conflict_buttons(self) -> None:
        chosen = self.selected_conflict() is not None and not self.settling
        for b in self.conflict_buttons.values():
            b.setEnabled(chosen)

    def set_settling(self, busy: bool) -> None:
        """While a conflict is being settled the buttons wait (a second click would race the first)."""
        self.settling = busy
        self._conflict_buttons()

    def _conflict_action(self, name: str) -> None:
        c = self.selected_conflict()
        if c is None:
            return
        if name == "open":
            self.open_both.emit(c)
        else:
            self.resolve.emit(c, name)

    # --- issues -------------------------------------------------------------------------------------
    def _build_issues(self) -> QWidget:
        w = QWidget()
        self.issues = _table(["Problem", "What and why"])
        self.issues.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.issues.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        lay = QVBoxLayout(w)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.issues)
        return w


def _progress(t: dict[str, Any]) -> str:
    done, total = t.get("done", 0) or 0, t.get("total", 0) or 0
    if not total:
        return ""
    return f"{human(done)} of {human(total)} ({100 * done // total} %)"


def _stamp(stamp: str) -> str:
    """'2026-11-24 153012' -> '2026-11-24 15:30'."""
    day, _, hms = stamp.partition(" ")
    return f"{day} {hms[:2]}:{hms[2:4]}" if len(hms) >= 4 else stamp


