"""The sync panel as a user works it: conflicts settled with the buttons (results checked on the pool), both
versions opened, a recent change double-clicked to show the file, the agent's issues listed."""

from __future__ import annotations

import time

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QTableWidget

from desktop_app.main_window import MainWindow
from sync_agent.sync.conflicts import conflict_name
from sync_agent.sync.status import Activity


def _click_cell(table: QTableWidget, row: int, double: bool = False) -> None:
    pos = table.visualItemRect(table.item(row, 0)).center()
    QTest.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, pos)
    if double:
        QTest.mouseDClick(table.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, pos)


def _row(table: QTableWidget, text: str) -> int:
    return next(r for r in range(table.rowCount()) if table.item(r, 0).text() == text)


def _make_conflict(window: MainWindow, original: str, mine: bytes, theirs: bytes) -> str:
    folder, _, name = original.rpartition("/")
    copy = f"{folder}/{conflict_name(name, 'desktop', time.time())}"
    window.pool.put_bytes(original, mine)
    window.pool.put_bytes(copy, theirs)  # what the agent uploads when both devices changed the file
    return copy


def test_conflicts_are_settled_with_the_buttons(qtbot, window: MainWindow) -> None:
    panel = window.sync_panel
    plan_copy = _make_conflict(window, "notes/plan.txt", b"the pool's version", b"this device's version")
    todo_copy = _make_conflict(window, "notes/todo.txt", b"keep me", b"drop me")
    qtbot.waitUntil(lambda: panel.tabText(2) == "Conflicts (2)", timeout=10000)
    panel.setCurrentIndex(2)
    table = panel.conflict_table
    assert not panel.conflict_buttons["copy"].isEnabled()  # nothing chosen yet

    _click_cell(table, _row(table, "notes/plan.txt"))
    assert panel.conflict_buttons["copy"].isEnabled()
    QTest.mouseClick(panel.conflict_buttons["copy"], Qt.MouseButton.LeftButton)
    pool = window.pool
    qtbot.waitUntil(lambda: not pool.exists(plan_copy), timeout=15000)
    assert pool.read_bytes("notes/plan.txt") == b"this device's version"
    assert [v.number for v in pool.versions("notes/plan.txt")] == [2, 1]  # same file; the old one restorable
    qtbot.waitUntil(lambda: panel.tabText(2) == "Conflicts (1)", timeout=10000)

    _click_cell(table, _row(table, "notes/todo.txt"))
    QTest.mouseClick(panel.conflict_buttons["original"], Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not pool.exists(todo_copy), timeout=15000)
    assert pool.read_bytes("notes/todo.txt") == b"keep me"
    qtbot.waitUntil(lambda: panel.tabText(2) == "Conflicts" and table.rowCount() == 0, timeout=10000)
    assert "No conflicts" in panel.conflict_note.text()


def test_open_both_shows_the_two_versions(qtbot, window: MainWindow, monkeypatch) -> None:
    opened: list[QUrl] = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url) or True)
    _make_conflict(window, "draft.md", b"# pool", b"# here")
    panel = window.sync_panel
    qtbot.waitUntil(lambda: panel.conflict_table.rowCount() == 1, timeout=10000)
    panel.setCurrentIndex(2)
    _click_cell(panel.conflict_table, 0)
    QTest.mouseClick(panel.conflict_buttons["open"], Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(opened) == 2, timeout=15000)
    from pathlib import Path

    assert sorted(Path(u.toLocalFile()).read_bytes() for u in opened) == [b"# here", b"# pool"]


def test_a_recent_change_double_clicked_shows_the_file(qtbot, window: MainWindow) -> None:
    for i in range(30):
        window.pool.put_bytes(f"photos/2024/p{i:02d}.jpg", b"x")
    activity = Activity()  # the agent's own status object, as its socket sends it
    activity.finish("photos/2024/p27.jpg", "downloaded")
    activity.issue("secret.txt", "Local file problem", "secret.txt: Permission denied")
    window.on_agent_status(activity.snapshot())
    panel = window.sync_panel
    panel.setCurrentIndex(1)
    assert panel.recent.item(0, 1).text() == "downloaded"
    assert panel.tabText(3) == "Issues (1)" and "Permission denied" in panel.issues.item(0, 1).text()
    _click_cell(panel.recent, 0, double=True)
    qtbot.waitUntil(lambda: window.folder == "photos/2024" and [e.name for e in window.selected()] == ["p27.jpg"],
                    timeout=10000)
    window.on_agent_status(None)  # the agent stopped
    assert "not running" in panel.state.text() and panel.recent.rowCount() == 0
