"""`pooldrive-gui`: the window (and tray) for a pool; the first-run wizard when no pool is configured."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication, QMessageBox

from desktop_app.agent_link import AgentLink
from desktop_app.gc_guard import MainThreadCollector
from desktop_app.icons import app_icon
from desktop_app.workers import run_async
from sync_agent import api
from sync_agent.api import PoolDriveError


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="pooldrive-gui")
    ap.add_argument("--pool", help="pool name or config file")
    ap.add_argument("--folder", type=Path, help="the sync folder whose agent the tray shows")
    ap.add_argument("--minimized", action="store_true", help="start in the tray only")
    ap.add_argument("--version", action="store_true")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.version:

        print(f"pooldrive-gui {api.app_version()}")
        return 0
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("PoolDrive")
    app.setOrganizationName("PoolDrive")
    api.keep_user_umask(os.umask(0o077))  # the app's own files are the user's alone; downloads get the user's modes
    api.secure_tree()  # and what an older version left readable
    app.setDesktopFileName("io.pooldrive.PoolDrive")
    app.setWindowIcon(app_icon())
    app.setQuitOnLastWindowClosed(False)
    collector = MainThreadCollector(app).start()  # Qt objects must die on this thread, not an engine one
    try:
        return _run(app, args)
    finally:
        collector.stop()


def _run(app: QApplication, args: argparse.Namespace) -> int:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    settings = QSettings()
    folder = args.folder or Path(str(settings.value("sync_folder", Path.home() / "PoolDrive")))
    try:
        cfg = api.load_pool(args.pool)
    except PoolDriveError:
        from desktop_app.wizard import SetupWizard

        wizard = SetupWizard()
        if not wizard.exec() or wizard.result_config is None:
            return 1
        cfg = wizard.result_config
        folder = wizard.sync_folder or folder
        settings.setValue("sync_folder", str(folder))
    if not args.folder and not cfg.is_share:
        try:
            pairs = api.load_pairs(cfg.name)  # the agent's folder pairs own the sync folders
        except PoolDriveError as e:
            QMessageBox.warning(None, e.title, e.message)
            pairs = []
        folder = pairs[0].local if pairs else folder
    from desktop_app.main_window import MainWindow
    from desktop_app.tray import Tray
    from sync_agent.api import Pool

    try:
        pool = Pool(cfg)
    except PoolDriveError as e:
        QMessageBox.critical(None, e.title, e.message)
        return 1
    link = AgentLink(folder).start()
    window = MainWindow(pool, sync_folder=folder, link=link)
    run_async(pool.recover, lambda _n: None, lambda _e: None)  # half-done writes: off the GUI thread
    tray = Tray(link, folder, args.pool)
    tray.open_window.connect(lambda: (window.showNormal(), window.raise_(), window.activateWindow()))
    tray.quit_app.connect(app.quit)
    if not tray.available:
        window.statusBar().showMessage("No system tray here: PoolDrive works from this window.", 15000)
        app.setQuitOnLastWindowClosed(True)
    if not (args.minimized and tray.available):
        window.show()
    code = app.exec()
    link.stop()
    window.shutdown()
    pool.close()
    return code


if __name__ == "__main__":
    sys.exit(main())
