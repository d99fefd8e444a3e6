from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from collections.abc import Iterator
from pathlib import Path

import pytest

from desktop_app.gc_guard import MainThreadCollector
from desktop_app.main_window import MainWindow
from sync_agent.pool import Pool


@pytest.fixture(autouse=True)
def collect_on_the_gui_thread(qapp) -> Iterator[None]:
    """As the app does (desktop_app.gc_guard): no cycle with a Qt object in it may be collected on an engine
    thread. Set up before qtbot, so torn down after it has closed the test's windows."""
    collector = MainThreadCollector().start()
    yield
    collector.stop()


def _open(qtbot, pool: Pool, tmp_path: Path) -> MainWindow:
    w = MainWindow(pool, sync_folder=tmp_path / "sync", monitor_interval=0.3)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w.info.text() != "Loading…", timeout=10000)
    return w


@pytest.fixture
def window(qtbot, pool: Pool, tmp_path: Path) -> Iterator[MainWindow]:
    w = _open(qtbot, pool, tmp_path)
    yield w
    w.shutdown()


@pytest.fixture
def fault_window(qtbot, fault_pool: Pool, tmp_path: Path) -> Iterator[MainWindow]:
    w = _open(qtbot, fault_pool, tmp_path)
    yield w
    w.shutdown()

from tests.sync.test_agent_process import pool_file  # noqa: E402, F401 - a real agent for the tray test
