"""The main window: node panel, pool browser, transfer queue. Every engine call runs off the GUI thread."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEventLoop, QMimeData, QModelIndex, QPoint, QSettings, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import (
    QAction,
    QDesktopServices,
    QDrag,
    QDragEnterEvent,
    QDragMoveEvent,
    QDropEvent,
    QGuiApplication,
    QKeySequence,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QSplitter,
    QTableView,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from desktop_app.agent_link import AgentLink
from desktop_app.browser_model import MIME, FolderModel
from desktop_app.icons import app_icon, icon
from desktop_app.node_panel import NodePanel
from desktop_app.sync_panel import SyncPanel
from desktop_app.transfer_queue import TransferPanel, TransferQueue
from desktop_app.workers import EngineEvents, run_async
from sync_agent import api
from sync_agent.api import Changes, Conflict, DirEntry, HealthMonitor, Keep, Pool, PoolDriveError, RemoteWatcher, keys


def emit_drop(event: QDropEvent, target: str, entries_moved: Any, files_dropped: Any) -> None:
    """A drop onto ``target``: rows of this window move there on the server; files from a file manager
    are uploaded there."""
    mime = event.mimeData()
    if mime.hasFormat(MIME):  # checked first: a drag of rows also offers (lazy) local files
        paths = bytes(mime.data(MIME).data()).decode().split("\n")
        entries_moved.emit([p for p in paths if p], target)
    elif mime.hasUrls():
        files_dropped.emit([u.toLocalFile() for u in mime.urls() if u.isLocalFile()], target)
    event.acceptProposedAction()


class DraggedEntries(QMimeData):
    """What a drag of rows carries: their pool paths (a drop inside the window is a server-side move) and,
    only when a file manager asks for them at its drop, local copies, downloaded then and not before."""

    URIS = "text/uri-list"

    def __init__(self, entries: list[DirEntry], stage: Callable[[list[DirEntry]], list[Path]]) -> None:
        super().__init__()
        self.entries, self.stage = entries, stage
        self.staged: list[Path] | None = None
        self.setData(MIME, "\n".join(e.path for e in entries).encode())

    def formats(self) -> list[str]:
        return [MIME, self.URIS]

    def hasFormat(self, mimetype: str) -> bool:
        return mimetype in (MIME, self.URIS)

    def retrieveData(self, mimetype: str, preferred_type: object) -> object:
        if mimetype != self.URIS:
            return super().retrieveData(mimetype, preferred_type)  # type: ignore[arg-type]
        if self.staged is None:
            self.staged = self.stage(self.entries)
        return [QUrl.fromLocalFile(str(f)) for f in self.staged]


class CrumbButton(QPushButton):
    """One folder of the path above the list: a click opens it, a drop moves rows (or uploads files)
    into it, as a drop onto a folder row does."""

    entries_moved = Signal(list, str)
    files_dropped = Signal(list, str)

    def __init__(self, text: str, path: str) -> None:
        super().__init__(text)
        self.path = path
        self.setFlat(True)
        self.setAcceptDrops(True)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasFormat(MIME) or event.mimeData().hasUrls():
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        emit_drop(event, self.path, self.entries_moved, self.files_dropped)


class BrowserView(QTableView):
    """The file list; accepts drops from file managers (upload) and from itself (move); drags out."""

    files_dropped = Signal(list, str)  # local paths, target folder
    entries_moved = Signal(list, str)  # pool paths, target folder
    drag_out = Signal(list)  # entries
    open_requested = Signal(QModelIndex)  # Enter on a row
    up_requested = Signal()  # Backspace

    def __init__(self, model: FolderModel) -> None:
        super().__init__()
        self.setModel(model)
        self.folder_model = model
        self.setAcceptDrops(True)
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragDrop)
        self.setDropIndicatorShown(True)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSortingEnabled(True)
        self.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.verticalHeader().setVisible(False)
        self.verticalHeader().setDefaultSectionSize(24)
        self.setShowGrid(False)
        self.setAlternatingRowColors(True)
        header = self.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col, width in ((1, 90), (2, 140), (3, 170)):
            self.setColumnWidth(col, width)

    def keyPressEvent(self, event) -> None:  # type: ignore[no-untyped-def]
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.currentIndex().isValid():
            self.open_requested.emit(self.currentIndex())
            return
        if event.key() == Qt.Key.Key_Backspace:
            self.up_requested.emit()
            return
        super().keyPressEvent(event)

    def target_folder(self, pos: QPoint) -> str:
        """The folder under the cursor, else the folder shown."""
        index = self.indexAt(pos)
        if index.isValid():
            e = self.folder_model.entry(index.row())
            if e.is_dir:
                return e.path
        return self.folder_model.folder.rstrip("/")

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        mime = event.mimeData()
        if mime.hasUrls() or mime.hasFormat(MIME):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        mime = event.mimeData()
        if mime.hasUrls() or mime.hasFormat(MIME):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        emit_drop(event, self.target_folder(event.position().toPoint()), self.entries_moved, self.files_dropped)

    def startDrag(self, supported: Qt.DropAction) -> None:
        rows = sorted({i.row() for i in self.selectedIndexes()})
        if rows:
            self.drag_out.emit([self.folder_model.entry(r) for r in rows])


class MainWindow(QMainWindow):
    folder_loaded = Signal(str)

    def __init__(self, pool: Pool, *, sync_folder: Path | None = None, monitor_interval: float = 1.0,
                 link: AgentLink | None = None) -> None:
        super().__init__()
        self.pool = pool
        self.sync_folder = sync_folder
        self.link = link
        self.setWindowTitle(f"PoolDrive: {pool.cfg.name}" + (f" (shared by {pool.cfg.shared_by})"
                                                             if pool.cfg.is_share else ""))
        self.setWindowIcon(app_icon())
        self.events = EngineEvents()
        self.events.health_changed.connect(self._on_health)
        self._unsubscribe = pool.health.subscribe(lambda ev: self.events.health_changed.emit(ev.node, ev.new.value))
        self.monitor = HealthMonitor(pool, interval=monitor_interval).start()
        # other devices' changes, as deltas from the change journal (the catalog watch then reloads)
        self.remote = RemoteWatcher(pool, self._apply_remote, poll=2.0).start()
        self.queue = TransferQueue(pool)
        self.queue.finished.connect(lambda _id: self.reload_soon())
        self.model = FolderModel()
        self.view = BrowserView(self.model)
        self.view.doubleClicked.connect(self._open_index)
        self.view.files_dropped.connect(self.upload_paths)
        self.view.entries_moved.connect(self.move_entries)
        self.view.drag_out.connect(self.drag_out)
        self.nodes = NodePanel([n.name for n in pool.cfg.nodes])
        self.transfers = TransferPanel(self.queue)
        self.folder = pool.cfg.prefix.strip("/") if pool.cfg.is_share else ""
        self.pending_folders: set[str] = set()
        self._load_seq = 0
        self._fill_tried_at = -1e9  # when an incomplete catalog was last read again from the nodes
        self._reload_timer = QTimer(self)
        self._reload_timer.setSingleShot(True)
        self._reload_timer.timeout.connect(lambda: self.reload(refresh=False))
        self._catalog_version: int | None = None
        self._reveal: str | None = None  # a file to select once its folder is shown
        self._keep_scroll: int | None = None  # a list position to restore once the rows are laid out
        self._conflicts_loading = self._conflicts_stale = False
        self._build()
        self._status_timer = QTimer(self)
        self._status_timer.timeout.connect(self.refresh_nodes)
        self._status_timer.start(5000)
        self._catalog_timer = QTimer(self)
        self._catalog_timer.timeout.connect(self._watch_catalog)
        self._catalog_timer.start(1000)
        self.refresh_nodes()
        self.navigate(self.folder, refresh=True)
        settings = QSettings("PoolDrive", "PoolDrive")
        if settings.value("geometry"):
            self.restoreGeometry(settings.value("geometry"))
        else:
            self.resize(1180, 720)
        if settings.value("splitter"):
            self.splitter.restoreState(settings.value("splitter"))

    # --- layout ---------------------------------------------------------------------------------
    def _build(self) -> None:
        tb = QToolBar("Actions")
        tb.setMovable(False)
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.addToolBar(tb)
        self.actions_by_name: dict[str, QAction] = {}

        def act(name: str, text: str, slot, shortcut: str | QKeySequence.StandardKey | None = None,
                icon_name: str | None = None) -> QAction:
            a = QAction(icon(icon_name or name), text, self)
            a.triggered.connect(lambda _checked=False: slot())  # triggered(bool) must not reach the slot
            if shortcut is not None:
                a.setShortcut(QKeySequence(shortcut))
                a.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
                a.setToolTip(f"{text.rstrip('…')} ({a.shortcut().toString(QKeySequence.SequenceFormat.NativeText)})")
            tb.addAction(a)
            self.addAction(a)  # shortcuts work even when the toolbar overflows
            self.actions_by_name[name] = a
            return a

        act("up-level", "Up", self.go_up, "Alt+Up")
        act("upload", "Upload", self.upload_dialog, "Ctrl+U")
        act("upload-folder", "Upload folder", self.upload_folder_dialog, "Ctrl+Shift+U", icon_name="folder")
        act("download", "Download", self.download_selected, "Ctrl+D")
        act("new-folder", "New folder", self.new_folder, "Ctrl+Shift+N")
        act("rename", "Rename", self.rename_selected, "F2")
        act("delete", "Delete", self.delete_selected, QKeySequence.StandardKey.Delete)
        act("versions", "Versions", self.show_versions, "Ctrl+I")
        act("share", "Share…", self.share_selected, "Ctrl+Shift+S")
        act("link", "Copy link", self.copy_link, "Ctrl+L")
        act("refresh", "Refresh", lambda: self.reload(refresh=True), QKeySequence.StandardKey.Refresh)
        tb.addSeparator()
        act("settings", "Settings", self.open_settings, "Ctrl+,")
        tb.setIconSize(tb.iconSize())
        self.toolbar = tb
        menu = self.menuBar().addMenu("&Pool")
        durable = QAction(icon("settings"), "Durability…", self)  # the folder's copies and zones
        durable.triggered.connect(lambda _checked=False: self.open_durability())
        self.addAction(durable)
        self.actions_by_name["durability"] = durable
        menu.addAction(durable)
        for text, slot in (("Shared by me…", self.open_shares), ("Accept an invitation…", self.open_accept),
                           ("Deleted files…", self.open_deleted), ("Settings and nodes…", self.open_settings),
                           ("Open the sync agent's log", self.open_agent_log)):
            a = menu.addAction(text)
            a.triggered.connect(lambda _checked=False, f=slot: f())
            self.actions_by_name[text.rstrip("…")] = a
        self.pools_menu = menu.addMenu("Open another pool")  # your own pools and the ones shared with you
        self.pools_menu.aboutToShow.connect(self._fill_pools_menu)
        self.other_windows: list[MainWindow] = []

        self.crumbs = QHBoxLayout()
        self.crumbs.setSpacing(2)
        self.filter = QLineEdit()
        self.filter.setPlaceholderText("Filter by name")
        self.filter.setToolTip("Ctrl+F")
        self.filter.setClearButtonEnabled(True)
        self.filter.setFixedWidth(240)
        self.filter.textChanged.connect(self.model.set_filter)
        self.filter.installEventFilter(self)  # our shortcuts (Ctrl+U, Ctrl+D…) win over the line edit's
        find = QAction(self)
        find.setShortcut(QKeySequence.StandardKey.Find)
        find.triggered.connect(self.filter.setFocus)
        self.addAction(find)
        top = QHBoxLayout()
        top.addLayout(self.crumbs)
        top.addStretch(1)
        top.addWidget(self.filter)
        center = QWidget()
        cl = QVBoxLayout(center)
        cl.setContentsMargins(6, 6, 6, 0)
        cl.addLayout(top)
        cl.addWidget(self.view)
        self.info = QLabel("")
        cl.addWidget(self.info)

        self.sync_panel = SyncPanel(self.transfers)
        self.sync_panel.reveal.connect(lambda path: self.reveal(self._pool_path(path)))
        self.sync_panel.resolve.connect(self.resolve_conflict)
        self.sync_panel.open_both.connect(self.open_conflict)
        self.sync_panel.pair_add.connect(lambda: self.add_pair())
        self.sync_panel.pair_remove.connect(self.remove_pair)
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(center)
        right.addWidget(self.sync_panel)
        right.setStretchFactor(0, 3)
        right.setStretchFactor(1, 2)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        side = QWidget()
        sl = QVBoxLayout(side)
        sl.setContentsMargins(6, 6, 0, 6)
        sl.addWidget(self.nodes)
        side.setMinimumWidth(250)
        side.setMaximumWidth(340)
        self.splitter.addWidget(side)
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(1, 1)
        self.setCentralWidget(self.splitter)
        self.statusBar().showMessage("Ready")
        bar = self.view.verticalScrollBar()
        bar.rangeChanged.connect(self._range_changed)
        bar.actionTriggered.connect(lambda _action: setattr(self, "_keep_scroll", None))  # the user scrolled
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self.show_context_menu)
        self.view.open_requested.connect(self._open_index)
        self.view.up_requested.connect(self.go_up)
        self.view.selectionModel().selectionChanged.connect(lambda *_: self.update_actions())
        self.model.modelReset.connect(self.update_actions)
        self.view.setFocus()
        self.update_actions()
        self._build_sync_bar()

    def _build_sync_bar(self) -> None:
        """The sync agent at a glance in the status bar, with the one action its state calls for."""
        self.sync_label = QLabel("")
        self.sync_button = QPushButton("")
        self.sync_button.setFlat(True)
        self.sync_button.hide()
        self.sync_button.clicked.connect(self._sync_action)
        self.restore_button = QPushButton("")  # the other answer to a held mass delete
        self.restore_button.setFlat(True)
        self.restore_button.hide()
        self.restore_button.clicked.connect(self._restore_held)
        self.statusBar().addPermanentWidget(self.sync_label)
        self.statusBar().addPermanentWidget(self.sync_button)
        self.statusBar().addPermanentWidget(self.restore_button)
        if self.link is not None:
            self.link.status.connect(self.on_agent_status)
            self.on_agent_status(self.link.last)
        else:
            self.sync_label.setText("")

    def on_agent_status(self, st: dict | None) -> None:  # type: ignore[type-arg]
        from desktop_app.tray import STATE_TEXT

        self._agent = st
        self.sync_panel.set_status(st)
        self._show_pairs(st)
        if st is None:
            self.sync_label.setText("Sync: not running")
            self.sync_button.setText("Start sync")
        else:
            issues = len(st.get("issues", []))
            self.sync_label.setText(f"Sync: {STATE_TEXT.get(st.get('state'), st.get('state'))}"
                                    + (f", {len(st['transfers'])} transfers" if st.get("transfers") else "")
                                    + (f", {issues} issue(s)" if issues else ""))
            self.sync_label.setToolTip("\n".join(f"{i['title']}: {i['message']}" for i in st.get("issues", [])[:10]))
            if st.get("held_deletes"):
                self.sync_button.setText(f"Allow deleting {st['held_deletes']} file(s)")
            elif st.get("paused"):
                self.sync_button.setText("Resume sync")
            else:
                self.sync_button.setText("")
        self.sync_button.setVisible(bool(self.sync_button.text()) and self.sync_folder is not None)
        held = (st or {}).get("held_deletes") or 0
        self.restore_button.setText(f"Restore {held} file(s)" if held else "")
        self.restore_button.setToolTip("Bring the deleted files back from the pool (nothing was deleted there)")
        self.restore_button.setVisible(bool(held) and self.sync_folder is not None)

    # --- folder pairs --------------------------------------------------------------------------------
    def _show_pairs(self, st: dict | None) -> None:  # type: ignore[type-arg]
        """The folders synced with this pool: as the running agent reports them, else as configured."""
        if st is not None and st.get("pairs"):
            rows = [(p["folder"], p["remote"], p["state"]) for p in st["pairs"]]
        else:
            try:
                rows = [(str(p.local), p.remote, "not running") for p in api.load_pairs(self.pool.cfg.name)]
            except PoolDriveError:
                rows = []
            if not rows and self.sync_folder is not None:
                rows = [(str(self.sync_folder), "", "not running")]
        self.sync_panel.set_pairs(rows)

    def add_pair(self, remote: str | None = None) -> None:
        """Sync a folder of this computer with a folder of the pool (the one shown, or ``remote``)."""
        local = QFileDialog.getExistingDirectory(self, "Folder on this computer to sync")
        if not local:
            return
        if remote is None:
            remote, ok = QInputDialog.getText(self, "Pool folder", f"Sync {local} with this folder of the pool "
                                              "('/' for the whole pool):", text=self.folder or "/")
            if not ok:
                return
        name = self.pool.cfg.name

        legacy = self.sync_folder

        def add() -> str:
            pair = api.make_pair(local, remote)
            if legacy is not None and not api.load_pairs(name) and api.AgentClient(legacy).running():
                raise api.UsageError(f"The whole pool is synced with {legacy}. Stop syncing it first (select "
                                     "it, Stop syncing), then add the folders you want.", paths=[str(legacy)])
            api.add_pair(name, pair)
            client = api.AgentClient.for_pool(name)
            if client.running():
                client.add_pair(pair.local, pair.remote)
                return f"Now syncing {pair.describe()}"
            return f"Added {pair.describe()}; start sync to begin"

        def done(text: str) -> None:
            self.statusBar().showMessage(text, 8000)
            self._show_pairs(getattr(self, "_agent", None))

        run_async(add, done, self.show_error)

    def remove_pair(self, folder: str) -> None:
        if QMessageBox.question(self, "Stop syncing", f"Stop syncing {folder}? Its files stay where they are, on "
                                "this computer and on the pool.") != QMessageBox.StandardButton.Yes:
            return
        name = self.pool.cfg.name

        def remove() -> None:
            if Path(folder) not in {p.local for p in api.load_pairs(name)}:
                one = api.AgentClient(Path(folder))  # a one-folder agent (the whole pool, no pair): stopped
                if one.running():
                    one.stop()
                return
            client = api.AgentClient.for_pool(name)
            if client.running():
                client.remove_pair(Path(folder))
            api.remove_pair(name, Path(folder))

        run_async(remove, lambda _: (self.statusBar().showMessage(f"{folder} is no longer synced", 8000),
                                      self._show_pairs(getattr(self, "_agent", None))), self.show_error)

    def open_agent_log(self) -> None:
        """The agent's readable log (what it did, every issue), in the user's text viewer."""
        if self.sync_folder is None:
            self.statusBar().showMessage("No sync folder on this device, so no agent log.", 5000)
            return
        from sync_agent.api import state_dir_for

        log = state_dir_for(self.sync_folder) / "agent.log"
        try:
            if self.sync_folder.resolve() in {p.local for p in api.load_pairs(self.pool.cfg.name)}:
                log = api.pool_agent_dir() / f"{self.pool.cfg.name}.log"  # the agent serving the pool's pairs
        except PoolDriveError:
            pass
        if not log.exists():
            self.statusBar().showMessage(f"The sync agent has not run yet (no log at {log}).", 5000)
            return
        self.opened_url = QUrl.fromLocalFile(str(log))
        QDesktopServices.openUrl(self.opened_url)

    # --- the sync panel ---------------------------------------------------------------------------
    def reveal(self, path: str) -> None:
        """Show a file in the browser: its folder, with it selected."""
        self._reveal = path
        self.view.clearSelection()
        self.navigate(keys.parent(path))

    def load_conflicts(self) -> None:
        """The pool's conflicted copies, read off the GUI thread (after each catalog change; a change while
        a read runs reads again after it, so the list never stays older than the catalog)."""
        if self._conflicts_loading:
            self._conflicts_stale = True
            return
        self._conflicts_loading, self._conflicts_stale = True, False

        def settled() -> None:
            self._conflicts_loading = False
            if self._conflicts_stale:
                self.load_conflicts()

        def done(found: list[Conflict]) -> None:
            self.sync_panel.set_conflicts(found)
            settled()

        def failed(e: PoolDriveError) -> None:
            settled()
            self.statusBar().showMessage(f"Conflicts not read: {e.message}", 8000)

        run_async(lambda: api.conflicts(self.pool), done, failed)

    def resolve_conflict(self, c: Conflict, keep: Keep) -> None:
        what = "the conflicted copy" if keep == "copy" else "the original"
        self.statusBar().showMessage(f"'{c.original}': keeping {what}…")
        self.sync_panel.set_settling(True)

        def done(_: Conflict) -> None:
            self.sync_panel.set_settling(False)
            self.statusBar().showMessage(f"'{c.original}': kept {what}; the other version stays restorable", 8000)
            self.reload_soon()
            self.load_conflicts()

        def failed(e: PoolDriveError) -> None:
            self.sync_panel.set_settling(False)
            self.load_conflicts()
            self.show_error(e)

        run_async(lambda: api.resolve_conflict(self.pool, c.copy, keep, seen=c), done, failed)

    def _pool_path(self, path: str) -> str:
        """A path the agent reports (relative to its folder pair) as a pool path."""
        remote = str((getattr(self, "_agent", None) or {}).get("remote") or "")
        return f"{remote}/{path}" if remote and path else path or remote

    def _local_file(self, pool_path: str) -> Path | None:
        """Where a pool file lives in the synced folder, None when that folder's pair does not hold it."""
        if self.sync_folder is None:
            return None
        remote = str((getattr(self, "_agent", None) or {}).get("remote") or "")
        if not remote:
            return self.sync_folder / pool_path
        return self.sync_folder / pool_path[len(remote) + 1:] if pool_path.startswith(remote + "/") else None

    def open_conflict(self, c: Conflict) -> None:
        """Both versions in the user's viewer: the synced files where this device has them, else copies
        fetched into a temporary folder."""
        found = [self._local_file(p) for p in (c.original, c.copy)]
        local = [p for p in found if p is not None]
        if len(local) == 2 and all(p.is_file() for p in local):
            self._open_files(local)
            return
        import tempfile

        tmp = Path(tempfile.mkdtemp(prefix="pooldrive-conflict-"))

        def fetch() -> list[Path]:
            return [self.pool.get_file(p, tmp / keys.basename(p)) for p in (c.original, c.copy)]

        run_async(fetch, self._open_files, self.show_error)

    def _open_files(self, files: list[Path]) -> None:
        self.opened_urls = [QUrl.fromLocalFile(str(f)) for f in files]
        for url in self.opened_urls:
            QDesktopServices.openUrl(url)

    def _restore_held(self) -> None:
        if self.link is not None:
            self.link.command("restore_held")

    def _sync_action(self) -> None:
        st = getattr(self, "_agent", None)
        if self.link is None or self.sync_folder is None:
            return
        if st is None:
            from desktop_app.agent_link import start_agent

            folder = self.sync_folder
            pool_ref = str(self.pool.cfg.path or self.pool.cfg.name)  # a pool file outside the pools folder too
            run_async(lambda: start_agent(folder, pool_ref),
                      lambda _: self.statusBar().showMessage("Sync agent started", 5000), self.show_error)
        elif st.get("held_deletes"):
            self.link.command("resume", allow_deletes=True)
        elif st.get("paused"):
            self.link.command("resume")

    def eventFilter(self, obj, event) -> bool:  # type: ignore[no-untyped-def]
        from PySide6.QtCore import QEvent

        if obj is self.filter and event.type() == QEvent.Type.ShortcutOverride:
            pressed = QKeySequence(event.keyCombination())
            editing = event.modifiers() in (Qt.KeyboardModifier.NoModifier, Qt.KeyboardModifier.ShiftModifier)
            if not editing and any(a.shortcut() == pressed for a in self.actions_by_name.values()):
                return True  # not accepted by the line edit: the window's shortcut fires
        return super().eventFilter(obj, event)

    def update_actions(self) -> None:
        """Actions that need a selection (or a file, or write access) are enabled only when they apply."""
        sel = self.selected()
        files = [e for e in sel if not e.is_dir]
        writable = not self.pool.cfg.read_only
        root = self.pool.cfg.prefix.strip("/") if self.pool.cfg.is_share else ""
        enabled = {
            "up-level": bool(self.folder) and self.folder != root,
            "upload": writable, "upload-folder": writable, "new-folder": writable,
            "download": bool(sel), "rename": writable and len(sel) == 1, "delete": writable and bool(sel),
            "versions": len(files) == 1 and len(sel) == 1,
            "share": writable and not self.pool.cfg.is_share and (bool(self.folder) or any(e.is_dir for e in sel)),
            "link": len(files) == 1 and len(sel) == 1,
            "durability": not self.pool.cfg.is_share and bool(self._durability_folder()),
        }
        for name, on in enabled.items():
            if name in self.actions_by_name:
                self.actions_by_name[name].setEnabled(on)

    def show_context_menu(self, pos: QPoint) -> None:
        """Right-click: the actions for the rows under the cursor, or for the folder on empty space."""
        from PySide6.QtWidgets import QMenu

        index = self.view.indexAt(pos)
        if index.isValid() and not self.view.selectionModel().isRowSelected(index.row(), QModelIndex()):
            self.view.selectRow(index.row())
        elif not index.isValid():
            self.view.clearSelection()
        self.update_actions()
        menu = QMenu(self.view)
        a = self.actions_by_name
        names = (["open", "download", "rename", "delete", None, "versions", "share", "link", "durability",
                  "sync-here"] if index.isValid()
                 else ["upload", "upload-folder", "new-folder", None, "share", "durability", "refresh"])
        for name in names:
            if name is None:
                menu.addSeparator()
            elif name == "sync-here":
                entry = self.model.entry(index.row())
                if entry.is_dir and len(self.selected()) == 1:  # this pool folder into a folder of this computer
                    menu.addAction(icon("folder"), "Sync to this computer…", lambda p=entry.path: self.add_pair(p))
            elif name == "open":
                if self.model.entry(index.row()).is_dir:  # a file's "open" is Download, listed next
                    menu.addAction(icon("folder"), "Open", lambda i=index: self._open_index(i))
            else:
                menu.addAction(a[name])
        self._menu = menu  # kept alive while shown
        menu.popup(self.view.viewport().mapToGlobal(pos))

    def _set_crumbs(self) -> None:
        while self.crumbs.count():
            w = self.crumbs.takeAt(0).widget()
            if w is not None:
                w.deleteLater()
        root = self.pool.cfg.prefix.strip("/") if self.pool.cfg.is_share else ""
        parts = [p for p in self.folder.split("/") if p]
        def crumb(text: str, path: str) -> None:
            b = CrumbButton(text, path)
            b.clicked.connect(lambda _=False, p=path: self.navigate(p))
            b.entries_moved.connect(self.move_entries)
            b.files_dropped.connect(self.upload_paths)
            self.crumbs.addWidget(b)

        crumb(self.pool.cfg.name if not root else root.rsplit("/", 1)[-1], root)
        skip = len([p for p in root.split("/") if p])
        for i in range(skip, len(parts)):
            self.crumbs.addWidget(QLabel("›"))
            crumb(parts[i], "/".join(parts[:i + 1]))

    # --- health ---------------------------------------------------------------------------------
    def _on_health(self, node: str, state: str) -> None:
        self.nodes.set_state(node, state)
        self.model.set_down({n.name for n in self.pool.cfg.nodes if self.pool.health.is_down(n.name)})
        self.statusBar().showMessage(f"{node} is {state}", 8000)

    def refresh_nodes(self) -> None:
        run_async(self.pool.node_status, self.nodes.update_statuses, lambda e: None)

    # --- browsing -------------------------------------------------------------------------------
    def _range_changed(self, _low: int, high: int) -> None:
        if self._keep_scroll is not None and high >= self._keep_scroll:
            self.view.verticalScrollBar().setValue(self._keep_scroll)
            self._keep_scroll = None

    def navigate(self, folder: str, refresh: bool = False) -> None:
        self._keep_scroll = None
        self.folder = folder.strip("/")
        self._set_crumbs()
        self.model.set_entries(self.folder + "/" if self.folder else "", [], self._copies(self.folder))
        self.reload(refresh=refresh)

    def reload(self, refresh: bool = False) -> None:
        """Load the folder shown (off the GUI thread); only the newest load is shown, so loads that
        finish out of order never show an older list."""
        folder = self.folder
        self._load_seq += 1
        seq = self._load_seq

        fill = not self.pool.catalog.filled and time.monotonic() - self._fill_tried_at > 30
        if fill:
            self._fill_tried_at = time.monotonic()

        def load() -> list[DirEntry]:
            if refresh or fill:  # an incomplete catalog (new device, nodes down) is read again first
                api.refresh_catalog(self.pool)
            return self.pool.list(folder)

        if not self.model.rowCount():
            self.info.setText("Loading…")
        run_async(load, lambda entries: self._show(folder, entries, seq), self.show_error)

    def reload_soon(self) -> None:
        """Coalesce many reload requests (a batch upload finishing) into one."""
        if not self._reload_timer.isActive():
            self._reload_timer.start(250)

    def _apply_remote(self, changes: Changes, _cursor: dict[str, str]) -> None:
        try:  # runs on the watcher's thread
            api.refresh_paths(self.pool, changes.paths, changes.folders)
        except PoolDriveError:
            pass  # a node down: the next change or a refresh (F5) brings it

    def _watch_catalog(self) -> None:
        """Follow the catalog (the agent, other devices through the journal, transfers): reload on change."""
        try:
            version = self.pool.catalog.data_version()
        except Exception:
            return
        if version != self._catalog_version:
            self._catalog_version = version
            self.reload_soon()
            self.load_conflicts()

    def _show(self, folder: str, entries: list[DirEntry], seq: int | None = None) -> None:
        if folder != self.folder or (seq is not None and seq != self._load_seq):
            return
        selected = {e.path for e in self.selected()}
        scroll = self._keep_scroll if self._keep_scroll is not None else self.view.verticalScrollBar().value()
        names = {e.name for e in entries}
        prefix = folder + "/" if folder else ""
        for p in sorted(self.pending_folders):
            if keys.parent(p) == folder and keys.basename(p) not in names:
                entries.insert(0, DirEntry(keys.basename(p), p, True))
        self.pending_folders = {p for p in self.pending_folders if not (keys.parent(p) == folder
                                and any(e.path == p and e.files for e in entries))}
        self.model.set_entries(prefix, entries, self._copies(folder))
        if self._reveal is not None and keys.parent(self._reveal) == folder:
            selected, self._reveal = {self._reveal}, None  # asked for from the sync panel
            scroll = -1
        if selected:
            chosen = self.view.selectionModel()
            for row in range(self.model.rowCount()):
                if self.model.entry(row).path in selected:
                    if not chosen.currentIndex().isValid():  # else the view makes row 0 current, and scrolls there
                        chosen.setCurrentIndex(self.model.index(row, 0), chosen.SelectionFlag.NoUpdate)
                    chosen.select(self.model.index(row, 0), chosen.SelectionFlag.Select | chosen.SelectionFlag.Rows)
        if scroll >= 0:
            # the view lays its rows out later (a delayed layout after the model reset), so its range may
            # still be the empty list's: lay them out now; a view not shown yet keeps the position until
            # its range can hold it (_range_changed)
            self.view.doItemsLayout()
            self._keep_scroll = scroll
            self._range_changed(0, self.view.verticalScrollBar().maximum())
        elif self.view.selectedIndexes():
            self.view.scrollTo(self.view.selectedIndexes()[0])
        files = sum(not e.is_dir for e in entries)
        want = self.pool.durability(folder) if folder else None
        self.info.setText(f"{len(entries) - files} folders, {files} files" + (
            f" · keeps {want.describe()}" if want is not None and want.folder else "") + (
            "" if self.pool.catalog.filled else " (not every node could be read yet: files held only there "
            "are not shown)"))
        self.folder_loaded.emit(folder)

    def _open_index(self, index: QModelIndex) -> None:
        e = self.model.entry(index.row())
        if e.is_dir:
            self.navigate(e.path)
        else:
            self.download_selected()

    def go_up(self) -> None:
        root = self.pool.cfg.prefix.strip("/") if self.pool.cfg.is_share else ""
        if self.folder and self.folder != root:
            self.navigate(keys.parent(self.folder))

    def selected(self) -> list[DirEntry]:
        return [self.model.entry(r) for r in sorted({i.row() for i in self.view.selectedIndexes()})]

    # --- actions --------------------------------------------------------------------------------
    def show_error(self, e: PoolDriveError) -> None:
        self.info.setText("")
        QMessageBox.warning(self, e.title, e.message)

    def upload_paths(self, paths: list[str], folder: str | None = None) -> None:
        target = self.folder if folder is None else folder
        for p in paths:
            self.queue.upload(Path(p), target)
        self.statusBar().showMessage(f"Uploading {len(paths)} item(s) to /{target}", 5000)

    def upload_dialog(self) -> None:
        from PySide6.QtWidgets import QFileDialog

        files, _ = QFileDialog.getOpenFileNames(self, "Upload files")
        if files:
            self.upload_paths(files)

    def upload_folder_dialog(self) -> None:
        from PySide6.QtWidgets import QFileDialog

        folder = QFileDialog.getExistingDirectory(self, "Upload a folder")
        if folder:
            self.upload_paths([folder])

    def download_selected(self, target: Path | None = None) -> None:
        from PySide6.QtWidgets import QFileDialog

        if not isinstance(target, Path | None):
            target = None  # a signal's argument (e.g. triggered's 'checked'), not a folder
        entries = self.selected()
        if not entries:
            return
        if target is None:
            chosen = QFileDialog.getExistingDirectory(self, "Download to")
            if not chosen:
                return
            target = Path(chosen)
        for e in entries:
            self.queue.download(e.path, target, is_dir=e.is_dir)

    def stage_for_drag(self, entries: list[DirEntry]) -> list[Path]:
        """Download what is dragged out to a staging folder, keeping the window responsive meanwhile."""
        stage = Path(tempfile.mkdtemp(prefix="pooldrive-drag-"))
        jobs = [self.queue.download(e.path, stage, is_dir=e.is_dir) for e in entries]
        loop = QEventLoop()
        left = {j.id for j in jobs}

        def finished(job_id: int) -> None:
            left.discard(job_id)
            if not left:
                loop.quit()

        self.queue.finished.connect(finished)
        if left:
            loop.exec()
        self.queue.finished.disconnect(finished)
        return [stage / e.name for e in entries if (stage / e.name).exists()]

    def drag_out(self, entries: list[DirEntry]) -> None:
        self._drag_mime = DraggedEntries(entries, self.stage_for_drag)
        drag = QDrag(self.view)
        drag.setMimeData(self._drag_mime)
        drag.exec(Qt.DropAction.CopyAction | Qt.DropAction.MoveAction)

    def move_entries(self, paths: list[str], folder: str) -> None:
        moves = [(p, f"{folder}/{keys.basename(p)}" if folder else keys.basename(p)) for p in paths
                 if keys.parent(p) != folder and p != folder]
        if moves:
            run_async(lambda: [self.pool.move(a, b) for a, b in moves], lambda _: self.reload(), self.show_error)

    def new_folder(self) -> None:
        name, ok = QInputDialog.getText(self, "New folder", "Name:")
        if ok and name.strip():
            try:
                path = keys.join(self.folder, name.strip())
            except PoolDriveError as e:
                self.show_error(e)
                return
            self.pending_folders.add(path)  # S3 has no folders: it exists once something is put in it
            self.reload()
            self.statusBar().showMessage(f"'{name.strip()}' is kept once something is put in it", 8000)

    def rename_selected(self) -> None:
        entries = self.selected()
        if len(entries) != 1:
            return
        e = entries[0]
        name, ok = QInputDialog.getText(self, "Rename", "New name:", text=e.name)
        if ok and name.strip() and name != e.name:
            target = keys.join(keys.parent(e.path), name.strip())
            if e.path in self.pending_folders:  # an empty new folder: only a name so far
                self.pending_folders.discard(e.path)
                self.pending_folders.add(target)
                self.reload()
                return
            run_async(lambda: self.pool.move(e.path, target), lambda _: self.reload(), self.show_error)

    def delete_selected(self) -> None:
        entries = self.selected()
        if not entries:
            return
        names = ", ".join(e.name for e in entries[:3]) + ("…" if len(entries) > 3 else "")
        if QMessageBox.question(self, "Delete", f"Delete {names}? Their versions stay restorable.") \
                != QMessageBox.StandardButton.Yes:
            return
        stored = [e for e in entries if e.path not in self.pending_folders or e.files]
        self.pending_folders -= {e.path for e in entries}
        if not stored:
            self.reload()
            return
        run_async(lambda: [self.pool.delete(e.path, recursive=e.is_dir) for e in stored],
                  lambda _: self.reload(), self.show_error)

    def show_versions(self) -> None:
        entries = [e for e in self.selected() if not e.is_dir]
        if entries:
            from desktop_app.dialogs import VersionsDialog

            VersionsDialog(self, self.pool, entries[0].path, on_restored=self.reload).exec()

    def _copies(self, folder: str) -> int:
        """How many copies the files shown in ``folder`` should have (its durability class, else R)."""
        return self.pool.durability(folder).copies if folder else self.pool.cfg.replicas

    def _durability_folder(self) -> str:
        """The folder a durability change applies to: the selected folder row, else the folder shown."""
        entries = self.selected()
        folders = [e for e in entries if e.is_dir]
        if folders:
            return folders[0].path if len(entries) == 1 else ""  # several rows: no one folder to change
        return self.folder

    def open_durability(self) -> None:
        folder = self._durability_folder()
        if folder and not self.pool.cfg.is_share:
            from desktop_app.durability_dialog import DurabilityDialog

            DurabilityDialog(self, self.pool, folder).exec()

    def share_selected(self) -> None:
        from desktop_app.dialogs import ShareDialog

        entries = self.selected()
        folder = entries[0].path if entries and entries[0].is_dir else self.folder
        if folder:
            ShareDialog(self, self.pool, folder).exec()

    def copy_link(self) -> None:
        entries = [e for e in self.selected() if not e.is_dir]
        if not entries:
            return
        from sync_agent.api import file_links

        def copied(urls: list[tuple[str, str]]) -> None:
            QGuiApplication.clipboard().setText(urls[0][1])
            served = "1 node can" if len(urls) == 1 else f"{len(urls)} nodes can"
            self.statusBar().showMessage(f"Link copied (valid 24 h; {served} serve it)", 8000)

        run_async(lambda: file_links(self.pool, entries[0].path), copied, self.show_error)

    def open_shares(self) -> None:
        from desktop_app.dialogs import SharesDialog

        SharesDialog(self, self.pool).exec()

    def open_accept(self) -> None:
        from desktop_app.dialogs import AcceptDialog

        AcceptDialog(self).exec()

    def open_deleted(self) -> None:
        from desktop_app.dialogs import DeletedDialog

        DeletedDialog(self, self.pool, on_restored=self.reload_soon).exec()

    def _fill_pools_menu(self) -> None:

        self.pools_menu.clear()
        for name in api.list_pools():
            if name == self.pool.cfg.name:
                continue
            try:
                cfg = api.load_pool(name)
                label = f"{name}  (shared by {cfg.shared_by})" if cfg.is_share else name
            except PoolDriveError:
                label = f"{name}  (cannot be read)"
            a = self.pools_menu.addAction(label)
            a.triggered.connect(lambda _checked=False, n=name: self.open_pool(n))
        if not self.pools_menu.actions():
            self.pools_menu.addAction("No other pool on this device").setEnabled(False)

    def open_pool(self, name: str) -> None:
        """Another pool (a share accepted from someone) in a window of its own; opened off the GUI thread
        (opening reads its catalog and finishes any interrupted write)."""
        def show(pool: Pool) -> None:
            w = MainWindow(pool, monitor_interval=1.0)
            w.resize(self.size())
            w.show()
            self.other_windows.append(w)

        def open_() -> Pool:
            pool = Pool.open(name)
            pool.recover()
            return pool

        run_async(open_, show, self.show_error)

    def nodes_changed(self) -> None:
        """A node was added or removed (Settings): the cards follow, and their status is read again."""
        self.nodes.set_names([n.name for n in self.pool.cfg.nodes])
        self.refresh_nodes()

    def open_settings(self) -> None:
        from desktop_app.settings_dialog import SettingsDialog

        SettingsDialog(self, self.pool, self.sync_folder).exec()

    def resizeEvent(self, event) -> None:  # type: ignore[no-untyped-def]
        """Narrow windows (800x600) show the toolbar as icons with tooltips, so nothing is cut off."""
        super().resizeEvent(event)
        style = (Qt.ToolButtonStyle.ToolButtonTextBesideIcon if self.width() >= 1150
                 else Qt.ToolButtonStyle.ToolButtonIconOnly)
        if self.toolbar.toolButtonStyle() != style:
            self.toolbar.setToolButtonStyle(style)
        self.filter.setFixedWidth(240 if self.width() >= 1000 else 160)
        narrow = self.width() < 1000  # keep the Name column readable: the others give way
        for col, (wide, slim) in {1: (90, 70), 2: (140, 120), 3: (170, 130)}.items():
            self.view.setColumnWidth(col, slim if narrow else wide)
        self.splitter.widget(0).setMinimumWidth(200 if narrow else 250)

    def closeEvent(self, event) -> None:
        settings = QSettings("PoolDrive", "PoolDrive")
        settings.setValue("geometry", self.saveGeometry())
        settings.setValue("splitter", self.splitter.saveState())
        super().closeEvent(event)

    def shutdown(self) -> None:
        self._status_timer.stop()
        self._catalog_timer.stop()
        self.remote.stop()
        self.transfers.timer.stop()
        self._unsubscribe()
        self.monitor.stop()
        for job in self.queue.jobs.values():
            job.control.cancel()
        self.queue.threads.waitForDone(10000)
