"""Issue 8 (part): menu entry, icons, AppStream data and start-at-login files, validated by the real tools."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from sync_agent import desktop_integration as di


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return tmp_path


def _validate(tool: list[str], path: Path) -> None:
    if not shutil.which(tool[0]):
        pytest.skip(f"{tool[0]} is installed by scripts/setup")
    r = subprocess.run([*tool, str(path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_install_and_uninstall_menu_entry_and_icons(home: Path) -> None:
    files = di.install().files
    desktop = home / "data/applications/io.pooldrive.PoolDrive.desktop"
    assert desktop in files and (home / "data/icons/hicolor/scalable/apps/io.pooldrive.PoolDrive.svg").exists()
    assert (home / "data/icons/hicolor/48x48/apps/io.pooldrive.PoolDrive.png").exists()
    _validate(["desktop-file-validate"], desktop)
    _validate(["appstreamcli", "validate", "--no-net"], home / "data/metainfo/io.pooldrive.PoolDrive.metainfo.xml")
    assert di.uninstall()
    assert not desktop.exists() and not list((home / "data/icons").rglob("io.pooldrive.*"))


def test_autostart_on_writes_valid_unit_and_entry_and_off_removes_them(home: Path) -> None:
    folder = home / "PoolDrive"
    folder.mkdir()
    written = di.autostart_on(folder, use_systemd=True)
    unit, entry = di.autostart_paths()
    assert written == [unit, entry]
    text = unit.read_text()
    assert "Type=notify" in text and "WatchdogSec=" in text and "Restart=on-failure" in text
    assert f"--folder {folder}" in text
    _validate(["desktop-file-validate"], entry)
    if shutil.which("systemd-analyze"):
        run = home / "run"
        run.mkdir(mode=0o700)
        r = subprocess.run(["systemd-analyze", "verify", "--user", str(unit)], capture_output=True, text=True,
                           env={**os.environ, "XDG_RUNTIME_DIR": str(run)})
        assert r.returncode == 0, r.stderr
    assert di.autostart_enabled()
    assert sorted(di.autostart_off()) == sorted([unit, entry])
    assert not di.autostart_enabled() and not unit.exists()


def test_autostart_without_systemd_starts_agent_from_the_entry(home: Path) -> None:
    folder = home / "Sync"
    written = di.autostart_on(folder, use_systemd=False)
    assert len(written) == 1
    text = written[0].read_text()
    assert f'session --folder "{folder}"' in text
    _validate(["desktop-file-validate"], written[0])
