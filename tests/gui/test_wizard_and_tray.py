"""The first-run wizard's connection checks and the tray's control of a real sync agent."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QMessageBox

from desktop_app.agent_link import AgentLink
from desktop_app.tray import Tray, tray_state
from desktop_app.wizard import SetupWizard
from sync_agent.minio_server import free_port
from tests.integration.test_tls import Home, tls_pool  # noqa: F401 - fixture
from tests.nodepool import TLS, NodePool


def _check(qtbot, wizard: SetupWizard, endpoint: str, access: str, secret: str) -> str:
    page = wizard.nodes_page
    page.name.setText("nas")
    page.endpoint.setText(endpoint)
    page.access.setText(access)
    page.secret.setText(secret)
    page.result.setText("")
    QTest.mouseClick(page.test, Qt.MouseButton.LeftButton)  # "Test and add", as the user clicks it
    qtbot.waitUntil(lambda: page.result.text() and not page.result.text().startswith("Checking"), timeout=15000)
    return page.result.text()


@pytest.mark.skipif(TLS, reason="plain http nodes; the wizard's https path is the next test")
def test_wizard_says_wrong_secret_unreachable_and_adds_a_good_node(qtbot, shared_nodes: NodePool) -> None:
    wizard = SetupWizard()
    qtbot.addWidget(wizard)
    n = shared_nodes["node1"]
    assert "Wrong credentials" in _check(qtbot, wizard, n.endpoint, n.access_key, "not-the-secret")
    assert "Unreachable" in _check(qtbot, wizard, f"127.0.0.1:{free_port()}", "a", "b")
    assert not wizard.nodes_page.isComplete()
    assert "Connected" in _check(qtbot, wizard, n.endpoint, n.access_key, n.secret_key)
    assert wizard.nodes_page.isComplete() and wizard.nodes_page.list.count() == 1


def test_wizard_shows_an_unknown_certificate_and_pins_it_when_trusted(qtbot, tls_pool: Home) -> None:  # noqa: F811
    """A node whose certificate no known CA signed: the wizard shows its SHA-256 and asks; 'Yes' adds the
    node with exactly that certificate pinned."""
    import json

    from sync_agent.tls import pem_fingerprint, pretty_fingerprint

    wizard = SetupWizard()
    qtbot.addWidget(wizard)
    c = json.loads((tls_pool.devpool / "credentials.json").read_text())["default"]
    endpoint = next(line.split('"')[1] for line in tls_pool.pool_toml.read_text().splitlines()
                    if line.startswith("endpoint"))
    expected = pem_fingerprint((tls_pool.devpool / "tls" / "node1" / "public.crt").read_bytes())
    wizard.nodes_page.secure.setChecked(True)
    asked: list[str] = []

    def answer() -> None:
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox):
            asked.append(box.text())
            QTest.mouseClick(box.button(QMessageBox.StandardButton.Yes), Qt.MouseButton.LeftButton)
        else:
            QTimer.singleShot(100, answer)

    QTimer.singleShot(100, answer)
    assert "Connected" in _check(qtbot, wizard, endpoint, c["access_key"], c["secret_key"])
    assert asked and pretty_fingerprint(expected) in asked[0]
    node, _ = wizard.nodes_page.nodes[0]
    assert node.secure and node.cert_sha256 == expected


def test_tray_states() -> None:
    assert tray_state(None) == "offline"
    assert tray_state({"state": "idle", "transfers": [{"path": "x"}]}) == "syncing"
    assert tray_state({"state": "paused"}) == "paused"


@pytest.mark.usefixtures("pool_file")
def test_tray_menu_pauses_and_resumes_the_agent(qtbot, pool_file, tmp_path: Path) -> None:
    from tests.sync.test_agent_process import AgentProcess

    cfg_file, _pool = pool_file
    agent = AgentProcess(cfg_file, tmp_path / "synced").start()
    link = AgentLink(tmp_path / "synced").start()
    try:
        tray = Tray(link, tmp_path / "synced")
        qtbot.waitUntil(lambda: link.last is not None and link.last["state"] == "idle", timeout=15000)
        tray.action("Pause sync").trigger()
        qtbot.waitUntil(lambda: agent.client.status()["paused"], timeout=10000)
        qtbot.waitUntil(lambda: link.last is not None and link.last["paused"], timeout=10000)
        assert tray.action("Resume sync") is not None and tray.action("Pause sync") is None
        tray.action("Resume sync").trigger()
        qtbot.waitUntil(lambda: not agent.client.status()["paused"], timeout=10000)
        assert tray.action("Sync issues") is not None
    finally:
        link.stop()
        agent.stop()


@pytest.mark.minio  # the wizard starts a dev pool
def test_wizard_clicked_through_ends_with_a_running_agent(qtbot, tmp_path: Path) -> None:
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QWizard

    from sync_agent.devpool import DevPool
    from sync_agent.sync.ipc import AgentClient

    wizard = SetupWizard()
    qtbot.addWidget(wizard)
    wizard.show()
    folder = tmp_path / "My PoolDrive"
    client = AgentClient(folder)
    try:
        wizard.start.demo.setChecked(True)
        QTest.mouseClick(wizard.button(QWizard.WizardButton.NextButton), Qt.MouseButton.LeftButton)
        assert wizard.currentPage() is wizard.finish_page
        wizard.finish_page.folder.setText(str(folder))
        wizard.finish_page.autostart.setChecked(False)  # not this machine's login
        QTest.mouseClick(wizard.button(QWizard.WizardButton.FinishButton), Qt.MouseButton.LeftButton)
        assert wizard.result_config is None  # returned at once: the pool starts in the background
        qtbot.waitUntil(lambda: wizard.result_config is not None, timeout=90000)
        assert [n.name for n in wizard.result_config.nodes] == ["node1", "node2", "node3", "node4"]
        assert all(s.state == "up" for s in DevPool().status())
        assert folder.is_dir() and client.running()  # syncing, with no further step
        qtbot.waitUntil(lambda: client.status()["state"] == "idle", timeout=30000)
    finally:
        if client.running():
            client.stop()
            qtbot.waitUntil(lambda: not client.running(), timeout=30000)
        DevPool().down(purge=True)


def test_tray_notifies_a_quorum_failure_unless_settings_say_not_to(qtbot, tmp_path: Path, monkeypatch) -> None:
    """The agent's 'not enough copies' issue reaches the desktop (matched by its kind, which the engine
    derives from the error: ``IssueKind.of``), and the Settings box 'Notify me about conflicts and errors'
    is obeyed."""
    from PySide6.QtCore import QSettings

    from desktop_app.tray import Tray
    from sync_agent.errors import QuorumError
    from sync_agent.sync.status import Activity, IssueKind

    link = AgentLink(tmp_path / "none")  # not started: the statuses below are what it would emit
    tray = Tray(link, tmp_path / "none")
    shown: list[str] = []
    monkeypatch.setattr(tray.icon, "showMessage", lambda title, *a: shown.append(title))
    tray.available = True
    settings = QSettings("PoolDrive", "PoolDrive")
    settings.setValue("notifications", "true")
    activity = Activity()
    err = QuorumError("Stored 'a.txt' on 1 node(s) but 2 are required, so the write was undone.")
    activity.issue("a.txt", err.title, err.message, IssueKind.of(err))
    link.status.emit(activity.snapshot())
    assert shown == [f"PoolDrive: {QuorumError.title}"]
    settings.setValue("notifications", "false")  # what Settings saves when the box is unticked
    activity.issue("b.txt", "Conflict", "'b.txt' was changed here and on the pool", IssueKind.CONFLICT)
    link.status.emit(activity.snapshot())
    assert shown == [f"PoolDrive: {QuorumError.title}"]
    settings.setValue("notifications", "true")
