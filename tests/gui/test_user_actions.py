"""Every action as a user fires it: toolbar triggers (with their 'checked' argument), shortcuts with focus
anywhere, double-click and Enter on rows, the right-click menu, a drop of a row onto a folder row.
Results are checked on the pool, never by calling the slots."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QDialog, QFileDialog, QInputDialog, QMenu, QMessageBox

from desktop_app.agent_link import AgentLink
from desktop_app.main_window import MainWindow
from sync_agent.pool import Pool


def _rows(w: MainWindow) -> list[str]:
    return [w.model.entry(r).name for r in range(w.model.rowCount())]


def _row_of(w: MainWindow, name: str) -> int:
    return _rows(w).index(name)


def _row_pos(w: MainWindow, name: str) -> QPoint:
    return w.view.visualRect(w.model.index(_row_of(w, name), 0)).center()


def _click_row(qtbot, w: MainWindow, name: str) -> None:
    QTest.mouseClick(w.view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     _row_pos(w, name))


def _show(qtbot, w: MainWindow, folder: str, names: set[str]) -> None:
    w.navigate(folder)
    qtbot.waitUntil(lambda: set(_rows(w)) >= names, timeout=10000)


def test_download_button_and_ctrl_d(qtbot, window: MainWindow, tmp_path: Path, monkeypatch) -> None:
    data = os.urandom(40_000)
    window.pool.put_bytes("docs/report.pdf", data)
    _show(qtbot, window, "docs", {"report.pdf"})
    target = tmp_path / "downloads"
    target.mkdir()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(target))
    assert not window.actions_by_name["download"].isEnabled()  # nothing selected yet
    _click_row(qtbot, window, "report.pdf")
    assert window.actions_by_name["download"].isEnabled()
    window.actions_by_name["download"].trigger()  # passes checked=False, as a click does
    qtbot.waitUntil(lambda: (target / "report.pdf").exists() and (target / "report.pdf").read_bytes() == data,
                    timeout=15000)
    (target / "report.pdf").unlink()
    window.filter.setFocus()  # the filter box has focus: the shortcut still works
    QTest.keyClick(window.filter, Qt.Key.Key_D, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: (target / "report.pdf").exists(), timeout=15000)
    assert window.filter.text() == ""


def test_enter_opens_a_folder_and_backspace_goes_up(qtbot, window: MainWindow) -> None:
    window.pool.put_bytes("photos/2024/cat.jpg", b"cat")
    _show(qtbot, window, "", {"photos"})
    _click_row(qtbot, window, "photos")
    QTest.keyClick(window.view, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.folder == "photos" and _rows(window) == ["2024"], timeout=10000)
    QTest.qWait(600)  # past the double-click interval of the Enter above
    pos = _row_pos(window, "2024")
    QTest.mouseClick(window.view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, pos)
    QTest.mouseDClick(window.view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, pos)
    qtbot.waitUntil(lambda: window.folder == "photos/2024" and _rows(window) == ["cat.jpg"], timeout=10000)
    QTest.keyClick(window.view, Qt.Key.Key_Backspace)
    qtbot.waitUntil(lambda: window.folder == "photos", timeout=10000)
    QTest.keyClick(window.view, Qt.Key.Key_Up, Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(lambda: window.folder == "", timeout=10000)


def test_context_menu_rename_and_delete(qtbot, window: MainWindow, monkeypatch) -> None:
    window.pool.put_bytes("menu/old.txt", b"x")
    _show(qtbot, window, "menu", {"old.txt"})
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("new.txt", True))
    window.view.customContextMenuRequested.emit(_row_pos(window, "old.txt"))  # what a right-click emits
    menu = window._menu
    assert isinstance(menu, QMenu) and menu.isVisible()
    texts = [a.text() for a in menu.actions() if a.text()]
    assert {"Download", "Rename", "Delete", "Versions", "Copy link"} <= set(texts)
    next(a for a in menu.actions() if a.text() == "Rename").trigger()
    qtbot.waitUntil(lambda: window.pool.exists("menu/new.txt") and not window.pool.exists("menu/old.txt"),
                    timeout=10000)
    qtbot.waitUntil(lambda: _rows(window) == ["new.txt"], timeout=10000)
    menu.close()
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    window.view.customContextMenuRequested.emit(_row_pos(window, "new.txt"))
    next(a for a in window._menu.actions() if a.text() == "Delete").trigger()
    qtbot.waitUntil(lambda: not window.pool.exists("menu/new.txt"), timeout=10000)
    window._menu.close()
    window.view.customContextMenuRequested.emit(QPoint(5, window.view.viewport().height() - 5))  # empty space
    assert "New folder" in [a.text() for a in window._menu.actions()]
    window._menu.close()


def test_drop_a_row_onto_a_folder_row_moves_it_on_the_server(qtbot, window: MainWindow) -> None:
    window.pool.put_bytes("desk/note.txt", b"note")
    window.pool.put_bytes("desk/archive/keep.txt", b"k")
    before = window.pool.stat("desk/note.txt")
    _show(qtbot, window, "desk", {"note.txt", "archive"})
    mime = window.model.mimeData([window.model.index(_row_of(window, "note.txt"), 0)])  # what a drag carries
    pos = QPointF(_row_pos(window, "archive"))
    actions, buttons, mods = Qt.DropAction.MoveAction, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    for event in (QDragEnterEvent(pos.toPoint(), actions, mime, buttons, mods),
                  QDragMoveEvent(pos.toPoint(), actions, mime, buttons, mods),
                  QDropEvent(pos, actions, mime, buttons, mods)):
        QApplication.sendEvent(window.view.viewport(), event)
    qtbot.waitUntil(lambda: window.pool.exists("desk/archive/note.txt") and not window.pool.exists("desk/note.txt"),
                    timeout=10000)
    assert window.pool.stat("desk/archive/note.txt").id == before.id  # a move: the same file, not a copy
    assert not window.queue.jobs  # nothing downloaded or uploaded


def test_drop_a_row_onto_a_breadcrumb_moves_it_up_on_the_server(qtbot, window: MainWindow) -> None:
    from desktop_app.main_window import CrumbButton

    window.pool.put_bytes("home/deep/inner/report.txt", b"r")
    before = window.pool.stat("home/deep/inner/report.txt")
    window.navigate("home/deep/inner")
    _show(qtbot, window, "home/deep/inner", {"report.txt"})
    crumbs = [window.crumbs.itemAt(i).widget() for i in range(window.crumbs.count())]
    home = next(c for c in crumbs if isinstance(c, CrumbButton) and c.path == "home")
    from desktop_app.main_window import DraggedEntries

    mime = DraggedEntries([window.model.entry(_row_of(window, "report.txt"))], window.stage_for_drag)  # startDrag's
    pos = QPointF(home.rect().center())
    actions, buttons, mods = Qt.DropAction.MoveAction, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    for event in (QDragEnterEvent(pos.toPoint(), actions, mime, buttons, mods), QDropEvent(pos, actions, mime,
                                                                                            buttons, mods)):
        QApplication.sendEvent(home, event)
    qtbot.waitUntil(lambda: window.pool.exists("home/report.txt"), timeout=10000)
    assert window.pool.stat("home/report.txt").id == before.id and not window.queue.jobs


def test_share_dialog_creates_an_invitation(qtbot, window: MainWindow, monkeypatch) -> None:
    window.pool.put_bytes("team/plan.txt", b"p")
    _show(qtbot, window, "", {"team"})
    _click_row(qtbot, window, "team")
    shown: list[QDialog] = []

    def click_history(dialog: QDialog) -> None:
        QTest.mouseClick(dialog.history, Qt.MouseButton.LeftButton, pos=QPoint(8, dialog.history.height() // 2))

    def exec_(dialog: QDialog) -> int:
        shown.append(dialog)
        assert not dialog.history.isChecked() and dialog.history.isEnabled()  # read-only: the folder as it is now
        assert "never its past" in dialog.history_hint.text()
        dialog.mode.setCurrentIndex(1)  # read-write, as a user picks it: always with history
        assert dialog.history.isChecked() and not dialog.history.isEnabled()
        assert "earlier versions" in dialog.history_hint.text()
        click_history(dialog)
        assert dialog.history.isChecked()  # a disabled box does not change
        dialog.mode.setCurrentIndex(0)  # back to read-only: the user's choice again
        assert not dialog.history.isChecked() and dialog.history.isEnabled()
        click_history(dialog)
        assert dialog.history.isChecked()
        click_history(dialog)
        dialog.mode.setCurrentIndex(1)
        dialog.create.click()
        qtbot.waitUntil(lambda: dialog.output.toPlainText().startswith("pooldrive"), timeout=20000)
        from sync_agent.sharing import invitation

        invite = invitation.decode(dialog.output.toPlainText().strip())
        assert invite.history and invite.bucket == window.pool.cfg.bucket  # read-write: the pool's bucket
        assert invite.mode == "rw" and "change and delete" in dialog.mode.currentText()  # and the mode
        return 1

    def exec_read_only(dialog: QDialog) -> int:
        shown.append(dialog)
        dialog.create.click()  # the defaults: read-only, no history
        qtbot.waitUntil(lambda: dialog.output.toPlainText().startswith("pooldrive"), timeout=20000)
        from sync_agent.sharing import invitation

        invite = invitation.decode(dialog.output.toPlainText().strip())
        assert invite.mode == "ro" and not invite.history and invite.bucket.startswith("pdshare-")
        holder = window.pool.stat("team/plan.txt").replicas[0]
        s3 = window.pool.client(holder).s3  # the owner's keys see the share's copy of the folder
        assert [o.object_name for o in s3.list_objects(invite.bucket, prefix="team/")] == ["team/plan.txt"]
        return 1

    from desktop_app import dialogs

    monkeypatch.setattr(dialogs.ShareDialog, "exec", exec_)
    QTest.keyClick(window.view, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert shown and shown[0].folder == "team"
    monkeypatch.setattr(dialogs.ShareDialog, "exec", exec_read_only)
    QTest.keyClick(window.view, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert len(shown) == 2


def test_actions_follow_the_selection(qtbot, window: MainWindow) -> None:
    window.pool.put_bytes("sel/a.txt", b"a")
    window.pool.put_bytes("sel/sub/b.txt", b"b")
    _show(qtbot, window, "sel", {"a.txt", "sub"})
    a = window.actions_by_name
    window.view.clearSelection()
    assert not a["download"].isEnabled() and not a["versions"].isEnabled() and a["upload"].isEnabled()
    _click_row(qtbot, window, "sub")
    assert a["download"].isEnabled() and not a["versions"].isEnabled() and not a["link"].isEnabled()
    _click_row(qtbot, window, "a.txt")
    assert a["versions"].isEnabled() and a["link"].isEnabled()


def test_the_list_follows_changes_without_refresh(qtbot, window: MainWindow, shared_nodes) -> None:
    _show(qtbot, window, "", set())
    window.navigate("live")
    other = shared_nodes.open_pool(window.pool.cfg.bucket, Path(window.pool.catalog.path).with_name("other.sqlite3"))
    try:
        for i in range(30):
            other.put_bytes(f"live/f{i:02d}.txt", b"x")
    finally:
        other.close()  # flushes its journal entry
    qtbot.waitUntil(lambda: len(_rows(window)) == 30, timeout=20000)


def test_a_live_update_keeps_the_selection_and_the_scroll_position(qtbot, window: MainWindow) -> None:
    for i in range(120):
        window.pool.put_bytes(f"long/f{i:03d}.txt", b"x")
    window.resize(900, 500)
    _show(qtbot, window, "long", {"f119.txt"})
    QTest.qWait(300)  # the resized window has laid itself out
    window.view.scrollToBottom()
    _click_row(qtbot, window, "f110.txt")
    scroll = window.view.verticalScrollBar().value()
    assert scroll > 0
    window.pool.put_bytes("long/f120.txt", b"new")  # the agent or another device adds a file
    qtbot.waitUntil(lambda: "f120.txt" in _rows(window), timeout=15000)
    assert [e.name for e in window.selected()] == ["f110.txt"]
    qtbot.waitUntil(lambda: abs(window.view.verticalScrollBar().value() - scroll) <= 1, timeout=2000)


@contextlib.contextmanager
def _window_on_agent(qtbot, cfg_file: Path, pool: Pool, folder: Path) -> Iterator[tuple[MainWindow, AgentLink, object]]:
    """A real agent process for ``folder``, and the window on that folder linked to it."""
    from tests.sync.test_agent_process import AgentProcess

    agent = AgentProcess(cfg_file, folder).start()
    link = AgentLink(folder).start()
    w = MainWindow(pool, sync_folder=folder, monitor_interval=0.5, link=link)
    qtbot.addWidget(w)
    w.show()
    try:
        yield w, link, agent
    finally:
        w.shutdown()
        link.stop()
        agent.stop()


def _all_on_pool(pool: Pool, n: int) -> bool:
    from tests.sync.test_agent_process import on_pool

    return on_pool(pool, "many/0.txt") and all(pool.exists(f"many/{i}.txt") for i in range(n))


@contextlib.contextmanager
def _held_mass_delete(qtbot, pool_file, tmp_path: Path) -> Iterator[tuple[MainWindow, Path, Pool, AgentLink]]:
    """A real agent process and the window on its folder, with 30 synced files just deleted here: the
    guard holds them (nothing deleted on the pool yet)."""
    from tests.sync.test_agent_process import on_pool, wait_until

    cfg_file, pool = pool_file
    folder = tmp_path / "synced"
    (folder / "many").mkdir(parents=True)
    for i in range(30):
        (folder / f"many/{i}.txt").write_text(str(i))
    with _window_on_agent(qtbot, cfg_file, pool, folder) as (w, link, _agent):
        wait_until(lambda: _all_on_pool(pool, 30), what="the first sync")
        for i in range(30):
            (folder / f"many/{i}.txt").unlink()
        qtbot.waitUntil(lambda: w.sync_button.isVisible() and "Allow deleting 30" in w.sync_button.text()
                        and w.restore_button.isVisible() and "Restore 30" in w.restore_button.text(),
                        timeout=20000)
        assert on_pool(pool, "many/0.txt")  # held: nothing deleted yet
        yield w, folder, pool, link


def test_mass_delete_hold_is_released_from_the_window(qtbot, pool_file, tmp_path: Path) -> None:
    from desktop_app.tray import Tray
    from tests.sync.test_agent_process import on_pool, wait_until

    with _held_mass_delete(qtbot, pool_file, tmp_path) as (w, folder, pool, link):
        tray = Tray(link, folder)  # the tray offers the same release, not "Pause sync" next to "Paused"
        assert tray.action("Allow deleting 30") is not None
        QTest.mouseClick(w.sync_button, Qt.MouseButton.LeftButton)
        wait_until(lambda: not on_pool(pool, "many/0.txt"), what="the deletes, once allowed")
        qtbot.waitUntil(lambda: not w.sync_button.isVisible(), timeout=10000)

        for i in range(30):  # again, allowed from the tray's menu this time
            (folder / f"many/{i}.txt").write_text(str(i))
        wait_until(lambda: _all_on_pool(pool, 30), what="the files synced again (all of them: the guard counts "
                   "only deletes of synced files)")
        for i in range(30):
            (folder / f"many/{i}.txt").unlink()
        qtbot.waitUntil(lambda: tray.action("Allow deleting 30") is not None, timeout=20000)
        tray.action("Allow deleting 30").trigger()
        wait_until(lambda: not on_pool(pool, "many/29.txt"), what="the deletes, allowed from the tray")


def test_a_held_mass_delete_is_undone_from_the_window_and_the_tray(qtbot, pool_file, tmp_path: Path) -> None:
    """The other answer to the guard: the files come back (from the pool, where nothing was deleted)."""
    from desktop_app.tray import Tray
    from tests.sync.test_agent_process import on_pool, wait_until

    with _held_mass_delete(qtbot, pool_file, tmp_path) as (w, folder, pool, link):
        QTest.mouseClick(w.restore_button, Qt.MouseButton.LeftButton)
        wait_until(lambda: all((folder / f"many/{i}.txt").exists() for i in range(30)), what="the files back")
        assert (folder / "many/7.txt").read_text() == "7" and on_pool(pool, "many/7.txt")
        qtbot.waitUntil(lambda: not w.restore_button.isVisible() and not w.sync_button.isVisible(), timeout=10000)

        for i in range(30):  # again, answered from the tray's menu this time
            (folder / f"many/{i}.txt").unlink()
        tray = Tray(link, folder)
        qtbot.waitUntil(lambda: tray.action("Restore 30") is not None, timeout=20000)
        tray.action("Restore 30").trigger()
        wait_until(lambda: all((folder / f"many/{i}.txt").exists() for i in range(30)), what="the files back")
        assert all(on_pool(pool, f"many/{i}.txt") for i in (0, 29))


def test_deleted_files_are_restored_from_the_pool_menu(qtbot, window: MainWindow, monkeypatch) -> None:
    from desktop_app import dialogs

    window.pool.put_bytes("trash/report.txt", b"keep me")
    window.pool.delete("trash/report.txt")
    seen: list[QDialog] = []

    def exec_(dialog: QDialog) -> int:
        seen.append(dialog)
        dialog.show()
        qtbot.waitUntil(lambda: dialog.table.rowCount() >= 1, timeout=10000)
        assert not dialog.restore_button.isEnabled()  # nothing chosen yet: no "0 file(s) are back"
        row = [dialog.table.item(r, 0).text() for r in range(dialog.table.rowCount())].index("trash/report.txt")
        cell = dialog.table.visualItemRect(dialog.table.item(row, 0)).center()
        QTest.mouseClick(dialog.table.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, cell)
        assert dialog.table.selectionModel().isRowSelected(row, dialog.table.rootIndex())
        assert dialog.restore_button.isEnabled() and dialog.table.item(row, 1).text() == "7 B"
        said: list[str] = []
        monkeypatch.setattr(QMessageBox, "information", lambda _p, _title, text: said.append(text))
        warnings: list[str] = []
        monkeypatch.setattr(QMessageBox, "warning", lambda _p, title, text: warnings.append(f"{title}: {text}"))
        QTest.mouseClick(dialog.restore_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: window.pool.exists("trash/report.txt") or bool(warnings), timeout=10000)
        assert not warnings, warnings
        qtbot.waitUntil(lambda: said == ["1 file is back."], timeout=10000)
        return 1

    monkeypatch.setattr(dialogs.DeletedDialog, "exec", exec_)
    window.actions_by_name["Deleted files"].trigger()
    assert seen and window.pool.read_bytes("trash/report.txt") == b"keep me"


def test_a_deleted_file_is_deleted_forever_from_the_pool_menu(qtbot, window: MainWindow, monkeypatch) -> None:
    from desktop_app import dialogs

    window.pool.put_bytes("trash/old draft.txt", b"first")
    window.pool.put_bytes("trash/old draft.txt", b"second")
    window.pool.delete("trash/old draft.txt")
    asked: list[str] = []
    said: list[str] = []
    warnings: list[str] = []

    def exec_(dialog: QDialog) -> int:
        dialog.show()
        qtbot.waitUntil(lambda: dialog.table.rowCount() >= 1, timeout=10000)
        assert not dialog.forget_button.isEnabled()
        names = [dialog.table.item(r, 0).text() for r in range(dialog.table.rowCount())]
        cell = dialog.table.visualItemRect(dialog.table.item(names.index("trash/old draft.txt"), 0)).center()
        QTest.mouseClick(dialog.table.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, cell)
        assert dialog.forget_button.isEnabled()
        monkeypatch.setattr(QMessageBox, "question", lambda _p, _t, text: asked.append(text)
                            or QMessageBox.StandardButton.Yes)
        monkeypatch.setattr(QMessageBox, "information", lambda _p, _t, text: said.append(text))
        monkeypatch.setattr(QMessageBox, "warning", lambda _p, title, text: warnings.append(f"{title}: {text}"))
        QTest.mouseClick(dialog.forget_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: bool(said or warnings), timeout=15000)
        qtbot.waitUntil(lambda: "trash/old draft.txt" not in [dialog.table.item(r, 0).text()
                                                              for r in range(dialog.table.rowCount())], timeout=10000)
        return 1

    monkeypatch.setattr(dialogs.DeletedDialog, "exec", exec_)
    window.actions_by_name["Deleted files"].trigger()
    assert not warnings, warnings
    assert asked and "cannot be undone" in asked[0]
    assert said == ["1 file(s) forgotten; 22 B freed."], said  # 'first' and 'second', two copies each
    assert window.pool.catalog.get("trash/old draft.txt", include_deleted=True) is None


def test_an_invitation_is_accepted_from_the_pool_menu(qtbot, window: MainWindow, monkeypatch) -> None:
    from desktop_app import dialogs
    from sync_agent import config
    from sync_agent.sharing import invitation, shares
    from sync_agent.sharing.policy import ShareMode

    window.pool.put_bytes("for-bob/plan.txt", b"plan")
    _, inv = shares.create_share(window.pool, "for-bob", ShareMode.READ_ONLY, label="Bob")
    text = invitation.encode(inv)
    names: list[str] = []

    def exec_(dialog: QDialog) -> int:
        dialog.text.setPlainText(text)
        QTest.mouseClick(dialog.accept_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: dialog.accepted_name is not None, timeout=15000)
        names.append(dialog.accepted_name)
        return 1

    monkeypatch.setattr(dialogs.AcceptDialog, "exec", exec_)
    window.actions_by_name["Accept an invitation"].trigger()
    cfg = config.load_pool(names[0])
    assert cfg.prefix == "for-bob" and cfg.read_only
    window.pools_menu.aboutToShow.emit()  # the submenu as it opens
    entry = next(a for a in window.pools_menu.actions() if a.text().startswith(names[0]))
    assert "shared by" in entry.text()
    entry.trigger()
    qtbot.waitUntil(lambda: bool(window.other_windows), timeout=15000)
    shared = window.other_windows[0]
    qtbot.addWidget(shared)
    assert shared.pool.cfg.name == names[0] and shared.isVisible()
    shared.navigate("for-bob")
    qtbot.waitUntil(lambda: "plan.txt" in _rows(shared), timeout=15000)
    shared.shutdown()
    shares.revoke_share(window.pool, inv.share_id)


def test_file_info_shows_copies_and_checksum(qtbot, window: MainWindow, monkeypatch) -> None:
    from desktop_app import dialogs

    info = window.pool.put_bytes("info/a.txt", b"abc")
    _show(qtbot, window, "info", {"a.txt"})
    _click_row(qtbot, window, "a.txt")
    texts: list[str] = []

    def exec_(dialog: QDialog) -> int:
        qtbot.waitUntil(lambda: dialog.info.text() != "", timeout=10000)
        texts.append(dialog.info.text())
        return 1

    monkeypatch.setattr(dialogs.VersionsDialog, "exec", exec_)
    QTest.keyClick(window.view, Qt.Key.Key_I, Qt.KeyboardModifier.ControlModifier)
    assert texts and info.sha256 in texts[0] and all(n in texts[0] for n in info.replicas)


def test_the_agent_log_opens_from_the_pool_menu(qtbot, window: MainWindow, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from PySide6.QtCore import QObject, Slot
    from PySide6.QtGui import QDesktopServices

    from sync_agent.sync.state import state_dir_for

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    window.sync_folder = tmp_path / "synced"
    log = state_dir_for(window.sync_folder) / "agent.log"
    log.parent.mkdir(parents=True)
    log.write_text("12:00:01 uploaded docs/a.txt\n")

    class Viewer(QObject):  # what the desktop would open it with
        def __init__(self) -> None:
            super().__init__()
            self.opened: list[str] = []

        @Slot(QUrl)
        def show(self, url: QUrl) -> None:
            self.opened.append(url.toLocalFile())

    viewer = Viewer()
    QDesktopServices.setUrlHandler("file", viewer, "show")
    try:
        window.actions_by_name["Open the sync agent's log"].trigger()
        qtbot.waitUntil(lambda: viewer.opened == [str(log)], timeout=5000)
    finally:
        QDesktopServices.unsetUrlHandler("file")


def test_a_drained_node_is_taken_back_into_service_from_settings(qtbot, window: MainWindow, monkeypatch) -> None:
    from desktop_app import settings_dialog
    from sync_agent.catalog.models import NodeState

    window.pool.catalog.set_node_state("node2", NodeState.DRAINING)
    seen: list[QDialog] = []

    def exec_(dialog: QDialog) -> int:
        seen.append(dialog)
        dialog.show()
        table = dialog.nodes
        row = [table.item(r, 0).text() for r in range(table.rowCount())].index("node2")
        assert table.item(row, 4).text() == "draining"
        cell = table.visualItemRect(table.item(row, 0)).center()
        QTest.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, cell)
        QTest.mouseClick(dialog.undrain_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: table.item(row, 4).text() == "active", timeout=10000)
        return 0

    monkeypatch.setattr(settings_dialog.SettingsDialog, "exec", exec_)
    window.actions_by_name["Settings and nodes"].trigger()
    assert seen and window.pool.catalog.node_states()["node2"] == NodeState.ACTIVE


def test_shares_are_extended_and_revoked_from_shared_by_me(qtbot, window: MainWindow, monkeypatch) -> None:
    from datetime import timedelta

    from desktop_app import dialogs
    from sync_agent.sharing import shares
    from sync_agent.sharing.policy import ShareMode

    window.pool.put_bytes("team/plan.txt", b"plan")
    info, _ = shares.create_share(window.pool, "team", ShareMode.READ_ONLY, label="Bob", expires=timedelta(days=1))
    seen: list[QDialog] = []

    def exec_(dialog: QDialog) -> int:
        seen.append(dialog)
        dialog.show()
        qtbot.waitUntil(lambda: dialog.table.rowCount() >= 1, timeout=10000)
        row = [r.id for r in dialog.rows].index(info.id)
        cell = dialog.table.visualItemRect(dialog.table.item(row, 0)).center()
        QTest.mouseClick(dialog.table.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, cell)
        QTest.mouseClick(dialog.extend_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: next(r for r in shares.list_shares(window.pool) if r.id == info.id).expires_at
                        > info.expires_at + 20 * 86400, timeout=15000)
        row = [r.id for r in dialog.rows].index(info.id)
        cell = dialog.table.visualItemRect(dialog.table.item(row, 0)).center()
        QTest.mouseClick(dialog.table.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, cell)
        QTest.mouseClick(dialog.revoke_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: next(r for r in shares.list_shares(window.pool) if r.id == info.id).revoked,
                        timeout=15000)
        qtbot.waitUntil(lambda: dialog.table.item(row, 4) is not None and "revoked" in dialog.table.item(row, 4).text(),
                        timeout=10000)
        return 0

    monkeypatch.setattr(dialogs.SharesDialog, "exec", exec_)
    window.actions_by_name["Shared by me"].trigger()
    assert seen


def test_copies_column_shows_reachable_copies_in_amber_while_a_holder_is_down(
        qtbot, fault_window: MainWindow, fault_nodes, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    w = fault_window
    w.pool.put_bytes("cards/a.txt", b"a")
    holders = w.pool.stat("cards/a.txt").replicas
    _show(qtbot, w, "cards", {"a.txt"})
    index = w.model.index(_row_of(w, "a.txt"), 3)
    assert w.model.data(index).startswith("2/2")
    fault_nodes[holders[0]].kill()
    qtbot.waitUntil(lambda: w.model.data(w.model.index(_row_of(w, "a.txt"), 3)).startswith("1/2"), timeout=15000)
    index = w.model.index(_row_of(w, "a.txt"), 3)
    assert f"{holders[0]} down" in w.model.data(index)
    assert w.model.data(index, Qt.ItemDataRole.ForegroundRole).name() == "#d08000"  # amber
    assert f"{holders[0]} down now" in w.model.data(index, Qt.ItemDataRole.ToolTipRole)
    warned: list[str] = []  # a background read meeting the dead nodes may say so in a box: never block on it
    monkeypatch.setattr(QMessageBox, "warning", lambda _p, title, text: warned.append(f"{title}: {text}"))
    fault_nodes[holders[1]].kill()  # no copy left to read: red, not the amber of "fewer copies"
    qtbot.waitUntil(lambda: w.model.data(w.model.index(_row_of(w, "a.txt"), 3)).startswith("0/2"), timeout=15000)
    index = w.model.index(_row_of(w, "a.txt"), 3)
    assert w.model.data(index, Qt.ItemDataRole.ForegroundRole).name() == "#c62828"
    assert "  " not in w.model.data(index)


def test_upload_actions_and_ctrl_u_from_the_filter_box(qtbot, window: MainWindow, tmp_path: Path,
                                                      monkeypatch) -> None:
    src = tmp_path / "to upload"
    (src / "inner").mkdir(parents=True)
    (src / "one.txt").write_text("one")
    (src / "inner" / "two.txt").write_text("two")
    window.navigate("")
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", lambda *a, **k: ([str(src / "one.txt")], ""))
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(src))
    window.filter.setFocus()
    QTest.keyClick(window.filter, Qt.Key.Key_U, Qt.KeyboardModifier.ControlModifier)  # focus in the filter box
    qtbot.waitUntil(lambda: window.pool.exists("one.txt"), timeout=15000)
    assert window.filter.text() == ""  # the shortcut did not type into the box
    window.actions_by_name["upload-folder"].trigger()
    qtbot.waitUntil(lambda: window.pool.exists("to upload/inner/two.txt") and window.pool.exists("to upload/one.txt"),
                    timeout=15000)  # the folder's files go up in parallel, in no set order
    assert window.pool.read_bytes("to upload/one.txt") == b"one"


def test_a_node_is_added_and_removed_from_settings(qtbot, fault_nodes, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                   monkeypatch) -> None:
    from desktop_app import settings_dialog
    from sync_agent import config

    cfg = fault_nodes.config("admin-bucket", nodes=["node1", "node2", "node3"])
    path = config.save_pool(cfg, tmp_path / "admin.toml")
    pool = Pool(config.load_pool(str(path)), catalog_path=tmp_path / "admin.sqlite3")
    pool.init_buckets()
    pool.put_bytes("kept.txt", b"kept")
    w = MainWindow(pool, sync_folder=None, monitor_interval=0.5)
    qtbot.addWidget(w)
    w.show()
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)

    def fill(dialog: QDialog) -> int:  # the user types the node's address and keys, then OK
        QTest.keyClicks(dialog.name, "node4")
        QTest.keyClicks(dialog.endpoint, fault_nodes["node4"].endpoint)
        dialog.secure.setChecked(bool(fault_nodes.ca))
        QTest.keyClicks(dialog.access, fault_nodes.access_key)
        QTest.keyClicks(dialog.secret, fault_nodes.secret_key)
        return int(QDialog.DialogCode.Accepted)

    monkeypatch.setattr(settings_dialog.AddNodeDialog, "exec", fill)

    def exec_(dialog: QDialog) -> int:
        dialog.show()
        QTest.mouseClick(dialog.add_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: dialog.nodes.rowCount() == 4, timeout=15000)
        assert "node4" in w.nodes.cards and "node4" in pool.clients
        assert "node4" in config.load_pool(str(path)).node("node4").name
        row = [dialog.nodes.item(r, 0).text() for r in range(4)].index("node4")
        cell = dialog.nodes.visualItemRect(dialog.nodes.item(row, 0)).center()
        QTest.mouseClick(dialog.nodes.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, cell)
        QTest.mouseClick(dialog.remove_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: dialog.nodes.rowCount() == 3, timeout=15000)
        return 0

    monkeypatch.setattr(settings_dialog.SettingsDialog, "exec", exec_)
    w.actions_by_name["Settings and nodes"].trigger()
    assert "node4" not in w.nodes.cards and "node4" not in pool.clients
    assert [n.name for n in config.load_pool(str(path)).nodes] == ["node1", "node2", "node3"]
    assert pool.read_bytes("kept.txt") == b"kept"
    w.shutdown()
    pool.close()


def test_a_drain_shows_its_progress_and_empties_the_node(qtbot, window: MainWindow, monkeypatch) -> None:
    from desktop_app import settings_dialog

    for i in range(16):
        window.pool.put_bytes(f"drain/f{i:02d}.txt", f"{i}".encode() * 100)
    held = window.pool.catalog.replicas_on_node("node2")
    assert held > 0
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    seen: list[str] = []

    def exec_(dialog: QDialog) -> int:
        dialog.show()
        row = [dialog.nodes.item(r, 0).text() for r in range(dialog.nodes.rowCount())].index("node2")
        cell = dialog.nodes.visualItemRect(dialog.nodes.item(row, 0)).center()
        QTest.mouseClick(dialog.nodes.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, cell)
        drain = next(b for b in dialog.findChildren(settings_dialog.QPushButton) if b.text().startswith("Drain"))
        QTest.mouseClick(drain, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: hasattr(dialog, "drain_progress") and "copies moved" in
                        dialog.drain_progress.labelText(), timeout=30000)
        seen.append(dialog.drain_progress.labelText())
        assert dialog.nodes.item(row, 4).text() == "draining"
        return 0

    monkeypatch.setattr(settings_dialog.SettingsDialog, "exec", exec_)
    window.actions_by_name["Settings and nodes"].trigger()
    assert seen and f"{held} copies moved" in seen[0] and "can be removed" in seen[0]
    assert window.pool.catalog.replicas_on_node("node2") == 0
    assert all(window.pool.read_bytes(f"drain/f{i:02d}.txt") == f"{i}".encode() * 100 for i in (0, 15))


def test_weight_and_zone_are_edited_in_settings_and_the_running_pool_follows(  # type: ignore[no-untyped-def]
        qtbot, shared_nodes, tmp_path: Path, monkeypatch) -> None:
    from desktop_app import settings_dialog
    from sync_agent import config
    from tests.conftest import fresh_bucket

    path = config.save_pool(shared_nodes.config(fresh_bucket(), name="weights"), tmp_path / "weights.toml")
    pool = Pool(config.load_pool(str(path)), catalog_path=tmp_path / "weights.sqlite3")
    pool.init_buckets()
    w = MainWindow(pool, sync_folder=None, monitor_interval=0.5)
    qtbot.addWidget(w)
    w.show()
    warnings: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda _parent, title, text, *a: warnings.append(text))

    def edit(table, row: int, col: int, text: str) -> None:  # type: ignore[no-untyped-def]
        from PySide6.QtWidgets import QLineEdit

        cell = table.visualItemRect(table.item(row, col)).center()
        QTest.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, cell)
        QTest.keyClick(table, Qt.Key.Key_F2)  # edit the current cell, as F2 or a double-click does
        editor = table.viewport().findChild(QLineEdit)
        assert editor is not None
        editor.selectAll()
        QTest.keyClicks(editor, text)
        QTest.keyClick(editor, Qt.Key.Key_Return)
        QTest.qWait(50)  # the delegate commits the edit from the event loop
        assert table.item(row, col).text() == text

    def exec_(dialog) -> int:  # type: ignore[no-untyped-def]
        dialog.show()
        save = dialog.findChild(settings_dialog.QDialogButtonBox).button(
            settings_dialog.QDialogButtonBox.StandardButton.Save)
        edit(dialog.nodes, 1, 2, "heavy")
        QTest.mouseClick(save, Qt.MouseButton.LeftButton)
        assert warnings and "must be a number above 0" in warnings[-1] and dialog.isVisible()
        edit(dialog.nodes, 1, 2, "3")
        edit(dialog.nodes, 1, 3, "office")
        QTest.mouseClick(save, Qt.MouseButton.LeftButton)
        return 0

    monkeypatch.setattr(settings_dialog.SettingsDialog, "exec", exec_)
    w.actions_by_name["settings"].trigger()  # the toolbar's Settings
    name = pool.cfg.nodes[1].name
    assert (pool.cfg.node(name).weight, pool.cfg.node(name).zone) == (3.0, "office")  # the running pool
    saved = config.load_pool(str(path)).node(name)
    assert (saved.weight, saved.zone) == (3.0, "office")  # and the pool's file
    assert len(warnings) == 1
    w.shutdown()
    pool.close()


def test_start_sync_from_the_window_starts_the_agent(qtbot, pool_file, tmp_path: Path) -> None:
    """No agent runs for the folder: the status bar says so and offers Start sync; a click starts the same
    background agent as 'pooldrive sync start', and the window follows it."""
    from sync_agent.errors import PoolDriveError
    from sync_agent.sync.ipc import AgentClient
    from tests.sync.test_agent_process import on_pool, wait_until

    _, pool = pool_file
    folder = tmp_path / "start here"
    folder.mkdir()
    (folder / "first.txt").write_text("from this device")
    link = AgentLink(folder).start()
    w = MainWindow(pool, sync_folder=folder, monitor_interval=0.5, link=link)
    qtbot.addWidget(w)
    w.show()
    try:
        qtbot.waitUntil(lambda: w.sync_button.isVisible() and w.sync_button.text() == "Start sync", timeout=10000)
        assert w.sync_label.text() == "Sync: not running"
        QTest.mouseClick(w.sync_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: link.last is not None and bool(link.last.get("last_sync")), timeout=60000)
        qtbot.waitUntil(lambda: not w.sync_button.isVisible() and "not running" not in w.sync_label.text(),
                        timeout=10000)
        wait_until(lambda: on_pool(pool, "first.txt"), what="the folder's file on the pool")
        assert pool.read_bytes("first.txt") == b"from this device"
    finally:
        w.shutdown()
        link.stop()
        with contextlib.suppress(PoolDriveError):
            AgentClient(folder).stop()


def test_new_folder_renamed_then_deleted_leaves_no_ghost(qtbot, window: MainWindow, monkeypatch) -> None:
    """Ctrl+Shift+N, F2 and the Delete key on an empty new folder: it is only a name until something is put
    in it, and it never stays behind as a '0 items' row."""
    answers = iter([("Drafts", True), ("Old drafts", True)])
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: next(answers))
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    window.pool.put_bytes("keep.txt", b"k")
    _show(qtbot, window, "", {"keep.txt"})
    QTest.keyClick(window.view, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    qtbot.waitUntil(lambda: "Drafts" in _rows(window), timeout=10000)
    _click_row(qtbot, window, "Drafts")
    QTest.keyClick(window.view, Qt.Key.Key_F2)
    qtbot.waitUntil(lambda: "Old drafts" in _rows(window) and "Drafts" not in _rows(window), timeout=10000)
    _click_row(qtbot, window, "Old drafts")
    QTest.keyClick(window.view, Qt.Key.Key_Delete)
    qtbot.waitUntil(lambda: _rows(window) == ["keep.txt"], timeout=10000)
    QTest.keyClick(window.view, Qt.Key.Key_F5)  # Refresh: still gone after the pool is read again
    QTest.qWait(500)
    qtbot.waitUntil(lambda: _rows(window) == ["keep.txt"], timeout=10000)


def test_ctrl_l_puts_a_working_link_on_the_clipboard(qtbot, window: MainWindow) -> None:
    import urllib.request

    window.pool.put_bytes("links/report.txt", b"shared by link")
    _show(qtbot, window, "links", {"report.txt"})
    QApplication.clipboard().setText("")
    _click_row(qtbot, window, "report.txt")
    QTest.keyClick(window.view, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: QApplication.clipboard().text().startswith("http"), timeout=10000)
    ctx = None
    if window.pool.cfg.nodes[0].secure:  # the suite over TLS: the test CA signed the nodes' certificates
        import ssl

        ctx = ssl.create_default_context(cafile=window.pool.cfg.nodes[0].ca_file)
    with urllib.request.urlopen(QApplication.clipboard().text(), timeout=10, context=ctx) as r:
        assert r.read() == b"shared by link"


def test_a_batch_upload_shows_every_file_without_a_refresh(qtbot, window: MainWindow, tmp_path: Path) -> None:
    src = tmp_path / "batch"
    src.mkdir()
    for i in range(200):
        (src / f"f{i:03d}.txt").write_text(str(i))
    window.navigate("")
    window.upload_paths([str(src)])
    _show(qtbot, window, "", {"batch"})
    window.navigate("batch")
    qtbot.waitUntil(lambda: len(_rows(window)) == 200, timeout=60000)
    QTest.qWait(1500)  # later reloads (the catalog watch) never bring back an older, shorter list
    assert len(_rows(window)) == 200


def test_a_folder_deleted_in_the_window_is_trashed_locally_without_the_guard(qtbot, pool_file,
                                                                             tmp_path: Path, monkeypatch) -> None:
    """Deleting a big folder on the pool is what the user asked for: the agent moves the local copies to the
    trash and does not hold them as a suspected accident (the guard is for deletes it did not see asked)."""
    from tests.sync.test_agent_process import on_pool, wait_until

    cfg_file, pool = pool_file
    folder = tmp_path / "synced"
    (folder / "album").mkdir(parents=True)
    (folder / "other.txt").write_text("stays")
    for i in range(40):
        (folder / f"album/p{i}.jpg").write_text(str(i))
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    with _window_on_agent(qtbot, cfg_file, pool, folder) as (w, link, _agent):
        wait_until(lambda: on_pool(pool, "album/p39.jpg"), what="the first sync")
        _show(qtbot, w, "", {"album", "other.txt"})
        _click_row(qtbot, w, "album")
        QTest.keyClick(w.view, Qt.Key.Key_Delete)
        qtbot.waitUntil(lambda: "album" not in _rows(w), timeout=15000)
        wait_until(lambda: not (folder / "album").exists() or not any((folder / "album").iterdir()),
                   timeout=60, what="the local copies trashed")
        assert (folder / "other.txt").exists()
        trashed = list((folder / ".pooldrive" / "trash").rglob("p*.jpg"))
        assert len(trashed) == 40
        st = link.last or {}
        assert not st.get("held_deletes") and not w.sync_button.isVisible()


def test_double_click_on_a_file_downloads_it(qtbot, window: MainWindow, tmp_path: Path, monkeypatch) -> None:
    window.pool.put_bytes("dbl/photo.jpg", b"jpeg bytes")
    _show(qtbot, window, "dbl", {"photo.jpg"})
    target = tmp_path / "got"
    target.mkdir()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(target))
    pos = _row_pos(window, "photo.jpg")
    QTest.mouseClick(window.view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, pos)
    QTest.mouseDClick(window.view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, pos)
    qtbot.waitUntil(lambda: (target / "photo.jpg").exists() and (target / "photo.jpg").read_bytes() == b"jpeg bytes",
                    timeout=15000)


def test_bandwidth_limits_set_in_settings_reach_the_running_agent(qtbot, pool_file, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                                  monkeypatch) -> None:
    """One owner: the agent keeps its limits (across restarts too); Settings shows and changes them."""
    from desktop_app import settings_dialog
    from tests.sync.test_agent_process import AgentProcess

    cfg_file, pool = pool_file
    folder = tmp_path / "limited"
    with _window_on_agent(qtbot, cfg_file, pool, folder) as (w, link, agent):
        qtbot.waitUntil(lambda: bool(link.last and "limits" in link.last), timeout=20000)

        def exec_(dialog) -> int:  # type: ignore[no-untyped-def]
            dialog.show()
            assert dialog.up.value() == 0  # the agent's, shown as 'unlimited'
            dialog.up.setFocus()
            dialog.up.selectAll()
            QTest.keyClicks(dialog.up, "2.5")
            save = dialog.findChild(settings_dialog.QDialogButtonBox).button(
                settings_dialog.QDialogButtonBox.StandardButton.Save)
            QTest.mouseClick(save, Qt.MouseButton.LeftButton)
            return 0

        monkeypatch.setattr(settings_dialog.SettingsDialog, "exec", exec_)
        w.actions_by_name["settings"].trigger()
        qtbot.waitUntil(lambda: agent.client.status()["limits"]["up"] == 2.5, timeout=10000)
        assert agent.client.status()["limits"]["down"] == 0
        assert pool.up_limiter.rate == 2.5e6  # the window's own transfers follow too
    agent = AgentProcess(cfg_file, folder).start()  # restarted: the agent kept them
    try:
        assert agent.client.status()["limits"] == {"up": 2.5, "down": 0.0}
    finally:
        agent.stop()


def test_a_folders_durability_is_raised_from_its_context_menu(qtbot, window: MainWindow, shared_nodes,
                                                                monkeypatch) -> None:
    for i in range(3):
        window.pool.put_bytes(f"precious/p{i}.jpg", b"p%d" % i)
    _show(qtbot, window, "", {"precious"})
    seen: list[str] = []

    def exec_(dialog) -> int:
        qtbot.waitUntil(lambda: dialog.apply.isEnabled(), timeout=20000)
        seen.append(dialog.current.text())
        seen.append(dialog.state.text())
        dialog.copies.setValue(3)  # as typed into the box
        QTest.mouseClick(dialog.apply, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: dialog.apply.isEnabled(), timeout=30000)
        seen.append(dialog.current.text())
        seen.append(dialog.state.text())
        return 1

    from desktop_app import durability_dialog

    monkeypatch.setattr(durability_dialog.DurabilityDialog, "exec", exec_)
    window.view.customContextMenuRequested.emit(_row_pos(window, "precious"))  # what a right-click emits
    next(a for a in window._menu.actions() if a.text() == "Durability…").trigger()
    window._menu.close()
    assert seen[0] == "2 copies (the pool's default)" and seen[1] == "All 3 files meet it."
    assert seen[2] == "3 copies (set on 'precious')" and seen[3] == "All 3 files meet it."
    bucket = window.pool.cfg.bucket
    assert all(len(shared_nodes.holders(bucket, f"precious/p{i}.jpg")) == 3 for i in range(3))


def test_folder_pairs_are_listed_added_and_removed_from_the_window(qtbot, pool_file, tmp_path: Path,
                                                                   monkeypatch) -> None:
    """One agent serves the pool's folder pairs; the Sync tab lists them with their state, 'Add folder…' and
    a folder row's 'Sync to this computer…' add one to the running agent, 'Stop syncing' removes one."""
    from sync_agent import api as engine_api
    from sync_agent.errors import PoolDriveError
    from tests.integration.test_cli_real_paths import ROOT
    from tests.sync.test_agent_process import wait_until

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))  # this test's own pairs file
    cfg, pool = pool_file
    photos, work, music = tmp_path / "Photos", tmp_path / "Work", tmp_path / "Music"
    pool.put_bytes("music/song.ogg", b"la")
    engine_api.add_pair(pool.cfg.name, engine_api.make_pair(photos, "photos"))
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-m", "sync_agent.cli.main", "--pool", str(cfg), "sync", "start"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    link = AgentLink(photos).start()
    w = MainWindow(pool, sync_folder=photos, monitor_interval=0.5, link=link)
    qtbot.addWidget(w)
    w.show()
    table = w.sync_panel.pairs

    def rows() -> list[tuple[str, str, str]]:
        return [tuple(table.item(r, c).text() for c in range(3)) for r in range(table.rowCount())]  # type: ignore[misc]

    try:
        qtbot.waitUntil(lambda: rows() == [(str(photos), "photos", "idle")], timeout=30000)
        monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(work))
        monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("work", True))
        QTest.mouseClick(w.sync_panel.pair_add_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: (str(work), "work", "idle") in rows(), timeout=30000)
        pool.put_bytes("work/a.txt", b"a")
        wait_until(lambda: (work / "a.txt").exists(), what="the new pair's file")

        _show(qtbot, w, "", {"music", "work"})
        monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(music))
        w.view.customContextMenuRequested.emit(_row_pos(w, "music"))
        next(a for a in w._menu.actions() if a.text() == "Sync to this computer…").trigger()
        w._menu.close()
        qtbot.waitUntil(lambda: (str(music), "music", "idle") in rows(), timeout=30000)
        wait_until(lambda: (music / "song.ogg").exists(), what="the pool folder synced to this computer")

        monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
        QTest.mouseClick(table.viewport(), Qt.MouseButton.LeftButton,
                         pos=table.visualItemRect(table.item(next(i for i, r in enumerate(rows())
                                                                  if r[0] == str(work)), 0)).center())
        QTest.mouseClick(w.sync_panel.pair_remove_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: [r[0] for r in rows()] == [str(photos), str(music)], timeout=30000)
        assert [p.local for p in engine_api.load_pairs(pool.cfg.name)] == [photos, music]
    finally:
        w.shutdown()
        link.stop()
        with contextlib.suppress(PoolDriveError):
            engine_api.AgentClient.for_pool(pool.cfg.name).stop()


def test_shared_by_me_closes_from_its_own_button(qtbot, window: MainWindow, monkeypatch) -> None:
    from PySide6.QtWidgets import QPushButton

    from desktop_app import dialogs

    closed: list[bool] = []

    def exec_(dialog: QDialog) -> int:
        dialog.show()
        close = next(b for b in dialog.findChildren(QPushButton) if b.text() == "Close")
        QTest.mouseClick(close, Qt.MouseButton.LeftButton)
        closed.append(not dialog.isVisible() and dialog.result() == QDialog.DialogCode.Rejected)
        return 0

    monkeypatch.setattr(dialogs.SharesDialog, "exec", exec_)
    window.actions_by_name["Shared by me"].trigger()
    assert closed == [True]


def test_settings_fit_an_800_by_600_screen(qtbot, window: MainWindow, monkeypatch) -> None:
    """Opened with its shortcut from a window at 800x600, every tab of Settings fits (a note on one line made
    it 813 px wide, its Cancel button off the screen)."""
    from desktop_app import settings_dialog

    window.resize(800, 600)
    window.show()
    seen: list[tuple[int, int]] = []

    def exec_(dialog: QDialog) -> int:
        dialog.show()
        for i in range(dialog.tabs.count()):
            dialog.tabs.setCurrentIndex(i)
            qtbot.wait(20)
            seen.append((dialog.width(), dialog.minimumSizeHint().width()))
        return 0

    monkeypatch.setattr(settings_dialog.SettingsDialog, "exec", exec_)
    QTest.keyClick(window, Qt.Key.Key_Comma, Qt.KeyboardModifier.ControlModifier)
    assert seen and all(w <= 800 and min_w <= 760 for w, min_w in seen), seen
