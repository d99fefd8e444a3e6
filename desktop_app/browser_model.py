"""The pool browser's list: one folder's entries, handed to the view in batches (fetchMore), so a folder of
50,000 files opens at once and scrolls smoothly."""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QMimeData, QModelIndex, QPersistentModelIndex, Qt

from desktop_app.icons import icon
from desktop_app.node_panel import human
from sync_agent.api import DirEntry

COLUMNS = ["Name", "Size", "Modified", "Copies"]
BATCH = 2000
MIME = "application/x-pooldrive-paths"

Index = QModelIndex | QPersistentModelIndex


class FolderModel(QAbstractTableModel):
    def __init__(self) -> None:
        super().__init__()
        self.folder = ""
        self._entries: list[DirEntry] = []  # the whole folder
        self._all: list[DirEntry] = []  # filtered and sorted
        self._shown = 0
        self.replicas = 2
        self.down: set[str] = set()  # nodes down now: their copies are not reachable
        self._filter = ""
        self._sort = (0, Qt.SortOrder.AscendingOrder)

    def set_entries(self, folder: str, entries: list[DirEntry], replicas: int) -> None:
        self.folder, self._entries, self.replicas = folder, entries, replicas
        self._rebuild()

    def set_down(self, nodes: set[str]) -> None:
        if nodes != self.down:
            self.down = set(nodes)
            if self.rowCount():
                self.dataChanged.emit(self.index(0, 3), self.index(self.rowCount() - 1, 3))

    def set_filter(self, text: str) -> None:
        self._filter = text.lower()
        self._rebuild()

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        self._sort = (column, order)
        self._rebuild()

    def _rebuild(self) -> None:
        """Filter and sort the whole folder (not only the rows shown), then show the first batch."""
        column, order = self._sort
        entries = [e for e in self._entries if self._filter in e.name.lower()] if self._filter else list(self._entries)
        keys = [lambda e: e.name.lower(), lambda e: e.size, lambda e: e.mtime, lambda e: len(e.replicas)]
        entries.sort(key=keys[column], reverse=order == Qt.SortOrder.DescendingOrder)
        entries.sort(key=lambda e: not e.is_dir)  # folders first, stable
        self.beginResetModel()
        self._all = entries
        self._shown = min(BATCH, len(entries))
        self.endResetModel()

    def entry(self, row: int) -> DirEntry:
        return self._all[row]

    def total(self) -> int:
        return len(self._all)

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else self._shown

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return len(COLUMNS)

    def canFetchMore(self, parent: Index) -> bool:
        return not parent.isValid() and self._shown < len(self._all)

    def fetchMore(self, parent: Index) -> None:
        n = min(BATCH, len(self._all) - self._shown)
        self.beginInsertRows(QModelIndex(), self._shown, self._shown + n - 1)
        self._shown += n
        self.endInsertRows()

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        e = self._all[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 0:
                return e.name
            if col == 1:
                return (f"{e.files} item" + ("s" if e.files != 1 else "")) if e.is_dir else human(e.size)
            if col == 2:
                return time.strftime("%Y-%m-%d %H:%M", time.localtime(e.mtime)) if e.mtime else ""
            if col == 3:  # the count first, so a narrow window still shows it (the rest is in the tooltip)
                reach = [n for n in e.replicas if n not in self.down]
                down = [n for n in e.replicas if n in self.down]
                return "" if e.is_dir else " ".join(
                    x for x in (f"{len(reach)}/{self.replicas}", f"({', '.join(down)} down)" if down else "",
                                ", ".join(reach)) if x)
        if role == Qt.ItemDataRole.DecorationRole and col == 0:
            return icon("folder" if e.is_dir else "file")
        if role == Qt.ItemDataRole.ForegroundRole and col == 3 and not e.is_dir and \
                (reachable := len([n for n in e.replicas if n not in self.down])) < self.replicas:
            from PySide6.QtGui import QColor

            return QColor("#c62828" if reachable == 0 else "#d08000")  # unreadable now: red; fewer copies: amber
        if role == Qt.ItemDataRole.ToolTipRole:
            if col == 3 and not e.is_dir:
                down = [n for n in e.replicas if n in self.down]
                return f"Copies on {', '.join(e.replicas) or 'no node'}" + (f"; {', '.join(down)} down now" if down
                                                                           else "")
            return e.path
        return None

    def flags(self, index: Index) -> Qt.ItemFlag:
        f = super().flags(index) | Qt.ItemFlag.ItemIsDragEnabled
        if index.isValid() and self._all[index.row()].is_dir:
            f |= Qt.ItemFlag.ItemIsDropEnabled
        return f

    def mimeTypes(self) -> list[str]:
        return [MIME, "text/uri-list"]

    def mimeData(self, indexes: list[QModelIndex]) -> QMimeData:
        mime = QMimeData()
        rows = sorted({i.row() for i in indexes})
        mime.setData(MIME, "\n".join(self._all[r].path for r in rows).encode())
        return mime

    def supportedDropActions(self) -> Qt.DropAction:
        return Qt.DropAction.CopyAction | Qt.DropAction.MoveAction

    def supportedDragActions(self) -> Qt.DropAction:
        return Qt.DropAction.CopyAction | Qt.DropAction.MoveAction
